//! Step 6's system under test: one PostgreSQL server of the bench's own (Debian's
//! `postgresql`, a fresh cluster under `target/bench/logs/`) and two hitl-extauth
//! replicas on its store, each on free loopback ports; and the `Authorization/Check` the rows
//! send straight to a replica's gRPC port, as Envoy sends it for a `tools/call` on the gated
//! route (the requester's token in `authorization`, the route in `context_extensions`). No
//! gateway and no mock-db-mcp: the rows measure the gate and its store.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse,
    attribute_context::{HttpRequest, Request},
    authorization_client::AuthorizationClient,
    check_response::HttpResponse,
};
use hitl_lab::{
    components::extauth::{self, Options, RequesterTrust},
    credentials::Credentials,
    envoy::ROUTE_CONTEXT_KEY,
    net,
    postgres::Server,
    proc::Running,
    requester::{Issuer, bearer},
};
use hitl_wire::{
    approval::Signer,
    env::extauth as env,
    extauth::client::AdminClient,
    identity::TOKEN_HEADER,
    mockdb::{paths, tools},
};
use serde_json::Value;
use tonic::transport::Channel;

use crate::{host, mcp};

/// `MAX_PARKED` and `MAX_PARKED_PER_REQUESTER` of both replicas: far above what any row
/// holds or opens, so the rows measure the store, not the caps.
const FLEET_CAP: u64 = 10_000_000;
/// The gated route's name, as the lab's gateways put it in `context_extensions`.
const GATED_ROUTE: &str = "privileged-mcp";
/// The replicas' names in the report.
pub const NAMES: [&str; 2] = ["A", "B"];

/// One gate replica: its options, process, admin API and Check channel.
pub struct Replica {
    pub name: &'static str,
    pub options: Options,
    pub admin: AdminClient,
    channel: Channel,
    running: Running,
}

impl Replica {
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.running
            .pid()
            .with_context(|| format!("replica {} has no pid", self.name))
    }

    /// Resident memory now, KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        host::rss_kib(self.pid()?).with_context(|| format!("reading replica {}'s VmRSS", self.name))
    }

    /// A Check client on the replica's shared connection.
    pub fn client(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::new(self.channel.clone())
    }

    /// Check clients on `n` connections of their own (many streams at once).
    pub async fn clients(&self, n: usize) -> anyhow::Result<Vec<AuthorizationClient<Channel>>> {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            clients.push(AuthorizationClient::new(connect(&self.options).await?));
        }
        Ok(clients)
    }

    /// `hitl_extauth_parked` from the replica's `/metrics`: the calls it holds.
    pub async fn parked_gauge(&self) -> anyhow::Result<u64> {
        let text = self.admin.metrics().await?;
        text.lines()
            .find_map(|l| l.strip_prefix("hitl_extauth_parked ")?.trim().parse().ok())
            .with_context(|| format!("no hitl_extauth_parked on replica {}", self.name))
    }

    pub fn log_tail(&self) -> String {
        format!(
            "--- replica {} ---\n{}",
            self.name,
            self.running.log_tail(15)
        )
    }
}

/// PostgreSQL and the two replicas on it; everything stops when dropped (the replicas
/// first, then the server, whose cluster is removed).
pub struct Fleet {
    pub replicas: [Replica; 2],
    /// Mints the requester tokens both replicas verify.
    pub issuer: Issuer,
    pub dir: PathBuf,
    _server: Server,
}

impl Fleet {
    /// Start PostgreSQL in `<log_dir>/<name>/` and two replicas on it, one after the
    /// other; calls are held `park_timeout`.
    pub async fn start(log_dir: &Path, name: &str, park_timeout: Duration) -> anyhow::Result<Self> {
        let dir = log_dir.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let cluster = dir.join("postgres");
        let server = tokio::task::spawn_blocking(move || Server::start(&cluster))
            .await?
            .context("starting PostgreSQL for step 6")?;
        let password_file = dir.join("store-password");
        server.password_file(&password_file)?;
        let credentials = Credentials::from_signer(&Signer::generate()?, &dir)?;
        let issuer = Issuer::generate()?;
        let trust = RequesterTrust::of(&issuer, &dir)?;
        let mut started = Vec::with_capacity(NAMES.len());
        for name in NAMES {
            let replica_dir = dir.join(name.to_lowercase());
            let options = |grpc, http| {
                Options::new(grpc, http, &replica_dir)
                    .credentials(&credentials)
                    .requester(trust.clone())
                    .postgres(server.url("postgres"), &password_file)
                    .park_timeout(park_timeout)
                    .max_parked_per_requester(FLEET_CAP)
            };
            started.push(start_replica(name, &replica_dir, options).await?);
        }
        let [a, b]: [Replica; 2] = started
            .try_into()
            .map_err(|_| anyhow::anyhow!("two replicas"))?;
        Ok(Self {
            replicas: [a, b],
            issuer,
            dir,
            _server: server,
        })
    }

