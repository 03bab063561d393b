//! A PostgreSQL server of our own, for the tests and the lab: Debian's `postgresql` binaries
//! (`POSTGRES_BIN_DIR`, else the newest `/usr/lib/postgresql/*/bin`), a fresh cluster made by
//! `initdb` in a directory we name (under `target/`), listening on 127.0.0.1 only (no Unix
//! socket), one user with a generated password (SCRAM). PostgreSQL refuses to run as root, so
//! under root (CI) the server runs as the `postgres` system user the package creates. The
//! server stops when the [`Server`] is dropped.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;

/// Names the directory of `initdb`, `postgres` and `pg_isready` when they are elsewhere.
pub const BIN_DIR_ENV: &str = "POSTGRES_BIN_DIR";
/// The one role the server is made with.
pub const USER: &str = "hitl";
/// How long a fresh server may take to accept connections.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// A running server.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
    pub password: String,
    bin: PathBuf,
    /// `-c` settings beyond the defaults (TLS), kept for a restart.
    settings: Vec<String>,
}

/// Where Debian's PostgreSQL binaries are, or why not.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).context(
        "PostgreSQL is not installed: `apt-get install postgresql` (Debian), or set \
         POSTGRES_BIN_DIR to the directory holding initdb and postgres",
    )
}

use crate::prereqs::is_root;

/// `program` from `bin`, run as the `postgres` user when we are root (`setpriv` execs it, so
/// the child we hold is the program itself, and killing it kills the server).
pub(crate) fn command(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(path);
        cmd
    } else {
        Command::new(path)
    }
}

/// Give `path` (and the directories it needs) to the `postgres` user when we are root.
pub(crate) fn hand_over(path: &Path) -> anyhow::Result<()> {
    if !is_root() {
        return Ok(());
    }
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .context("running chown")?;
    anyhow::ensure!(status.success(), "chown postgres {} failed", path.display());
    Ok(())
}

/// `dir`, or when the `postgres` user cannot reach it (we are root and it lies under a
/// directory only root may enter, such as a checkout in `/root`), a fresh directory under the
/// system's temporary directory, handed over to `postgres`.
fn reachable(dir: &Path) -> anyhow::Result<PathBuf> {
    if server_user_can_write(dir) {
        return Ok(dir.to_path_buf());
    }
    let _ = std::fs::remove_dir_all(dir);
    let elsewhere = std::env::temp_dir()
        .join("hitl-lab-postgres")
        .join(uuid::Uuid::new_v4().to_string());
    std::fs::create_dir_all(&elsewhere)?;
    hand_over(&elsewhere)?;
    tracing::info!(
        wanted = %dir.display(), using = %elsewhere.display(),
        "the postgres user cannot reach the cluster's directory; using one it can"
    );
    Ok(elsewhere)
}

/// Whether the server's user can write in `dir` (always, unless we are root and it is the
/// `postgres` user, who may not enter a directory only root may).
pub(crate) fn server_user_can_write(dir: &Path) -> bool {
    if !is_root() {
        return true;
    }
    Command::new("setpriv")
        .args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
            "test",
            "-w",
        ])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// `initdb` a cluster in `<dir>/data` whose one role, [`USER`], has `password` (SCRAM);
/// `dir` must be the server user's to write. Returns the data directory.
pub(crate) fn initdb(bin: &Path, dir: &Path, password: &str) -> anyhow::Result<PathBuf> {
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, password)?;
    hand_over(&pwfile)?;
    let data = dir.join("data");
    let out = command(bin, "initdb")
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            USER,
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .context("running initdb")?;
    std::fs::remove_file(&pwfile).ok();
    anyhow::ensure!(
        out.status.success(),
        "initdb {} failed: {}",
        data.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(data)
}

