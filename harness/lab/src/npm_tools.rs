//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`) and the
//! Node.js it needs (>= 22; npm's `node` package ships the binary), installed with `npm` into
//! `<target>/npm-tools` at pinned versions on first use, and one scenario of it run against a
//! server.

use std::{fs::File, path::PathBuf, process::Command};

use anyhow::Context as _;

use crate::bins::target_dir;

/// Node.js for the suite: the suite needs >= 22, Debian 12 ships 20.
pub const NODE: &str = "node@22.23.3";
/// The suite: the newest release that is not a pre-release.
pub const CONFORMANCE: &str = "@modelcontextprotocol/conformance@0.1.16";

/// The installed suite.
#[derive(Debug, Clone)]
pub struct ConformanceSuite {
    node: PathBuf,
    script: PathBuf,
}

/// What one scenario run reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub passed: u32,
    pub total: u32,
    /// The suite's whole output, for a failure message.
    pub output: String,
}

/// `<target>/npm-tools`.
pub fn dir() -> PathBuf {
    target_dir().join("npm-tools")
}

impl ConformanceSuite {
    /// The suite, installed first if it is not (or not at these versions). Needs `npm` and
    /// npm's registry; safe to call from several processes at once (a file lock serialises
    /// installs). Prints progress to stderr.
    pub fn ensure() -> anyhow::Result<Self> {
        let dir = dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let guard_path = dir.join(".install.lock");
        let guard = File::create(&guard_path)
            .with_context(|| format!("creating {}", guard_path.display()))?;
        guard
            .lock()
            .with_context(|| format!("locking {}", guard_path.display()))?;
        let suite = Self {
            node: dir.join("node_modules/node/bin/node"),
            script: dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"),
        };
        let stamp = dir.join(".installed");
        let wanted = format!("{NODE}\n{CONFORMANCE}\n");
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
            && suite.node.is_file()
            && suite.script.is_file()
        {
            return Ok(suite);
        }
        eprintln!(
            "==> installing {NODE} and {CONFORMANCE} into {} (first run only)",
            dir.display()
        );
        let output = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&dir)
            .args([NODE, CONFORMANCE])
            .output()
            .with_context(|| {
                "running `npm` (to install the MCP conformance suite): install npm (Debian: \
                 `apt-get install npm`) and make sure it reaches registry.npmjs.org"
            })?;
        anyhow::ensure!(
            output.status.success() && suite.node.is_file() && suite.script.is_file(),
            "`npm install --prefix {} {NODE} {CONFORMANCE}` failed ({}); run it by hand to \
             see why (it needs registry.npmjs.org):\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&stamp, wanted)?;
        Ok(suite)
    }

    /// Run server scenario `scenario` against the MCP endpoint `url`.
    pub fn run_server_scenario(&self, url: &str, scenario: &str) -> anyhow::Result<Outcome> {
        let run = Command::new(&self.node)
            .arg(&self.script)
            .args(["server", "--url", url, "--scenario", scenario])
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0")
            .output()
            .with_context(|| format!("running {}", self.node.display()))?;
        let output = strip_ansi(&format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ));
        let (passed, total) = tally(&output)
            .with_context(|| format!("no `Passed: N/M` in the suite's output:\n{output}"))?;
        Ok(Outcome {
            passed,
            total,
            output,
        })
    }
}

/// `Passed: 2/2, 0 failed, …` → (2, 2).
fn tally(output: &str) -> Option<(u32, u32)> {
    let line = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Passed: "))?;
    let (passed, rest) = line.split_once('/')?;
    let total = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    Some((passed.trim().parse().ok()?, total.parse().ok()?))
}

/// The text without terminal colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_is_read_through_colours() {
        let output = "Checks:\n\u{1b}[32mSUCCESS\u{1b}[0m x\n\nTest Results:\nPassed: 1/2, 1 failed, 0 warnings\n";
        assert_eq!(tally(&strip_ansi(output)), Some((1, 2)));
        assert_eq!(tally("nothing"), None);
    }
}
