//! What the local lab says about itself: where everything is (`up`'s last words) and
//! `status` (each process, the endpoints, what waits for a reviewer).

use crate::{lab::LabState, proc};

/// What `up` prints at the end: where everything is.
pub fn describe(
    state: &LabState,
    reviewer_credentials: Option<&str>,
    chat_credentials: Option<&str>,
) -> String {
    let u = &state.urls;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<24} {v}\n"));
    let sign_in = |credentials: Option<&str>| {
        credentials
            .and_then(|c| c.split(',').next())
            .map(|c| format!("  (sign in as {})", c.replacen(':', " / ", 1)))
            .unwrap_or_default()
    };
    if let Some(chat) = &u.chat {
        line(
            "chat page (chat user)",
            format!("{chat}{}", sign_in(chat_credentials)),
        );
    }
    line(
        "reviewer UI (reviewer)",
        format!("{}{}", u.reviewer_ui, sign_in(reviewer_credentials)),
    );
    provider_lines(state, &mut line);
    for agent in &state.agents {
        if let Some(url) = u.agent_url(*agent) {
            line(&format!("{agent} agent (A2A)"), url.to_owned());
            line(
                &format!("{agent} agent card"),
                format!("{url}.well-known/agent-card.json"),
            );
        }
    }
    line(
        "ext-auth admin",
        format!(
            "{}/pending  (Authorization: Bearer <admin_token in target/lab/state.json>)",
            u.extauth_admin
        ),
    );
    line(
        "gateway (MCP)",
        format!("{0}/public/mcp  {0}/privileged/mcp", u.gateway),
    );
    line(
        "database state",
        format!(
            "{0}/state  (reset: POST {0}/reset, Authorization: Bearer <reset_token in \
             target/lab/state.json>)",
            u.mock_db
        ),
    );
    gate_lines(state, &mut line);
    policy_lines(state, &mut line);
    if let Some(model) = &u.scripted_model {
        line("scripted model", format!("{model}/v1"));
    }
    line("model", state.model.to_string());
    if let Some(gateway) = state.gateway {
        line("gateway", gateway.to_string());
    }
    line(
        "logs",
        format!(
            "{}  (`cargo xtask logs <component>`)",
            state.log_dir.display()
        ),
    );
    out
}

/// The reviewers' OpenID Provider and the people who sign in there, with their groups.
fn provider_lines(state: &LabState, line: &mut impl FnMut(&str, String)) {
    let Some(issuer) = &state.urls.oidc_issuer else {
        return;
    };
    line("reviewer sign-in (OIDC)", issuer.clone());
    for user in crate::oidc_provider::workshop_users() {
        let groups = match user.groups.is_empty() {
            true => "in no reviewer group".to_owned(),
            false => format!("groups: {}", user.groups.join(", ")),
        };
        let who = format!(
            "  sign in as {} / {}  ({groups})",
            user.username, user.password
        );
        line("", who);
    }
}

/// The gate's store and, with several replicas, where each one listens (hitl-ui and the
/// harness use replica 1's admin API; a decision there releases a call held on any other).
fn gate_lines(state: &LabState, line: &mut impl FnMut(&str, String)) {
    let topology = state.topology();
    let store = match state.store.as_ref().and_then(|s| s.postgres.as_ref()) {
        Some(pg) => format!(
            "{}  ({}; cluster {})",
            topology.describe(),
            pg.url,
            pg.dir.display()
        ),
        None => topology.describe(),
    };
    line("gate store", store);
    if topology.replicas < 2 {
        return;
    }
    let env = hitl_wire::env::extauth::HTTP_PORT;
    let grpc = hitl_wire::env::extauth::GRPC_PORT;
    for p in state
        .processes
        .iter()
        .filter(|p| p.name.starts_with(crate::components::extauth::NAME))
    {
        let port = |var: &str| {
            p.spec
                .as_ref()
                .and_then(|s| s.env.get(var).cloned())
                .unwrap_or_else(|| "?".into())
        };
        line(
            &format!("gate {}", p.name),
            format!(
                "admin http://127.0.0.1:{}  Check 127.0.0.1:{}",
                port(env),
                port(grpc)
            ),
        );
    }
}

