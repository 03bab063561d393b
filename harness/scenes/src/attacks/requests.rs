//! The approval-request attacks (issue #26): an approval covers one action — this requester,
//! this tool, these arguments in canonical form — once. Each procedure leaves a request open
//! with nobody waiting, approves it, then sends what an attacker would (another requester,
//! other arguments, the same call again) through the gateway, and checks from the answer,
//! mock-db-mcp's audit and the gate's `/pending` that nothing ran that was not approved. Each
//! closes what it opened: leftovers are rejected, the approval is used by its owner, and the
//! calls in flight are waited for, so `/pending` is as empty afterwards as before.

use std::{sync::Mutex, time::Duration};

use hitl_wire::{extauth::client::AdminClient, mockdb::State};

use super::{
    calls::{fresh_requester, new_tag, tagged_call},
    run::{AttackReport, Target, check, since},
};

mod steps;

/// Which attack on the approval-request model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procedure {
    /// alice's approval, bob sends the same call.
    AnotherRequester,
    /// An approval for the version in place, used for another version.
    AnotherVersion,
    /// The approved call, sent again after it ran.
    ReuseAfterUse,
    /// The same arguments spelled three ways: one request.
    OtherSpelling,
    /// The approved call with another JSON-RPC id, after it ran.
    OtherRpcId,
}

impl Procedure {
    /// The catalogue's `kind` names of these procedures.
    pub const KINDS: [(&'static str, Procedure); 5] = [
        (
            "approval-used-by-another-requester",
            Procedure::AnotherRequester,
        ),
        (
            "approval-used-for-another-version",
            Procedure::AnotherVersion,
        ),
        ("approval-reused-after-use", Procedure::ReuseAfterUse),
        ("same-arguments-other-spelling", Procedure::OtherSpelling),
        ("other-rpc-id-after-use", Procedure::OtherRpcId),
    ];

    /// The procedure the catalogue's `kind` names, if it is one of these.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::KINDS
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| *p)
    }
}

/// The catalogue's error for a `kind` it does not know: every kind it does.
pub fn unknown_kind(kind: &str) -> String {
    let ours = Procedure::KINDS.map(|(k, _)| k).join(", ");
    let keys = super::keys::KeysAttack::KINDS.map(|(k, _)| k).join(", ");
    format!(
        "unknown kind `{kind}`: use request, self-approval, replay-approval, \
         decide-without-credentials, stated-requester, check-without-client-certificate, {ours}, \
         {keys}"
    )
}

/// Run `procedure` against `target`; n/a for a gate without hitl-extauth's admin API.
pub async fn run(
    target: &Target,
    procedure: Procedure,
    report: &mut AttackReport,
) -> anyhow::Result<()> {
    let Some(admin) = target.admin.as_ref().filter(|_| target.ours) else {
        report.not_applicable.push(
            "approval requests (one per action, outliving the call, listed in /pending) are \
             hitl-extauth's model (issue #26): this gate has no admin API to list them"
                .into(),
        );
        return Ok(());
    };
    let attack = Attack {
        target,
        admin,
        before: target.db.state().await?,
        requesters: Mutex::new(Vec::new()),
    };
    match procedure {
        Procedure::AnotherRequester => attack.another_requester(report).await,
        Procedure::AnotherVersion => attack.another_version(report).await,
        Procedure::ReuseAfterUse => attack.again_after_use(report, false).await,
        Procedure::OtherRpcId => attack.again_after_use(report, true).await,
        Procedure::OtherSpelling => attack.other_spelling(report).await,
    }?;
    let mine = attack.requesters.lock().expect("not poisoned").clone();
    let left: Vec<String> = admin
        .pending_all()
        .await?
        .pending
        .into_iter()
        .filter(|c| c.requester.as_ref().is_some_and(|r| mine.contains(r)))
        .map(|c| c.id)
        .collect();
    check(
        report,
        left.is_empty(),
        format!("nothing it opened is left in /pending ({left:?})"),
    );
    Ok(())
}

/// One attack's gate, and mock-db-mcp's state before it.
struct Attack<'a> {
    target: &'a Target,
    admin: &'a AdminClient,
    before: State,
    /// The requesters this attack made up, to find what it left behind.
    requesters: Mutex<Vec<String>>,
}

