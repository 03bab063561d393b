//! Lab runs: `up` on a lab that was taken down starts a new run — the previous run's stores
//! (the gate's audit with its approval requests, mock-db-mcp's database) and logs move to
//! `runs/<UTC start>/`, so each audience (and each conformance run) starts with an empty
//! history and queue. A lab that is restarted while recorded as up keeps its stores: approval
//! requests outlive a restart (issue #26).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// How many earlier runs are kept under `runs/`; older ones are removed.
pub const KEPT: usize = 10;

/// The directory earlier runs are kept in.
pub fn dir(lab_dir: &Path) -> PathBuf {
    lab_dir.join("runs")
}

/// What one run leaves in `lab_dir`: its SQLite stores with their journals, and its logs.
fn leftovers(lab_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(lab_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| e.file_name().to_string_lossy().contains(".db"))
        .map(|e| e.path())
        .collect();
    let logs = lab_dir.join("logs");
    if logs.is_dir() {
        found.push(logs);
    }
    found.sort();
    found
}

/// Move the previous run's stores and logs from `lab_dir` to `runs/<stamp>/` (owner-only)
/// and drop all but the [`KEPT`] newest runs: the directory they went to, or `None` when
/// there was nothing to keep.
pub fn archive(lab_dir: &Path, stamp: &str) -> anyhow::Result<Option<PathBuf>> {
    let leftovers = leftovers(lab_dir);
    if leftovers.is_empty() {
        return Ok(None);
    }
    let runs = dir(lab_dir);
    let to = unique(&runs.join(stamp));
    std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
    hitl_wire::private::dir(&runs)?;
    hitl_wire::private::dir(&to)?;
    for path in leftovers {
        let name = path.file_name().context("a file in the lab directory")?;
        std::fs::rename(&path, to.join(name))
            .with_context(|| format!("moving {} to {}", path.display(), to.display()))?;
    }
    prune(&runs, KEPT)?;
    Ok(Some(to))
}

/// `path`, or `path-2`, `path-3`, … whichever does not exist yet.
fn unique(path: &Path) -> PathBuf {
    let mut candidate = path.to_path_buf();
    let mut n = 2;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{}-{n}", path.display()));
        n += 1;
    }
    candidate
}

/// Remove all but the `keep` newest runs (by name: the stamps sort by time).
fn prune(runs: &Path, keep: usize) -> anyhow::Result<()> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(runs)?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    all.sort();
    let excess = all.len().saturating_sub(keep);
    for old in &all[..excess] {
        std::fs::remove_dir_all(old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

/// Now, as a run directory's name: `20261206T171746Z`.
pub fn stamp(now: time::OffsetDateTime) -> String {
    let now = now.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_moves_the_stores_and_logs_and_keeps_the_rest() {
        let lab = std::env::temp_dir().join(format!("hitl-runs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(lab.join("logs")).unwrap();
        std::fs::create_dir_all(lab.join("credentials")).unwrap();
        for file in [
            "hitl-extauth.db",
            "hitl-extauth.db-wal",
            "logs/hitl-extauth.log",
        ] {
            std::fs::write(lab.join(file), "x").unwrap();
        }
        std::fs::write(lab.join("requester-jwks.json"), "{}").unwrap();

        let to = archive(&lab, "20261206T171746Z").unwrap().unwrap();
        assert_eq!(to, lab.join("runs/20261206T171746Z"));
        assert!(to.join("hitl-extauth.db").is_file());
        assert!(to.join("hitl-extauth.db-wal").is_file());
        assert!(to.join("logs/hitl-extauth.log").is_file());
        assert!(!lab.join("hitl-extauth.db").exists() && !lab.join("logs").exists());
        assert!(lab.join("requester-jwks.json").is_file() && lab.join("credentials").is_dir());
        assert_eq!(crate::on_disk::mode(&to).unwrap(), 0o700);

        // Nothing left: nothing to archive. The same second again: a second directory.
        assert_eq!(archive(&lab, "20261206T171746Z").unwrap(), None);
        std::fs::write(lab.join("hitl-extauth.db"), "y").unwrap();
        let again = archive(&lab, "20261206T171746Z").unwrap().unwrap();
        assert_eq!(again, lab.join("runs/20261206T171746Z-2"));
        std::fs::remove_dir_all(&lab).unwrap();
    }

    #[test]
    fn only_the_newest_runs_are_kept() {
        let lab = std::env::temp_dir().join(format!("hitl-runs-{}", uuid::Uuid::new_v4()));
        for i in 0..KEPT + 2 {
            std::fs::create_dir_all(&lab).unwrap();
            std::fs::write(lab.join("x.db"), "x").unwrap();
            archive(&lab, &format!("2026120{i:02}")).unwrap();
        }
        let mut kept: Vec<String> = std::fs::read_dir(dir(&lab))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        kept.sort();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0], "202612002");
        std::fs::remove_dir_all(&lab).unwrap();
    }

    #[test]
    fn stamps_sort_by_time() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_796_577_466).unwrap();
        assert_eq!(stamp(t), "20261206T171746Z");
    }
}
