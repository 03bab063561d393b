//! The live, readable record of a scene: who said or did what, in order. Printed as it
//! happens, kept for the reports, and normalised (ids, hashes, ports) for snapshots.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use serde::Serialize;

/// Who a transcript line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Who {
    /// The chat user typing.
    User,
    /// The agent (its tool calls, results and words).
    Agent,
    /// Tier 1: the agent's own gate.
    Tier1,
    /// The chat user deciding at tier 1 or answering a question.
    ChatUser,
    /// Tier 2: the gateway's gate.
    Tier2,
    /// The platform reviewer deciding at tier 2.
    Reviewer,
    /// What reached the database.
    Database,
    /// The lab itself (a component killed and brought back).
    Lab,
    /// The harness's own checks.
    Check,
}

impl Who {
    pub fn label(self) -> &'static str {
        match self {
            Who::User => "user",
            Who::Agent => "agent",
            Who::Tier1 => "tier 1",
            Who::ChatUser => "chat user",
            Who::Tier2 => "tier 2",
            Who::Reviewer => "reviewer",
            Who::Database => "mock-db",
            Who::Lab => "lab",
            Who::Check => "check",
        }
    }
}

/// One line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// Milliseconds since the scene started (kept out of the rendered text).
    pub at_ms: u64,
    pub who: Who,
    pub text: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>9} │ {}", self.who.label(), self.text)
    }
}

/// Where live transcript lines go as they happen (e.g. printed to the terminal).
pub type LiveSink = Arc<dyn Fn(&Line) + Send + Sync>;

/// Shared, append-only transcript with an optional live printer.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Vec<Line>>>,
    start: Instant,
    live: Option<LiveSink>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    pub fn new(live: Option<LiveSink>) -> Self {
        Self {
            inner: Arc::default(),
            start: Instant::now(),
            live,
        }
    }

    pub fn say(&self, who: Who, text: impl Into<String>) {
        let line = Line {
            at_ms: self.start.elapsed().as_millis() as u64,
            who,
            text: text.into(),
        };
        if let Some(live) = &self.live {
            live(&line);
        }
        let mut lines = self.inner.lock().expect("transcript lock");
        let at = causal_position(&lines, &line);
        lines.insert(at, line);
    }

    pub fn lines(&self) -> Vec<Line> {
        self.inner.lock().expect("transcript lock").clone()
    }
}

/// Where `line` belongs in `lines`: at the end, except that the agent's `calls T …` goes
/// before the gateway's `parked T …` it caused, when the gate's event stream reported the park
/// before the agent's own stream reported the call (two observers, one cause: the record
/// keeps the cause first, so transcripts do not depend on which stream was faster).
fn causal_position(lines: &[Line], line: &Line) -> usize {
    let Some(tool) = (line.who == Who::Agent)
        .then(|| line.text.strip_prefix("calls "))
        .flatten()
        .and_then(|rest| rest.split(' ').next())
    else {
        return lines.len();
    };
    let parked = format!("the gateway parked {tool} ");
    let called = format!("calls {tool} ");
    // Within this turn (since the user last spoke), the n-th call of a tool caused its n-th
    // park: this call goes before the park no earlier call explains, if there is one.
    let turn = lines
        .iter()
        .rposition(|l| l.who == Who::User)
        .map_or(0, |i| i + 1);
    let calls = lines[turn..]
        .iter()
        .filter(|l| l.who == Who::Agent && l.text.starts_with(&called))
        .count();
    lines[turn..]
        .iter()
        .enumerate()
        .filter(|(_, l)| l.who == Who::Tier2 && l.text.starts_with(&parked))
        .nth(calls)
        .map_or(lines.len(), |(i, _)| turn + i)
}

