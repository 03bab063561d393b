//! The allow-list of JSON-RPC methods that pass without review (`ALLOWED_METHODS`).

use std::{fmt, str::FromStr};

/// The default allow-list: the MCP handshake, notifications, liveness and tool discovery.
pub const DEFAULT: &str = "initialize,notifications/*,ping,tools/list";

/// One allow-list entry: an exact method, or `prefix/*` for every method under `prefix/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    /// Holds the prefix including its trailing `/`.
    Prefix(String),
}

impl Pattern {
    fn matches(&self, method: &str) -> bool {
        match self {
            Pattern::Exact(exact) => method == exact,
            Pattern::Prefix(prefix) => {
                method.len() > prefix.len() && method.starts_with(prefix.as_str())
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(exact) => f.write_str(exact),
            Pattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// A bad `ALLOWED_METHODS` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowListError {
    #[error("empty entry in the method allow-list")]
    Empty,
    #[error(
        "allow-list entry {0:?}: `*` is only allowed as a whole last segment (`notifications/*`)"
    )]
    BadWildcard(String),
    #[error(
        "allow-list entry {0:?} would let `tools/call` through unreviewed; tools/call always parks"
    )]
    CoversToolsCall(String),
}

/// The methods that pass without review. `tools/call` can never be on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    patterns: Vec<Pattern>,
}

impl AllowList {
    pub fn matches(&self, method: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(method))
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }
}

impl Default for AllowList {
    fn default() -> Self {
        DEFAULT.parse().expect("the default allow-list is valid")
    }
}

impl FromStr for AllowList {
    type Err = AllowListError;

    /// Comma-separated; whitespace around entries is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut patterns = Vec::new();
        for entry in s.split(',').map(str::trim) {
            if entry.is_empty() {
                return Err(AllowListError::Empty);
            }
            let pattern = match entry.strip_suffix('*') {
                Some(prefix) if prefix.ends_with('/') && !prefix[..prefix.len() - 1].is_empty() => {
                    Pattern::Prefix(prefix.to_owned())
                }
                Some(_) => return Err(AllowListError::BadWildcard(entry.to_owned())),
                None => Pattern::Exact(entry.to_owned()),
            };
            if entry[..entry.len().saturating_sub(1)].contains('*') {
                return Err(AllowListError::BadWildcard(entry.to_owned()));
            }
            if pattern.matches(crate::classify::TOOLS_CALL) {
                return Err(AllowListError::CoversToolsCall(entry.to_owned()));
            }
            patterns.push(pattern);
        }
        Ok(Self { patterns })
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_list() {
        let list = AllowList::default();
        assert_eq!(list.to_string(), DEFAULT);
        for ok in [
            "initialize",
            "ping",
            "tools/list",
            "notifications/initialized",
            "notifications/cancelled",
        ] {
            assert!(list.matches(ok), "{ok}");
        }
        for no in [
            "tools/call",
            "notifications/",
            "notifications",
            "Ping",
            "ping ",
            " ping",
            "tools/list/",
            "initialize\u{0}",
            "resources/read",
            "",
        ] {
            assert!(!list.matches(no), "{no:?}");
        }
    }

    #[test]
    fn parses_and_trims() {
        let list: AllowList = " ping , resources/* ".parse().unwrap();
        assert_eq!(
            list.patterns(),
            [
                Pattern::Exact("ping".into()),
                Pattern::Prefix("resources/".into())
            ]
        );
        assert!(list.matches("resources/read"));
    }

    #[test]
    fn refuses_bad_entries() {
        assert_eq!(
            "ping,,tools/list".parse::<AllowList>(),
            Err(AllowListError::Empty)
        );
        assert_eq!("".parse::<AllowList>(), Err(AllowListError::Empty));
        for bad in ["*", "/*", "tools*", "to*ls/list", "a/*/b", "a/**"] {
            assert!(
                matches!(
                    bad.parse::<AllowList>(),
                    Err(AllowListError::BadWildcard(_))
                ),
                "{bad}"
            );
        }
        for bad in ["tools/call", "tools/*"] {
            assert!(
                matches!(
                    bad.parse::<AllowList>(),
                    Err(AllowListError::CoversToolsCall(_))
                ),
                "{bad}"
            );
        }
    }
}
