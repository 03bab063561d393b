//! The gate's store in the local lab, and how many gate replicas share it: SQLite (the
//! default: one replica, `hitl-extauth.db` in the lab's directory) or PostgreSQL (`--store
//! postgres`, implied by `--replicas N` with N > 1): a server of the lab's own from Debian's
//! binaries ([`crate::postgres`]), started detached like every other lab process (so it outlives
//! `up`, `down` stops exactly it, `status` shows it), on 127.0.0.1 only, its cluster kept
//! across `up`s of one lab run and moved into the run's archive when a new run starts.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context as _;
pub use hitl_manifests::StoreChoice;
use serde::{Deserialize, Serialize};

use super::{LocalConfig, ports::MAX_REPLICAS};
use crate::{postgres, proc::Spec};

/// The name of the PostgreSQL server among the lab's processes (and of its log).
pub const POSTGRES: &str = "postgres";
/// The database the gate's replicas share.
pub const DATABASE: &str = "hitl";
/// How long a starting server may take to accept connections.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// Which store, and how many gate replicas on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub store: StoreChoice,
    pub replicas: u16,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            store: StoreChoice::Sqlite,
            replicas: 1,
        }
    }
}

impl Topology {
    /// `--store` and `--replicas` as asked: one replica by default; more than one means
    /// PostgreSQL, which is then the default; SQLite with more than one is refused (one
    /// file, one writer).
    pub fn from_flags(store: Option<StoreChoice>, replicas: Option<u16>) -> anyhow::Result<Self> {
        let replicas = replicas.unwrap_or(1);
        anyhow::ensure!(
            (1..=MAX_REPLICAS).contains(&replicas),
            "--replicas {replicas}: the local lab runs 1 to {MAX_REPLICAS} gate replicas"
        );
        let store = match (store, replicas) {
            (Some(StoreChoice::Sqlite), n) if n > 1 => anyhow::bail!(
                "--store sqlite holds one gate replica (one SQLite file has one writer): use \
                 --store postgres for --replicas {n}, or drop --replicas"
            ),
            (Some(store), _) => store,
            (None, 1) => StoreChoice::Sqlite,
            (None, _) => StoreChoice::Postgres,
        };
        Ok(Self { store, replicas })
    }

    /// `sqlite`, or `postgres, 2 replicas`.
    pub fn describe(&self) -> String {
        match self.replicas {
            1 => format!("{}, 1 replica", self.store),
            n => format!("{}, {n} replicas", self.store),
        }
    }
}

/// The lab's PostgreSQL, as the lab state records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgresRecord {
    /// The cluster's directory (`data/`, the password file).
    pub dir: PathBuf,
    pub port: u16,
    /// `STORE_URL`, without the password.
    pub url: String,
    /// `STORE_PASSWORD_FILE`.
    pub password_file: PathBuf,
}

/// A server ready to be started: its process spec and what to record.
#[derive(Debug, Clone)]
pub struct LabPostgres {
    pub spec: Spec,
    pub record: PostgresRecord,
    bin: PathBuf,
}

/// Where the lab in `lab_dir` keeps its cluster: `<lab_dir>/postgres`, or, when the server's
/// user cannot enter the lab's directory (we are root, the directory is root's alone), a
/// directory of the lab's own under the system's temporary directory, named after the lab's
/// path so that every `up` of this lab finds it.
pub fn cluster_dir(lab_dir: &Path) -> PathBuf {
    let wanted = lab_dir.join(POSTGRES);
    if postgres::server_user_can_write(lab_dir) {
        return wanted;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a: stable across runs and builds
    for byte in lab_dir.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    std::env::temp_dir().join(format!("hitl-lab-postgres-{hash:016x}"))
}

/// The server for `config`: its cluster made (`initdb`, a new password) unless this lab run
/// already has one, which is kept with its data.
pub fn prepare(config: &LocalConfig) -> anyhow::Result<LabPostgres> {
    let bin = postgres::bin_dir()?;
    let dir = cluster_dir(&config.dir);
    let password_file = dir.join("password");
    let data = dir.join("data");
    if !data.join("PG_VERSION").exists() || !password_file.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        hitl_wire::private::dir(&dir)?;
        postgres::hand_over(&dir)?;
        let password = crate::credentials::random_token()?;
        postgres::initdb(&bin, &dir, &password)?;
        // The gate reads it (as the lab's user); the server needs it no more.
        hitl_wire::private::write(&password_file, password.as_bytes())?;
        config.note(format!("==> a new PostgreSQL cluster in {}", dir.display()));
    }
    let port = config.ports.postgres;
    let server = postgres::command(&bin, "postgres");
    let mut spec = Spec::new(POSTGRES, server.get_program(), &config.log_dir());
    for arg in server.get_args() {
        spec = spec.arg(arg);
    }
    spec = spec.arg("-D").arg(&data);
    // Loopback only, no Unix socket; room for every replica's connections.
    for arg in [
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
        "-p",
    ] {
        spec = spec.arg(arg);
    }
    spec = spec.arg(port.to_string());
    Ok(LabPostgres {
        spec,
        record: PostgresRecord {
            url: format!("postgres://{}@127.0.0.1:{port}/{DATABASE}", postgres::USER),
            dir,
            port,
            password_file,
        },
        bin,
    })
}

