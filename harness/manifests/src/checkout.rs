//! Where the checkout is: the root of the hitl-lab workspace, found at run time. The
//! manifests are read from `<root>/manifests`; hitl-lab's `bins` re-exports this for the
//! target directory and the binaries.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

/// Root of the checkout (the directory holding the workspace `Cargo.toml`), found at run time.
///
/// It is looked up from where the program runs, never taken from the compile-time
/// `CARGO_MANIFEST_DIR`: cargo does not rebuild after a checkout is moved or copied, and a
/// copy must drive itself, not the original. In order: the `CARGO_MANIFEST_DIR` cargo sets
/// for `cargo run` / `cargo test` (the package being run), the current directory, the
/// directory of the running executable (`target/debug/…`); from each, the nearest ancestor
/// holding this workspace.
///
/// # Panics
/// When none of them lies inside a hitl-lab checkout; the message says where to run from.
pub fn workspace_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let starts = [
            std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
            std::env::current_dir().ok(),
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(Path::to_path_buf)),
        ];
        starts
            .into_iter()
            .flatten()
            .find_map(|start| find_root(&start))
            .unwrap_or_else(|| {
                panic!(
                    "cannot find the hitl-lab checkout: run this from inside it (a directory \
                     whose Cargo.toml is the hitl-lab workspace, or below it)"
                )
            })
    })
    .clone()
}

/// The nearest ancestor of `start` (itself included) that is the hitl-lab workspace root.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(start).unwrap_or_else(|_| start.to_path_buf());
    start
        .ancestors()
        .find(|dir| is_root(dir))
        .map(Path::to_path_buf)
}

fn is_root(dir: &Path) -> bool {
    let is_workspace = std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|toml| toml.lines().any(|l| l.trim() == "[workspace]"));
    is_workspace && dir.join("hitl-extauth").join("Cargo.toml").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_found_from_any_directory_inside_the_checkout() {
        let root = workspace_root();
        assert!(root.join("hitl-extauth").is_dir());
        assert_eq!(
            find_root(&root.join("harness").join("manifests").join("src")),
            Some(root.clone())
        );
        assert_eq!(find_root(&root), Some(root));
    }

    #[test]
    fn nothing_outside_a_checkout_is_taken_for_one() {
        let dir = std::env::temp_dir().join(format!("hitl-lab-not-a-root-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A workspace that is not hitl-lab's.
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        assert_eq!(find_root(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
