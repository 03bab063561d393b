//! What the local lab keeps on disk that another local user could read: its directory (and
//! every directory in it) must be its owner's alone, and so must every file that holds a
//! secret or the audit (the state file with the admin token, the credentials, the requester's
//! signing key, the SQLite trails and their journals, the logs). Unix only.

use std::path::{Path, PathBuf};

use crate::lab::LabState;

/// A file or directory of the lab that someone other than its owner may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    pub path: PathBuf,
    /// Its permission bits (`0o644`, …).
    pub mode: u32,
}

/// The directory `lab` keeps its state, credentials, trails and logs in.
pub fn lab_dir(lab: &LabState) -> Option<&Path> {
    lab.log_dir.parent()
}

/// The logs of `lab`'s processes.
pub fn logs(lab: &LabState) -> Vec<PathBuf> {
    lab.processes.iter().map(|p| p.log.clone()).collect()
}

/// The files of the lab in `dir` that hold a secret or the audit (with its processes' `logs`):
/// whichever of them exist.
pub fn secret_files(dir: &Path, logs: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = vec![
        crate::lab::state_path(dir),
        dir.join(crate::requester::KEY_FILE),
    ];
    let listed = |sub: &Path, keep: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(sub)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| keep(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        found.sort();
        found
    };
    files.extend(listed(&dir.join("credentials"), &|_| true));
    // The SQLite trails (hitl-extauth's audit, mock-db-mcp's database) and their journals.
    files.extend(listed(dir, &|name| name.contains(".db")));
    files.extend(logs.iter().cloned());
    files.retain(|path| path.exists());
    files.dedup();
    files
}

/// Every directory under `dir` (itself included) and every [`secret_files`] entry that
/// grants anything to its group or to others.
pub fn exposed(dir: &Path, logs: &[PathBuf]) -> std::io::Result<Vec<Exposed>> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        check(&d, &mut out)?;
        for entry in std::fs::read_dir(&d)?.flatten() {
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    for file in secret_files(dir, logs) {
        check(&file, &mut out)?;
    }
    Ok(out)
}

/// `path`'s permission bits.
pub fn mode(path: &Path) -> std::io::Result<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(0o600)
    }
}

fn check(path: &Path, out: &mut Vec<Exposed>) -> std::io::Result<()> {
    let mode = mode(path)?;
    if mode & 0o077 != 0 {
        out.push(Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn set(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_readable_state_file_or_an_open_directory_is_exposed_a_public_key_is_not() {
        let dir = std::env::temp_dir().join(format!("hitl-lab-on-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("credentials")).unwrap();
        let logs = [];
        let state = crate::lab::state_path(&dir);
        for (path, mode) in [
            (state.clone(), 0o600),
            (dir.join("credentials/admin-token"), 0o600),
            (dir.join("hitl-extauth.db"), 0o600),
            (dir.join("requester-jwks.json"), 0o644),
        ] {
            std::fs::write(&path, "x").unwrap();
            set(&path, mode);
        }
        set(&dir, 0o700);
        set(&dir.join("credentials"), 0o700);
        assert_eq!(exposed(&dir, &logs).unwrap(), vec![], "all private");
        assert_eq!(secret_files(&dir, &logs).len(), 3);

        set(&state, 0o644);
        set(&dir.join("credentials"), 0o755);
        let found: Vec<PathBuf> = exposed(&dir, &logs)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(found, vec![dir.join("credentials"), state]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
