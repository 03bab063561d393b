//! What a run of scenes leaves behind: a summary table, `N passed, M failed` as the last
//! line, and machine-readable reports (JSON and JUnit XML) plus each transcript under
//! `target/conformance/`.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde::Serialize;

use super::{
    transcript::{Line, normalise, render},
    verdict::{CallRow, Check, Decided},
};
use crate::attacks::AttackReport;
use hitl_lab::agents::AgentKind;

/// The outcome of one scene.
#[derive(Debug, Clone, Serialize)]
pub struct SceneReport {
    pub id: u32,
    /// The agent the scene ran against.
    pub agent: AgentKind,
    pub name: String,
    pub file: String,
    pub passed: bool,
    pub duration_ms: u64,
    pub checks: Vec<Check>,
    pub calls: Vec<CallRow>,
    pub transcript: Vec<Line>,
}

impl SceneReport {
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// Every scene's report, and where the run happened.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// `local` or `kind`.
    pub target: String,
    /// `scripted`, `anthropic` or `openai`.
    pub model: String,
    /// The gateway in front of the gate: `agentgateway` or `envoy`.
    pub gateway: String,
    /// The local lab's gate: its store and replicas (`postgres, 2 replicas`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    pub scenes: Vec<SceneReport>,
    /// The attack catalogue's rows (`scenarios/attacks/`), after the scenes.
    #[serde(default)]
    pub attacks: Vec<AttackReport>,
}

impl SuiteReport {
    pub fn passed(&self) -> usize {
        self.scenes.iter().filter(|s| s.passed).count()
            + self.attacks.iter().filter(|a| a.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.scenes.len() + self.attacks.len() - self.passed()
    }

    /// The summary table and the closing `N passed, M failed` line.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if let Some(gate) = &self.gate {
            let _ = writeln!(out, "\ngate: {gate}");
        }
        self.scene_table(&mut out);
        self.attack_table(&mut out);
        self.failures(&mut out);
        let _ = writeln!(out, "\n{} passed, {} failed", self.passed(), self.failed());
        out
    }

    /// One row per call of every scene (one row for a scene without calls).
    fn scene_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n{:<3} {:<36} {:<12} {:<13} {:<6} {:<18} {:<9} {:<16} {:>4}",
            "#", "scene", "agent", "gateway", "result", "tool", "tier", "decision", "ran"
        );
        let _ = writeln!(out, "{}", "─".repeat(134));
        for scene in &self.scenes {
            let result = if scene.passed { "pass" } else { "FAIL" };
            let rows = if scene.calls.is_empty() {
                vec![None]
            } else {
                scene.calls.iter().map(Some).collect()
            };
            for (i, row) in rows.into_iter().enumerate() {
                let (id, name, agent, gw, res) = if i == 0 {
                    (
                        scene.id.to_string(),
                        scene.name.as_str(),
                        scene.agent.as_str(),
                        self.gateway.as_str(),
                        result,
                    )
                } else {
                    (String::new(), "", "", "", "")
                };
                let (tool, tier, decision, ran) = match row {
                    Some(r) => (
                        r.tool.as_str(),
                        r.observed_tier.map_or("?", |t| t.as_str()),
                        r.observed_decision.map_or("—", Decided::as_str),
                        r.executed.map_or("?", |e| if e { "yes" } else { "no" }),
                    ),
                    None => ("—", "", "", ""),
                };
                let _ = writeln!(
                    out,
                    "{id:<3} {name:<36} {agent:<12} {gw:<13} {res:<6} {tool:<18} {tier:<9} {decision:<16} {ran:>4}"
                );
            }
        }
    }

    fn attack_table(&self, out: &mut String) {
        if self.attacks.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n{:<36} {:<10} {:<13} {:<6} observed",
            "attack", "family", "gateway", "result"
        );
        let _ = writeln!(out, "{}", "─".repeat(134));
        for attack in &self.attacks {
            let result = match (attack.passed, attack.checks.is_empty()) {
                (false, _) => "FAIL",
                (true, true) => "n/a",
                (true, false) => "pass",
            };
            let _ = writeln!(
                out,
                "{:<36} {:<10} {:<13} {:<6} {}",
                attack.id, attack.family, self.gateway, result, attack.observed
            );
        }
    }

    /// Every failed check, by scene and attack, then what did not apply to the gate.
    fn failures(&self, out: &mut String) {
        for scene in self.scenes.iter().filter(|s| !s.passed) {
            let _ = writeln!(
                out,
                "\nscene {} ({}) failed on the {} agent:",
                scene.id, scene.name, scene.agent
            );
            for check in scene.failures() {
                let _ = writeln!(out, "  ✗ {}", check.what);
            }
        }
        for attack in self.attacks.iter().filter(|a| !a.passed) {
            let _ = writeln!(out, "\nattack {} ({}) failed:", attack.id, attack.name);
            for check in attack.failures() {
                let _ = writeln!(out, "  ✗ {}", check.what);
            }
        }
        let not_applicable: Vec<_> = self
            .attacks
            .iter()
            .filter(|a| !a.not_applicable.is_empty())
            .collect();
        if !not_applicable.is_empty() {
            let _ = writeln!(out, "\nn/a for this gate:");
            for attack in not_applicable {
                for why in &attack.not_applicable {
                    let _ = writeln!(out, "  – {}: {why}", attack.id);
                }
            }
        }
    }

    /// Write `report.json`, `junit.xml` and `transcripts/NN-agent-name.txt` under `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let transcripts = dir.join("transcripts");
        std::fs::create_dir_all(&transcripts)
            .with_context(|| format!("creating {}", transcripts.display()))?;
        let json = dir.join("report.json");
        std::fs::write(&json, serde_json::to_vec_pretty(self)?)?;
        let junit = dir.join("junit.xml");
        std::fs::write(&junit, self.junit())?;
        for scene in &self.scenes {
            let name = format!("{:02}-{}-{}.txt", scene.id, scene.agent, slug(&scene.name));
            std::fs::write(transcripts.join(name), render(&scene.transcript))?;
        }
        Ok(vec![json, junit, transcripts])
    }

    /// JUnit XML: one testsuite, one testcase per scene, one failure element listing the
    /// failed checks.
    pub fn junit(&self) -> String {
        let total_ms: u64 = self.scenes.iter().map(|s| s.duration_ms).sum::<u64>()
            + self.attacks.iter().map(|a| a.duration_ms).sum::<u64>();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites><testsuite name=\"hitl-lab conformance ({} lab, {} gateway, {} model)\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
            xml(&self.target),
            xml(&self.gateway),
            xml(&self.model),
            self.scenes.len() + self.attacks.len(),
            self.failed(),
            total_ms as f64 / 1000.0
        );
        for scene in &self.scenes {
            let _ = write!(
                out,
                "  <testcase classname=\"scenes.{}\" name=\"{:02} {}\" time=\"{:.3}\"",
                scene.agent,
                scene.id,
                xml(&scene.name),
                scene.duration_ms as f64 / 1000.0
            );
            if scene.passed {
                out.push_str("/>\n");
                continue;
            }
            let failures: Vec<String> = scene.failures().map(|c| c.what.clone()).collect();
            let _ = writeln!(
                out,
                ">\n    <failure message=\"{}\">{}</failure>\n    <system-out>{}</system-out>\n  </testcase>",
                xml(failures.first().map_or("", |s| s.as_str())),
                xml(&failures.join("\n")),
                xml(&render(&scene.transcript))
            );
        }
        for attack in &self.attacks {
            let _ = write!(
                out,
                "  <testcase classname=\"attacks.{}\" name=\"{} {}\" time=\"{:.3}\"",
                xml(&attack.family),
                xml(&attack.id),
                xml(&attack.name),
                attack.duration_ms as f64 / 1000.0
            );
            let notes: Vec<String> = attack
                .checks
                .iter()
                .map(|c| format!("{} {}", if c.passed { "✓" } else { "✗" }, c.what))
                .chain(attack.not_applicable.iter().map(|n| format!("n/a: {n}")))
                .collect();
            if attack.passed && attack.checks.is_empty() {
                let _ = writeln!(
                    out,
                    ">\n    <skipped message=\"{}\"/>\n  </testcase>",
                    xml(&notes.join("; "))
                );
                continue;
            }
            if attack.passed {
                let _ = writeln!(
                    out,
                    ">\n    <system-out>{}</system-out>\n  </testcase>",
                    xml(&notes.join("\n"))
                );
                continue;
            }
            let failures: Vec<String> = attack.failures().map(|c| c.what.clone()).collect();
            let _ = writeln!(
                out,
                ">\n    <failure message=\"{}\">{}</failure>\n    <system-out>{}</system-out>\n  </testcase>",
                xml(failures.first().map_or("", |s| s.as_str())),
                xml(&failures.join("\n")),
                xml(&notes.join("\n"))
            );
        }
        out.push_str("</testsuite></testsuites>\n");
        out
    }
}

