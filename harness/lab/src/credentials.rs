//! The lab's generated credentials: the approval key pair (hitl-extauth signs with one half,
//! mock-db-mcp verifies with the other), the admin API's bearer token (hitl-extauth
//! demands it, hitl-ui and the harness's reviewer send it) and mock-db-mcp's reset token (it
//! demands it on `/reset`, the scene runner sends it). Fresh ones per start, written under
//! the lab's directory, readable by their owner only.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hitl_wire::approval::{KeyFiles, Signer};

/// Where a lab's credentials are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The approval key pair, as files.
    pub keys: KeyFiles,
    /// hitl-extauth's `ADMIN_TOKEN`.
    pub admin_token: String,
    /// mock-db-mcp's `RESET_TOKEN`.
    pub reset_token: String,
    /// The key hitl-extauth signs its notifications with (`NOTIFY_SECRET_FILE`), as a file.
    pub notify_secret_file: Option<PathBuf>,
}

impl Credentials {
    /// New random credentials in `<dir>/credentials/`.
    pub fn generate(dir: &Path) -> anyhow::Result<Self> {
        Self::from_signer(&Signer::generate()?, dir)
    }

    /// `signer`'s key pair and a new admin token in `<dir>/credentials/`.
    pub fn from_signer(signer: &Signer, dir: &Path) -> anyhow::Result<Self> {
        let dir = dir.join("credentials");
        let keys = signer
            .write_key_files(&dir)
            .with_context(|| format!("writing the approval keys to {}", dir.display()))?;
        let notify_secret_file = dir.join(NOTIFY_SECRET_FILE);
        hitl_wire::private::write(&notify_secret_file, random_token()?.as_bytes())
            .with_context(|| format!("writing {}", notify_secret_file.display()))?;
        Ok(Self {
            keys,
            admin_token: random_token()?,
            reset_token: random_token()?,
            notify_secret_file: Some(notify_secret_file),
        })
    }

    /// The directory holding them.
    pub fn dir(&self) -> PathBuf {
        self.keys
            .signing
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

/// The notification key's file, in the credentials directory.
pub const NOTIFY_SECRET_FILE: &str = "notify.key";

/// 32 random bytes as hex.
pub fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
