//! A [`GatewayPlan`] rendered as an Envoy bootstrap: clusters, routes, the header mutation
//! that strips client-sent approval headers, `jwt_authn` and ext_authz filters, and an access
//! log line per request.

use std::{net::IpAddr, time::Duration};

use serde_json::{Value, json};

use super::*;

/// `660s`: Envoy's (protobuf JSON) duration; agentgateway reads the same spelling.
pub(crate) fn duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
    }
}

fn socket_address(endpoint: &Endpoint) -> Value {
    json!({ "socket_address": { "address": endpoint.host, "port_value": endpoint.port } })
}

fn cluster(name: &str, endpoint: &Endpoint, max_requests: u32, http2: bool) -> Value {
    balanced_cluster(name, &[endpoint], max_requests, http2)
}

/// A cluster over several endpoints, round robin (Envoy's default policy, said explicitly).
fn balanced_cluster(name: &str, endpoints: &[&Endpoint], max_requests: u32, http2: bool) -> Value {
    let lb_endpoints: Vec<Value> = endpoints
        .iter()
        .map(|e| json!({ "endpoint": { "address": socket_address(e) } }))
        .collect();
    let endpoint = endpoints[0];
    let mut cluster = json!({
        "name": name,
        "type": if endpoint.is_ip() { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": "2s",
        "lb_policy": "ROUND_ROBIN",
        "circuit_breakers": {
            "thresholds": [{
                "priority": "DEFAULT",
                "max_connections": max_requests,
                "max_pending_requests": max_requests,
                "max_requests": max_requests,
            }]
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": lb_endpoints }]
        },
    });
    if http2 {
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} }
            }
        });
    }
    cluster
}

/// The gate's cluster speaks mTLS: the gateway's client certificate, the gate's certificate
/// verified against the lab's CA and for the name the gateway dials (an IP SAN for a loopback
/// address, else a DNS SAN, also sent as SNI), HTTP/2 by ALPN.
fn gate_tls_socket(tls: &GateClientTls, host: &str) -> Value {
    let san_type = if host.parse::<IpAddr>().is_ok() {
        "IP_ADDRESS"
    } else {
        "DNS"
    };
    let mut context = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "tls_certificates": [{
                "certificate_chain": { "filename": tls.cert },
                "private_key": { "filename": tls.key },
            }],
            "validation_context": {
                "trusted_ca": { "filename": tls.ca },
                "match_typed_subject_alt_names": [
                    { "san_type": san_type, "matcher": { "exact": host } }
                ],
            },
        },
    });
    if san_type == "DNS" {
        context["sni"] = json!(host);
    }
    json!({ "name": "envoy.transport_sockets.tls", "typed_config": context })
}

fn route(plan: &GatewayPlan, route: &Route) -> Value {
    // Gateway API PathPrefix semantics: `/public` matches `/public` and `/public/…`, never
    // `/publicity` (Envoy's plain `prefix` would).
    let prefix = route.prefix.trim_end_matches('/');
    let path_match = if prefix.is_empty() {
        json!({ "prefix": "/" })
    } else {
        json!({ "path_separated_prefix": prefix })
    };
    let mut value = json!({
        "match": path_match,
        "route": { "cluster": UPSTREAM_CLUSTER, "timeout": duration(plan.route_timeout) },
    });
    let mut per_route = if route.gated {
        json!({ "check_settings": { "context_extensions": { ROUTE_CONTEXT_KEY: route.name } } })
    } else {
        json!({ "disabled": true })
    };
    per_route["@type"] =
        json!("type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute");
    value["typed_per_filter_config"] = json!({ EXT_AUTHZ_FILTER: per_route });
    if route.gated && plan.requester_jwt.is_some() {
        value["typed_per_filter_config"][JWT_AUTHN_FILTER] = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
            "requirement_name": JWT_REQUIREMENT
        });
        // The token is forwarded for the gate (ext_authz) only: the router removes it before
        // the backend, as agentgateway's jwtAuth does.
        value["request_headers_to_remove"] = json!([hitl_wire::identity::TOKEN_HEADER]);
    }
    value
}

