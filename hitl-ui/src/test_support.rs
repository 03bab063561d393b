//! Fixtures shared by the unit tests.

use hitl_wire::extauth::ParkedCall;

/// A parked `run_migration {"version": "v3"}` with the given requester and headers.
pub fn call_from(requester: Option<&str>, hdrs: &[(&str, &str)]) -> ParkedCall {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    ParkedCall {
        id: "c1".into(),
        received_at: now,
        method: "POST".into(),
        path: "/privileged/mcp".into(),
        headers: hdrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        rpc_method: "tools/call".into(),
        tool_name: "run_migration".into(),
        tool_args: serde_json::json!({"version": "v3"}),
        body: String::new(),
        body_sha256: String::new(),
        expires_at: now,
        requester: requester.map(str::to_owned),
    }
}
