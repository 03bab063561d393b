//! What a lab listens on, read from `/proc`: each of its processes' (and their children's)
//! socket inodes (`/proc/<pid>/fd`) joined to the kernel's listening TCP sockets
//! (`/proc/net/tcp`, `/proc/net/tcp6`), and which of them the network could reach. Linux only.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use anyhow::Context as _;

use crate::lab::LabState;

/// One listening socket and the process holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The lab's name for the process (a child carries its parent's).
    pub name: String,
    pub pid: u32,
    pub addr: SocketAddr,
}

/// Every TCP socket in LISTEN state held by `processes` (name, pid) or their descendants.
pub fn listening(processes: &[(String, u32)]) -> anyhow::Result<Vec<Listener>> {
    let sockets = listen_sockets()?;
    let mut out = Vec::new();
    for (name, pid) in with_descendants(processes)? {
        for inode in socket_inodes(pid) {
            if let Some(addr) = sockets.get(&inode) {
                out.push(Listener {
                    name: name.clone(),
                    pid,
                    addr: *addr,
                });
            }
        }
    }
    Ok(out)
}

/// The listeners of `lab`'s processes that something beyond this machine could reach: every
/// one not on loopback, except agentgateway's gateway port when its generated config admits
/// loopback peers only (it cannot bind an address: [`crate::agentgateway::loopback_only`]).
pub fn exposed(lab: &LabState) -> anyhow::Result<Vec<Listener>> {
    let processes: Vec<(String, u32)> = lab
        .processes
        .iter()
        .map(|p| (p.name.clone(), p.pid))
        .collect();
    let guarded = guarded_gateway_port(lab);
    Ok(listening(&processes)?
        .into_iter()
        .filter(|l| !l.addr.ip().is_loopback())
        .filter(|l| {
            !(l.name == crate::components::agentgateway::NAME && Some(l.addr.port()) == guarded)
        })
        .collect())
}

/// The local lab's agentgateway port, if its config keeps it to loopback peers.
fn guarded_gateway_port(lab: &LabState) -> Option<u16> {
    let authority = lab.urls.gateway.strip_prefix("http://")?;
    let (host, port) = authority.trim_end_matches('/').rsplit_once(':')?;
    let listen = crate::envoy::Endpoint::new(host, port.parse().ok()?);
    let rule = crate::agentgateway::loopback_only(&listen)?;
    let config = crate::components::agentgateway::config_path(&lab.log_dir, listen.port);
    let config = std::fs::read_to_string(config).ok()?;
    (config.contains("networkAuthorization") && config.contains(&rule)).then_some(listen.port)
}

/// `processes` and every process whose parent chain leads to one of them.
fn with_descendants(processes: &[(String, u32)]) -> anyhow::Result<Vec<(String, u32)>> {
    let mut parent = BTreeMap::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        {
            parent.insert(pid, ppid);
        }
    }
    let named: BTreeMap<u32, &str> = processes.iter().map(|(n, p)| (*p, n.as_str())).collect();
    let mut out = Vec::new();
    for &pid in parent.keys() {
        let mut at = pid;
        for _ in 0..64 {
            if let Some(name) = named.get(&at) {
                out.push(((*name).to_owned(), pid));
                break;
            }
            match parent.get(&at) {
                Some(&up) if up != 0 && up != at => at = up,
                _ => break,
            }
        }
    }
    Ok(out)
}

/// The inodes of the sockets `pid` holds open.
fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// inode → local address of every TCP socket in LISTEN state (`st` 0A).
fn listen_sockets() -> anyhow::Result<BTreeMap<u64, SocketAddr>> {
    let mut out = BTreeMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).with_context(|| format!("reading {table}"))?;
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" {
                continue;
            }
            let addr = parse_addr(fields[1]).with_context(|| format!("{table}: {line}"))?;
            out.insert(fields[9].parse()?, addr);
        }
    }
    Ok(out)
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6), each 32-bit word in host order.
fn parse_addr(field: &str) -> anyhow::Result<SocketAddr> {
    let (ip, port) = field.split_once(':').context("no port")?;
    let port = u16::from_str_radix(port, 16)?;
    let words = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16))
        .collect::<Result<Vec<_>, _>>()?;
    let ip = match words.as_slice() {
        [v4] => IpAddr::V4(Ipv4Addr::from(v4.to_le_bytes())),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => anyhow::bail!("neither IPv4 nor IPv6: {ip}"),
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_addresses_parse() {
        assert_eq!(
            parse_addr("0100007F:1F90").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_addr("00000000:4E20").unwrap(),
            "0.0.0.0:20000".parse().unwrap()
        );
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0050").unwrap(),
            "[::1]:80".parse().unwrap()
        );
    }
}