/// A scene's transcript with run-specific values scrubbed, for snapshots.
pub fn normalised_transcript(scene: &SceneReport) -> String {
    normalise(&render(&scene.transcript))
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::verdict::Check;

    fn report(passed: bool) -> SuiteReport {
        SuiteReport {
            gate: None,
            target: "local".into(),
            model: "scripted".into(),
            gateway: "agentgateway".into(),
            scenes: vec![SceneReport {
                id: 4,
                agent: hitl_lab::agents::AgentKind::Langgraph,
                name: "tier-2 reject".into(),
                file: "scenarios/04-tier2-reject.toml".into(),
                passed,
                duration_ms: 1234,
                checks: vec![Check {
                    passed,
                    what: "the schema is v2 <it is v3> & \"quoted\"".into(),
                }],
                calls: vec![],
                transcript: vec![],
            }],
            attacks: vec![],
        }
    }

    #[test]
    fn the_summary_ends_with_the_counts() {
        let summary = report(false).summary();
        assert!(summary.ends_with("0 passed, 1 failed\n"), "{summary}");
        assert!(summary.contains("✗ the schema is v2"), "{summary}");
        assert!(
            summary.contains("failed on the langgraph agent"),
            "{summary}"
        );
    }

    #[test]
    fn junit_escapes_and_counts_failures() {
        let xml = report(false).junit();
        assert!(xml.contains("tests=\"1\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains("&lt;it is v3&gt; &amp; &quot;quoted&quot;"),
            "{xml}"
        );
        assert!(
            report(true).junit().contains(
                "classname=\"scenes.langgraph\" name=\"04 tier-2 reject\" time=\"1.234\"/>"
            )
        );
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("tier-1 reject with reason"),
            "tier-1-reject-with-reason"
        );
        assert_eq!(slug("ask_user"), "ask-user");
    }
}
