//! hitl-ui fixture: the real hitl-ui in front of the real hitl-extauth (and the real
//! mock-db-mcp for the live schema version; both started by `hitl_lab::stack`), calls parked
//! by sending a gateway's `Authorization/Check` straight to the gate over gRPC (no gateway
//! needed), and real Chromium windows driven over WebDriver (Debian's `chromium` +
//! `chromium-driver`, via fantoccini).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use fantoccini::{Client, ClientBuilder, Locator};
use hitl_lab::{
    components::ui::{self, Options},
    net,
    proc::{Running, Spec},
};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::task::JoinHandle;

use crate::{extauth::ExtAuth, mock_db::MockDb, wait::eventually};

/// Reviewer accounts of the built-in sign-in used by these tests.
pub const CREDENTIALS: &str = "alice:alice-pw,bob:bob-pw";

/// Generous upper bound for anything to show up: only here to stop a hang, never a benchmark.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Where the screenshots go (kept as CI artifacts).
pub fn screenshot_dir() -> PathBuf {
    hitl_lab::bins::target_dir().join("ui-screenshots")
}

// ---- the stack -------------------------------------------------------------------------

/// The whole stack behind a reviewer's browser: mock-db-mcp (for the live schema version),
/// hitl-extauth (the other engineer's fixture), hitl-ui. Calls are parked by sending Envoy's
/// `Authorization/Check` to the gate's gRPC port directly.
pub struct Stack {
    pub db: MockDb,
    pub extauth: ExtAuth,
    pub ui_url: String,
    _ui: Running,
    /// The lab's OpenID Provider, when hitl-ui signs reviewers in there too.
    _op: Option<Running>,
    pub log_dir: PathBuf,
}

impl Stack {
    pub async fn start(test: &str) -> anyhow::Result<Self> {
        Self::start_with(test, None).await
    }

    /// The same, with the lab's real OpenID Provider (the workshop's users, ID tokens living
    /// `id_token_ttl_sec`) offered on hitl-ui's sign-in page beside the test accounts.
    pub async fn start_with_provider(test: &str, id_token_ttl_sec: u64) -> anyhow::Result<Self> {
        Self::start_with(test, Some(id_token_ttl_sec)).await
    }

    async fn start_with(test: &str, provider_ttl: Option<u64>) -> anyhow::Result<Self> {
        let log_dir = crate::scratch_dir(test);
        let hitl_lab::stack::Stack {
            signer,
            db,
            extauth,
            issuer,
            ..
        } = hitl_lab::stack::Stack::builder(&log_dir).start().await?;
        let db = MockDb::adopt(db, signer, &log_dir)?;
        let mut extauth = ExtAuth::adopt_with(extauth, &log_dir, issuer)?;
        let (ui_url, ui, op) = match provider_ttl {
            Some(ttl) => {
                let (url, ui, op) = start_ui_and_provider(&log_dir, &mut extauth, &db, ttl).await?;
                (url, ui, Some(op))
            }
            None => {
                let (url, ui) = start_ui(&log_dir, &extauth, &db).await?;
                (url, ui, None)
            }
        };
        Ok(Self {
            db,
            extauth,
            ui_url,
            _ui: ui,
            _op: op,
            log_dir,
        })
    }

    /// Park `run_migration {"version": version}` as asked for by `user`, the way Envoy would:
    /// an `Authorization/Check` carrying the MCP request. The handle resolves when the gate
    /// answers (after a decision).
    pub async fn park_migration(
        &self,
        user: &str,
        version: &str,
    ) -> anyhow::Result<JoinHandle<anyhow::Result<CheckResponse>>> {
        let body = crate::gate::tools_call(
            7,
            "run_migration",
            serde_json::json!({ "version": version }),
        );
        // As Envoy forwards it, with `user`'s token for the gate to verify.
        let request = crate::check::verified(
            hitl_scenes::attacks::check::post_as_text(
                "/privileged/mcp",
                &body,
                &[
                    (":authority", "gateway.local"),
                    ("accept", "application/json, text/event-stream"),
                    ("x-user-id", user),
                    ("x-agent-id", "dba-assistant"),
                    ("user-agent", "kagent-adk/0.10.4"),
                    ("mcp-session-id", "a1b2c3"),
                ],
            ),
            &self.extauth.issuer,
            user,
        );
        self.extauth.check_raw(request).await
    }