impl Attack<'_> {
    /// A requester of this attack's own (see [`fresh_requester`]).
    fn requester(&self) -> String {
        let sub = fresh_requester(self.target);
        self.requesters
            .lock()
            .expect("not poisoned")
            .push(sub.clone());
        sub
    }

    /// The version in place: an approved run changes nothing (it is already there).
    fn version(&self) -> &str {
        &self.before.schema_version
    }

    /// alice's approval; bob sends the same bytes: a new request, nothing runs for him, and
    /// alice's approval still lets her call through, once.
    async fn another_requester(&self, report: &mut AttackReport) -> anyhow::Result<()> {
        let (alice, bob) = (self.requester(), self.requester());
        let body = tagged_call(new_tag(), self.version());
        let approved = self.approved_and_unused(&alice, &body).await?;
        let (call, card) = self.parks(&bob, &body).await?;
        check(
            report,
            card.id != approved && card.requester.as_deref() == Some(bob.as_str()),
            "bob's call opens a request of his own in /pending",
        );
        let bobs = self.closed(report, &card.id, call).await?;
        self.ran_nothing(report, "for bob").await?;
        let alices = self.runs_once(report, &alice, &body, &approved).await?;
        report.observed = format!("bob {bobs}, alice {alices}");
        Ok(())
    }

    /// An approval for the version in place; the same requester asks for another version: a
    /// new request, nothing runs. The approval is then used as approved.
    async fn another_version(&self, report: &mut AttackReport) -> anyhow::Result<()> {
        let alice = self.requester();
        let body = tagged_call(new_tag(), self.version());
        let other = if self.version() == "v4" { "v5" } else { "v4" };
        let approved = self.approved_and_unused(&alice, &body).await?;
        let (call, card) = self.parks(&alice, &tagged_call(new_tag(), other)).await?;
        let shown = card.request.as_ref().map(|r| r.canonical_args.clone());
        check(
            report,
            card.id != approved && shown.as_deref().is_some_and(|a| a.contains(other)),
            format!("the {other} call opens a request of its own, showing {shown:?}"),
        );
        let answer = self.closed(report, &card.id, call).await?;
        self.ran_nothing(report, &format!("for {other}")).await?;
        self.runs_once(report, &alice, &body, &approved).await?;
        report.observed = format!("{other} {answer}");
        Ok(())
    }

    /// The approved call runs once; the same call again (`other_id`: with another JSON-RPC
    /// id) opens a new request and runs nothing.
    async fn again_after_use(
        &self,
        report: &mut AttackReport,
        other_id: bool,
    ) -> anyhow::Result<()> {
        let alice = self.requester();
        let body = tagged_call(new_tag(), self.version());
        let approved = self.approved_and_unused(&alice, &body).await?;
        self.runs_once(report, &alice, &body, &approved).await?;
        let used = self.target.db.state().await?;
        let again = if other_id {
            tagged_call(new_tag(), self.version())
        } else {
            body
        };
        let (call, card) = self.parks(&alice, &again).await?;
        check(
            report,
            card.id != approved,
            "sent again after use, it opens a new request in /pending",
        );
        let answer = self.closed(report, &card.id, call).await?;
        let (executed, _) = since(&used, &self.target.db.state().await?);
        check(report, executed.is_empty(), "nothing ran the second time");
        report.observed = format!("again {answer}");
        Ok(())
    }

    /// One action in three spellings (key order, whitespace, `\u` escapes, JSON-RPC id): one
    /// request whose card counts three attempts and shows the canonical arguments.
    async fn other_spelling(&self, report: &mut AttackReport) -> anyhow::Result<()> {
        let alice = self.requester();
        let spellings = spellings(self.version());
        let mut calls = Vec::new();
        let mut cards = Vec::new();
        for (n, body) in spellings.iter().enumerate() {
            calls.push(self.send(&alice, body, Duration::from_secs(120))?);
            let attempts = n as u64 + 1;
            cards.push(
                self.card(&alice, |c| {
                    c.request.as_ref().is_some_and(|r| r.attempts == attempts)
                })
                .await?,
            );
        }
        let mine = self.cards_of(&alice).await?;
        let expected = format!(
            r#"{{"ticket":"conformance","version":"{}"}}"#,
            self.version()
        );
        let view = mine.first().and_then(|c| c.request.clone());
        check(
            report,
            mine.len() == 1 && cards.iter().all(|c| c.id == mine[0].id),
            format!(
                "one card in /pending for the three spellings ({} cards)",
                mine.len()
            ),
        );
        check(
            report,
            view.as_ref()
                .is_some_and(|v| v.attempts == 3 && v.canonical_args == expected),
            format!("the card counts 3 attempts of {expected}: {view:?}"),
        );
        let mut answers = Vec::new();
        for (n, call) in calls.into_iter().enumerate() {
            let id = (n == 0)
                .then(|| mine.first().map(|c| c.id.clone()))
                .flatten();
            answers.push(self.closed_maybe(report, id.as_deref(), call).await?);
        }
        self.ran_nothing(report, "for any spelling").await?;
        report.observed = format!("one card, {}", answers.join(", "));
        Ok(())
    }
}

/// `run_migration` to `version` with a ticket, three ways: key order, whitespace, `\u`
/// escapes and the JSON-RPC id differ; the action does not.
fn spellings(version: &str) -> [String; 3] {
    let escaped = match version.char_indices().last() {
        Some((at, c)) => format!("{}\\u{:04x}", &version[..at], c as u32),
        None => String::new(),
    };
    let (a, b) = (new_tag(), new_tag());
    [
        format!(
            r#"{{"jsonrpc":"2.0","id":{a},"method":"tools/call","params":{{"name":"run_migration","arguments":{{"version":"{version}","ticket":"conformance"}}}}}}"#
        ),
        format!(
            "{{ \"params\" : {{ \"arguments\" : {{ \"ticket\" : \"conformance\", \"version\" : \"{escaped}\" }},\n  \"name\" : \"run_migration\" }}, \"method\" : \"tools/call\", \"id\" : {b}, \"jsonrpc\" : \"2.0\" }}"
        ),
        format!(
            r#"{{"id":"retry-{b}","jsonrpc":"2.0","method":"tools/call","params":{{"arguments":{{"ticket":"conform\u0061nce","version":"{version}"}},"name":"run_migration"}}}}"#
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spellings_are_one_action() {
        let parsed: Vec<serde_json::Value> = spellings("v3")
            .iter()
            .map(|s| serde_json::from_str(s).unwrap())
            .collect();
        for p in &parsed {
            assert_eq!(p["params"], parsed[0]["params"]);
        }
        assert!(spellings("v3")[1].contains(r"v\u0033"));
        assert_ne!(parsed[0]["id"], parsed[1]["id"]);
    }

    #[test]
    fn every_kind_names_its_procedure() {
        for (kind, procedure) in Procedure::KINDS {
            assert_eq!(Procedure::from_kind(kind), Some(procedure));
        }
        assert_eq!(Procedure::from_kind("request"), None);
    }
}
