//! The local gateway's [`GatewayPlan`] from the HTTPRoutes and the gate's
//! AgentgatewayPolicy, and the requester's JWT settings from its `jwtAuthentication`.

use std::time::Duration;

use hitl_manifests::{ExtAuthProtocol, FailureMode, JwtMode, LabManifests};

use super::{GenerateError, unsupported};
use crate::{
    envoy::{
        Endpoint, GatewayPlan, GatewayPorts, PARK_MARGIN, ROUTE_CONTEXT_KEY, RequesterJwt, Route,
    },
    local::ports::Ports,
    requester,
};

/// The local gateway: every HTTPRoute of the Gateway becomes a prefix route to mock-db-mcp on
/// loopback; the route the ext-auth policy targets is gated with the policy's body limit,
/// failure mode and context extensions; the Gateway's PreRouting header removals come first;
/// timeouts are the manifests' or the park timeout plus margin, whichever is longer (a gateway
/// that gives up before the gate would abandon every park).
///
/// The route-timeout trap: agentgateway counts `traffic.timeouts.request` from the request's
/// arrival, parked time included, so a call approved after the route timeout would be
/// recorded as approved and then answered 504. A manifest whose route (or Check) timeout does
/// not outlast the park timeout is refused here; the plan's route timeout is always at least
/// the park timeout plus [`PARK_MARGIN`], so every park ends (approved, rejected, expired)
/// while the upstream deadline still has the margin left.
pub fn gateway_plan(
    m: &LabManifests,
    ports: &Ports,
    park_timeout: Duration,
) -> Result<GatewayPlan, GenerateError> {
    let wiring = Wiring {
        ports: ports.gateway_ports(),
        upstream: Endpoint::loopback(ports.mock_db),
        extauth_grpc: Endpoint::loopback(ports.extauth_grpc),
    };
    gateway_plan_on(m, &wiring, park_timeout)
}

/// Where a gateway generated from the manifests listens and what it fronts: the local
/// lab's ports, or a test's or the bench's own.
#[derive(Debug, Clone)]
pub struct Wiring {
    pub ports: GatewayPorts,
    /// mock-db-mcp.
    pub upstream: Endpoint,
    /// hitl-extauth's Check (gRPC).
    pub extauth_grpc: Endpoint,
}

/// [`gateway_plan`] on `wiring`: the same translation of the manifests, on other ports.
pub fn gateway_plan_on(
    m: &LabManifests,
    wiring: &Wiring,
    park_timeout: Duration,
) -> Result<GatewayPlan, GenerateError> {
    let max_bytes = check_gate(m, park_timeout)?;
    translate(m, wiring, park_timeout, max_bytes)
}

/// The plan for a checked gate whose body limit is `max_bytes`.
fn translate(
    m: &LabManifests,
    wiring: &Wiring,
    park_timeout: Duration,
    max_bytes: u64,
) -> Result<GatewayPlan, GenerateError> {
    let gate = &m.gate;
    let upstream = m
        .routes
        .first()
        .map(|r| r.backend.clone())
        .ok_or_else(|| unsupported("the manifests define no HTTPRoute"))?;
    for route in &m.routes {
        if route.backend != upstream {
            return Err(unsupported(format!(
                "HTTPRoute {} goes to {}, but the local lab runs one upstream ({upstream})",
                route.name, route.backend
            )));
        }
    }
    let at_least = |t: Option<Duration>| t.unwrap_or_default().max(park_timeout + PARK_MARGIN);

    let mut plan = GatewayPlan::base(
        wiring.ports,
        wiring.upstream.clone(),
        wiring.extauth_grpc.clone(),
        park_timeout,
    );
    plan.routes = m
        .routes
        .iter()
        .map(|r| Route {
            name: r.name.clone(),
            prefix: r.path_prefix.clone(),
            gated: r.name == gate.route,
        })
        .collect();
    if let Some(route) = gate.ext_auth.context_extensions.get(ROUTE_CONTEXT_KEY)
        && *route != gate.route
    {
        return Err(unsupported(format!(
            "{} sends context_extensions route={route}, but it gates HTTPRoute {}",
            gate.policy, gate.route
        )));
    }
    plan.strip_request_headers = m.stripped_request_headers();
    plan.ext_authz.max_request_bytes = u32::try_from(max_bytes)
        .map_err(|_| unsupported(format!("forwardBody.maxSize {max_bytes} is too large")))?;
    // agentgateway's forwardBody forwards a cut body marked partial (allowPartialMessage).
    plan.ext_authz.allow_partial_message = true;
    plan.ext_authz.failure_mode_allow = gate.ext_auth.failure_mode == FailureMode::FailOpen;
    plan.ext_authz.request_metadata = gate.ext_auth.request_metadata.clone();
    plan.ext_authz.timeout = at_least(gate.ext_auth_timeout);
    plan.route_timeout = at_least(gate.request_timeout);
    plan.stream_idle_timeout = plan.ext_authz.timeout.max(plan.route_timeout);
    Ok(plan)
}

