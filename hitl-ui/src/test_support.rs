//! Fixtures shared by the unit tests.

use hitl_wire::extauth::ParkedCall;

/// A parked `run_migration {"version": "v3"}` with the given verified requester and headers
/// (the claimed requester read from them as the gate does).
pub fn call_from(requester: Option<&str>, hdrs: &[(&str, &str)]) -> ParkedCall {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let headers = hdrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ParkedCall {
        claimed_requester: hitl_wire::headers::claimed_requester(&headers),
        id: "c1".into(),
        received_at: now,
        method: "POST".into(),
        path: "/privileged/mcp".into(),
        headers,
        rpc_method: "tools/call".into(),
        tool_name: "run_migration".into(),
        tool_args: serde_json::json!({"version": "v3"}),
        body: String::new(),
        body_sha256: String::new(),
        expires_at: now,
        requester: requester.map(str::to_owned),
        preview_of_bytes: None,
        request: None,
    }
}
