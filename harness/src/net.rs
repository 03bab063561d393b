//! Loopback ports for tests and the local lab.

use std::net::{Ipv4Addr, TcpListener};

/// A port on 127.0.0.1 that was free a moment ago (the OS picked it). Racy by nature, so
/// callers that spawn a server on it should treat "address in use" as retryable.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