    /// Ids of the calls pending at the gate right now.
    pub async fn pending_ids(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .extauth
            .pending()
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect())
    }

    /// Wait until exactly `n` calls are pending; their ids.
    pub async fn wait_pending(&self, n: usize) -> anyhow::Result<Vec<String>> {
        Ok(self
            .extauth
            .wait_pending(n)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect())
    }
}

/// hitl-ui following `extauth`, reading the schema version from `db`, with the test
/// accounts; its URL and process.
pub async fn start_ui(
    log_dir: &Path,
    extauth: &ExtAuth,
    db: &MockDb,
) -> anyhow::Result<(String, Running)> {
    net::on_fresh_ports(|| async {
        let mut options = Options::new(net::free_port()?, extauth.options.admin_url())
            .mock_db_state_url(db.options.url(hitl_wire::mockdb::paths::STATE))
            .reviewer_credentials(CREDENTIALS);
        options.extauth_admin_token = extauth.options.admin_token.clone();
        let running = Running::start(ui::spec(&options, log_dir)?).await?;
        Ok((options.base_url(), running))
    })
    .await
}

/// The lab's OpenID Provider (ID tokens living `ttl` s) and a hitl-ui that offers it, each
/// on a free port: hitl-ui's port is picked first, so the provider registers its callback.
async fn start_ui_and_provider(
    log_dir: &Path,
    extauth: &mut ExtAuth,
    db: &MockDb,
    ttl: u64,
) -> anyhow::Result<(String, Running, Running)> {
    use hitl_lab::oidc_provider::{self, Setup};
    let installed = tokio::task::spawn_blocking(oidc_provider::ensure).await??;
    let admin_url = extauth.options.admin_url();
    let admin_token = extauth.options.admin_token.clone();
    let (url, ui, op, setup) = net::on_fresh_ports(|| async {
        let (ui_port, op_port) = (net::free_port()?, net::free_port()?);
        let setup = Setup::write(
            &log_dir.join("oidc"),
            op_port,
            oidc_provider::workshop_users(),
            &[format!("http://127.0.0.1:{ui_port}")],
        )?;
        let spec =
            hitl_lab::components::oidc_provider::spec_with_ttl(&installed, &setup, log_dir, ttl);
        let op = Running::start(spec).await?;
        let mut options = Options::new(ui_port, admin_url.clone())
            .mock_db_state_url(db.options.url(hitl_wire::mockdb::paths::STATE))
            .reviewer_credentials(CREDENTIALS)
            .oidc(ui::Oidc {
                issuer: setup.issuer.clone(),
                client_id: oidc_provider::CLIENT_ID.to_owned(),
                client_secret_file: setup.client_secret_file.clone(),
            });
        options.extauth_admin_token = admin_token.clone();
        let ui = Running::start(ui::spec(&options, log_dir)?).await?;
        Ok((options.base_url(), ui, op, setup))
    })
    .await?;
    // The gate believes this provider's ID tokens (and nobody's word for a name's groups).
    extauth.kill().await?;
    extauth.options.reviewer = Some(hitl_lab::components::extauth::ReviewerTrust {
        jwks_file: setup.jwks_file.clone(),
        issuer: setup.issuer.clone(),
        audiences: vec![oidc_provider::CLIENT_ID.to_owned()],
    });
    extauth.restart().await?;
    Ok((url, ui, op))
}

// ---- the browser --------------------------------------------------------------------------

