//! The audit log: every call that reached a mutating tool (and every reset), with the exact
//! arguments and the caller's identity headers. Bounded in what any caller can make it hold:
//! each tool's executed calls and its refusals are kept apart, oldest dropped first (so
//! refusals, which anyone can cause by calling the backend directly, and ungated
//! `truncate_table`s never push an approved migration out), and a header value or argument
//! list is kept up to a size, with a note of what was cut.

use std::collections::{BTreeMap, VecDeque};

use hitl_wire::{headers, mockdb::AuditEntry};
use http::HeaderMap;
use time::OffsetDateTime;

/// How many executed calls of one tool `/state` keeps; as many refusals of it beside them.
pub const CAPACITY: usize = 200;
/// The longest identity header value kept whole, in bytes; longer ones end in `…`.
pub const MAX_HEADER_VALUE: usize = 256;
/// The longest argument list kept whole (as JSON), in bytes; longer ones are replaced by
/// `{"truncated": {"bytes": N, "preview": "<the first MAX_ARGS bytes>"}}`.
pub const MAX_ARGS: usize = 4096;

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
                clip(&String::from_utf8_lossy(value.as_bytes()), MAX_HEADER_VALUE),
            ))
        })
        .collect()
}

/// `text` if it is at most `max` bytes, else its longest prefix of at most `max` bytes that
/// ends on a character boundary, followed by `…`.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    format!("{}…", hitl_wire::text::prefix(text, max))
}

/// `args` as they were when small; a bounded preview when larger than [`MAX_ARGS`].
fn bounded_args(args: serde_json::Value) -> serde_json::Value {
    let text = args.to_string();
    if text.len() <= MAX_ARGS {
        return args;
    }
    serde_json::json!({ "truncated": { "bytes": text.len(), "preview": clip(&text, MAX_ARGS) } })
}

/// Which ring an entry is kept in: its tool, and whether it ran.
type Ring = (String, bool);

#[derive(Debug)]
pub struct AuditLog {
    /// Only the tools' names (and `reset`) key this: a refused call names a tool it was
    /// routed to, never a name the caller made up.
    rings: BTreeMap<Ring, VecDeque<AuditEntry>>,
    /// The ring of the newest entry.
    newest: Option<Ring>,
    next_seq: u64,
}

impl Default for AuditLog {
    fn default() -> Self {
        Self {
            rings: BTreeMap::new(),
            newest: None,
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
            approved_by: Vec::new(),
            rule: None,
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

    /// Append `entry` (its arguments bounded) with the next sequence number and return it.
    pub fn push(&mut self, mut entry: AuditEntry) -> AuditEntry {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        entry.args = bounded_args(std::mem::take(&mut entry.args));
        let ring = (entry.tool.clone(), entry.executed());
        let kept = self.rings.entry(ring.clone()).or_default();
        if kept.len() == CAPACITY {
            kept.pop_front();
        }
        kept.push_back(entry.clone());
        self.newest = Some(ring);
        entry
    }

    /// Change the newest entry (it must exist) and return it.
    pub fn amend_last(&mut self, change: impl FnOnce(&mut AuditEntry)) -> AuditEntry {
        let last = self
            .newest
            .as_ref()
            .and_then(|ring| self.rings.get_mut(ring)?.back_mut())
            .expect("an entry was just recorded");
        change(last);
        last.clone()
    }

    /// Every ring together, oldest first, newest last.
    pub fn entries(&self) -> Vec<AuditEntry> {
        let mut entries: Vec<_> = self.rings.values().flatten().cloned().collect();
        entries.sort_by_key(|e| e.seq);
        entries
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

    fn refusal(i: usize) -> AuditEntry {
        AuditEntry {
            approved_by: Vec::new(),
            rule: None,
            seq: 0,
            at: OffsetDateTime::now_utc(),
            tool: "run_migration".into(),
            args: serde_json::json!({ "version": "v4", "pad": "x".repeat(i) }),
            caller: Caller::new(),
            detail: serde_json::json!({}),
            approval_id: None,
            refused: Some("missing".into()),
        }
    }

    #[test]
    fn refusals_never_push_an_executed_call_out() {
        let mut log = AuditLog::default();
        log.record(
            "run_migration",
            serde_json::json!({}),
            Caller::new(),
            serde_json::json!({}),
        );
        for i in 0..CAPACITY * 2 {
            log.push(refusal(i % 3));
        }
        let entries = log.entries();
        assert_eq!(entries.len(), CAPACITY + 1);
        assert!(entries[0].executed(), "the executed call is still there");
        assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
    }

    #[test]
    fn ungated_calls_never_push_an_approved_migration_out() {
        let mut log = AuditLog::default();
        log.record(
            "run_migration",
            serde_json::json!({}),
            Caller::new(),
            serde_json::json!({}),
        );
        log.amend_last(|e| e.approval_id = Some("p1".into()));
        for _ in 0..CAPACITY * 2 {
            log.record(
                "truncate_table",
                serde_json::json!({}),
                Caller::new(),
                serde_json::json!({}),
            );
        }
        let entries = log.entries();
        assert_eq!(entries.len(), CAPACITY + 1);
        assert_eq!(entries[0].approval_id.as_deref(), Some("p1"));
    }

    #[test]
    fn large_arguments_and_header_values_are_kept_as_bounded_previews() {
        let mut log = AuditLog::default();
        let small = log.push(refusal(10));
        assert_eq!(small.args["pad"], "x".repeat(10));
        let big = log.push(refusal(60_000));
        let truncated = &big.args["truncated"];
        assert!(truncated["bytes"].as_u64().unwrap() > 60_000);
        assert!(truncated["preview"].as_str().unwrap().len() <= MAX_ARGS + "…".len());

        let mut map = HeaderMap::new();
        map.insert("user-agent", "é".repeat(10_000).parse().unwrap());
        let caller = caller_from_headers(&map);
        let agent = &caller["user-agent"];
        assert!(
            agent.len() <= MAX_HEADER_VALUE + "…".len(),
            "{}",
            agent.len()
        );
        assert!(agent.ends_with('…'));
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