/// Who may approve what (the gate's policy file: its rules, each group's static reviewers)
/// and where its signed notifications go, as the gate was started with them.
fn policy_lines(state: &LabState, line: &mut impl FnMut(&str, String)) {
    use hitl_wire::env::extauth as env;
    let Some(gate) = state
        .processes
        .iter()
        .find(|p| p.name == crate::components::extauth::NAME)
        .and_then(|p| p.spec.as_ref())
    else {
        return;
    };
    if let Some(path) = gate.env.get(env::APPROVAL_POLICY_FILE) {
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| hitl_wire::policy::Policy::parse(&t, path).map_err(|e| e.to_string()));
        match parsed {
            Ok(policy) => {
                let rules: Vec<String> = policy
                    .rules
                    .iter()
                    .map(|r| {
                        let v = &r.view;
                        format!("{} ({} of {})", v.name, v.approvals, v.groups.join("/"))
                    })
                    .collect();
                line(
                    "approval policy",
                    format!("{path}  rules: {}", rules.join(", ")),
                );
                for (group, members) in &policy.groups {
                    line(&format!("reviewers in {group}"), members.join(", "));
                }
            }
            Err(e) => line("approval policy", format!("{path}: {e}")),
        }
    }
    if let Some(urls) = gate.env.get(env::NOTIFY_WEBHOOK_URLS) {
        let inbox = urls.replace("/notify", "/notifications");
        line(
            "notifications",
            format!("signed webhooks to {urls}  (read them at {inbox}, signed in)"),
        );
    }
}

/// One line per process (running or not), the URLs, and what waits for a reviewer.
pub async fn status(state: &LabState) -> String {
    let mut out = String::from("processes:\n");
    for p in &state.processes {
        let alive = proc::live_cmdline(p.pid).as_deref() == Some(&p.argv[..]);
        out.push_str(&format!(
            "  {:<16} pid {:<8} {}\n",
            p.name,
            p.pid,
            if alive { "running" } else { "NOT RUNNING" }
        ));
    }
    out.push_str("endpoints:\n");
    out.push_str(&describe(state, None, None));
    let pending = match state.gate_admin() {
        Ok(admin) => admin.pending().await,
        Err(e) => Err(e),
    };
    match pending {
        Ok(list) => {
            let n = list.pending.len();
            out.push_str(&if list.more {
                format!("waiting for a reviewer: more than {n} (the oldest {n} listed)\n")
            } else {
                format!("waiting for a reviewer: {n}\n")
            });
            for call in list.pending {
                out.push_str(&format!(
                    "  {} {} {} (from {})\n",
                    call.id,
                    call.tool_name,
                    call.tool_args,
                    call.requester.as_deref().unwrap_or("?")
                ));
            }
        }
        Err(e) => out.push_str(&format!("waiting for a reviewer: unknown ({e:#})\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use hitl_manifests::ModelChoice;

    use super::*;
    use crate::{
        agents::AgentKind,
        gateway::Gateway,
        lab::Target,
        local::{Ports, urls},
    };

    #[test]
    fn up_names_the_two_roles_pages_first_with_their_sign_ins() {
        let ports = Ports::from_env().expect("default ports");
        let state = LabState {
            target: Target::Local,
            model: ModelChoice::Scripted,
            gateway: Some(Gateway::Envoy),
            urls: urls(&ports, ModelChoice::Scripted),
            processes: Vec::new(),
            log_dir: PathBuf::from("logs"),
            admin_token: None,
            reset_token: None,
            reviewer_login: None,
            requester_key: None,
            agents: AgentKind::ALL.to_vec(),
            park_timeout_sec: None,
            store: None,
        };
        let text = describe(&state, Some("reviewer:pw,bob:x"), Some("alice:secret"));
        let lines: Vec<&str> = text.lines().collect();
        let chat = format!("http://127.0.0.1:{}", ports.chat);
        let ui = format!("http://127.0.0.1:{}", ports.ui);
        assert!(
            lines[0].contains("chat page (chat user)")
                && lines[0].contains(&chat)
                && lines[0].ends_with("(sign in as alice / secret)"),
            "{text}"
        );
        assert!(
            lines[1].contains("reviewer UI (reviewer)")
                && lines[1].contains(&ui)
                && lines[1].ends_with("(sign in as reviewer / pw)"),
            "{text}"
        );
        assert!(text.contains("langgraph agent (A2A)"), "{text}");
    }
}
