//! From documents to the typed view: one function per resource kind, each turning a
//! [`Doc`] into its view type with errors that name the field.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{Secret, Service},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde::de::DeserializeOwned;

use super::{
    crd::{self, Resource},
    docs::Doc,
    error::ManifestError,
    units::{parse_byte_quantity, parse_duration},
    view::*,
};

/// The CRD default for RemoteMCPServer `timeout`.
const DEFAULT_MCP_TIMEOUT: Duration = Duration::from_secs(30);

/// Deserialize the whole document as `T`, naming the failing field.
pub(super) fn typed<T: DeserializeOwned>(doc: &Doc) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(&doc.value).map_err(|e| {
        ManifestError::field(
            &doc.location,
            &doc.resource(),
            e.path().to_string(),
            e.inner().to_string(),
        )
    })
}

fn spec<S: DeserializeOwned>(doc: &Doc) -> Result<S, ManifestError> {
    typed::<Resource<S>>(doc).map(|r| r.spec)
}

fn bad(doc: &Doc, path: &str, message: impl Into<String>) -> ManifestError {
    ManifestError::field(&doc.location, &doc.resource(), path, message)
}

/// The document's namespace; the lab writes every namespaced resource with one.
pub(super) fn namespace(doc: &Doc) -> Result<String, ManifestError> {
    doc.namespace.clone().ok_or_else(|| {
        bad(
            doc,
            "metadata.namespace",
            "must be set: manifests are applied as written, with no default namespace",
        )
    })
}

fn duration(doc: &Doc, path: &str, text: &str) -> Result<Duration, ManifestError> {
    parse_duration(text).ok_or_else(|| {
        bad(
            doc,
            path,
            format!("`{text}` is not a duration like 30s, 11m or 1h30m"),
        )
    })
}

fn opt_duration(
    doc: &Doc,
    path: &str,
    text: Option<&String>,
) -> Result<Option<Duration>, ManifestError> {
    text.map(|t| duration(doc, path, t)).transpose()
}

fn port(doc: &Doc, path: &str, value: i32) -> Result<u16, ManifestError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| bad(doc, path, format!("{value} is not a TCP port")))
}

pub(super) fn service(doc: &Doc) -> Result<ServiceView, ManifestError> {
    let service: Service = typed(doc)?;
    let spec = service.spec.unwrap_or_default();
    let ports = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(ServicePortView {
                port: port(doc, &format!("spec.ports[{i}].port"), p.port)?,
                name: p.name,
                target_port: p.target_port.map(|t| match t {
                    IntOrString::Int(n) => n.to_string(),
                    IntOrString::String(s) => s,
                }),
                app_protocol: p.app_protocol,
            })
        })
        .collect::<Result<_, ManifestError>>()?;
    Ok(ServiceView {
        location: doc.location.clone(),
        namespace: namespace(doc)?,
        name: doc.name.clone(),
        selector: spec.selector.unwrap_or_default(),
        ports,
        model: doc.model,
    })
}

pub(super) fn deployment(doc: &Doc) -> Result<DeploymentView, ManifestError> {
    let deployment: Deployment = typed(doc)?;
    let namespace = namespace(doc)?;
    let template = deployment.spec.template;
    let pod_labels = template.metadata.and_then(|m| m.labels).unwrap_or_default();
    let pod = template.spec.unwrap_or_default();
    let secret_volumes = pod
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.secret.and_then(|s| s.secret_name))
        .collect();
    let containers = pod
        .containers
        .into_iter()
        .map(|c| {
            let env = c
                .env
                .unwrap_or_default()
                .into_iter()
                .map(|var| {
                    let source = match (var.value, var.value_from) {
                        (Some(value), _) => EnvSource::Value(value),
                        (None, Some(from)) => match from.secret_key_ref {
                            Some(secret) => EnvSource::Secret(SecretKeyRef {
                                namespace: namespace.clone(),
                                name: secret.name,
                                key: secret.key,
                            }),
                            None => EnvSource::Other,
                        },
                        (None, None) => EnvSource::Value(String::new()),
                    };
                    (var.name, source)
                })
                .collect();
            let ports = c
                .ports
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| {
                    let number = u16::try_from(p.container_port).ok()?;
                    Some((p.name.unwrap_or_else(|| number.to_string()), number))
                })
                .collect();
            ContainerView {
                name: c.name,
                image: c.image.unwrap_or_default(),
                image_pull_policy: c.image_pull_policy,
                env,
                ports,
            }
        })
        .collect();
    Ok(DeploymentView {
        location: doc.location.clone(),
        namespace,
        name: doc.name.clone(),
        pod_labels,
        containers,
        secret_volumes,
        model: doc.model,
    })
}