/// The filter that removes [`GatewayPlan::strip_request_headers`], first in the chain so that
/// ext_authz never sees a client's copy (route-level `request_headers_to_remove` would act
/// only in the router, after ext_authz).
fn header_mutation(plan: &GatewayPlan) -> Option<Value> {
    if plan.strip_request_headers.is_empty() {
        return None;
    }
    let removals: Vec<Value> = plan
        .strip_request_headers
        .iter()
        .map(|h| json!({ "remove": h }))
        .collect();
    Some(json!({
        "name": HEADER_MUTATION_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": { "request_mutations": removals }
        }
    }))
}

/// The `jwt_authn` filter on the routes that name its requirement (the gated ones): a token
/// there must verify and carry `exp` (else 401/403), a missing one is refused too unless
/// [`RequesterJwt::allow_missing`]. The header stays on the request (`forward`), so ext_authz
/// hands the token to the gate, which verifies it itself; the route removes it before the
/// backend.
fn jwt_filter(jwt: &RequesterJwt) -> Value {
    json!({
        "name": JWT_AUTHN_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                JWT_PROVIDER: {
                    "issuer": jwt.issuer,
                    "audiences": jwt.audiences,
                    "local_jwks": { "inline_string": jwt.jwks },
                    "from_headers": [{ "name": "Authorization", "value_prefix": "Bearer " }],
                    "forward": true,
                    "require_expiration": true,
                    "clock_skew_seconds": 30,
                }
            },
            "requirement_map": {
                JWT_REQUIREMENT: if jwt.allow_missing {
                    json!({ "requires_any": { "requirements": [
                        { "provider_name": JWT_PROVIDER },
                        { "allow_missing": {} }
                    ] } })
                } else {
                    json!({ "provider_name": JWT_PROVIDER })
                }
            }
        }
    })
}

/// The ext_authz HTTP filter: the gate's cluster, the Check's deadline, the body it sees.
fn ext_authz_filter(authz: &ExtAuthz) -> Value {
    json!({
        "name": EXT_AUTHZ_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "transport_api_version": "V3",
            "grpc_service": {
                "envoy_grpc": { "cluster_name": EXTAUTH_CLUSTER },
                "timeout": duration(authz.timeout),
            },
            "with_request_body": {
                "max_request_bytes": authz.max_request_bytes,
                "allow_partial_message": authz.allow_partial_message,
                "pack_as_bytes": authz.pack_as_bytes,
            },
            "failure_mode_allow": authz.failure_mode_allow,
        }
    })
}

/// One line per request on stdout (the component's log): method, path, status, and Envoy's
/// word for who answered (`ext_authz_denied`: the gate refused; `via_upstream`: the server).
fn access_log() -> Value {
    json!({
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {"text_format_source": {"inline_string": ACCESS_LINE}},
        }
    })
}

/// The access log's line. The path is the request's own `:path` (no route rewrites it):
/// `x-envoy-original-path` would be whatever the client sent in that header.
pub const ACCESS_LINE: &str = "[%START_TIME%] %REQ(:METHOD)% %REQ(:PATH)% \
     %RESPONSE_CODE% %RESPONSE_CODE_DETAILS% flags=%RESPONSE_FLAGS% %DURATION%ms\n";

