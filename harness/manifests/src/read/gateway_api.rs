//! The Gateway API and agentgateway kinds: Gateway, HTTPRoute (and the Services they
//! name), AgentgatewayPolicy with its extAuth and JWT settings.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{bad, namespace, opt_duration, spec};
use crate::{crd, docs::Doc, error::ManifestError, units::parse_byte_quantity, view::*};

pub(crate) fn gateway(doc: &Doc) -> Result<GatewayView, ManifestError> {
    let spec: crd::GatewaySpec = spec(doc)?;
    Ok(GatewayView {
        location: doc.location.clone(),
        namespace: namespace(doc)?,
        name: doc.name.clone(),
        class: spec.gateway_class_name,
        listeners: spec
            .listeners
            .into_iter()
            .map(|l| ListenerView {
                name: l.name,
                protocol: l.protocol,
                port: l.port,
            })
            .collect(),
    })
}

pub(crate) fn route(doc: &Doc) -> Result<RouteView, ManifestError> {
    let spec: crd::HttpRouteSpec = spec(doc)?;
    let namespace = namespace(doc)?;
    let [parent] = spec.parent_refs.as_slice() else {
        return Err(bad(
            doc,
            "spec.parentRefs",
            "the lab's routes attach to exactly one Gateway",
        ));
    };
    if parent
        .namespace
        .as_deref()
        .is_some_and(|ns| ns != namespace)
    {
        return Err(bad(
            doc,
            "spec.parentRefs[0].namespace",
            "the lab's routes attach to a Gateway in their own namespace",
        ));
    }
    let [rule] = spec.rules.as_slice() else {
        return Err(bad(
            doc,
            "spec.rules",
            "the lab's routes have exactly one rule (one path prefix, one backend)",
        ));
    };
    let path_prefix = match rule.matches.as_slice() {
        [
            crd::HttpRouteMatch {
                path:
                    Some(crd::PathMatch {
                        match_type,
                        value: Some(value),
                    }),
            },
        ] if match_type.as_deref().unwrap_or("PathPrefix") == "PathPrefix" => value.clone(),
        _ => {
            return Err(bad(
                doc,
                "spec.rules[0].matches",
                "the lab's routes match exactly one PathPrefix",
            ));
        }
    };
    let [backend] = rule.backend_refs.as_slice() else {
        return Err(bad(
            doc,
            "spec.rules[0].backendRefs",
            "the lab's routes have exactly one backend",
        ));
    };
    Ok(RouteView {
        location: doc.location.clone(),
        gateway: parent.name.clone(),
        path_prefix,
        backend: service_ref(doc, "spec.rules[0].backendRefs[0]", backend, &namespace)?,
        namespace,
        name: doc.name.clone(),
    })
}

/// A `backendRef` that must name a Service port.
fn service_ref(
    doc: &Doc,
    path: &str,
    reference: &crd::ObjectRef,
    default_namespace: &str,
) -> Result<ServiceRef, ManifestError> {
    let kind = reference.kind.as_deref().unwrap_or("Service");
    let group = reference.group.as_deref().unwrap_or("");
    if kind != "Service" || !group.is_empty() {
        return Err(bad(
            doc,
            path,
            format!("must reference a Service, not {group}/{kind}"),
        ));
    }
    let port = reference.port.ok_or_else(|| {
        bad(
            doc,
            &format!("{path}.port"),
            "a Service reference needs a port",
        )
    })?;
    Ok(ServiceRef {
        namespace: reference
            .namespace
            .clone()
            .unwrap_or_else(|| default_namespace.to_owned()),
        name: reference.name.clone(),
        port,
    })
}