/// Render lines as text.
pub fn render(lines: &[Line]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The transcript with what changes from run to run replaced by placeholders: UUIDs, hex
/// hashes, `adk-…`/`call_…` ids stay stable or are scrubbed, loopback ports, timestamps.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if let Some(n) = uuid_len(rest) {
            out.push_str("[uuid]");
            i += n;
        } else if let Some(n) = hex_run(rest, 64) {
            out.push_str("[sha256]");
            i += n;
        } else if let Some(n) = loopback_port(rest) {
            out.push_str("127.0.0.1:[port]");
            i += n;
        } else if let Some(n) = timestamp_len(rest) {
            out.push_str("[time]");
            i += n;
        } else if let Some(n) = waited_len(rest) {
            out.push_str("after [n] ms");
            i += n;
        } else {
            let ch = rest.chars().next().expect("non-empty");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn uuid_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let groups = [8, 4, 4, 4, 12];
    let mut i = 0;
    for (g, len) in groups.iter().enumerate() {
        if b.len() < i + len || !b[i..i + len].iter().all(|c| is_hex(*c)) {
            return None;
        }
        i += len;
        if g < 4 {
            if b.get(i) != Some(&b'-') {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

fn hex_run(s: &str, len: usize) -> Option<usize> {
    let b = s.as_bytes();
    (b.len() >= len
        && b[..len].iter().all(|c| is_hex(*c))
        && b.get(len).is_none_or(|c| !is_hex(*c)))
    .then_some(len)
}

fn loopback_port(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("127.0.0.1:")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0).then_some("127.0.0.1:".len() + digits)
}

/// `after 12 ms`: how long a park waited.
fn waited_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("after ")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0 && rest[digits..].starts_with(" ms")).then_some("after ".len() + digits + 3)
}

/// RFC 3339 timestamps like `2026-11-22T12:07:33.506601+00:00` or `…Z`.
fn timestamp_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if !(digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T'))
    {
        return None;
    }
    let mut i = 11;
    while i < b.len() && (b[i].is_ascii_digit() || matches!(b[i], b':' | b'.' | b'+' | b'-' | b'Z'))
    {
        i += 1;
    }
    // A sentence's full stop is not part of the time.
    while i > 11 && !(b[i - 1].is_ascii_digit() || b[i - 1] == b'Z') {
        i -= 1;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn scrubs_what_changes_between_runs() {
        let text = "parked 3f2b6a1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b sha256 \
                    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 at \
                    http://127.0.0.1:18092/pending on 2026-11-22T12:07:33.506601+00:00, \
                    released after 3 ms.";
        assert_eq!(
            normalise(text),
            "parked [uuid] sha256 [sha256] at http://127.0.0.1:[port]/pending on [time], released \
             after [n] ms."
        );
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let text = "Schema v2 → v3; rows_deleted 3; call_001_truncate_table; ünïcode";
        assert_eq!(normalise(text), text);
    }

    #[test]
    fn a_call_reported_after_its_park_is_recorded_before_it() {
        use super::{Recorder, Who};
        let rec = Recorder::new(None);
        rec.say(Who::User, "Apply migration v3.");
        rec.say(Who::Tier2, "the gateway parked run_migration {} from alice");
        rec.say(Who::Reviewer, "bob rejects: no");
        rec.say(Who::Agent, "calls run_migration {}");
        rec.say(Who::Agent, "calls cluster_db_query {}");
        let order: Vec<_> = rec.lines().into_iter().map(|l| l.text).collect();
        assert_eq!(
            order,
            [
                "Apply migration v3.",
                "calls run_migration {}",
                "the gateway parked run_migration {} from alice",
                "bob rejects: no",
                "calls cluster_db_query {}",
            ]
        );
        // A call reported in time stays where it is; a later call does not jump a park that
        // an earlier call already explains.
        rec.say(Who::Tier2, "the gateway parked run_migration {} from alice");
        rec.say(Who::Agent, "calls run_migration {}");
        let tail: Vec<_> = rec.lines().into_iter().skip(5).map(|l| l.text).collect();
        assert_eq!(
            tail,
            [
                "calls run_migration {}",
                "the gateway parked run_migration {} from alice"
            ]
        );
    }
}
