//! Replaying the catalogue against a gate behind a gateway: each attack is sent, its answer
//! classified (refused, passed, or held as parked), and what must hold is checked from its
//! own source — the answer, mock-db-mcp's audit, the gate's `/history`. A check that needs
//! something the gate under test does not offer is reported as "n/a for this gate", never
//! as a pass.

use std::time::{Duration, Instant};

use hitl_wire::{extauth::client::AdminClient, mockdb::State};
use serde::Serialize;

use super::{
    catalogue::{Attack, Kind},
    decider::Decider,
    procedures, request,
};
use crate::scene::Check;
use hitl_lab::{
    clients::{Db, ReviewerUi},
    envoy::Endpoint,
    requester::Issuer,
};

/// The gate under test and everything around it.
pub struct Target {
    /// The gateway's listener.
    pub gateway: Endpoint,
    /// mock-db-mcp, reached directly.
    pub backend: Endpoint,
    pub db: Db,
    /// Mints requester tokens the gateway verifies.
    pub issuer: Issuer,
    /// The requester our calls come from.
    pub requester: String,
    /// hitl-extauth's admin API (pending, history) when the gate is hitl-extauth.
    pub admin: Option<AdminClient>,
    /// The admin API's base URL, to try it without credentials.
    pub admin_url: Option<String>,
    pub decider: Decider,
    /// The reviewer UI and a signed-in reviewer, for separation of duties (the UI enforces it).
    pub ui: Option<(ReviewerUi, String)>,
    /// The gate's Check port, to ask it for an approval token directly.
    pub ext_authz: Option<Endpoint>,
    /// The gateway's client certificate for [`Target::ext_authz`], when the gate demands one
    /// (mTLS): the harness holds it as it holds the admin token.
    pub ext_authz_tls: Option<hitl_lab::envoy::GateClientTls>,
    /// mock-db-mcp verifies approval tokens with the gate's public key.
    pub backend_verifies: bool,
    /// The gate is hitl-extauth: its reasons and its `/history` are part of the contract.
    pub ours: bool,
    /// How long a call may go unanswered before it counts as parked.
    pub park_window: Duration,
}

impl Target {
    /// The gate's Check port, for the procedures that ask it directly; without one, `report`
    /// says so as not applicable.
    pub fn check_port(&self, report: &mut AttackReport) -> Option<&Endpoint> {
        if self.ext_authz.is_none() {
            report
                .not_applicable
                .push("the gate's Check port is not known".into());
        }
        self.ext_authz.as_ref()
    }
}

/// One attack's result (or one of gate-check's lifecycle checks): a row in the summary table
/// and the reports.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    pub id: String,
    pub name: String,
    pub family: String,
    pub file: String,
    pub passed: bool,
    /// What was observed, in one line (`refused 403`, `parked`, …).
    pub observed: String,
    pub duration_ms: u64,
    pub checks: Vec<Check>,
    /// Checks that could not apply to this gate, each with why.
    pub not_applicable: Vec<String>,
}

impl AttackReport {
    /// A row not yet run.
    pub fn new(id: &str, name: &str, family: &str, file: &str) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            family: family.into(),
            file: file.into(),
            passed: false,
            observed: String::new(),
            duration_ms: 0,
            checks: Vec::new(),
            not_applicable: Vec::new(),
        }
    }

    /// Run `procedure` on this row; never fails: an error is a failed check. Passed when
    /// every check passed and at least one applied; n/a (not a failure) when none did.
    pub async fn run(
        mut self,
        procedure: impl AsyncFnOnce(&mut Self) -> anyhow::Result<()>,
    ) -> Self {
        let started = Instant::now();
        if let Err(e) = procedure(&mut self).await {
            check(&mut self, false, format!("could not run: {e:#}"));
        }
        self.passed = !self.checks.is_empty() && self.checks.iter().all(|c| c.passed);
        if self.checks.is_empty() && !self.not_applicable.is_empty() {
            self.passed = true;
            self.observed = "n/a".into();
        }
        self.duration_ms = started.elapsed().as_millis() as u64;
        self
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// The row as one live line, its id padded to `width`.
    pub fn live_line(&self, label: &str, width: usize) -> String {
        format!(
            "   {} {:<width$} {:<18} {}",
            if self.passed { "✓" } else { "✗" },
            format!("{label}{}", self.id),
            self.observed,
            self.failures()
                .map(|c| c.what.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    }
}

/// Run every attack, in order.
pub async fn run_all(
    target: &Target,
    attacks: &[Attack],
    live: &dyn Fn(&str),
) -> Vec<AttackReport> {
    let mut out = Vec::new();
    for attack in attacks {
        let report = run(target, attack).await;
        live(&report.live_line("attack ", 41));
        out.push(report);
    }
    out
}

/// Run one attack; never fails: an error is a failed check.
pub async fn run(target: &Target, attack: &Attack) -> AttackReport {
    let report = AttackReport::new(&attack.id, &attack.name, &attack.family, &attack.file);
    report
        .run(async |report| match &attack.kind {
            Kind::Request(r) => request::run(target, attack, r, report).await,
            Kind::SelfApproval => procedures::self_approval(target, report).await,
            Kind::ReplayApproval => procedures::replay_approval(target, report).await,
            Kind::StatedRequester => procedures::stated_requester(target, report).await,
            Kind::CheckWithoutClientCertificate => {
                super::mtls::check_without_client_certificate(target, report).await
            }
            Kind::DecideWithoutCredentials => {
                procedures::decide_without_credentials(target, report).await
            }
            Kind::Requests(procedure) => super::requests::run(target, *procedure, report).await,
            Kind::Keys(attack) => super::keys::run(target, *attack, report).await,
        })
        .await
}

/// Record one check on `report`.
pub fn check(report: &mut AttackReport, passed: bool, what: impl Into<String>) {
    report.checks.push(Check {
        passed,
        what: what.into(),
    });
}

/// The backend's audit since `before`: (executed, refused checks).
pub fn since(before: &State, after: &State) -> (Vec<String>, Vec<String>) {
    let last = before.audit.iter().map(|e| e.seq).max().unwrap_or(0);
    let mut executed = Vec::new();
    let mut refused = Vec::new();
    for entry in after.audit.iter().filter(|e| e.seq > last) {
        match &entry.refused {
            Some(check) => refused.push(check.clone()),
            None => executed.push(entry.tool.clone()),
        }
    }
    (executed, refused)
}
