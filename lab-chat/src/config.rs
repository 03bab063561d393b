//! Command line and environment: everything lab-chat can be told at start-up.

use std::{net::IpAddr, time::Duration};

use clap::Parser;
use hitl_wire::env::chat as env;

/// The chat user's page for the local lab.
///
/// A signed-in user chats with an agent over A2A (server-side; the browser only talks to this
/// process). Tool calls the agent wants approved (tier 1) show as cards with Approve and
/// Reject; questions the agent asks (`ask_user`) as choices or a text box.
#[derive(Debug, Clone, Parser)]
#[command(name = "lab-chat", version)]
pub struct Config {
    /// Port to serve the page on.
    #[arg(long, env = env::HTTP_PORT, default_value_t = env::DEFAULT_HTTP_PORT)]
    pub http_port: u16,

    /// Address to bind.
    #[arg(long, env = env::BIND_ADDR, default_value = env::DEFAULT_BIND_ADDR)]
    pub bind_addr: IpAddr,

    /// The agents the user may pick from, `name=A2A-URL` separated by commas (the first is
    /// the default), e.g. `dba-assistant=http://127.0.0.1:18083/`.
    #[arg(long, env = env::AGENTS, value_parser = parse_agents)]
    pub agents: Agents,

    /// Sign-in accounts, `user:password` pairs separated by commas. Nobody gets past the
    /// sign-in without one.
    #[arg(long, env = env::CHAT_CREDENTIALS, hide_env_values = true)]
    pub chat_credentials: Option<String>,

    /// CHAT_CREDENTIALS read from a file instead (a mounted Secret; not both; one trailing newline
    /// dropped).
    #[arg(long, env = env::CHAT_CREDENTIALS_FILE, value_name = "PATH")]
    pub chat_credentials_file: Option<std::path::PathBuf>,

    /// The scripted model's base URL: its free-chat script is loaded before each new
    /// conversation (a scene may have left its own script loaded).
    #[arg(long, env = env::SCRIPTED_MODEL_URL)]
    pub scripted_model_url: Option<String>,

    /// The lab's requester signing key (PKCS#8): each A2A request carries a token for the
    /// signed-in user, which the gateway verifies. Unset: no token, and the gate denies
    /// tier-2 calls (loudly logged at start).
    #[arg(long, env = env::REQUESTER_KEY_FILE)]
    pub requester_key_file: Option<std::path::PathBuf>,

    /// File holding the key hitl-extauth signs its notifications with: this page then
    /// receives them at `POST /notify` and shows them at `/notifications`.
    #[arg(long, env = env::NOTIFY_SECRET_FILE)]
    pub notify_secret_file: Option<std::path::PathBuf>,

    /// Key that signs session cookies and CSRF tokens (random per start if unset).
    #[arg(long, env = env::SESSION_SECRET, hide_env_values = true)]
    pub session_secret: Option<String>,

    /// SESSION_SECRET read from a file instead (a mounted Secret; not both; one trailing newline
    /// dropped).
    #[arg(long, env = env::SESSION_SECRET_FILE, value_name = "PATH")]
    pub session_secret_file: Option<std::path::PathBuf>,

    /// Mark cookies `Secure` (serve over HTTPS only).
    #[arg(long, env = env::COOKIE_SECURE, default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub cookie_secure: bool,

    /// Host names (and optionally ports) this page answers to, comma-separated:
    /// DNS-rebinding protection. A request naming another `Host` is refused (421). `*`
    /// accepts any host (loudly logged).
    #[arg(
        long,
        env = env::ALLOWED_HOSTS,
        default_value = hitl_serve::hosts::DEFAULT,
        value_name = "HOSTS"
    )]
    pub allowed_hosts: String,

    /// Connection limits (header-read and idle timeouts, body limit: 64 KiB unless set).
    #[command(flatten)]
    pub http: hitl_serve::Limits,
}

impl Config {
    /// Each secret from its `*_FILE` variable where that is set (`hitl_wire::secret`).
    pub fn read_secret_files(mut self) -> Result<Self, hitl_wire::secret::SecretError> {
        use hitl_wire::secret::value_or_file;
        self.chat_credentials = value_or_file(
            env::CHAT_CREDENTIALS,
            self.chat_credentials.take(),
            env::CHAT_CREDENTIALS_FILE,
            self.chat_credentials_file.as_deref(),
        )?;
        self.session_secret = value_or_file(
            env::SESSION_SECRET,
            self.session_secret.take(),
            env::SESSION_SECRET_FILE,
            self.session_secret_file.as_deref(),
        )?;
        Ok(self)
    }
}

/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// One agent the user may chat with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub name: String,
    pub url: String,
}

/// The configured agents, never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agents(pub Vec<Agent>);

impl Agents {
    /// The agent called `name`, or the first one.
    pub fn pick(&self, name: Option<&str>) -> &Agent {
        name.and_then(|n| self.0.iter().find(|a| a.name == n))
            .unwrap_or(&self.0[0])
    }
}

fn parse_agents(text: &str) -> Result<Agents, String> {
    let mut agents = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, url) = entry
            .split_once('=')
            .ok_or_else(|| format!("`{entry}` is not `name=url`"))?;
        let (name, url) = (name.trim(), url.trim());
        if name.is_empty() || !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("`{entry}`: need a name and an http(s) URL"));
        }
        if agents.iter().any(|a: &Agent| a.name == name) {
            return Err(format!("agent `{name}` is listed twice"));
        }
        agents.push(Agent {
            name: name.to_owned(),
            url: url.to_owned(),
        });
    }
    if agents.is_empty() {
        return Err("no agents listed".into());
    }
    Ok(Agents(agents))
}

impl Config {
    /// The notification inbox, when a secret file is given.
    pub fn inbox(&self) -> anyhow::Result<Option<crate::inbox::Inbox>> {
        let Some(path) = &self.notify_secret_file else {
            return Ok(None);
        };
        let secret = hitl_wire::notify::secret_from_file(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", env::NOTIFY_SECRET_FILE))?;
        Ok(Some(crate::inbox::Inbox::new(secret)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_line_is_consistent() {
        Config::command().debug_assert();
    }

    #[test]
    fn agents_are_a_named_list() {
        let agents = parse_agents("a=http://x:1/, b=http://y:2").unwrap();
        assert_eq!(agents.pick(None).name, "a");
        assert_eq!(agents.pick(Some("b")).url, "http://y:2");
        assert_eq!(agents.pick(Some("nope")).name, "a");
        assert!(parse_agents("").is_err());
        assert!(parse_agents("a").is_err());
        assert!(parse_agents("a=ftp://x").is_err());
        assert!(parse_agents("a=http://x,a=http://y").is_err());
    }
}