/// The Envoy bootstrap (YAML) for `plan`.
pub fn render(plan: &GatewayPlan) -> String {
    let authz = &plan.ext_authz;
    let ext_authz = ext_authz_filter(authz);
    let mut http_filters: Vec<Value> = header_mutation(plan).into_iter().collect();
    if let Some(jwt) = &plan.requester_jwt {
        http_filters.push(jwt_filter(jwt));
    }
    http_filters.push(ext_authz);
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        }
    }));
    let gate_endpoints: Vec<&Endpoint> = authz.endpoints().collect();
    let mut gate_cluster =
        balanced_cluster(EXTAUTH_CLUSTER, &gate_endpoints, plan.max_requests, true);
    if let Some(tls) = &authz.tls {
        gate_cluster["transport_socket"] = gate_tls_socket(tls, &authz.grpc.host);
    }
    let config = json!({
        "admin": { "address": socket_address(&plan.admin) },
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": socket_address(&plan.listen),
                "filter_chains": [{
                    "filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "gateway",
                            "codec_type": "AUTO",
                            "access_log": [access_log()],
                            "stream_idle_timeout": duration(plan.stream_idle_timeout),
                            // Route on the path a server would read: `/public/../privileged`
                            // is `/privileged` (and so gated); encoded slashes are refused.
                            "normalize_path": true,
                            "merge_slashes": true,
                            "path_with_escaped_slashes_action": "REJECT_REQUEST",
                            // One client connection may hold many parked calls at once
                            // (Envoy's default is 1024 concurrent HTTP/2 streams).
                            "http2_protocol_options": {"max_concurrent_streams": plan.max_requests},
                            "route_config": {
                                "name": "mcp",
                                "virtual_hosts": [{
                                    "name": "mcp",
                                    "domains": ["*"],
                                    "routes": plan.routes.iter().map(|r| route(plan, r)).collect::<Vec<_>>(),
                                }]
                            },
                            "http_filters": http_filters,
                        }
                    }]
                }]
            }],
            "clusters": [
                cluster(UPSTREAM_CLUSTER, &plan.upstream, plan.max_requests, false),
                gate_cluster,
            ]
        }
    });
    let yaml = yaml_serde::to_string(&config).expect("a JSON value always renders as YAML");
    format!(
        "# Generated by hitl_lab::envoy::render from a GatewayPlan; do not edit by hand.\n{yaml}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan on made-up ports, as the tests below read its rendering.
    fn plan() -> GatewayPlan {
        GatewayPlan::base(
            GatewayPorts {
                listen: 1,
                admin: 2,
                stats: 5,
                readiness: 6,
            },
            Endpoint::loopback(3),
            Endpoint::loopback(4),
            Duration::from_secs(600),
        )
    }

    #[test]
    fn every_request_gets_an_access_line() {
        let plan = plan();
        let config: Value = yaml_serde::from_str(&render(&plan)).unwrap();
        let manager = &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        assert_eq!(
            manager["access_log"][0]["name"],
            "envoy.access_loggers.stdout"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_secs(660)), "660s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.500s");
    }

    /// The gate's replicas are one cluster, balanced round robin.
    #[test]
    fn the_gate_cluster_balances_over_every_replica() {
        let plan = plan().with_gate_replicas(vec![Endpoint::loopback(14)]);
        let config: Value = yaml_serde::from_str(&render(&plan)).unwrap();
        let gate = &config["static_resources"]["clusters"][1];
        assert_eq!(gate["lb_policy"], "ROUND_ROBIN");
        let ports: Vec<u64> = gate["load_assignment"]["endpoints"][0]["lb_endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["endpoint"]["address"]["socket_address"]["port_value"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ports, [4, 14]);
    }

    #[test]
    fn dns_hosts_use_strict_dns() {
        let c = cluster(
            "x",
            &Endpoint::new("mock-db-mcp.hitl-lab.svc", 8080),
            1,
            false,
        );
        assert_eq!(c["type"], "STRICT_DNS");
        let c = cluster("x", &Endpoint::loopback(8080), 1, false);
        assert_eq!(c["type"], "STATIC");
    }

    #[test]
    fn only_ungated_routes_disable_ext_authz() {
        let plan = plan();
        let public = route(&plan, &plan.routes[0]);
        let privileged = route(&plan, &plan.routes[1]);
        assert_eq!(
            public["typed_per_filter_config"][EXT_AUTHZ_FILTER]["disabled"],
            true
        );
        assert_eq!(
            privileged["typed_per_filter_config"][EXT_AUTHZ_FILTER]["check_settings"]["context_extensions"]
                [ROUTE_CONTEXT_KEY],
            "privileged-mcp"
        );
        assert_eq!(privileged["route"]["timeout"], "660s");
    }
}