impl LabPostgres {
    /// Wait, bounded, until the server started as `pid` accepts connections and has the
    /// gate's database (made on the first start of a cluster).
    pub async fn wait_ready(&self, alive: impl Fn() -> bool) -> anyhow::Result<()> {
        let port = self.record.port.to_string();
        let deadline = Instant::now() + READY_LIMIT;
        let log = &self.spec.log;
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port, "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return self.ensure_database();
            }
            anyhow::ensure!(
                alive(),
                "postgres exited before it was ready; log {}:\n{}",
                log.display(),
                crate::proc::log_tail(log, 20)
            );
            anyhow::ensure!(
                Instant::now() < deadline,
                "postgres was not ready within {READY_LIMIT:?}; log {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `CREATE DATABASE hitl` unless it exists (`createdb` fails when it does: checked first).
    fn ensure_database(&self) -> anyhow::Result<()> {
        let password = std::fs::read_to_string(&self.record.password_file)?;
        let port = self.record.port.to_string();
        let psql = |args: &[&str]| {
            Command::new(self.bin.join("psql"))
                .args(["-h", "127.0.0.1", "-p", &port, "-U", postgres::USER])
                .args(["-d", "postgres", "-tA", "-v", "ON_ERROR_STOP=1", "-c"])
                .args(args)
                .env("PGPASSWORD", password.trim())
                .output()
                .context("running psql")
        };
        let found = psql(&[&format!(
            "SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"
        )])?;
        if String::from_utf8_lossy(&found.stdout).trim() == "1" {
            return Ok(());
        }
        let made = psql(&[&format!("CREATE DATABASE {DATABASE}")])?;
        anyhow::ensure!(
            made.status.success(),
            "creating database {DATABASE}: {}",
            String::from_utf8_lossy(&made.stderr).trim()
        );
        Ok(())
    }
}

/// A new lab run: the previous run's cluster moves to `kept` (its run directory) as
/// `postgres/`, or is removed when there is no run directory or it lives on another
/// filesystem (the temporary directory); what happened, for one line of output.
pub fn archive(lab_dir: &Path, kept: Option<&Path>) -> anyhow::Result<Option<String>> {
    let dir = cluster_dir(lab_dir);
    if !dir.exists() {
        return Ok(None);
    }
    if let Some(kept) = kept
        && std::fs::rename(&dir, kept.join(POSTGRES)).is_ok()
    {
        return Ok(Some(format!(
            "the last run's PostgreSQL cluster is kept in {}",
            kept.join(POSTGRES).display()
        )));
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(Some(format!(
        "the last run's PostgreSQL cluster ({}) was removed: a new run starts with an empty store",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_imply_postgres_and_sqlite_holds_one() {
        let t = |store, replicas| Topology::from_flags(store, replicas);
        assert_eq!(t(None, None).unwrap(), Topology::default());
        assert_eq!(t(None, Some(2)).unwrap().store, StoreChoice::Postgres);
        assert_eq!(
            t(Some(StoreChoice::Postgres), None).unwrap(),
            Topology {
                store: StoreChoice::Postgres,
                replicas: 1
            }
        );
        let refused = t(Some(StoreChoice::Sqlite), Some(2))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("--store postgres"), "{refused}");
        assert!(t(None, Some(0)).is_err() && t(None, Some(MAX_REPLICAS + 1)).is_err());
    }
}