/// A Secret as far as references go: which keys it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretView {
    pub namespace: String,
    pub name: String,
    pub keys: Vec<String>,
    pub model: Option<crate::manifests::ModelChoice>,
}

pub(super) fn secret(doc: &Doc) -> Result<SecretView, ManifestError> {
    let secret: Secret = typed(doc)?;
    let mut keys: Vec<String> = secret.data.unwrap_or_default().into_keys().collect();
    keys.extend(secret.string_data.unwrap_or_default().into_keys());
    keys.sort();
    keys.dedup();
    Ok(SecretView {
        namespace: namespace(doc)?,
        name: doc.name.clone(),
        keys,
        model: doc.model,
    })
}

pub(super) fn gateway(doc: &Doc) -> Result<GatewayView, ManifestError> {
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

pub(super) fn route(doc: &Doc) -> Result<RouteView, ManifestError> {
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

pub(super) fn policy(doc: &Doc) -> Result<PolicyView, ManifestError> {
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
    let protocol = match (&ea.grpc, &ea.http) {
        (Some(grpc), None) => {
            if let Some(map) = grpc.get("contextExtensions").and_then(|c| c.as_object()) {
                for (k, v) in map {
                    let v = v.as_str().ok_or_else(|| {
                        bad(
                            doc,
                            &format!("{PATH}.grpc.contextExtensions.{k}"),
                            "must be a string",
                        )
                    })?;
                    context_extensions.insert(k.clone(), v.to_owned());
                }
            }
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
    })
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

pub(super) fn tool_server(doc: &Doc) -> Result<ToolServerView, ManifestError> {
    let spec: crd::RemoteMcpServerSpec = spec(doc)?;
    let url = reqwest::Url::parse(&spec.url)
        .map_err(|e| bad(doc, "spec.url", format!("`{}` is not a URL: {e}", spec.url)))?;
    let host = url
        .host_str()
        .ok_or_else(|| bad(doc, "spec.url", "the URL has no host"))?
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| bad(doc, "spec.url", "the URL has no port and no known scheme"))?;
    Ok(ToolServerView {
        location: doc.location.clone(),
        namespace: namespace(doc)?,
        name: doc.name.clone(),
        description: spec.description,
        host,
        port,
        path: url.path().to_owned(),
        url: spec.url.clone(),
        protocol: spec
            .protocol
            .unwrap_or_else(|| "STREAMABLE_HTTP".to_owned()),
        timeout: opt_duration(doc, "spec.timeout", spec.timeout.as_ref())?
            .unwrap_or(DEFAULT_MCP_TIMEOUT),
        sse_read_timeout: opt_duration(doc, "spec.sseReadTimeout", spec.sse_read_timeout.as_ref())?,
    })
}

/// Whether an Agent document is BYO (`spec.type: BYO`).
pub(super) fn is_byo(doc: &Doc) -> Result<bool, ManifestError> {
    let spec: crd::AgentSpec = spec(doc)?;
    Ok(spec.agent_type.as_deref() == Some("BYO"))
}

pub(super) fn byo_agent(doc: &Doc) -> Result<ByoAgentView, ManifestError> {
    let spec: crd::AgentSpec = spec(doc)?;
    let namespace = namespace(doc)?;
    let deployment = spec.byo.and_then(|b| b.deployment).ok_or_else(|| {
        bad(
            doc,
            "spec.byo.deployment",
            "a BYO agent needs its deployment",
        )
    })?;
    let image = deployment.image.ok_or_else(|| {
        bad(
            doc,
            "spec.byo.deployment.image",
            "a BYO agent needs an image",
        )
    })?;
    let env = deployment
        .env
        .into_iter()
        .map(|var| {
            let source = match (var.value, var.value_from) {
                (Some(value), _) => EnvSource::Value(value),
                (None, Some(from)) => match from.secret_key_ref {
                    Some(secret) => EnvSource::Secret(SecretKeyRef {
                        namespace: namespace.clone(),
                        name: secret.name,
                        key: secret.key,
                    }),
                    None => EnvSource::Other,
                },
                (None, None) => EnvSource::Value(String::new()),
            };
            (var.name, source)
        })
        .collect();
    Ok(ByoAgentView {
        location: doc.location.clone(),
        namespace,
        name: doc.name.clone(),
        image,
        env,
    })
}

pub(super) fn agent(doc: &Doc) -> Result<AgentView, ManifestError> {
    let spec: crd::AgentSpec = spec(doc)?;
    let namespace = namespace(doc)?;
    if spec.agent_type.as_deref().unwrap_or("Declarative") != "Declarative" {
        return Err(bad(doc, "spec.type", "the lab's agent is Declarative"));
    }
    let declarative = spec
        .declarative
        .ok_or_else(|| bad(doc, "spec.declarative", "a Declarative agent needs it"))?;
    let system_message = declarative.system_message.ok_or_else(|| {
        bad(
            doc,
            "spec.declarative.systemMessage",
            "the lab's agent states its tools and their risk inline",
        )
    })?;
    let model_config = declarative.model_config.ok_or_else(|| {
        bad(
            doc,
            "spec.declarative.modelConfig",
            "must name the ModelConfig that models/<choice>.yaml defines",
        )
    })?;
    let tools = declarative
        .tools
        .into_iter()
        .enumerate()
        .map(|(i, tool)| {
            let path = format!("spec.declarative.tools[{i}]");
            let mcp = match (tool.tool_type.as_deref(), tool.mcp_server) {
                (Some("McpServer") | None, Some(mcp)) => mcp,
                _ => {
                    return Err(bad(
                        doc,
                        &path,
                        "the lab's agent only uses McpServer tools (type: McpServer, mcpServer: …)",
                    ));
                }
            };
            let kind = mcp.kind.as_deref().unwrap_or("RemoteMCPServer");
            let group = mcp.api_group.as_deref().unwrap_or("kagent.dev");
            if kind != "RemoteMCPServer" || group != "kagent.dev" {
                return Err(bad(
                    doc,
                    &format!("{path}.mcpServer"),
                    format!("must reference a kagent.dev RemoteMCPServer, not {group}/{kind}"),
                ));
            }
            Ok(AgentToolsView {
                server: mcp.name,
                namespace: mcp.namespace.unwrap_or_else(|| namespace.clone()),
                tool_names: mcp.tool_names,
                require_approval: mcp.require_approval,
                allowed_headers: mcp.allowed_headers,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(AgentView {
        location: doc.location.clone(),
        name: doc.name.clone(),
        namespace,
        description: spec.description.unwrap_or_default(),
        system_message,
        model_config,
        runtime: declarative.runtime.unwrap_or_else(|| "go".to_owned()),
        stream: declarative.stream.unwrap_or(false),
        tools,
    })
}

pub(super) fn model_config(doc: &Doc) -> Result<ModelConfigView, ManifestError> {
    let spec: crd::ModelConfigSpec = spec(doc)?;
    let namespace = namespace(doc)?;
    let choice = doc.model.ok_or_else(|| {
        bad(
            doc,
            "metadata.name",
            "ModelConfigs live in models/<choice>.yaml, one per --model choice",
        )
    })?;
    let provider = match spec.provider.as_deref().unwrap_or("OpenAI") {
        "OpenAI" => Provider::OpenAi,
        "Anthropic" => Provider::Anthropic,
        other => {
            return Err(bad(
                doc,
                "spec.provider",
                format!("the lab supports OpenAI and Anthropic, not {other}"),
            ));
        }
    };
    let base_url = match provider {
        Provider::OpenAi => spec.open_ai.and_then(|c| c.base_url),
        Provider::Anthropic => spec.anthropic.and_then(|c| c.base_url),
    };
    let api_key = match (spec.api_key_secret, spec.api_key_secret_key) {
        (Some(name), Some(key)) => Some(SecretKeyRef {
            namespace: namespace.clone(),
            name,
            key,
        }),
        (None, None) => None,
        _ => {
            return Err(bad(
                doc,
                "spec.apiKeySecret",
                "apiKeySecret and apiKeySecretKey go together",
            ));
        }
    };
    Ok(ModelConfigView {
        location: doc.location.clone(),
        choice,
        namespace,
        name: doc.name.clone(),
        provider,
        model: spec.model,
        base_url,
        api_key,
    })
}

/// Labels as a map, for selector matching.
pub(super) fn selects(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
