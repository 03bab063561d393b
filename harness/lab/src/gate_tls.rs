//! mTLS between the gateway and the gate: the lab makes its own CA, issues the gate's server
//! certificate (for its loopback address and its Service names in kind) and the gateway's
//! client certificate, and forgets the CA's key, so nothing can issue another certificate the
//! gate would accept. The local lab and the tests write the PEMs to owner-only files; the kind
//! lab puts them into Secrets (`hitl_manifests::secrets::GATE_TLS`).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The names the gate's certificate is valid for: loopback (the local lab, the tests) and the
/// hitl-extauth Service in kind (the SNI agentgateway sends, `manifests/gateway/hitl-gate.yaml`).
pub const SERVER_NAMES: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "hitl-extauth",
    "hitl-extauth.hitl-lab",
    "hitl-extauth.hitl-lab.svc",
    "hitl-extauth.hitl-lab.svc.cluster.local",
];
/// The name in the gateway's client certificate.
pub const CLIENT_NAME: &str = "hitl-gateway";
/// How long the certificates are valid: the kind lab keeps its Secrets across `up`s.
const VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pem").field("key", &"<redacted>").finish()
    }
}

/// What the lab's CA issued: its certificate (both sides trust it), the gate's server
/// certificate and the gateway's client certificate.
#[derive(Debug, Clone)]
pub struct GateTls {
    pub ca: String,
    pub server: Pem,
    pub client: Pem,
}

impl GateTls {
    /// A fresh CA (named `ca_name`) and both certificates; the CA's key is dropped here.
    pub fn issue(ca_name: &str) -> anyhow::Result<Self> {
        let (not_before, not_after) = validity();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, ca_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        (params.not_before, params.not_after) = (not_before, not_after);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)
            .context("making the lab's gateway-gate CA")?;
        let server = leaf(&ca, SERVER_NAMES, ExtendedKeyUsagePurpose::ServerAuth)?;
        let client = leaf(&ca, &[CLIENT_NAME], ExtendedKeyUsagePurpose::ClientAuth)?;
        Ok(Self {
            ca: ca.pem(),
            server,
            client,
        })
    }

    /// Write all five PEMs to `dir`, readable by their owner only (replacing earlier ones).
    pub fn write(&self, dir: &Path) -> anyhow::Result<GateTlsFiles> {
        hitl_wire::private::dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = GateTlsFiles::in_dir(dir);
        for (path, pem) in [
            (&files.ca, &self.ca),
            (&files.server_cert, &self.server.cert),
            (&files.server_key, &self.server.key),
            (&files.client_cert, &self.client.cert),
            (&files.client_key, &self.client.key),
        ] {
            hitl_wire::private::write(path, pem.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(files)
    }
}

/// A certificate for `names` signed by `ca`, for `usage`.
fn leaf(
    ca: &CertifiedIssuer<'_, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> anyhow::Result<Pem> {
    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity();
    let cert = params.signed_by(&key, ca)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// From an hour ago (clock skew) for [`VALIDITY`].
fn validity() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (now - Duration::from_secs(3600), now + VALIDITY)
}

/// Where [`GateTls::write`] put the PEMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateTlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl GateTlsFiles {
    /// Where [`GateTls::write`] puts them in `dir` (whether or not it has).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("gate-ca.crt"),
            server_cert: dir.join("gate-server.crt"),
            server_key: dir.join("gate-server.key"),
            client_cert: dir.join("gateway-client.crt"),
            client_key: dir.join("gateway-client.key"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_pems_and_writes_them_owner_only() {
        let tls = GateTls::issue("test CA").unwrap();
        assert!(tls.ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(tls.server.key.contains("PRIVATE KEY"));
        assert_ne!(tls.server.cert, tls.client.cert);
        let dir = std::env::temp_dir().join(format!("hitl-gate-tls-{}", uuid::Uuid::new_v4()));
        let files = tls.write(&dir).unwrap();
        // Again: the earlier files are replaced, not refused.
        let files_again = tls.write(&dir).unwrap();
        assert_eq!(files, files_again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&files.client_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
