//! Who the agent is told the chat user is: every A2A request of a signed-in user carries a
//! short-lived requester token for them, minted by the harness's one issuer (the lab's key,
//! `REQUESTER_KEY_FILE`), which kagent forwards to the gateway; the gateway verifies it and the
//! gate takes the requester only from it. Plus `x-user-id`, as `cargo xtask chat` sends.

use std::sync::Arc;

use hitl_lab::requester::Issuer;
use hitl_scenes::a2a::Client;
use hitl_wire::headers;

/// `client` with the identity of `user`.
pub fn authorize(client: Client, issuer: Option<&Arc<Issuer>>, user: &str) -> Client {
    let client = client.with_header(headers::USER_ID, user);
    match issuer {
        Some(issuer) => client.with_requester(issuer.clone(), user),
        None => client,
    }
}
