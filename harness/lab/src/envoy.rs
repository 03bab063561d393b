//! The local gateway's Envoy configuration, typed: a [`GatewayPlan`] says what the gateway
//! does (which routes, which of them are gated, how long a park may take) and [`render`]
//! turns it into the YAML `envoy -c` reads.
//!
//! [`GatewayPlan::from_manifests`] is the local equivalent of the kind lab's routing
//! (`manifests/gateway/`, translated by `local::generate`): `/public` straight to
//! mock-db-mcp, `/privileged` through hitl-extauth's ext_authz (gRPC, request body up to 64 KiB forwarded, partial bodies marked,
//! fail closed), with every timeout on the way raised past the park timeout. With a
//! [`RequesterJwt`], the gated routes first verify the requester's token (`jwt_authn`: no
//! valid token, 401) and hand the token itself on to the gate, which verifies it again. The
//! same plan is rendered for agentgateway by [`crate::agentgateway::render`].

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf, time::Duration};

mod bootstrap;

pub(crate) use bootstrap::duration;
pub use bootstrap::render;

/// Envoy's name for the ext_authz HTTP filter (also the `typed_per_filter_config` key).
pub const EXT_AUTHZ_FILTER: &str = "envoy.filters.http.ext_authz";
/// Envoy's name for the JWT filter (also the `typed_per_filter_config` key and the
/// namespace the verified payload lands in: [`hitl_wire::identity::METADATA_NAMESPACE`]).
pub const JWT_AUTHN_FILTER: &str = "envoy.filters.http.jwt_authn";
const JWT_PROVIDER: &str = "requester";
const JWT_REQUIREMENT: &str = "requester";
/// Body bytes forwarded to hitl-extauth (the kind lab's `forwardBody.maxSize: 64Ki`).
pub const MAX_REQUEST_BYTES: u32 = 64 * 1024;
/// How much longer than the park timeout the gateway waits, so the gate always answers first.
pub const PARK_MARGIN: Duration = Duration::from_secs(60);
/// Envoy's filter that edits request headers before the filters after it see them.
pub const HEADER_MUTATION_FILTER: &str = "envoy.filters.http.header_mutation";
/// The `context_extensions` key both gateways set on every gated route: the route's name, so
/// the gate knows which route a Check is for without reading it off the (raw) path.
pub const ROUTE_CONTEXT_KEY: &str = "route";

const UPSTREAM_CLUSTER: &str = "mock_db";
const EXTAUTH_CLUSTER: &str = "hitl_extauth";

/// A host (IP or DNS name) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// `127.0.0.1:port`.
    pub fn loopback(port: u16) -> Self {
        Self::new("127.0.0.1", port)
    }

    fn is_ip(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }
}

/// One path-prefix route to the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The HTTPRoute's name; sent to the gate as `context_extensions["route"]`.
    pub name: String,
    pub prefix: String,
    /// Whether requests on this route go through ext_authz first.
    pub gated: bool,
}

/// The ext_authz call to hitl-extauth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtAuthz {
    /// hitl-extauth's gRPC address (h2c): its first replica.
    pub grpc: Endpoint,
    /// The gate's other replicas (the local lab's `--replicas N`): every Check is balanced
    /// over `grpc` and these (Envoy: one cluster, round robin; agentgateway: one service).
    pub more_grpc: Vec<Endpoint>,
    /// Deadline of one Check: must outlast the longest park.
    pub timeout: Duration,
    /// Body bytes forwarded with the Check.
    pub max_request_bytes: u32,
    /// Forward the first `max_request_bytes` of a larger body, marked partial, instead of
    /// answering 413 (the gate then denies it with a reason).
    pub allow_partial_message: bool,
    /// Send the body as bytes (`raw_body`), so non-UTF-8 reaches the gate intact.
    pub pack_as_bytes: bool,
    /// Let requests through when the gate is down or errs. Never in this lab.
    pub failure_mode_allow: bool,
    /// agentgateway's `grpc.metadata` (the policy's `requestMetadata`): `metadata_context`
    /// namespace → CEL expression. How the requester's raw token reaches the gate through
    /// agentgateway, whose `jwtAuth` removes the header; Envoy forwards the header itself
    /// (`jwt_authn` `forward: true`) and has no such setting.
    pub request_metadata: BTreeMap<String, String>,
    /// mTLS to the gate: the client certificate the gateway presents and the CA the gate's
    /// certificate must chain to (for the name [`ExtAuthz::grpc`]'s host). `None`: h2c.
    pub tls: Option<GateClientTls>,
}

impl ExtAuthz {
    /// Every replica of the gate the Checks go to, the first one first.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        std::iter::once(&self.grpc).chain(&self.more_grpc)
    }
}

/// The gateway's side of mTLS to the gate, as files (`crate::gate_tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateClientTls {
    /// PEM: the CA the gate's server certificate must chain to.
    pub ca: PathBuf,
    /// PEM: the gateway's client certificate, and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl From<&crate::gate_tls::GateTlsFiles> for GateClientTls {
    fn from(files: &crate::gate_tls::GateTlsFiles) -> Self {
        Self {
            ca: files.ca.clone(),
            cert: files.client_cert.clone(),
            key: files.client_key.clone(),
        }
    }
}