impl Server {
    /// Make a cluster in `dir` (which must not exist yet) and start it on a free port.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(dir, None)
    }

    /// [`Server::start`], accepting only TLS connections (`hostssl`), with `identity` as
    /// the server's certificate and key.
    pub fn start_tls(dir: &Path, identity: &crate::gate_tls::Pem) -> anyhow::Result<Self> {
        Self::start_with(dir, Some(identity))
    }

    fn start_with(dir: &Path, tls: Option<&crate::gate_tls::Pem>) -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        hand_over(dir)?;
        let dir = &reachable(dir)?;
        let password = crate::credentials::random_token()?;
        let data = initdb(&bin, dir, &password)?;
        let mut settings: Vec<String> = Vec::new();
        if let Some(identity) = tls {
            // Certificate and key in the cluster, the key the server's alone; plaintext
            // connections refused.
            hitl_wire::private::write(&data.join("server.crt"), identity.cert.as_bytes())?;
            hitl_wire::private::write(&data.join("server.key"), identity.key.as_bytes())?;
            std::fs::write(
                data.join("pg_hba.conf"),
                format!("hostssl all {USER} 127.0.0.1/32 scram-sha-256\n"),
            )?;
            hand_over(&data)?;
            settings.extend(["ssl=on".into(), "ssl_cert_file=server.crt".into()]);
            settings.push("ssl_key_file=server.key".into());
        }
        let log = dir.join("postgres.log");
        std::fs::File::create(&log)?;
        hand_over(&log)?;
        let mut server = Self {
            child: None,
            dir: dir.to_path_buf(),
            port: crate::net::free_port()?,
            password,
            bin,
            settings,
        };
        server.spawn()?;
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                let log =
                    std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                anyhow::bail!(
                    "postgres exited ({status}) before it was ready; its log ends: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "postgres was not ready within {READY_LIMIT:?}; see {}",
                self.dir.join("postgres.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URL of database `db` on this server, without the password.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// The URL of database `db` with the password in it.
    pub fn url_with_password(&self, db: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// Write the password to `path`, owner-only (for `STORE_PASSWORD_FILE`).
    pub fn password_file(&self, path: &Path) -> anyhow::Result<()> {
        hitl_wire::private::write(path, self.password.as_bytes())?;
        Ok(())
    }

    /// Start the server again on its cluster and port, after [`Server::kill`]. The killed
    /// server's backends outlive it for a moment (each notices its postmaster is gone on its
    /// own), and a new one refuses to start while they hold the cluster: try again until they
    /// are gone.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "the server is still running");
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            self.spawn()?;
            match self.wait_ready() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "postgres did not restart yet; trying again");
                    self.kill();
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Spawn `postgres` on the cluster: loopback only, no Unix socket, our settings, its
    /// output appended to `postgres.log`.
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("postgres.log"))?;
        let child = command(&self.bin, "postgres")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            // Throwaway clusters: a commit need not survive the machine, only the process.
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting postgres")?;
        self.child = Some(child);
        Ok(())
    }

    /// Stop the server at once (`SIGKILL`: what a crash looks like to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    /// Stop the server and remove its cluster.
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under root, a cluster asked for below a directory only root may enter (a checkout in
    /// `/root`) is made where the `postgres` user can work, and still answers.
    #[test]
    fn a_cluster_below_a_root_only_directory_still_starts() {
        if !is_root() || bin_dir().is_err() {
            return;
        }
        let closed = crate::bins::target_dir()
            .join("pg-closed")
            .join(uuid::Uuid::new_v4().to_string());
        std::fs::create_dir_all(&closed).unwrap();
        hitl_wire::private::dir(&closed).unwrap();
        let server = Server::start(&closed.join("cluster")).unwrap();
        assert!(
            server.dir.starts_with(std::env::temp_dir()),
            "{:?}",
            server.dir
        );
        let at = server.dir.clone();
        drop(server);
        assert!(!at.exists(), "removed with the server");
        std::fs::remove_dir_all(&closed).unwrap();
    }
}
