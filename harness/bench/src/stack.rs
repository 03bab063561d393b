//! The system under test: `hitl_lab::stack` (mock-db-mcp, hitl-extauth, the gateways run from
//! the plan generated from `manifests/`) with Envoy in front and, when its binary is at hand,
//! agentgateway beside it; plus the handles the steps measure through.

use std::{ops::Deref, path::Path, time::Duration};

use hitl_lab::{
    clients::Db,
    components::{extauth, mock_db},
    envoy::RequesterJwt,
    gateway::Gateway,
    stack::{self, Front},
};
use hitl_wire::extauth::client::{AdminClient, AdminError};

/// [`hitl_lab::stack::Stack`] with Envoy first, as the bench starts it.
pub struct Stack(stack::Stack);

impl Deref for Stack {
    type Target = stack::Stack;

    fn deref(&self) -> &stack::Stack {
        &self.0
    }
}

impl Stack {
    /// Start everything, logs and the audit database in `log_dir`. Parks wait `park_timeout`.
    /// agentgateway runs beside Envoy when `with_agentgateway` (step 1 measures both).
    pub async fn start(
        log_dir: &Path,
        park_timeout: Duration,
        with_agentgateway: bool,
    ) -> anyhow::Result<Self> {
        let mut builder = stack::Stack::builder(log_dir)
            .gateway(Gateway::Envoy)
            // The capacity step parks thousands of calls as one requester: measure the gate's
            // footprint, not its per-requester limit.
            .extauth(move |o| {
                o.park_timeout(park_timeout)
                    .max_parked_per_requester(1_000_000)
            });
        if with_agentgateway {
            builder = builder.gateway(Gateway::Agentgateway);
        }
        let stack = builder.start().await?;
        // The gated route verifies the bench user's token, as in the lab; one token lasts
        // the whole run.
        super::mcp::set_requester_token(stack.issuer.mint(super::mcp::USER)?);
        Ok(Self(stack))
    }

    fn envoy(&self) -> &Front {
        &self.fronts[0]
    }

    /// The requester tokens the gated routes accept (for another gateway in front of `db`).
    pub fn requester_jwt(&self) -> RequesterJwt {
        self.issuer.gateway_jwt()
    }

    /// `http://127.0.0.1:LISTEN{path}` through agentgateway, if it runs.
    pub fn agentgateway_url(&self, path: &str) -> Option<String> {
        self.front(Gateway::Agentgateway).map(|f| f.url(path))
    }

    /// `http://127.0.0.1:LISTEN{path}`: through Envoy.
    pub fn gateway_url(&self, path: &str) -> String {
        self.envoy().url(path)
    }

    /// mock-db-mcp itself, bypassing the gateways.
    pub fn direct_url(&self, path: &str) -> String {
        self.db.options.url(path)
    }

    pub fn admin(&self) -> Result<AdminClient, AdminError> {
        let options = &self.extauth.options;
        AdminClient::new(&options.admin_url(), options.admin_token.clone())
    }

    pub fn db_client(&self) -> Db {
        Db::new(
            self.db.options.base_url(),
            self.db.options.reset_token.clone(),
        )
    }

    pub fn extauth_pid(&self) -> Option<u32> {
        self.extauth.running.pid()
    }

    pub fn envoy_pid(&self) -> Option<u32> {
        self.envoy().running.pid()
    }

    pub fn db_pid(&self) -> Option<u32> {
        self.db.running.pid()
    }

    /// Our processes, named as in the CPU figures, with their pids.
    pub fn processes(&self) -> Vec<(&'static str, u32)> {
        [
            (mock_db::NAME, self.db.running.pid()),
            (extauth::NAME, self.extauth.running.pid()),
        ]
        .into_iter()
        .chain(
            self.fronts
                .iter()
                .map(|f| (f.gateway.as_str(), f.running.pid())),
        )
        .filter_map(|(name, pid)| Some((name, pid?)))
        .collect()
    }
}
