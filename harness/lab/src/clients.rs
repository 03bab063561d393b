//! Thin typed HTTP clients for the lab's own services, over the `hitl-wire` types:
//! mock-db-mcp's state and reset, and hitl-ui as a signed-in reviewer uses it. hitl-extauth's
//! admin API has its one client in `hitl_wire::extauth::client`.

use std::time::Duration;

use anyhow::Context as _;
use hitl_wire::mockdb::{State, paths};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("reqwest client")
}

async fn ok_json<T: serde::de::DeserializeOwned>(
    what: &str,
    resp: reqwest::Response,
) -> anyhow::Result<T> {
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        anyhow::bail!("{what}: HTTP {status}: {body}");
    }
    resp.json()
        .await
        .with_context(|| format!("{what}: reading the answer"))
}

/// mock-db-mcp, reached directly (not through the gateway), with the lab's reset token.
#[derive(Debug, Clone)]
pub struct Db {
    http: reqwest::Client,
    base: String,
    reset_token: Option<String>,
}

impl Db {
    /// `reset_token`: what `/reset` demands (`None`: this client cannot reset).
    pub fn new(base: impl Into<String>, reset_token: Option<String>) -> Self {
        Self {
            http: http(),
            base: base.into().trim_end_matches('/').to_owned(),
            reset_token,
        }
    }

    pub async fn state(&self) -> anyhow::Result<State> {
        let url = format!("{}{}", self.base, paths::STATE);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        ok_json("mock-db-mcp /state", resp).await
    }

    /// Restore the seed data (needs mock-db-mcp started with `--enable-reset` and the reset
    /// token this client holds).
    pub async fn reset(&self) -> anyhow::Result<State> {
        let url = format!("{}{}", self.base, paths::RESET);
        let token = self.reset_token.as_deref().with_context(|| {
            format!(
                "no reset token for mock-db-mcp at {}: the lab records it in its state file \
                 when it starts (bring the lab up again with `cargo xtask up`)",
                self.base
            )
        })?;
        let resp = self
            .http
            .post(&url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            anyhow::bail!(
                "mock-db-mcp at {} does not allow resets: start it with ENABLE_RESET=1 (the \
                 local lab does; on kind the manifests set it)",
                self.base
            );
        }
        ok_json("mock-db-mcp /reset", resp).await
    }
}

/// hitl-ui as a signed-in reviewer uses it: sign in with the built-in accounts, then decide
/// with the form a browser would send (same Origin, CSRF cookie and token).
#[derive(Debug, Clone)]
pub struct ReviewerUi {
    http: reqwest::Client,
    base: String,
    cookies: String,
    csrf: String,
}

/// One `application/x-www-form-urlencoded` value.
fn form_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", form_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `name=value` of each `Set-Cookie` in `resp`.
fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect()
}

impl ReviewerUi {
    /// Sign in as `user` with `password`.
    pub async fn sign_in(base: &str, user: &str, password: &str) -> anyhow::Result<Self> {
        use hitl_wire::ui::{CSRF_COOKIE, SIGNIN_PATH};
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = base.trim_end_matches('/').to_owned();
        let page = http.get(format!("{base}{SIGNIN_PATH}")).send().await?;
        let csrf_cookie = set_cookies(&page)
            .into_iter()
            .find(|c| c.starts_with(&format!("{CSRF_COOKIE}=")))
            .context("hitl-ui set no CSRF cookie on its sign-in page")?;
        let html = page.text().await?;
        let csrf = html
            .split(r#"name="csrf-token" content=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .context("no csrf-token on hitl-ui's sign-in page")?
            .to_owned();
        let resp = http
            .post(format!("{base}{SIGNIN_PATH}"))
            .header("origin", &base)
            .header("cookie", &csrf_cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("username", user),
                ("password", password),
                ("csrf", &csrf),
            ]))
            .send()
            .await?;
        let session = set_cookies(&resp)
            .into_iter()
            .find(|c| c.starts_with(&format!("{}=", hitl_wire::ui::SESSION_COOKIE)))
            .with_context(|| format!("signing in to hitl-ui as {user}: HTTP {}", resp.status()))?;
        Ok(Self {
            http,
            cookies: format!("{csrf_cookie}; {session}"),
            base,
            csrf,
        })
    }

    /// Decide call `id`: the HTTP status and the answer's text.
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        reason: &str,
    ) -> anyhow::Result<(u16, String)> {
        let resp = self
            .http
            .post(format!("{}{}", self.base, hitl_wire::ui::decide_path(id)))
            .header("origin", &self.base)
            .header("cookie", &self.cookies)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("decision", if approve { "approve" } else { "reject" }),
                ("reason", reason),
                ("csrf", &self.csrf),
            ]))
            .send()
            .await
            .context("POST a decision to hitl-ui")?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default()))
    }
}