/// The loopback ports one gateway process listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayPorts {
    /// The MCP listener.
    pub listen: u16,
    /// Envoy's admin interface (`/ready`), or agentgateway's admin UI/API.
    pub admin: u16,
    /// agentgateway's metrics server (Envoy serves stats on `admin`).
    pub stats: u16,
    /// agentgateway's readiness probe (`/healthz/ready`).
    pub readiness: u16,
}

impl GatewayPorts {
    /// Four ports free right now (below the ephemeral range: [`crate::net::unclaimed`]).
    pub fn free() -> std::io::Result<Self> {
        let held = (0..4)
            .map(|_| crate::net::unclaimed())
            .collect::<std::io::Result<Vec<_>>>()?;
        let port = |i: usize| held[i].local_addr().map(|a| a.port());
        Ok(Self {
            listen: port(0)?,
            admin: port(1)?,
            stats: port(2)?,
            readiness: port(3)?,
        })
    }
}

/// Who the gated routes accept as a requester: JWTs from one issuer, verified against a
/// JWKS given inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequesterJwt {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// The JWKS, as JSON text.
    pub jwks: String,
    /// Let a request with no token at all through to the gate, which denies a `tools/call`
    /// without a verified requester with a reason the caller can read (and audits it); an
    /// invalid token is refused here either way. `false`: no token, 401.
    pub allow_missing: bool,
}

/// Everything the gateway does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPlan {
    /// Address and port the gateway listens on.
    pub listen: Endpoint,
    /// Envoy's admin interface (`/ready`, `/stats`) or agentgateway's admin; loopback only.
    pub admin: Endpoint,
    /// agentgateway's metrics server (unused by Envoy).
    pub stats: Endpoint,
    /// agentgateway's readiness server (unused by Envoy).
    pub readiness: Endpoint,
    /// Request headers the gateway removes before any policy or filter sees them: a client
    /// must not be able to assert what only the gateway or the gate may say (the partial-body
    /// marker, the gate's approval token).
    pub strip_request_headers: Vec<String>,
    /// mock-db-mcp.
    pub upstream: Endpoint,
    /// In order; the first matching prefix wins. Other paths get Envoy's 404.
    pub routes: Vec<Route>,
    pub ext_authz: ExtAuthz,
    /// Longest a stream may sit idle (a parked request is idle): above the park timeout.
    pub stream_idle_timeout: Duration,
    /// Upstream response deadline per route.
    pub route_timeout: Duration,
    /// Circuit-breaker limit on concurrent requests per cluster, and the concurrent HTTP/2
    /// streams one client connection may open (Envoy's default, 1024, for both, would cap
    /// how many calls can be parked at once).
    pub max_requests: u32,
    /// Verify the requester's JWT on every gated route (`None`: no JWT filter at all).
    pub requester_jwt: Option<RequesterJwt>,
}

impl GatewayPlan {
    /// What the manifests do not say, and defaults for what they do: `/public` open,
    /// `/privileged` gated, timeouts `park_timeout` + [`PARK_MARGIN`]. The base of the plan
    /// generated from the manifests ([`GatewayPlan::from_manifests`]), which is the one every
    /// gateway runs.
    pub(crate) fn base(
        ports: GatewayPorts,
        upstream: Endpoint,
        extauth_grpc: Endpoint,
        park_timeout: Duration,
    ) -> Self {
        let patient = park_timeout + PARK_MARGIN;
        Self {
            listen: Endpoint::loopback(ports.listen),
            admin: Endpoint::loopback(ports.admin),
            stats: Endpoint::loopback(ports.stats),
            readiness: Endpoint::loopback(ports.readiness),
            strip_request_headers: vec![
                hitl_wire::headers::ENVOY_PARTIAL_BODY.to_owned(),
                hitl_wire::approval::HEADER.to_owned(),
            ],
            upstream,
            routes: vec![
                Route {
                    name: "public-mcp".into(),
                    prefix: "/public".into(),
                    gated: false,
                },
                Route {
                    name: "privileged-mcp".into(),
                    prefix: "/privileged".into(),
                    gated: true,
                },
            ],
            ext_authz: ExtAuthz {
                grpc: extauth_grpc,
                more_grpc: Vec::new(),
                timeout: patient,
                max_request_bytes: MAX_REQUEST_BYTES,
                allow_partial_message: true,
                pack_as_bytes: true,
                failure_mode_allow: false,
                request_metadata: BTreeMap::new(),
                tls: None,
            },
            stream_idle_timeout: patient,
            route_timeout: patient,
            max_requests: 100_000,
            requester_jwt: None,
        }
    }

    /// The same, balancing the Checks over the gate's first replica and `more` replicas.
    pub fn with_gate_replicas(mut self, more: Vec<Endpoint>) -> Self {
        self.ext_authz.more_grpc = more;
        self
    }

    /// The same, speaking mTLS to the gate with `tls`.
    pub fn with_gate_tls(mut self, tls: GateClientTls) -> Self {
        self.ext_authz.tls = Some(tls);
        self
    }

    /// The same, with the gated routes requiring a requester token `jwt` verifies.
    pub fn with_requester_jwt(mut self, jwt: RequesterJwt) -> Self {
        self.requester_jwt = Some(jwt);
        self
    }
}