pub(crate) fn policy(doc: &Doc) -> Result<PolicyView, ManifestError> {
    let spec: crd::PolicySpec = spec(doc)?;
    let namespace = namespace(doc)?;
    let targets = spec
        .target_refs
        .iter()
        .map(|t| (t.kind.clone().unwrap_or_default(), t.name.clone()))
        .collect();
    let traffic = spec.traffic.as_ref();
    let ext_auth = traffic
        .and_then(|t| t.ext_auth.as_ref())
        .map(|ea| ext_auth(doc, ea, &namespace))
        .transpose()?;
    let jwt = traffic
        .and_then(|t| t.jwt_authentication.as_ref())
        .map(|j| jwt(doc, j))
        .transpose()?;
    let request_timeout = opt_duration(
        doc,
        "spec.traffic.timeouts.request",
        traffic
            .and_then(|t| t.timeouts.as_ref())
            .and_then(|t| t.request.as_ref()),
    )?;
    let backend_request_timeout = opt_duration(
        doc,
        "spec.backend.http.requestTimeout",
        spec.backend
            .as_ref()
            .and_then(|b| b.http.as_ref())
            .and_then(|h| h.request_timeout.as_ref()),
    )?;
    let pre_routing = match traffic.and_then(|t| t.phase.as_deref()) {
        None | Some("PostRouting") => false,
        Some("PreRouting") => true,
        Some(other) => {
            return Err(bad(
                doc,
                "spec.traffic.phase",
                format!("`{other}` is neither PreRouting nor PostRouting"),
            ));
        }
    };
    let removes_request_headers = traffic
        .and_then(|t| t.transformation.as_ref())
        .and_then(|t| t.request.as_ref())
        .map(|r| r.remove.iter().map(|h| h.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    Ok(PolicyView {
        location: doc.location.clone(),
        namespace,
        name: doc.name.clone(),
        targets,
        ext_auth,
        jwt,
        request_timeout,
        backend_request_timeout,
        pre_routing,
        removes_request_headers,
    })
}

fn ext_auth(doc: &Doc, ea: &crd::ExtAuth, namespace: &str) -> Result<ExtAuthView, ManifestError> {
    const PATH: &str = "spec.traffic.extAuth";
    let backend_ref = ea.backend_ref.as_ref().ok_or_else(|| {
        bad(
            doc,
            &format!("{PATH}.backendRef"),
            "the lab's gate names its ext-auth Service with backendRef",
        )
    })?;
    let backend = service_ref(doc, &format!("{PATH}.backendRef"), backend_ref, namespace)?;
    let mut context_extensions = std::collections::BTreeMap::new();
    let mut request_metadata = std::collections::BTreeMap::new();
    let protocol = match (&ea.grpc, &ea.http) {
        (Some(grpc), None) => {
            context_extensions =
                string_map(doc, &format!("{PATH}.grpc"), grpc, "contextExtensions")?;
            request_metadata = string_map(doc, &format!("{PATH}.grpc"), grpc, "requestMetadata")?;
            ExtAuthProtocol::Grpc
        }
        (None, Some(_)) => ExtAuthProtocol::Http,
        _ => {
            return Err(bad(
                doc,
                PATH,
                "exactly one of `grpc` and `http` must be set",
            ));
        }
    };
    let forward_body_max_bytes = ea
        .forward_body
        .as_ref()
        .map(|fb| {
            let path = format!("{PATH}.forwardBody.maxSize");
            match &fb.max_size {
                IntOrString::Int(n) => u64::try_from(*n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(doc, &path, format!("{n} is not a size"))),
                IntOrString::String(s) => parse_byte_quantity(s).ok_or_else(|| {
                    bad(
                        doc,
                        &path,
                        format!("`{s}` is not a byte size like 65536 or 64Ki"),
                    )
                }),
            }
        })
        .transpose()?;
    let failure_mode = match ea.failure_mode.as_deref() {
        None | Some("FailClosed") => FailureMode::FailClosed,
        Some("FailOpen") => FailureMode::FailOpen,
        Some(other) => {
            return Err(bad(
                doc,
                &format!("{PATH}.failureMode"),
                format!("`{other}` is neither FailClosed nor FailOpen"),
            ));
        }
    };
    Ok(ExtAuthView {
        backend,
        protocol,
        forward_body_max_bytes,
        failure_mode,
        cache: ea.cache.is_some(),
        context_extensions,
        request_metadata,
    })
}

/// `parent.field` as a map of strings (empty when absent).
fn string_map(
    doc: &Doc,
    path: &str,
    parent: &serde_json::Value,
    field: &str,
) -> Result<std::collections::BTreeMap<String, String>, ManifestError> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(map) = parent.get(field).and_then(|c| c.as_object()) {
        for (k, v) in map {
            let v = v
                .as_str()
                .ok_or_else(|| bad(doc, &format!("{path}.{field}.{k}"), "must be a string"))?;
            out.insert(k.clone(), v.to_owned());
        }
    }
    Ok(out)
}

fn jwt(doc: &Doc, j: &crd::JwtAuthentication) -> Result<JwtView, ManifestError> {
    const PATH: &str = "spec.traffic.jwtAuthentication";
    let mode = match j.mode.as_deref() {
        None | Some("Strict") => JwtMode::Strict,
        Some("Optional") => JwtMode::Optional,
        Some("Permissive") => JwtMode::Permissive,
        Some(other) => {
            return Err(bad(
                doc,
                &format!("{PATH}.mode"),
                format!("`{other}` is not Strict, Optional or Permissive"),
            ));
        }
    };
    let providers = j
        .providers
        .iter()
        .map(|p| JwtProviderView {
            issuer: p.issuer.clone(),
            audiences: p.audiences.clone(),
            jwks_inline: p.jwks.as_ref().and_then(|k| k.inline.clone()),
            jwks_remote: p.jwks.as_ref().is_some_and(|k| k.remote.is_some()),
        })
        .collect();
    Ok(JwtView { mode, providers })
}
