//! The gated lab's three kinds of process on free loopback ports, as the tests and the bench
//! start them: mock-db-mcp, hitl-extauth (one, or several replicas on one PostgreSQL), and in front of both one or more gateways run from
//! the plan generated from `manifests/` ([`GatewayPlan::from_manifests`]). One approval key
//! pair (hitl-extauth signs, mock-db-mcp verifies), one admin token, one requester-token
//! issuer whose tokens the gated routes and the gate verify. Every process is killed when dropped.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use hitl_wire::approval::Signer;

use crate::{
    components::{
        extauth::{self, RequesterTrust},
        mock_db,
    },
    credentials::Credentials,
    envoy::{Endpoint, GatewayPlan, GatewayPorts},
    gate_tls::{GateTls, GateTlsFiles},
    gateway::Gateway,
    net,
    proc::{Running, Spec},
    requester::Issuer,
};

/// How long a gateway may take to come up (Envoy's first start in a cold venv is slow).
const GATEWAY_READY: Duration = Duration::from_secs(60);
/// How long mock-db-mcp may take to come up.
const DB_READY: Duration = Duration::from_secs(30);

/// A started service: the options it was started with, and its process.
#[derive(Debug)]
pub struct Started<O> {
    pub options: O,
    pub running: Running,
}

/// A started gateway: which one, the plan it runs, and its process.
#[derive(Debug)]
pub struct Front {
    pub gateway: Gateway,
    pub plan: GatewayPlan,
    pub running: Running,
}

impl Front {
    /// `http://HOST:LISTEN{path}`: through this gateway.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}:{}{path}",
            self.plan.listen.host, self.plan.listen.port
        )
    }
}

/// What to start: [`Stack::builder`], then [`Builder::start`].
pub struct Builder {
    log_dir: PathBuf,
    gateways: Vec<Gateway>,
    extauth: Box<dyn Fn(extauth::Options) -> extauth::Options + Send + Sync>,
    gate_mtls: bool,
    replicas: usize,
}

impl Builder {
    /// Put `gateway` in front (again: each one gets its own ports and process).
    pub fn gateway(mut self, gateway: Gateway) -> Self {
        self.gateways.push(gateway);
        self
    }

    /// Adjust hitl-extauth's options (ports and credentials are set already).
    pub fn extauth(
        mut self,
        edit: impl Fn(extauth::Options) -> extauth::Options + Send + Sync + 'static,
    ) -> Self {
        self.extauth = Box::new(edit);
        self
    }

    /// Run the gate as `n` replicas on one PostgreSQL store (the options must name it:
    /// [`extauth::Options::postgres`]), the gateways balancing their Checks over them.
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n.max(1);
        self
    }

    /// Gateways and gate speak mTLS (as in the kind lab): a CA made for this stack, the gate's
    /// Check port demanding the gateways' client certificate ([`Stack::gate_tls`]).
    pub fn gate_mtls(mut self) -> Self {
        self.gate_mtls = true;
        self
    }

    /// Start mock-db-mcp, then hitl-extauth, then each gateway, each retried on fresh ports
    /// if the ones picked were taken in between.
    pub async fn start(self) -> anyhow::Result<Stack> {
        let log_dir = self.log_dir;
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let signer = Signer::generate()?;
        let credentials = Credentials::from_signer(&signer, &log_dir)?;
        let db = start(|| {
            let options =
                mock_db::Options::new(net::free_port()?).verifying_key(&credentials.keys.verifying);
            let spec = mock_db::spec(&options, &log_dir)?.ready_timeout(DB_READY);
            Ok((options, spec))
        })
        .await?;
        // One issuer: the gateways verify its tokens, and so does the gate, itself.
        let issuer = Issuer::generate()?;
        let trust = RequesterTrust::of(&issuer, &log_dir)?;
        let gate_tls = if self.gate_mtls {
            Some(GateTls::issue("hitl-lab test gateway-gate CA")?.write(&credentials.dir())?)
        } else {
            None
        };
        let extauth = start(|| {
            let mut options = extauth::Options::new(net::free_port()?, net::free_port()?, &log_dir)
                .credentials(&credentials)
                .requester(trust.clone());
            if let Some(files) = &gate_tls {
                options = options.grpc_tls(files.clone());
            }
            let options = (self.extauth)(options);
            let spec = extauth::spec(&options, &log_dir)?;
            Ok((options, spec))
        })
        .await?;
        let more_extauth = more_replicas(&extauth.options, self.replicas, &log_dir).await?;
        let mut fronts = Vec::with_capacity(self.gateways.len());
        for gateway in self.gateways {
            let started = start(|| {
                let mut plan = GatewayPlan::from_manifests(
                    GatewayPorts::free()?,
                    Endpoint::loopback(db.options.port),
                    extauth.options.grpc_endpoint(),
                    extauth.options.park_timeout,
                )?
                .with_requester_jwt(issuer.gateway_jwt())
                .with_gate_replicas(
                    more_extauth
                        .iter()
                        .map(|r| r.options.grpc_endpoint())
                        .collect(),
                );
                if let Some(files) = &gate_tls {
                    plan = plan.with_gate_tls(files.into());
                }
                let spec = gateway.spec(&plan, &log_dir)?.ready_timeout(GATEWAY_READY);
                Ok((plan, spec))
            })
            .await
            .with_context(|| format!("starting {gateway} in front of mock-db-mcp"))?;
            fronts.push(Front {
                gateway,
                plan: started.options,
                running: started.running,
            });
        }
        Ok(Stack {
            log_dir,
            signer,
            credentials,
            gate_tls,
            issuer,
            db,
            extauth,
            more_extauth,
            fronts,
        })
    }
}

