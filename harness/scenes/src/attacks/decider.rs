//! How decisions reach the gate under test: hitl-extauth's admin API, or a command for a
//! gate that decides elsewhere.

use anyhow::Context as _;
use hitl_wire::extauth::DecideRequest;

use hitl_wire::extauth::client::AdminClient;

/// How decisions reach the gate under test.
#[derive(Debug, Clone)]
pub enum Decider {
    /// hitl-extauth's admin API (`POST /decide/{id}`).
    Admin(AdminClient),
    /// A shell command, `{id}` `{approve}` (`true`/`false`) `{reason}` `{reviewer}` filled in
    /// (each shell-quoted); exit 0 means the decision was taken.
    Command(String),
}

impl Decider {
    /// Reject call `id`, which an attack left waiting, as the conformance run's own reviewer:
    /// `Ok(Err(why))` when the decider refused.
    pub async fn clean_up(&self, id: &str) -> anyhow::Result<Result<(), String>> {
        self.decide(id, false, "conformance: cleaning up", "platform-reviewer")
            .await
    }

    /// Decide call `id` as `reviewer`: `Ok(Err(why))` when the decider refused.
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        reason: &str,
        reviewer: &str,
    ) -> anyhow::Result<Result<(), String>> {
        match self {
            Decider::Admin(admin) => {
                let request = DecideRequest {
                    id_token: None,
                    approved: approve,
                    reason: reason.to_owned(),
                    reviewer: Some(reviewer.to_owned()),
                };
                Ok(admin
                    .decide(id, &request)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{e:#}")))
            }
            Decider::Command(template) => {
                let command = template
                    .replace("{id}", &shell_quote(id))
                    .replace("{approve}", if approve { "true" } else { "false" })
                    .replace("{reason}", &shell_quote(reason))
                    .replace("{reviewer}", &shell_quote(reviewer));
                let output = tokio::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&command)
                    .output()
                    .await
                    .with_context(|| format!("running the decide command `{command}`"))?;
                Ok(if output.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "`{command}` exited with {}: {}",
                        output.status,
                        String::from_utf8_lossy(&output.stderr).trim()
                    ))
                })
            }
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