/// One chromedriver; each [`Browser`] it opens is a separate Chromium with its own profile
/// (so its own cookies: a separate reviewer).
pub struct Driver {
    url: String,
    profiles: PathBuf,
    opened: std::sync::atomic::AtomicUsize,
    _running: Running,
}

fn find_program(name: &str) -> anyhow::Result<PathBuf> {
    hitl_lab::prereqs::find_program(name).with_context(|| {
        format!(
            "`{name}` not found: `cargo xtask test` installs Debian's `chromium` and \
             `chromium-driver` (as root), or install them yourself"
        )
    })
}

impl Driver {
    pub async fn start(log_dir: &Path) -> anyhow::Result<Self> {
        let program = find_program("chromedriver")?;
        net::on_fresh_ports(|| async {
            let port = net::free_port()?;
            let url = format!("http://127.0.0.1:{port}");
            let spec = Spec::new("chromedriver", &program, log_dir)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .health(format!("{url}/status"));
            let running = Running::start(spec).await?;
            Ok(Self {
                url,
                profiles: log_dir.join("chromium-profiles"),
                opened: Default::default(),
                _running: running,
            })
        })
        .await
    }

    /// A fresh headless Chromium (1400×1000, fresh profile, no network beyond loopback).
    pub async fn open(&self) -> anyhow::Result<Browser> {
        self.open_with(&[]).await
    }

    /// [`Driver::open`] with extra Chromium flags (e.g. `--host-resolver-rules=…`, to play a
    /// DNS-rebinding page).
    pub async fn open_with(&self, extra: &[&str]) -> anyhow::Result<Browser> {
        let n = self
            .opened
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let profile = self.profiles.join(format!("profile-{n}"));
        std::fs::create_dir_all(&profile)?;
        let chromium = find_program("chromium")?;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1400,1050",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let args: Vec<&str> = args.iter().copied().chain(extra.iter().copied()).collect();
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .context("opening a Chromium session through chromedriver")?;
        Ok(Browser { client })
    }
}

/// One browser window.
pub struct Browser {
    pub client: Client,
}

