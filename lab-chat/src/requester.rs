//! Who the agent is told the chat user is: the headers every A2A request of a signed-in user
//! carries. kagent forwards them to the MCP gateway (the Agent's `allowedHeaders`), where the
//! gate reads the requester.
//!
//! Today that is `x-user-id` (an assertion, as `cargo xtask chat` sends). The verified
//! requester — a short-lived token the gateway checks, sent as `Authorization` — is minted by
//! the harness (branch `sec-requester`); when it lands, [`authorize`] is the one place to
//! call its minting function for `user`.

use hitl_harness::a2a::Client;
use hitl_wire::headers;

/// `client` with the identity headers of `user`.
pub fn authorize(client: Client, user: &str) -> Client {
    client.with_header(headers::USER_ID, user)
}
