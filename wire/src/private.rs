//! Files and directories only their owner may read: the one way every crate writes a secret
//! (keys, tokens, the lab state) or creates a file that will hold one (an audit database).
//! Files are `0600`, directories `0700`; an existing one is tightened, never loosened. On
//! other platforms than Unix the modes are left to the platform.

use std::{io::Write as _, path::Path};

#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

/// Owner read and write.
pub const FILE_MODE: u32 = 0o600;
/// Owner read, write and search.
pub const DIR_MODE: u32 = 0o700;

/// Write `bytes` to `path`, readable by its owner only, replacing what was there. Written
/// beside it first and renamed into place, so a reader never sees half a secret and the file
/// is never readable by others for a moment.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut file = options().create_new(true).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Create `path` empty, owner-only, if it does not exist; tighten it if it does (e.g. a
/// database file before SQLite opens it: SQLite gives its `-wal` and `-shm` files the
/// database file's mode).
pub fn file(path: &Path) -> std::io::Result<()> {
    match options().create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict(path, FILE_MODE),
        Err(e) => Err(e),
    }
}

/// Make the SQLite database at `path` owner-only before SQLite opens it: the file is
/// created (or tightened), and so are its `-wal`, `-shm` and `-journal` files if a run before
/// left them (SQLite gives new ones the database file's mode). Both services' audit trails
/// come through here.
pub fn database(path: &Path) -> std::io::Result<()> {
    file(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if side.exists() {
            restrict(&side, FILE_MODE)?;
        }
    }
    Ok(())
}

/// Open `path` for appending (a log), created owner-only or tightened.
pub fn append(path: &Path) -> std::io::Result<std::fs::File> {
    let file = options().create(true).append(true).open(path)?;
    restrict(path, FILE_MODE)?;
    Ok(file)
}

/// Create `path` (and any missing parents) and make `path` itself owner-only.
pub fn dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    restrict(path, DIR_MODE)
}

/// Take every permission but the owner's off `path`, if it has any (leaves a `0400` alone).
pub fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let now = std::fs::metadata(path)?.permissions().mode();
        if now & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(now & mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    options.mode(FILE_MODE);
    options
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hitl-wire-private-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_secret_replaces_a_world_readable_file_and_is_owner_only() {
        let dir = scratch("write");
        let path = dir.join("state.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&path, b"token").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"token");
        assert_eq!(mode(&path), 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn files_and_dirs_are_created_or_tightened() {
        let dir = scratch("tighten");
        let db = dir.join("audit.db");
        file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let sub = dir.join("credentials");
        self::dir(&sub).unwrap();
        assert_eq!(mode(&sub), 0o700);
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        self::dir(&sub).unwrap();
        assert_eq!(mode(&sub), 0o700);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_database_and_the_journals_a_run_left_are_tightened() {
        let dir = scratch("database");
        let db = dir.join("audit.db");
        let wal = dir.join("audit.db-wal");
        for path in [&db, &wal] {
            std::fs::write(path, "").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        database(&db).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        assert!(
            !dir.join("audit.db-shm").exists(),
            "nothing is created beside it"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
