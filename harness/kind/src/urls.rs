//! The end of `up`: where everything is on the kind lab (the gateway's routes, the UIs, the
//! agent's A2A endpoint) and how to reach it.

use std::fmt;

use hitl_manifests::ModelChoice;

use super::status::FORWARDS;

/// The end of `up`: where everything is and how to reach it.
pub struct Where<'a> {
    pub cluster: &'a str,
    pub model: ModelChoice,
    pub gateway_address: &'a str,
    pub agent_namespace: &'a str,
    pub agent_name: &'a str,
    /// `user:password` for hitl-ui's sign-in.
    pub reviewer: Option<&'a str>,
    /// The recorded lab (background forwards), if any.
    pub state: Option<&'a hitl_lab::lab::LabState>,
}

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a2a_path = format!("/api/a2a/{}/{}/", self.agent_namespace, self.agent_name);
        writeln!(
            f,
            "\nThe lab is up on kind cluster `{}` (--model {}).\n",
            self.cluster,
            self.model.as_str()
        )?;
        writeln!(f, "MCP through the gateway (from this machine, on Linux):")?;
        writeln!(f, "  http://{}/public/mcp       open", self.gateway_address)?;
        writeln!(
            f,
            "  http://{}/privileged/mcp   tier-2 gated (hitl-extauth parks tools/call)",
            self.gateway_address
        )?;
        writeln!(f, "\nRun `cargo xtask port-forward` (until Ctrl-C), then:")?;
        for fw in &FORWARDS {
            let path = if fw.service == "kagent-controller" {
                a2a_path.as_str()
            } else {
                ""
            };
            writeln!(f, "  http://localhost:{}{path}   {}", fw.local, fw.what)?;
        }
        match self.reviewer.and_then(|r| r.split_once(':')) {
            Some((user, password)) => {
                writeln!(f, "  hitl-ui sign-in: {user} / {password}")?;
            }
            None => writeln!(
                f,
                "  hitl-ui sign-in: see Secret hitl-lab/hitl-ui-reviewers"
            )?,
        }
        writeln!(
            f,
            "\nIn the cluster the agent is at http://kagent-controller.kagent.svc.cluster.local:8083{a2a_path}"
        )?;
        if let Some(state) = self.state {
            let u = &state.urls;
            writeln!(
                f,
                "\nFor `cargo xtask scene|conformance|chat`, background port-forwards (stopped by \
                 `down`; state in target/lab/state.json):"
            )?;
            writeln!(f, "  agent A2A       {}", u.agent)?;
            writeln!(f, "  gateway         {}", u.gateway)?;
            writeln!(f, "  extauth admin   {}", u.extauth_admin)?;
            writeln!(f, "  mock-db-mcp     {}", u.mock_db)?;
            writeln!(f, "  hitl-ui         {}", u.reviewer_ui)?;
            if let Some(url) = &u.scripted_model {
                writeln!(f, "  scripted model  {url}")?;
            }
        }
        writeln!(
            f,
            "More: `cargo xtask status`; tear down: `cargo xtask down`."
        )
    }
}
