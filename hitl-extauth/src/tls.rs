//! Optional mTLS on the gRPC Check port: the certificate the port presents, its key, and the
//! CA whose client certificates it accepts, read from files at start. All three or none: with
//! them the port speaks TLS only and a client without a certificate from that CA is refused at
//! the handshake, before it can send a Check; without them it is plaintext h2c, as the seed.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use hitl_wire::env::extauth as env;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// Longest a TLS handshake on the Check port may take: a client that stalls in it holds a
/// task and a socket, nothing more.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the Check port's TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "half a TLS setup for the Check port: {given} set, {missing} not. Set all three of \
         {cert}, {key} and {ca} (mTLS: TLS, and a client certificate from that CA required), \
         or none of them (plaintext h2c)",
        cert = env::GRPC_TLS_CERT_FILE,
        key = env::GRPC_TLS_KEY_FILE,
        ca = env::GRPC_CLIENT_CA_FILE
    )]
    Partial { given: String, missing: String },
    #[error("cannot read {var} {path}: {source}")]
    Read {
        var: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{var} {path} holds no PEM `{label}` block: give a PEM file (-----BEGIN {label}-----)")]
    NotPem {
        var: &'static str,
        path: PathBuf,
        label: &'static str,
    },
}

/// The Check port's mTLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

impl GrpcTls {
    /// All three files, none (`Ok(None)`: plaintext), or an error naming what is missing.
    pub fn from_parts(
        cert: Option<&Path>,
        key: Option<&Path>,
        client_ca: Option<&Path>,
    ) -> Result<Option<Self>, TlsError> {
        let parts = [
            (env::GRPC_TLS_CERT_FILE, cert),
            (env::GRPC_TLS_KEY_FILE, key),
            (env::GRPC_CLIENT_CA_FILE, client_ca),
        ];
        let names = |set: bool| {
            parts
                .iter()
                .filter(|(_, p)| p.is_some() == set)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (cert, key, client_ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => Ok(Some(Self {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                client_ca: ca.to_path_buf(),
            })),
            _ => Err(TlsError::Partial {
                given: names(true),
                missing: names(false),
            }),
        }
    }

    /// tonic's server TLS settings: this identity, client certificates from the CA required.
    pub fn server_config(&self) -> Result<ServerTlsConfig, TlsError> {
        let cert = read_pem(env::GRPC_TLS_CERT_FILE, &self.cert, "CERTIFICATE")?;
        let key = read_pem(env::GRPC_TLS_KEY_FILE, &self.key, "PRIVATE KEY")?;
        let ca = read_pem(env::GRPC_CLIENT_CA_FILE, &self.client_ca, "CERTIFICATE")?;
        Ok(ServerTlsConfig::new()
            .identity(Identity::from_pem(cert, key))
            .client_ca_root(Certificate::from_pem(ca))
            .client_auth_optional(false)
            .timeout(HANDSHAKE_TIMEOUT))
    }
}

/// The file at `path` if it holds a PEM block whose label ends in `label` (`PRIVATE KEY`
/// also matches `EC PRIVATE KEY` and `RSA PRIVATE KEY`).
fn read_pem(var: &'static str, path: &Path, label: &'static str) -> Result<String, TlsError> {
    let text = std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        var,
        path: path.to_path_buf(),
        source,
    })?;
    let has_block = text.lines().any(|line| {
        line.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .is_some_and(|l| l.ends_with(label))
    });
    if !has_block {
        return Err(TlsError::NotPem {
            var,
            path: path.to_path_buf(),
            label,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_plaintext_and_half_is_refused_by_name() {
        assert_eq!(GrpcTls::from_parts(None, None, None).unwrap(), None);
        let cert = Path::new("cert.pem");
        let err = GrpcTls::from_parts(Some(cert), None, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{} set", env::GRPC_TLS_CERT_FILE)),
            "{err}"
        );
        let missing = format!(
            "{}, {} not",
            env::GRPC_TLS_KEY_FILE,
            env::GRPC_CLIENT_CA_FILE
        );
        assert!(err.contains(&missing), "{err}");
        // TLS without a client CA would let anyone who reaches the port ask: refused too.
        let err = GrpcTls::from_parts(Some(cert), Some(cert), None)
            .unwrap_err()
            .to_string();
        let missing = format!("{} not", env::GRPC_CLIENT_CA_FILE);
        assert!(err.contains(&missing), "{err}");
    }

    #[test]
    fn a_missing_or_non_pem_file_is_named() {
        let dir = std::env::temp_dir().join(format!("hitl-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let absent = dir.join("absent.pem");
        let tls = GrpcTls {
            cert: junk.clone(),
            key: junk.clone(),
            client_ca: absent,
        };
        let err = tls.server_config().unwrap_err().to_string();
        assert!(err.contains(env::GRPC_TLS_CERT_FILE), "{err}");
        assert!(err.contains("junk.pem"), "{err}");
        assert!(err.contains("BEGIN CERTIFICATE"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