    pub fn a(&self) -> &Replica {
        &self.replicas[0]
    }

    pub fn b(&self) -> &Replica {
        &self.replicas[1]
    }

    /// A requester token the replicas accept (minted now: tokens live 15 minutes).
    pub fn token(&self) -> anyhow::Result<String> {
        self.issuer.mint(mcp::USER)
    }

    /// Both replicas' log tails, for an error message.
    pub fn log_tails(&self) -> String {
        self.replicas
            .iter()
            .map(Replica::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Start replica `name` on fresh ports with the options `make` gives for them.
async fn start_replica(
    name: &'static str,
    dir: &Path,
    make: impl Fn(u16, u16) -> Options,
) -> anyhow::Result<Replica> {
    net::on_fresh_ports(|| async {
        let options = make(net::free_port()?, net::free_port()?);
        let spec = extauth::spec(&options, dir)?.env(env::MAX_PARKED, FLEET_CAP.to_string());
        let running = Running::start(spec).await?;
        let admin = AdminClient::new(&options.admin_url(), options.admin_token.clone())?;
        let channel = connect(&options).await?;
        Ok(Replica {
            name,
            options,
            admin,
            channel,
            running,
        })
    })
    .await
    .with_context(|| format!("starting replica {name}"))
}

/// A new HTTP/2 connection to the replica's Check port (h2c).
async fn connect(options: &Options) -> anyhow::Result<Channel> {
    let endpoint = options.grpc_endpoint();
    let url = format!("http://{}:{}", endpoint.host, endpoint.port);
    Channel::from_shared(url)?
        .tcp_nodelay(true)
        .connect()
        .await
        .context("connecting to a replica's Check port")
}

/// The Check a gateway sends for a `tools/call run_migration` with `arguments` on the gated
/// route, from the holder of `token`, tagged `tag` ([`mcp::TAG_HEADER`]).
pub fn migration(tag: &str, arguments: Value, token: &str) -> CheckRequest {
    let body = mcp::tools_call(1, tools::RUN_MIGRATION, arguments);
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("content-length", body.len().to_string()),
        (TOKEN_HEADER, bearer(token)),
        (mcp::TAG_HEADER, tag.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "POST".into(),
                    path: paths::PRIVILEGED_MCP.into(),
                    headers,
                    size: body.len() as i64,
                    raw_body: body.into_bytes(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions: [(ROUTE_CONTEXT_KEY.to_owned(), GATED_ROUTE.to_owned())].into(),
            ..Default::default()
        }),
    }
}

/// What the gate answered a Check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Allowed,
    /// Denied, with the body the gateway would return (the reason is in it).
    Denied(String),
}

/// Send `check` on `client`; the gate's answer once it has one.
pub async fn send(
    mut client: AuthorizationClient<Channel>,
    check: CheckRequest,
) -> anyhow::Result<Answer> {
    let answer: CheckResponse = client.check(check).await?.into_inner();
    if answer.status.as_ref().is_some_and(|s| s.code == 0) {
        return Ok(Answer::Allowed);
    }
    Ok(Answer::Denied(match answer.http_response {
        Some(HttpResponse::DeniedResponse(denied)) => denied.body,
        _ => format!("{:?}", answer.status),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Check is what Envoy sends for a gated `tools/call`: the gate reads the route, the
    /// token and the whole body from it.
    #[test]
    fn a_migration_check_is_a_gated_tools_call_with_its_token() {
        let check = migration("t-1", serde_json::json!({ "version": "t-1" }), "tok");
        let attributes = check.attributes.unwrap();
        assert_eq!(
            attributes.context_extensions[ROUTE_CONTEXT_KEY],
            GATED_ROUTE
        );
        let http = attributes.request.unwrap().http.unwrap();
        assert_eq!(
            (http.method.as_str(), http.path.as_str()),
            ("POST", paths::PRIVILEGED_MCP)
        );
        assert_eq!(http.headers[TOKEN_HEADER], "Bearer tok");
        assert_eq!(http.headers[mcp::TAG_HEADER], "t-1");
        assert_eq!(http.size as usize, http.raw_body.len());
        let body: Value = serde_json::from_slice(&http.raw_body).unwrap();
        assert_eq!(body["method"], "tools/call");
        assert_eq!(body["params"]["name"], tools::RUN_MIGRATION);
        assert_eq!(body["params"]["arguments"]["version"], "t-1");
    }
}
