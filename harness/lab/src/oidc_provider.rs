//! The local lab's OpenID Provider for reviewers: npm `oidc-provider` on Node.js, run by
//! `harness/oidc/op.mjs`. This module installs it (`npm ci` from the committed lockfile, so
//! every package is pinned by its integrity hash, into `<target>/npm-tools/oidc-provider`),
//! makes its ES256 signing key (PKCS#8 for the provider, the public half as a JWKS for the
//! gate), and writes the workshop's reviewers and hitl-ui's client registration beside it.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _},
};
use serde::Serialize;
use serde_json::json;

use crate::bins::{target_dir, workspace_root};

/// Process (and log file) name.
pub const NAME: &str = "oidc-provider";
/// hitl-ui's client id at the provider (the gate's `REVIEWER_AUDIENCES`).
pub const CLIENT_ID: &str = "hitl-ui";
/// The signing key's id in the JWKS.
pub const KEY_ID: &str = "hitl-lab-op-1";
/// The signing algorithm (what `jsonwebtoken` verifies over ring).
pub const ALG: &str = "ES256";
/// Where hitl-ui's sign-in comes back to, under its base URL.
pub const CALLBACK_PATH: &str = "/oidc/callback";

/// Files in the lab's credentials directory.
pub const KEY_FILE: &str = "oidc-signing-key.p8";
pub const JWKS_FILE: &str = "oidc-jwks.json";
pub const USERS_FILE: &str = "oidc-users.json";
pub const CLIENTS_FILE: &str = "oidc-clients.json";
pub const CLIENT_SECRET_FILE: &str = "oidc-client-secret";

/// One person who signs in at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub username: String,
    pub password: String,
    pub groups: Vec<String>,
}

impl User {
    fn new(name: &str, groups: &[&str]) -> Self {
        Self {
            username: name.to_owned(),
            // Workshop defaults, like the static `reviewer:reviewer`: the name is the password.
            password: name.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }
}

/// The workshop's people: the platform reviewer, a DBA and an SRE (scene 9's two keys), and
/// the chat user, who may sign in but is in no reviewer group.
pub fn workshop_users() -> Vec<User> {
    vec![
        User::new("reviewer", &["platform"]),
        User::new("dba-ann", &["dba"]),
        User::new("sre-sam", &["sre"]),
        User::new("alice", &[]),
    ]
}

/// One OIDC client registration (hitl-ui's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
}

/// Everything the provider, the gate and hitl-ui need, written under `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// `http://127.0.0.1:PORT`.
    pub issuer: String,
    pub port: u16,
    pub key_file: PathBuf,
    /// The public key: the gate's `REVIEWER_JWKS_FILE`.
    pub jwks_file: PathBuf,
    pub users_file: PathBuf,
    pub clients_file: PathBuf,
    /// hitl-ui's `OIDC_CLIENT_SECRET_FILE`.
    pub client_secret_file: PathBuf,
    pub users: Vec<User>,
}

impl Setup {
    /// A new key and client secret in `dir` (owner-only), for a provider on
    /// `127.0.0.1:port` that `ui_base_urls` (hitl-ui as a browser may open it) sign in
    /// through.
    pub fn write(
        dir: &Path,
        port: u16,
        users: Vec<User>,
        ui_base_urls: &[String],
    ) -> anyhow::Result<Self> {
        hitl_wire::private::dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("generating the provider's P-256 key failed"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| anyhow::anyhow!("the provider's key: {e}"))?;
        let setup = Self {
            issuer: format!("http://127.0.0.1:{port}"),
            port,
            key_file: dir.join(KEY_FILE),
            jwks_file: dir.join(JWKS_FILE),
            users_file: dir.join(USERS_FILE),
            clients_file: dir.join(CLIENTS_FILE),
            client_secret_file: dir.join(CLIENT_SECRET_FILE),
            users,
        };
        let secret = crate::credentials::random_token()?;
        let client = Client {
            client_id: CLIENT_ID.to_owned(),
            client_secret: secret.clone(),
            redirect_uris: ui_base_urls
                .iter()
                .map(|u| format!("{}{CALLBACK_PATH}", u.trim_end_matches('/')))
                .collect(),
        };
        let private = |path: &Path, bytes: &[u8]| {
            hitl_wire::private::write(path, bytes)
                .with_context(|| format!("writing {}", path.display()))
        };
        private(&setup.key_file, pkcs8.as_ref())?;
        private(&setup.client_secret_file, secret.as_bytes())?;
        private(&setup.users_file, &serde_json::to_vec_pretty(&setup.users)?)?;
        private(&setup.clients_file, &serde_json::to_vec_pretty(&[client])?)?;
        // Public, but kept with the lab's credentials, which are all owner-only.
        let public = jwks(key.public_key().as_ref()).to_string();
        private(&setup.jwks_file, public.as_bytes())?;
        Ok(setup)
    }
}

