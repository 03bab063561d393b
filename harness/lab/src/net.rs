//! Loopback ports for tests and the local lab, and starting on them despite their races.

use std::net::{IpAddr, Ipv4Addr, TcpListener};

/// A port on 127.0.0.1 that was free a moment ago. Racy by nature, so callers that spawn a
/// server on it should treat "address in use" as retryable.
pub fn free_port() -> std::io::Result<u16> {
    Ok(unclaimed()?.local_addr()?.port())
}

/// Lowest port picked for tests: below it, the lab's documented ports (18xxx).
const PICK_FROM: u16 = 20_000;

/// A listener on a free port *below the kernel's ephemeral range*: a port the OS hands out
/// (port 0) is one any process's next outgoing connection may take before our server binds it
/// (seen in CI: kagent's port taken between the pick and its bind); below that range only
/// another explicit pick can. Falls back to the OS's pick when the range leaves no room.
///
/// No port is handed out twice by one process (until half the range has been): two tests of
/// one binary running side by side could otherwise both pick a port in the moment between
/// one's pick and its server's bind, and the loser's readiness probe would be answered by the
/// winner's server (seen in CI: a gate "ready" whose own process had exited).
pub fn unclaimed() -> std::io::Result<TcpListener> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if low > PICK_FROM + 1_000 {
        let span = low - PICK_FROM;
        for _ in 0..256 {
            let mut bytes = [0u8; 2];
            if getrandom::fill(&mut bytes).is_err() {
                break;
            }
            let port = PICK_FROM + u16::from_le_bytes(bytes) % span;
            if !first_pick(port, span) {
                continue;
            }
            if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                return Ok(listener);
            }
        }
    }
    // The OS's pick, still never one this process handed out before (as far as it can).
    let mut last = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    for _ in 0..64 {
        if first_pick(last.local_addr()?.port(), u16::MAX) {
            break;
        }
        last = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    }
    Ok(last)
}

/// Whether this process has not picked `port` before (and records that it now has); the
/// record starts over once it holds half of the `span` ports to pick from.
fn first_pick(port: u16, span: u16) -> bool {
    static PICKED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut picked = PICKED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if picked.len() >= usize::from(span / 2) {
        picked.clear();
    }
    if picked.contains(&port) {
        return false;
    }
    picked.push(port);
    true
}

/// How many times [`on_fresh_ports`] tries.
pub const START_ATTEMPTS: usize = 3;

/// Run `start` (which picks its ports with [`free_port`] and starts something on them) until
/// it succeeds, at most [`START_ATTEMPTS`] times: a port free when picked can be taken before
/// the server binds it. The last error if every attempt failed.
pub async fn on_fresh_ports<T, Fut>(mut start: impl FnMut() -> Fut) -> anyhow::Result<T>
where
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut last = None;
    for _ in 0..START_ATTEMPTS {
        match start().await {
            Ok(started) => return Ok(started),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// The address a client on this machine uses for a server bound to `bind`: loopback when the
/// server listens on every interface, else the address itself.
pub fn reachable(bind: IpAddr) -> IpAddr {
    if bind.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        bind
    }
}

/// `http://HOST:PORT` for a server bound to `bind` (IPv6 in brackets).
pub fn http_url(bind: IpAddr, port: u16) -> String {
    match reachable(bind) {
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_reach_what_the_server_binds() {
        assert_eq!(
            http_url("0.0.0.0".parse().unwrap(), 80),
            "http://127.0.0.1:80"
        );
        assert_eq!(
            http_url("127.0.0.2".parse().unwrap(), 8),
            "http://127.0.0.2:8"
        );
        assert_eq!(http_url("::1".parse().unwrap(), 9), "http://[::1]:9");
    }

    #[test]
    fn one_process_never_picks_a_port_twice_while_the_first_may_still_be_binding() {
        let picks: Vec<u16> = (0..200).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::HashSet<_> = picks.iter().collect();
        assert_eq!(distinct.len(), picks.len(), "{picks:?}");
    }
}
