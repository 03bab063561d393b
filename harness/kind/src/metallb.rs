//! MetalLB's address pool, carved from the kind docker network's IPv4 subnet (read from
//! `docker network inspect kind`, never guessed): the 51 addresses from broadcast−55 to
//! broadcast−5, e.g. 172.18.255.200–172.18.255.250 in kind's usual 172.18.0.0/16. Docker hands
//! out container addresses from the bottom of the subnet, so the top is free for
//! LoadBalancer Services. Pure functions; the run applies what they return.

use std::{fmt, net::Ipv4Addr, str::FromStr};

use serde_json::{Value, json};

/// The MetalLB namespace (from the native manifest).
pub const NAMESPACE: &str = "metallb-system";
/// Names of the pool and its L2 advertisement.
pub const POOL: &str = "hitl-lab-pool";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubnetError {
    #[error("`docker network inspect` output is not JSON: {0}")]
    NotJson(String),
    #[error("the docker network has no IPv4 subnet (IPAM.Config lists: {0})")]
    NoIpv4(String),
    #[error("`{0}` is not an IPv4 CIDR like 172.18.0.0/16")]
    BadCidr(String),
    #[error("{0} is too small to carve a LoadBalancer pool from (need a /24 or larger)")]
    TooSmall(Ipv4Net),
}

/// An IPv4 network, `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl FromStr for Ipv4Net {
    type Err = SubnetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || SubnetError::BadCidr(text.to_owned());
        let (addr, prefix) = text.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Ipv4Net { addr, prefix })
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Ipv4Net {
    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
}

/// The first IPv4 subnet of the network described by `docker network inspect <net>` (a JSON
/// array with one network object; kind's network also has an IPv6 subnet, skipped).
pub fn ipv4_subnet(inspect_json: &str) -> Result<Ipv4Net, SubnetError> {
    let value: Value =
        serde_json::from_str(inspect_json).map_err(|e| SubnetError::NotJson(e.to_string()))?;
    let network = match &value {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    };
    let subnets: Vec<&str> = network
        .pointer("/IPAM/Config")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("Subnet").and_then(Value::as_str))
        .collect();
    subnets
        .iter()
        .find(|s| !s.contains(':'))
        .map(|s| s.parse())
        .unwrap_or_else(|| Err(SubnetError::NoIpv4(subnets.join(", "))))
}

/// The pool's first and last address: broadcast−55 ..= broadcast−5.
pub fn pool_range(subnet: Ipv4Net) -> Result<(Ipv4Addr, Ipv4Addr), SubnetError> {
    if subnet.prefix > 24 {
        return Err(SubnetError::TooSmall(subnet));
    }
    let broadcast = u32::from(subnet.broadcast());
    Ok((
        Ipv4Addr::from(broadcast - 55),
        Ipv4Addr::from(broadcast - 5),
    ))
}

/// The IPAddressPool and L2Advertisement for a range.
pub fn pool_resources(first: Ipv4Addr, last: Ipv4Addr) -> [Value; 2] {
    [
        json!({
            "apiVersion": "metallb.io/v1beta1",
            "kind": "IPAddressPool",
            "metadata": { "name": POOL, "namespace": NAMESPACE },
            "spec": { "addresses": [format!("{first}-{last}")] },
        }),
        json!({
            "apiVersion": "metallb.io/v1beta1",
            "kind": "L2Advertisement",
            "metadata": { "name": POOL, "namespace": NAMESPACE },
            "spec": { "ipAddressPools": [POOL] },
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND_NETWORK: &str = r#"[{"Name":"kind","Driver":"bridge","EnableIPv6":true,
        "IPAM":{"Driver":"default","Options":{},"Config":[
            {"Subnet":"fc00:f853:ccd:e793::/64","Gateway":"fc00:f853:ccd:e793::1"},
            {"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]}}]"#;

    #[test]
    fn reads_the_ipv4_subnet_of_the_kind_network() {
        let subnet = ipv4_subnet(KIND_NETWORK).unwrap();
        assert_eq!(subnet.to_string(), "172.18.0.0/16");
    }

    #[test]
    fn carves_the_top_of_the_subnet() {
        let range = |cidr: &str| pool_range(cidr.parse().unwrap()).unwrap();
        let s = |a: Ipv4Addr| a.to_string();
        let (first, last) = range("172.18.0.0/16");
        assert_eq!(
            (s(first), s(last)),
            ("172.18.255.200".into(), "172.18.255.250".into())
        );
        let (first, last) = range("10.89.0.0/24");
        assert_eq!(
            (s(first), s(last)),
            ("10.89.0.200".into(), "10.89.0.250".into())
        );
        // a host address with the prefix still names the network
        let (first, last) = range("192.168.49.7/20");
        assert_eq!(
            (s(first), s(last)),
            ("192.168.63.200".into(), "192.168.63.250".into())
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        assert!(matches!(ipv4_subnet("nope"), Err(SubnetError::NotJson(_))));
        assert_eq!(
            ipv4_subnet(r#"[{"IPAM":{"Config":[{"Subnet":"fc00::/64"}]}}]"#),
            Err(SubnetError::NoIpv4("fc00::/64".into()))
        );
        assert_eq!(ipv4_subnet("[]"), Err(SubnetError::NoIpv4(String::new())));
        assert!(matches!(
            "172.18.0.0".parse::<Ipv4Net>(),
            Err(SubnetError::BadCidr(_))
        ));
        assert!(matches!(
            "172.18.0.0/33".parse::<Ipv4Net>(),
            Err(SubnetError::BadCidr(_))
        ));
        let small: Ipv4Net = "172.18.0.0/25".parse().unwrap();
        assert_eq!(pool_range(small), Err(SubnetError::TooSmall(small)));
    }
}
