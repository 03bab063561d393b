//! The system under test: mock-db-mcp, hitl-extauth and the real Envoy on free loopback
//! ports, wired as in the local lab (`GatewayPlan::from_manifests`), plus — when its binary is at hand —
//! a real agentgateway with the same plan in front of the same two, all killed when dropped.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use hitl_wire::extauth::client::{AdminClient, AdminError};

use hitl_lab::{
    clients::Db,
    components::{agentgateway, envoy, extauth, mock_db},
    credentials::Credentials,
    envoy::{Endpoint, GatewayPlan, GatewayPorts, RequesterJwt},
    net,
    proc::{Running, Spec},
    requester::Issuer,
};

/// The three processes and where to reach them.
pub struct Stack {
    pub db: mock_db::Options,
    pub extauth: extauth::Options,
    pub plan: GatewayPlan,
    /// The requester tokens the gated routes accept (for another gateway in front of `db`).
    pub requester_jwt: RequesterJwt,
    /// The approval keys and admin token the processes were started with.
    pub credentials: Credentials,
    pub log_dir: PathBuf,
    db_proc: Running,
    extauth_proc: Running,
    envoy_proc: Running,
    /// agentgateway beside Envoy (step 1 measures both).
    pub agentgateway: Option<(GatewayPlan, Running)>,
}

impl Stack {
    /// Start everything, logs and the audit database in `log_dir`. Parks wait `park_timeout`.
    pub async fn start(
        log_dir: &Path,
        park_timeout: Duration,
        agentgateway_bin: Option<&Path>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let credentials = Credentials::generate(log_dir)?;
        let (db, db_proc) = start_with_retries(|| {
            let options =
                mock_db::Options::new(net::free_port()?).verifying_key(&credentials.keys.verifying);
            let spec = mock_db::spec(&options, log_dir)?;
            Ok((options, spec))
        })
        .await?;
        let (extauth, extauth_proc) = start_with_retries(|| {
            // The capacity step parks thousands of calls as one requester: measure the gate's
            // footprint, not its per-requester limit.
            let options = extauth::Options::new(net::free_port()?, net::free_port()?, log_dir)
                .park_timeout(park_timeout)
                .credentials(&credentials)
                .max_parked_per_requester(1_000_000);
            let spec = extauth::spec(&options, log_dir)?;
            Ok((options, spec))
        })
        .await?;
        // The gated route verifies the bench user's token, as in the lab; one token lasts
        // the whole run.
        let issuer = Issuer::generate()?;
        super::mcp::set_requester_token(issuer.mint(super::mcp::USER)?);
        let jwt = issuer.gateway_jwt();
        let plan_on = |ports| -> anyhow::Result<GatewayPlan> {
            Ok(GatewayPlan::from_manifests(
                ports,
                Endpoint::loopback(db.port),
                extauth.grpc_endpoint(),
                park_timeout,
            )?
            .with_requester_jwt(jwt.clone()))
        };
        let (plan, envoy_proc) = start_with_retries(|| {
            let plan = plan_on(GatewayPorts::free()?)?;
            let spec = envoy::spec(&plan, log_dir)?.ready_timeout(Duration::from_secs(60));
            Ok((plan, spec))
        })
        .await?;
        let agentgateway = match agentgateway_bin {
            Some(bin) => Some(
                start_with_retries(|| {
                    let plan = plan_on(GatewayPorts::free()?)?;
                    let spec = agentgateway::spec(bin, &plan, log_dir)?
                        .ready_timeout(Duration::from_secs(60));
                    Ok((plan, spec))
                })
                .await?,
            ),
            None => None,
        };
        Ok(Self {
            db,
            extauth,
            plan,
            requester_jwt: jwt,
            credentials,
            log_dir: log_dir.to_path_buf(),
            db_proc,
            extauth_proc,
            envoy_proc,
            agentgateway,
        })
    }

    /// `http://127.0.0.1:LISTEN{path}` through agentgateway, if it runs.
    pub fn agentgateway_url(&self, path: &str) -> Option<String> {
        self.agentgateway
            .as_ref()
            .map(|(plan, _)| format!("http://{}:{}{path}", plan.listen.host, plan.listen.port))
    }

    /// `http://127.0.0.1:LISTEN{path}`: through Envoy.
    pub fn gateway_url(&self, path: &str) -> String {
        format!(
            "http://{}:{}{path}",
            self.plan.listen.host, self.plan.listen.port
        )
    }

    /// mock-db-mcp itself, bypassing Envoy.
    pub fn direct_url(&self, path: &str) -> String {
        self.db.url(path)
    }

    pub fn admin(&self) -> Result<AdminClient, AdminError> {
        AdminClient::new(&self.extauth.admin_url(), self.extauth.admin_token.clone())
    }

    pub fn db_client(&self) -> Db {
        Db::new(self.db.base_url())
    }

    pub fn extauth_pid(&self) -> Option<u32> {
        self.extauth_proc.pid()
    }

    pub fn envoy_pid(&self) -> Option<u32> {
        self.envoy_proc.pid()
    }

    pub fn db_pid(&self) -> Option<u32> {
        self.db_proc.pid()
    }

    /// Our processes, named as in the CPU figures, with their pids.
    pub fn processes(&self) -> Vec<(&'static str, u32)> {
        [
            (mock_db::NAME, self.db_proc.pid()),
            (extauth::NAME, self.extauth_proc.pid()),
            (envoy::NAME, self.envoy_proc.pid()),
            (
                agentgateway::NAME,
                self.agentgateway.as_ref().and_then(|(_, p)| p.pid()),
            ),
        ]
        .into_iter()
        .filter_map(|(name, pid)| Some((name, pid?)))
        .collect()
    }

    /// The end of each process's log, for an error message when a step fails.
    pub fn log_tails(&self) -> String {
        [&self.db_proc, &self.extauth_proc, &self.envoy_proc]
            .into_iter()
            .chain(self.agentgateway.as_ref().map(|(_, p)| p))
            .map(|p| format!("--- {} ---\n{}", p.spec.name, p.log_tail(15)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Start what `make` describes; on failure try again with what a fresh `make` picks.
async fn start_with_retries<T>(
    mut make: impl FnMut() -> anyhow::Result<(T, Spec)>,
) -> anyhow::Result<(T, Running)> {
    net::on_fresh_ports(|| {
        let made = make();
        async move {
            let (value, spec) = made?;
            Ok((value, Running::start(spec).await?))
        }
    })
    .await
}
