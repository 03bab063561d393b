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
//! - the gate Service's `backend.tls` (`mtlsCertificateRef`: the gateway's client certificate
//!   and the lab's CA) becomes the Check's `backendTLS` (cert, key, root, h2 ALPN);
//! - several gate replicas (the local lab's `--replicas N`) become what the controller makes of
//!   a Service with several ready pods: a `service` the `extAuthz` targets, its endpoints one
//!   `workload` per replica (loopback, each mapping the service port to its own Check port),
//!   balanced by agentgateway's own load balancer (v1.4.1: `services`/`workloads` in the
//!   standalone config, `SimpleBackendReference::Service`); one replica stays a plain `host`;
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

/// The gate as a service when it has several replicas (its namespace and hostname are the kind
/// lab's, which is also a name the gate's certificate carries).
const GATE_NAMESPACE: &str = "hitl-lab";
const GATE_HOSTNAME: &str = "hitl-extauth.hitl-lab.svc.cluster.local";
/// The service port the replicas' workloads map to their own Check ports (the kind Service's).
const GATE_SERVICE_PORT: u16 = 9001;

/// Where `extAuthz` sends its Checks: the one replica's `host`, or the gate's service.
fn gate_target(plan: &GatewayPlan) -> Value {
    let authz = &plan.ext_authz;
    if authz.more_grpc.is_empty() {
        json!({ "host": host_port(&authz.grpc) })
    } else {
        // A policy's target spells the service flat (`name`, `port`), not nested as a
        // route backend's `service:` (v1.4.1 `SimpleBackendReferenceWithPolicies`).
        json!({
            "name": format!("{GATE_NAMESPACE}/{GATE_HOSTNAME}"),
            "port": GATE_SERVICE_PORT,
        })
    }
}

/// The gate's service and one workload per replica (empty with one replica).
fn gate_service(plan: &GatewayPlan) -> Option<(Value, Vec<Value>)> {
    let authz = &plan.ext_authz;
    if authz.more_grpc.is_empty() {
        return None;
    }
    let service = json!({
        "name": "hitl-extauth",
        "namespace": GATE_NAMESPACE,
        "hostname": GATE_HOSTNAME,
        "vips": [],
        "ports": { GATE_SERVICE_PORT.to_string(): GATE_SERVICE_PORT },
    });
    let workloads = authz
        .endpoints()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "uid": format!("hitl-lab-local//extauth-{}", i + 1),
                "name": format!("extauth-{}", i + 1),
                "namespace": GATE_NAMESPACE,
                "workloadIps": [e.host],
                "services": {
                    format!("{GATE_NAMESPACE}/{GATE_HOSTNAME}"): { GATE_SERVICE_PORT.to_string(): e.port },
                },
            })
        })
        .collect();
    Some((service, workloads))
}

fn route(plan: &GatewayPlan, route: &Route) -> Value {
    let mut value = json!({
        "name": route.name,
        "matches": [{ "path": { "pathPrefix": route.prefix } }],
        "backends": [{ "host": host_port(&plan.upstream) }],
    });
    if route.gated {
        let authz = &plan.ext_authz;
        let target = gate_target(plan);
        value["policies"] = json!({
            "timeout": { "requestTimeout": duration(plan.route_timeout) },
            "extAuthz": {
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
        if let (Some(policy), Value::Object(target)) =
            (value["policies"]["extAuthz"].as_object_mut(), target)
        {
            policy.extend(target);
        }
        if let Some(tls) = &authz.tls {
            // The AgentgatewayPolicy's `backend.tls` on the gate's Service: the client
            // certificate (`mtlsCertificateRef`), the lab's CA as the only root, h2 by ALPN.
            // The gate's certificate is checked for the host dialled (`127.0.0.1`).
            value["policies"]["extAuthz"]["policies"]["backendTLS"] = json!({
                "cert": tls.cert,
                "key": tls.key,
                "root": tls.ca,
                "alpn": ["h2"],
            });
        }
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
    if let Some((service, workloads)) = gate_service(plan) {
        config["services"] = json!([service]);
        config["workloads"] = json!(workloads);
    }
    if let Some(rule) = loopback_only(&plan.listen) {
        config["frontendPolicies"] =
            json!({ "networkAuthorization": { "rules": [{ "require": rule }] } });
    }
    let yaml = yaml_serde::to_string(&config).expect("a JSON value always renders as YAML");
    format!(
        "# Generated by hitl_lab::agentgateway::render from a GatewayPlan; do not edit by hand.\n{yaml}"
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::envoy::{Endpoint, GatewayPorts};

    fn plan(replicas: u16) -> GatewayPlan {
        let ports = GatewayPorts {
            listen: 1,
            admin: 2,
            stats: 3,
            readiness: 4,
        };
        GatewayPlan::base(
            ports,
            Endpoint::loopback(5),
            Endpoint::loopback(9101),
            Duration::from_secs(600),
        )
        .with_gate_replicas(
            (2..=replicas)
                .map(|k| Endpoint::loopback(9101 + 10 * (k - 1)))
                .collect(),
        )
    }

    fn config(plan: &GatewayPlan) -> Value {
        yaml_serde::from_str(&render(plan)).expect("the config is YAML")
    }

    /// One replica: the Check goes to its `host`, as before replicas existed.
    #[test]
    fn one_replica_is_a_host() {
        let config = config(&plan(1));
        let authz = &config["binds"][0]["listeners"][0]["routes"][1]["policies"]["extAuthz"];
        assert_eq!(authz["host"], "127.0.0.1:9101");
        assert!(config.get("services").is_none() && config.get("workloads").is_none());
    }

    /// Several replicas: one service, one workload per replica mapping the service port to
    /// that replica's Check port; the policy targets the service and keeps its settings.
    #[test]
    fn replicas_are_one_service_with_a_workload_each() {
        let config = config(&plan(3));
        let authz = &config["binds"][0]["listeners"][0]["routes"][1]["policies"]["extAuthz"];
        assert!(authz.get("host").is_none());
        assert_eq!(authz["name"], format!("{GATE_NAMESPACE}/{GATE_HOSTNAME}"));
        assert_eq!(authz["port"], GATE_SERVICE_PORT);
        assert_eq!(authz["failureMode"], "deny");
        assert_eq!(config["services"][0]["hostname"], GATE_HOSTNAME);
        let key = format!("{GATE_NAMESPACE}/{GATE_HOSTNAME}");
        let ports: Vec<u64> = config["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["services"][&key]["9001"].as_u64().unwrap())
            .collect();
        assert_eq!(ports, [9101, 9111, 9121]);
    }
}