/// The public key (an uncompressed SEC1 point) as a JWKS.
fn jwks(point: &[u8]) -> serde_json::Value {
    json!({
        "keys": [{
            "kty": "EC", "crv": "P-256",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
            "kid": KEY_ID, "alg": ALG, "use": "sig",
        }]
    })
}

/// The installed provider: Node.js and the script, beside its `node_modules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub node: PathBuf,
    pub script: PathBuf,
}

/// `harness/oidc/`, the provider's sources and lockfile.
fn source_dir() -> PathBuf {
    workspace_root().join("harness").join("oidc")
}

/// Install the provider if it is not (or not from this lockfile); copy the script next to
/// its packages. Needs `npm` and registry.npmjs.org on the first run; safe to call from
/// several processes at once (a file lock serialises installs).
pub fn ensure() -> anyhow::Result<Installed> {
    let dir = target_dir().join("npm-tools").join(NAME);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let guard = File::create(dir.join(".install.lock"))?;
    guard.lock().context("locking the provider's install")?;
    let src = source_dir();
    let lock = std::fs::read(src.join("package-lock.json"))
        .with_context(|| format!("reading {}", src.join("package-lock.json").display()))?;
    let installed = Installed {
        node: dir.join("node_modules/node/bin/node"),
        script: dir.join("op.mjs"),
    };
    let stamp = dir.join(".installed");
    let wanted = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&lock));
    let fresh = std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
        && installed.node.is_file();
    if !fresh {
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(src.join(file), dir.join(file))?;
        }
        eprintln!(
            "==> installing the lab's OpenID Provider (npm oidc-provider) into {} (first run only)",
            dir.display()
        );
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .context("running `npm ci` for the lab's OpenID Provider: install npm (Debian: `apt-get install npm`) and make sure it reaches registry.npmjs.org")?;
        anyhow::ensure!(
            output.status.success() && installed.node.is_file(),
            "`npm ci` in {} failed ({}):\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&stamp, wanted)?;
    }
    // Replaced whole (a new file renamed over the old), never rewritten in place: another
    // lab's provider may be starting from it right now, and a half-copied script is an empty
    // module to node, which then exits 0 without a word (seen in CI: tests start labs in
    // parallel).
    let script = std::fs::read(src.join("op.mjs"))
        .with_context(|| format!("reading {}", src.join("op.mjs").display()))?;
    if std::fs::read(&installed.script).ok().as_deref() != Some(script.as_slice()) {
        let next = dir.join(format!("op.mjs.{}.new", std::process::id()));
        std::fs::write(&next, &script)
            .and_then(|()| std::fs::rename(&next, &installed.script))
            .with_context(|| format!("installing {}", installed.script.display()))?;
    }
    Ok(installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workshop_keeps_the_chat_user_out_of_every_group() {
        let users = workshop_users();
        let groups = |name: &str| {
            users
                .iter()
                .find(|u| u.username == name)
                .map(|u| u.groups.clone())
        };
        assert_eq!(groups("reviewer"), Some(vec!["platform".to_owned()]));
        assert_eq!(groups("dba-ann"), Some(vec!["dba".to_owned()]));
        assert_eq!(groups("sre-sam"), Some(vec!["sre".to_owned()]));
        assert_eq!(groups("alice"), Some(vec![]));
    }

    #[test]
    fn the_setup_writes_a_public_jwks_and_private_rest() {
        let dir = std::env::temp_dir().join(format!("hitl-op-{}", uuid::Uuid::new_v4()));
        let setup =
            Setup::write(&dir, 1, workshop_users(), &["http://127.0.0.1:2".into()]).unwrap();
        let jwks: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&setup.jwks_file).unwrap()).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], KEY_ID);
        assert!(jwks["keys"][0].get("d").is_none(), "public only");
        let clients = std::fs::read_to_string(&setup.clients_file).unwrap();
        assert!(
            clients.contains("http://127.0.0.1:2/oidc/callback"),
            "{clients}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
