//! The audit log: every call that reached a mutating tool (and every reset), with the exact
//! arguments and the caller's identity headers. Bounded, oldest dropped first.

use std::collections::{BTreeMap, VecDeque};

use hitl_wire::{headers, mockdb::AuditEntry};
use http::HeaderMap;
use time::OffsetDateTime;

/// How many entries `/state` keeps.
pub const CAPACITY: usize = 200;

/// Identity headers of one request, lower-case names.
pub type Caller = BTreeMap<String, String>;

/// The identity headers ([`headers::IDENTITY`]) present on a request.
pub fn caller_from_headers(map: &HeaderMap) -> Caller {
    headers::IDENTITY
        .iter()
        .filter_map(|name| {
            let value = map.get(*name)?;
            Some((
                (*name).to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ))
        })
        .collect()
}

#[derive(Debug)]
pub struct AuditLog {
    entries: VecDeque<AuditEntry>,
    next_seq: u64,
}

impl Default for AuditLog {
    fn default() -> Self {
        Self {
            entries: VecDeque::with_capacity(CAPACITY),
            next_seq: 1,
        }
    }
}

impl AuditLog {
    /// Append an entry (dropping the oldest when full) and return it.
    pub fn record(
        &mut self,
        tool: &str,
        args: serde_json::Value,
        caller: Caller,
        detail: serde_json::Value,
    ) -> AuditEntry {
        self.push(AuditEntry {
            seq: 0,
            at: OffsetDateTime::now_utc(),
            tool: tool.to_owned(),
            args,
            caller,
            detail,
            approval_id: None,
            refused: None,
        })
    }

    /// Append `entry` with the next sequence number and return it.
    pub fn push(&mut self, mut entry: AuditEntry) -> AuditEntry {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        if self.entries.len() == CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry.clone());
        entry
    }

    /// Change the newest entry (it must exist) and return it.
    pub fn amend_last(&mut self, change: impl FnOnce(&mut AuditEntry)) -> AuditEntry {
        let last = self.entries.back_mut().expect("an entry was just recorded");
        change(last);
        last.clone()
    }

    /// Oldest first, newest last.
    pub fn entries(&self) -> Vec<AuditEntry> {
        self.entries.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_entries_in_order() {
        let mut log = AuditLog::default();
        for i in 0..CAPACITY + 5 {
            log.record(
                "t",
                serde_json::json!({ "i": i }),
                Caller::new(),
                serde_json::json!({}),
            );
        }
        let entries = log.entries();
        assert_eq!(entries.len(), CAPACITY);
        assert_eq!(entries[0].seq, 6);
        assert_eq!(entries.last().unwrap().seq, CAPACITY as u64 + 5);
    }

    #[test]
    fn caller_keeps_only_identity_headers() {
        let mut map = HeaderMap::new();
        map.insert("x-user-id", "alice".parse().unwrap());
        map.insert("user-agent", "test/1".parse().unwrap());
        map.insert("authorization", "Bearer secret".parse().unwrap());
        let caller = caller_from_headers(&map);
        assert_eq!(
            caller.into_iter().collect::<Vec<_>>(),
            [
                ("user-agent".to_owned(), "test/1".to_owned()),
                ("x-user-id".to_owned(), "alice".to_owned())
            ]
        );
    }
}