impl Browser {
    /// Sign in through the page's own form.
    pub async fn sign_in(&self, base: &str, user: &str, password: &str) -> anyhow::Result<()> {
        self.client.goto(&format!("{base}/signin")).await?;
        self.client
            .find(Locator::Css("#username"))
            .await?
            .send_keys(user)
            .await?;
        self.client
            .find(Locator::Css("#password"))
            .await?
            .send_keys(password)
            .await?;
        self.client
            .find(Locator::Css("form.signin-form button[type=submit]"))
            .await?
            .click()
            .await?;
        let name = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css("#reviewer-name"))
            .await
            .with_context(|| format!("{user} did not end up signed in"))?;
        anyhow::ensure!(name.text().await? == user, "signed in as someone else");
        Ok(())
    }

    /// Sign in at the OpenID Provider: the page's "Sign in with your identity provider", the
    /// provider's own form (unless the provider still knows this browser), and back to the
    /// queue.
    pub async fn sign_in_oidc(&self, base: &str, user: &str, password: &str) -> anyhow::Result<()> {
        self.client.goto(&format!("{base}/signin")).await?;
        self.client
            .find(Locator::Css("#signin-oidc"))
            .await?
            .click()
            .await?;
        let form = "form[action$=\"/login\"]";
        let landed = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(&format!("{form} #username, #reviewer-name")))
            .await
            .context("neither the identity provider's form nor the queue showed")?;
        if landed.attr("id").await?.as_deref() == Some("username") {
            landed.send_keys(user).await?;
            self.client
                .find(Locator::Css("#password"))
                .await?
                .send_keys(password)
                .await?;
            self.client
                .find(Locator::Css(&format!("{form} button[type=submit]")))
                .await?
                .click()
                .await?;
        }
        let name = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css("#reviewer-name"))
            .await
            .with_context(|| format!("{user} did not end up signed in through the provider"))?;
        anyhow::ensure!(name.text().await? == user, "signed in as someone else");
        Ok(())
    }

    /// Press "Sign out" in the top bar.
    pub async fn sign_out(&self) -> anyhow::Result<()> {
        self.client
            .find(Locator::Css("form[action=\"/signout\"] button"))
            .await?
            .click()
            .await?;
        Ok(())
    }

    /// The card of call `id`, once it is on the page.
    pub async fn card(&self, id: &str) -> anyhow::Result<fantoccini::elements::Element> {
        let selector = format!("article.card[data-call-id=\"{id}\"]");
        eventually(&format!("card {id}"), || async {
            Ok(self
                .client
                .find_all(Locator::Css(&selector))
                .await?
                .into_iter()
                .next())
        })
        .await
    }

    /// Wait until call `id`'s card is gone from the page.
    pub async fn card_gone(&self, id: &str) -> anyhow::Result<()> {
        let selector = format!("article.card[data-call-id=\"{id}\"]");
        eventually(&format!("card {id} to vanish"), || async {
            Ok(self
                .client
                .find_all(Locator::Css(&selector))
                .await?
                .is_empty()
                .then_some(()))
        })
        .await
    }

    /// Type `reason` into call `id`'s form and press Approve or Reject.
    pub async fn decide(&self, id: &str, approve: bool, reason: &str) -> anyhow::Result<()> {
        let card = self.card(id).await?;
        if !reason.is_empty() {
            card.find(Locator::Css("textarea[name=reason]"))
                .await?
                .send_keys(reason)
                .await?;
        }
        let button = if approve {
            "button[value=approve]"
        } else {
            "button[value=reject]"
        };
        card.find(Locator::Css(button)).await?.click().await?;
        Ok(())
    }

    /// Why the page will not let this reviewer approve call `id` (its Approve button disabled,
    /// the policy's reason under the buttons); `None` when they may.
    pub async fn why_not_approve(&self, id: &str) -> anyhow::Result<Option<String>> {
        let card = self.card(id).await?;
        let button = card.find(Locator::Css("button[value=approve]")).await?;
        if button.attr("disabled").await?.is_none() {
            return Ok(None);
        }
        let note = card.find(Locator::Css(".not-eligible")).await?;
        Ok(Some(note.text().await?))
    }

    /// The message the page shows under call `id`'s buttons, once it says something other
    /// than the "Approving…" placeholder.
    pub async fn form_error(&self, id: &str) -> anyhow::Result<String> {
        let card = self.card(id).await?;
        eventually("a message under the buttons", || async {
            let message = card.find(Locator::Css(".form-message.error")).await;
            match message {
                Ok(el) => {
                    let text = el.text().await?;
                    Ok((!text.is_empty()).then_some(text))
                }
                Err(_) => Ok(None),
            }
        })
        .await
    }

    /// Save a PNG of the whole window under [`screenshot_dir`].
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        save(name, &png)
    }

    /// Save a PNG of one element.
    pub async fn screenshot_of(
        &self,
        element: &fantoccini::elements::Element,
        name: &str,
    ) -> anyhow::Result<PathBuf> {
        // Chromium clips element screenshots to the viewport: bring the whole card in first.
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'start'});",
                vec![serde_json::to_value(element)?],
            )
            .await?;
        save(name, &element.screenshot().await?)
    }

    /// A cookie's value (HttpOnly ones too: WebDriver sees them).
    pub async fn cookie(&self, name: &str) -> anyhow::Result<String> {
        Ok(self.client.get_named_cookie(name).await?.value().to_owned())
    }

    pub async fn close(self) -> anyhow::Result<()> {
        self.client.close().await?;
        Ok(())
    }
}

fn save(name: &str, png: &[u8]) -> anyhow::Result<PathBuf> {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