/// What the local gateway accepts as a requester: the gate policy's `jwtAuthentication`
/// (issuer, audiences, Strict or Optional), its JWKS the lab's own key where the manifest holds the
/// placeholder the kind lab fills in the same way ([`requester::LAB_JWKS_PLACEHOLDER`]).
/// `None` when the policy verifies no token.
pub fn requester_jwt(
    m: &LabManifests,
    issuer: &requester::Issuer,
) -> Result<Option<RequesterJwt>, GenerateError> {
    let Some(jwt) = &m.gate.jwt else {
        return Ok(None);
    };
    let policy = &m.gate.policy;
    let allow_missing = match jwt.mode {
        JwtMode::Strict => false,
        JwtMode::Optional => true,
        JwtMode::Permissive => {
            return Err(unsupported(format!(
                "AgentgatewayPolicy {policy}: jwtAuthentication.mode Permissive passes invalid \
                 tokens on; the local lab translates Strict and Optional"
            )));
        }
    };
    let [provider] = jwt.providers.as_slice() else {
        return Err(unsupported(format!(
            "AgentgatewayPolicy {policy}: the local lab translates exactly one JWT provider"
        )));
    };
    let jwks = match provider.jwks_inline.as_deref() {
        Some(requester::LAB_JWKS_PLACEHOLDER) => issuer.jwks().to_string(),
        Some(inline) => inline.to_owned(),
        None if provider.jwks_remote => {
            return Err(unsupported(format!(
                "AgentgatewayPolicy {policy}: a remote JWKS cannot be reached from the local lab"
            )));
        }
        None => {
            return Err(unsupported(format!(
                "AgentgatewayPolicy {policy}: the JWT provider has no jwks"
            )));
        }
    };
    Ok(Some(RequesterJwt {
        issuer: provider.issuer.clone(),
        audiences: provider.audiences.clone(),
        jwks,
        allow_missing,
    }))
}

/// What the local gateway cannot do faithfully for the gate's policy: another extAuth
/// protocol, no forwarded body, or a timeout that does not outlast the park timeout. The
/// body limit when all is well.
fn check_gate(m: &LabManifests, park_timeout: Duration) -> Result<u64, GenerateError> {
    let gate = &m.gate;
    if gate.ext_auth.protocol != ExtAuthProtocol::Grpc {
        return Err(unsupported(
            "the gate's extAuth is not gRPC; hitl-extauth speaks Envoy's gRPC Check",
        ));
    }
    let max_bytes = gate.ext_auth.forward_body_max_bytes.ok_or_else(|| {
        unsupported(format!(
            "AgentgatewayPolicy {} does not forward the body (forwardBody): the gate could not \
             see which tool is called",
            gate.policy
        ))
    })?;
    for (field, timeout) in [
        (
            format!("traffic.timeouts.request of {}", gate.policy),
            gate.request_timeout,
        ),
        (
            "backend.http.requestTimeout on the ext-auth Service".to_owned(),
            gate.ext_auth_timeout,
        ),
    ] {
        if let Some(t) = timeout.filter(|t| *t <= park_timeout) {
            return Err(unsupported(format!(
                "{field} is {} s, not longer than the park timeout ({} s): a call approved \
                 after {} s would be recorded as approved and then cut off by the gateway",
                t.as_secs(),
                park_timeout.as_secs(),
                t.as_secs()
            )));
        }
    }
    Ok(max_bytes)
}

impl GatewayPlan {
    /// The lab's gateway as `manifests/` describes it (the local lab's translation, see
    /// [`gateway_plan`]), on `ports` in front of `upstream` and `extauth_grpc`: what the
    /// tests, the gate check and the bench run, so there is one description of the gateway.
    /// Its timeouts are the manifests' or `park_timeout` plus [`PARK_MARGIN`], whichever is
    /// longer.
    pub fn from_manifests(
        ports: GatewayPorts,
        upstream: Endpoint,
        extauth_grpc: Endpoint,
        park_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let manifests = LabManifests::load()?;
        let wiring = Wiring {
            ports,
            upstream,
            extauth_grpc,
        };
        // The manifests are checked against their own park timeout (the gate's
        // PARK_TIMEOUT_SEC); a caller's longer one only raises the plan's timeouts.
        let own = manifests.park_timeout().unwrap_or(park_timeout);
        let max_bytes = check_gate(&manifests, own)?;
        Ok(translate(&manifests, &wiring, park_timeout, max_bytes)?)
    }
}