/// mock-db-mcp, hitl-extauth and the gateways in front of them.
pub struct Stack {
    /// Where the logs, keys and audit database are.
    pub log_dir: PathBuf,
    /// The approval key pair's signing half (hitl-extauth's key).
    pub signer: Signer,
    /// The same key pair as files, and hitl-extauth's admin token.
    pub credentials: Credentials,
    /// The mTLS files between gateways and gate, with [`Builder::gate_mtls`].
    pub gate_tls: Option<GateTlsFiles>,
    /// Mints the requester tokens the gated routes verify.
    pub issuer: Issuer,
    pub db: Started<mock_db::Options>,
    pub extauth: Started<extauth::Options>,
    /// The gate's other replicas ([`Builder::replicas`]), named `replica-2`, ….
    pub more_extauth: Vec<Started<extauth::Options>>,
    /// The gateways, in the order they were asked for.
    pub fronts: Vec<Front>,
}

impl Stack {
    /// Logs, keys and the audit database go to `log_dir`; no gateway until
    /// [`Builder::gateway`].
    pub fn builder(log_dir: &Path) -> Builder {
        Builder {
            log_dir: log_dir.to_path_buf(),
            gateways: Vec::new(),
            extauth: Box::new(|o| o),
            gate_mtls: false,
            replicas: 1,
        }
    }

    /// The first `gateway` in front, if one was started.
    pub fn front(&self, gateway: Gateway) -> Option<&Front> {
        self.fronts.iter().find(|f| f.gateway == gateway)
    }

    /// The end of each process's log, for an error message when something fails.
    pub fn log_tails(&self, lines: usize) -> String {
        self.all()
            .map(|p| format!("--- {} ---\n{}", p.spec.name, p.log_tail(lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn all(&self) -> impl Iterator<Item = &Running> {
        [&self.db.running, &self.extauth.running]
            .into_iter()
            .chain(self.more_extauth.iter().map(|r| &r.running))
            .chain(self.fronts.iter().map(|f| &f.running))
    }
}

/// The gate's replicas 2 to `n`, as `first` but on ports of their own, named `replica-k`.
async fn more_replicas(
    first: &extauth::Options,
    n: usize,
    log_dir: &Path,
) -> anyhow::Result<Vec<Started<extauth::Options>>> {
    if n > 1 && first.postgres.is_none() {
        anyhow::bail!("gate replicas share a PostgreSQL store: set Options::postgres");
    }
    let mut more = Vec::new();
    for k in 2..=n {
        more.push(
            start(|| {
                let mut options = first.clone();
                options.grpc_port = net::free_port()?;
                options.http_port = net::free_port()?;
                options.replica_name = Some(format!("replica-{k}"));
                let spec = extauth::spec(&options, log_dir)?;
                Ok((options, spec))
            })
            .await?,
        );
    }
    Ok(more)
}

/// Start what `make` describes; on failure try again with what a fresh `make` picks.
async fn start<O>(
    mut make: impl FnMut() -> anyhow::Result<(O, Spec)>,
) -> anyhow::Result<Started<O>> {
    net::on_fresh_ports(|| {
        let made = make();
        async move {
            let (options, spec) = made?;
            Ok(Started {
                options,
                running: Running::start(spec).await?,
            })
        }
    })
    .await
}
