//! The local gateway's agentgateway configuration: the same [`GatewayPlan`] Envoy runs,
//! rendered as agentgateway's standalone config (`agentgateway -f`), the way its Kubernetes
//! controller translates `manifests/gateway/`:
//!
//! - each HTTPRoute becomes a route with a `pathPrefix` match to mock-db-mcp;
//! - the AgentgatewayPolicy's `extAuth` becomes the gated route's `extAuthz` (gRPC), with
//!   `includeRequestBody {maxRequestBytes: forwardBody.maxSize, allowPartialMessage: true,
//!   packAsBytes: false}` (what the controller hard-codes), `failureMode`, and the route's name
//!   as `context_extensions["route"]`;
//! - `traffic.timeouts.request` becomes the gated route's `timeout.requestTimeout`, and the
//!   hitl-extauth Service's `backend.http.requestTimeout` the Check's deadline
//!   (`extAuthz.policies.http.requestTimeout`);
//! - the AgentgatewayPolicy's `jwtAuthentication` (the plan's [`RequesterJwt`]) becomes the
//!   gated route's `jwtAuth` (one issuer, its audiences, the JWKS inline, `exp` required as
//!   agentgateway's default says; mode `optional` when a request without a token may reach
//!   the gate, else `strict`). agentgateway runs it before `extAuthz` and then removes the
//!   token; the policy's `extAuth.grpc.requestMetadata` (`grpc.metadata` here) passes the raw
//!   token to the gate in the Check's `metadata_context`
//!   ([`hitl_wire::identity::TOKEN_METADATA_NAMESPACE`]), where the gate verifies it itself;
//! - the Gateway's PreRouting transformation (removing a client's `x-envoy-auth-partial-body`)
//!   becomes a listener-level `transformations` policy, which runs before route policies.
//!
//! agentgateway counts the route timeout from the request's arrival, parked time included; the
//! plan's route timeout is always longer than a park can last (see `local::generate`), so an
//! approved call never meets an upstream deadline that has already passed.

use serde_json::{Value, json};

use crate::envoy::{GatewayPlan, ROUTE_CONTEXT_KEY, RequesterJwt, Route, duration};

fn host_port(e: &crate::envoy::Endpoint) -> String {
    format!("{}:{}", e.host, e.port)
}

fn route(plan: &GatewayPlan, route: &Route) -> Value {
    let mut value = json!({
        "name": route.name,
        "matches": [{ "path": { "pathPrefix": route.prefix } }],
        "backends": [{ "host": host_port(&plan.upstream) }],
    });
    if route.gated {
        let authz = &plan.ext_authz;
        value["policies"] = json!({
            "timeout": { "requestTimeout": duration(plan.route_timeout) },
            "extAuthz": {
                "host": host_port(&authz.grpc),
                "protocol": { "grpc": grpc_protocol(plan, route) },
                "failureMode": if authz.failure_mode_allow { "allow" } else { "deny" },
                "includeRequestBody": {
                    // Must be set: a missing field deserialises to 0 (every body "too large").
                    "maxRequestBytes": authz.max_request_bytes,
                    "allowPartialMessage": authz.allow_partial_message,
                    // agentgateway's controller always sends text (`body`), never `raw_body`.
                    "packAsBytes": false,
                },
                "policies": { "http": { "requestTimeout": duration(authz.timeout) } },
            },
        });
        if let Some(jwt) = &plan.requester_jwt {
            value["policies"]["jwtAuth"] = jwt_auth(jwt);
        }
    }
    value
}

/// The gated route's gRPC ext_authz settings: the route's name as `context_extensions`, and
/// the policy's `requestMetadata` (which replaces agentgateway's default metadata).
fn grpc_protocol(plan: &GatewayPlan, route: &Route) -> Value {
    let mut grpc = json!({ "context": { ROUTE_CONTEXT_KEY: route.name } });
    if !plan.ext_authz.request_metadata.is_empty() {
        grpc["metadata"] = json!(plan.ext_authz.request_metadata);
    }
    grpc
}

/// The gated route's `jwtAuth`: a token present must verify and carry `exp` (else 401/403);
/// a missing one is let through to the gate only with [`RequesterJwt::allow_missing`].
fn jwt_auth(jwt: &RequesterJwt) -> Value {
    json!({
        "mode": if jwt.allow_missing { "optional" } else { "strict" },
        "issuer": jwt.issuer,
        "audiences": jwt.audiences,
        "jwks": jwt.jwks,
        "jwtValidationOptions": { "requiredClaims": ["exp"] },
    })
}

/// The CEL rule that keeps a loopback `listen` to loopback peers, if it is one. agentgateway
/// v1.4.1's standalone config has no bind address (`LocalBind` has a port only; the socket is
/// always the wildcard), so the plan's loopback address is enforced per connection instead:
/// a `networkAuthorization` frontend policy closes any connection from another address before
/// a byte of HTTP is read.
pub fn loopback_only(listen: &crate::envoy::Endpoint) -> Option<String> {
    let ip: std::net::IpAddr = listen.host.parse().ok()?;
    ip.is_loopback()
        .then(|| format!("source.address == \"{ip}\""))
}

/// The agentgateway standalone config (YAML) for `plan`. Binds are always on the wildcard
/// address (agentgateway has no per-bind address); IPv6 is off so it is `0.0.0.0`, and a
/// loopback plan admits loopback peers only ([`loopback_only`]).
pub fn render(plan: &GatewayPlan) -> String {
    let mut listener = json!({
        "name": "gateway",
        "protocol": "HTTP",
        "routes": plan.routes.iter().map(|r| route(plan, r)).collect::<Vec<_>>(),
    });
    if !plan.strip_request_headers.is_empty() {
        listener["policies"] = json!({
            "transformations": { "request": { "remove": plan.strip_request_headers } }
        });
    }
    let mut config = json!({
        "config": {
            "enableIpv6": false,
            "adminAddr": host_port(&plan.admin),
            "statsAddr": host_port(&plan.stats),
            "readinessAddr": host_port(&plan.readiness),
        },
        "binds": [{ "port": plan.listen.port, "listeners": [listener] }],
    });
    if let Some(rule) = loopback_only(&plan.listen) {
        config["frontendPolicies"] =
            json!({ "networkAuthorization": { "rules": [{ "require": rule }] } });
    }
    let yaml = serde_yaml::to_string(&config).expect("a JSON value always renders as YAML");
    format!(
        "# Generated by hitl_lab::agentgateway::render from a GatewayPlan; do not edit by hand.\n{yaml}"
    )
}
