//! hitl-extauth's `/openapi.json` as a client reads it: a valid OpenAPI 3.1 document (the
//! OpenAPI Initiative's own schema, `tests/fixtures/openapi/`; each component a valid JSON
//! Schema 2020-12), and true of the real gate: every answer the gate gives — successes and the
//! 400/401/403/404/409/422/503 errors — has a status the document lists for its operation, the
//! media type it names, and a body its schema accepts with no field the schema leaves out; and
//! every operation the document lists is served (that the router serves no other: the unit
//! test `the_router_serves_what_its_openapi_document_lists`).
//!
//! Needs the built binaries (`cargo build --workspace --bins`).

use std::collections::BTreeSet;

use anyhow::{Context as _, ensure};
use hitl_lab::bins::workspace_root;
use hitl_lab_tests::{Reply, extauth::ExtAuth, gate::USER, scratch_dir, wait::PATIENCE};
use hitl_wire::{extauth::paths, sse::SseParser};
use serde_json::{Map, Value, json};

const MIGRATE: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"run_migration","arguments":{"target_version":"v3"}}}"#;

/// A policy under which a migration needs two approvals, so `POST /decide` answers 202 first.
const TWO_KEYS: &str = r#"
[[rule]]
name = "two-keys"
tool = "run_migration"
groups = ["*"]
approvals = 2
"#;

/// The served document, and the (method, path template, status) answers checked against it.
struct Spec {
    doc: Value,
    checked: BTreeSet<(String, String, u16)>,
}

impl Spec {
    async fn of(gate: &ExtAuth) -> anyhow::Result<Self> {
        let reply = Reply::read(reqwest::get(gate.url(paths::OPENAPI)).await?).await?;
        ensure!(reply.status == 200, "{reply:?}");
        Ok(Self {
            doc: reply.json()?,
            checked: BTreeSet::new(),
        })
    }

    /// `reply` to `method path` is what the document says that operation answers.
    fn check(&mut self, method: &str, template: &str, reply: &Reply) -> anyhow::Result<()> {
        let op = &self.doc["paths"][template][method];
        ensure!(op.is_object(), "{method} {template} is not in the document");
        let status = reply.status;
        let response = &op["responses"][status.to_string()];
        ensure!(
            response.is_object(),
            "{method} {template} answered {status}, which the document does not list: {}",
            reply.body
        );
        let media_type = reply.content_type.split(';').next().unwrap_or("").trim();
        let content = &response["content"][media_type];
        ensure!(
            content.is_object(),
            "{method} {template} {status} came as {media_type:?}; the document says {}",
            response["content"]
        );
        if media_type == "application/json" {
            self.conforms(&content["schema"], &reply.json()?)
                .with_context(|| format!("{method} {template} {status}"))?;
        }
        self.checked
            .insert((method.to_owned(), template.to_owned(), status));
        Ok(())
    }

    /// `value` is valid under `schema` (a schema of the document), every object in it strict.
    fn conforms(&self, schema: &Value, value: &Value) -> anyhow::Result<()> {
        let mut root = schema.clone();
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["components"] = json!({ "schemas": strict(&self.doc["components"]["schemas"]) });
        let validator = jsonschema::validator_for(&root)?;
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        let text = value.to_string();
        let text = text.get(..2000).unwrap_or(&text);
        ensure!(errors.is_empty(), "{}\nin {text}", errors.join("\n"));
        Ok(())
    }

    /// An operation the document lists that no checked answer came from.
    fn unchecked(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                let seen = self
                    .checked
                    .iter()
                    .any(|(m, p, s)| m == method && p == path && *s < 300);
                if !seen {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        missing
    }
}

/// The component schemas with every object closed (`unevaluatedProperties: false`), so a
/// field the gate sends and the document does not name fails. A schema extended by `allOf`
/// (`DecidedCall` = `ParkedCall` + its own fields) is referenced there as an open copy, and
/// the extension closes the whole.
fn strict(schemas: &Value) -> Value {
    let mut out = Map::new();
    for (name, schema) in schemas.as_object().into_iter().flatten() {
        out.insert(format!("{name}__open"), schema.clone());
        out.insert(name.clone(), close(schema.clone(), true));
    }
    Value::Object(out)
}

/// `schema` with its nested objects closed, and itself when `closed` (an `allOf` part is not:
/// the whole it is part of is).
fn close(mut schema: Value, closed: bool) -> Value {
    if let Some(object) = schema.as_object_mut() {
        let extends = object.contains_key("allOf");
        for (key, value) in object.iter_mut() {
            match (key.as_str(), value) {
                ("allOf", Value::Array(parts)) => {
                    for part in parts.iter_mut() {
                        if let Some(Value::String(r)) = part.get_mut("$ref") {
                            r.push_str("__open");
                        } else {
                            *part = close(part.take(), false);
                        }
                    }
                }
                ("properties", Value::Object(props)) => {
                    for prop in props.values_mut() {
                        *prop = close(prop.take(), true);
                    }
                }
                ("oneOf" | "anyOf", Value::Array(parts)) => {
                    for part in parts.iter_mut() {
                        *part = close(part.take(), true);
                    }
                }
                ("items", item) => *item = close(item.take(), true),
                _ => {}
            }
        }
        let open_object = object.contains_key("properties") || extends;
        if closed && open_object && !object.contains_key("additionalProperties") {
            object.insert("unevaluatedProperties".into(), json!(false));
        }
    }
    schema
}

/// `method url` with `body`, the admin token when `token`: the whole reply.
async fn call(
    gate: &ExtAuth,
    method: reqwest::Method,
    path: &str,
    body: Option<&str>,
    token: bool,
) -> anyhow::Result<Reply> {
    let http = reqwest::Client::builder().timeout(PATIENCE).build()?;
    let mut request = http.request(method, gate.url(path));
    if token {
        request = gate.authorized(request);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    Reply::read(request.send().await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_valid_openapi_3_1() -> anyhow::Result<()> {
    let gate = ExtAuth::start(&scratch_dir("openapi_valid"), |o| o).await?;
    let spec = Spec::of(&gate).await?;
    assert_eq!(spec.doc["openapi"], "3.1.0");

    let path = workspace_root().join("tests/fixtures/openapi/oas-3.1-schema-2022-10-07.json");
    let oas: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let validator = jsonschema::validator_for(&oas)?;
    let errors: Vec<String> = validator
        .iter_errors(&spec.doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not OpenAPI 3.1:\n{}", errors.join("\n"));

    for (name, schema) in spec.doc["components"]["schemas"]
        .as_object()
        .context("component schemas")?
    {
        let mut schema = schema.clone();
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        jsonschema::meta::validate(&schema)
            .map_err(|e| anyhow::anyhow!("{name} is not JSON Schema 2020-12: {e}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_the_gate_is_the_one_its_document_describes() -> anyhow::Result<()> {
    use reqwest::Method;
    let dir = scratch_dir("openapi_answers");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, TWO_KEYS)?;
    let gate = ExtAuth::start(&dir.join("gate"), |mut o| {
        o.approval_policy = Some(policy.clone());
        o
    })
    .await?;
    let mut spec = Spec::of(&gate).await?;

    // The open endpoints.
    for path in [
        paths::HEALTHZ,
        paths::LIVEZ,
        paths::READYZ,
        paths::METRICS,
        paths::OPENAPI,
    ] {
        let reply = call(&gate, Method::GET, path, None, false).await?;
        spec.check("get", path, &reply)?;
    }

    // A call parks; the queue, the whole call, the live feed and the policy show it.
    let _held = gate.check(MIGRATE, USER).await?;
    let id = gate.wait_pending(1).await?[0].id.clone();
    let pending_call = paths::pending_call(&id);
    for (template, path) in [
        (paths::PENDING, paths::PENDING),
        (paths::PENDING_CALL, pending_call.as_str()),
        (paths::POLICY, paths::POLICY),
    ] {
        let reply = call(&gate, Method::GET, path, None, true).await?;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        spec.check("get", template, &reply)?;
    }
    let events = first_event(&gate, &spec).await?;
    spec.check("get", paths::EVENTS, &events)?;

    // Without the token, and for what is not there.
    for path in [paths::PENDING, paths::HISTORY, paths::POLICY] {
        let reply = call(&gate, Method::GET, path, None, false).await?;
        assert_eq!(reply.status, 401, "{path}");
        spec.check("get", path, &reply)?;
    }
    let reply = call(&gate, Method::GET, &paths::pending_call("nope"), None, true).await?;
    assert_eq!(reply.status, 404);
    spec.check("get", paths::PENDING_CALL, &reply)?;

    // Decisions: malformed, of the wrong shape, by the requester, unknown, counted, decided,
    // and again.
    let decide = paths::decide(&id);
    let scenes: [(&str, &str, u16); 7] = [
        (&decide, "not json", 400),
        (&decide, r#"{"approved":"yes"}"#, 422),
        (&decide, r#"{"approved":true,"reviewer":"alice"}"#, 403),
        ("/decide/nope", r#"{"approved":true,"reviewer":"bob"}"#, 404),
        (&decide, r#"{"approved":true,"reviewer":"bob"}"#, 202),
        (&decide, r#"{"approved":true,"reviewer":"carol"}"#, 200),
        (&decide, r#"{"approved":true,"reviewer":"dave"}"#, 409),
    ];
    for (path, body, status) in scenes {
        let reply = call(&gate, Method::POST, path, Some(body), true).await?;
        assert_eq!(reply.status, status, "POST {path} {body}: {}", reply.body);
        spec.check("post", paths::DECIDE, &reply)?;
    }
    let reply = call(&gate, Method::POST, &decide, Some("{}"), false).await?;
    spec.check("post", paths::DECIDE, &reply)?;

    // The queue, as much of it as asked for, and a limit it refuses; the audit trail, and a
    // query it cannot read.
    for (operation, path, status) in [
        (paths::PENDING, "/pending?limit=1", 200),
        (paths::PENDING, "/pending?limit=0", 400),
        (paths::PENDING, "/pending?limit=x", 400),
        (
            paths::HISTORY,
            "/history?limit=5&outcome=approved&tool=run_migration",
            200,
        ),
        (paths::HISTORY, "/history?limit=x", 400),
        (paths::HISTORY, "/history?before=not-a-cursor", 400),
    ] {
        let reply = call(&gate, Method::GET, path, None, true).await?;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
        spec.check("get", operation, &reply)?;
    }

    // A gate with no admin token serves none of it.
    let closed = ExtAuth::start(&dir.join("closed"), |mut o| {
        o.admin_token = None;
        o
    })
    .await?;
    let reply = call(&closed, Method::GET, paths::PENDING, None, false).await?;
    assert_eq!(reply.status, 503);
    spec.check("get", paths::PENDING, &reply)?;

    assert_eq!(
        spec.unchecked(),
        Vec::<String>::new(),
        "documented, never answered"
    );
    Ok(())
}

/// `GET /events` up to its first event (the parked call), each event's `data:` checked against
/// the document's `Event`; the reply as far as read.
async fn first_event(gate: &ExtAuth, spec: &Spec) -> anyhow::Result<Reply> {
    let http = reqwest::Client::builder().build()?;
    let mut response = gate
        .authorized(http.get(gate.url(paths::EVENTS)))
        .send()
        .await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut parser = SseParser::new();
    let event = loop {
        let chunk = tokio::time::timeout(PATIENCE, response.chunk())
            .await
            .context("no event in time")??
            .context("the stream ended")?;
        if let Some(event) = parser.push(&chunk)?.into_iter().next() {
            break event;
        }
    };
    assert_eq!(event.event, "parked");
    let event_schema = json!({ "$ref": "#/components/schemas/Event" });
    spec.conforms(&event_schema, &serde_json::from_str(&event.data)?)?;
    Ok(Reply {
        status,
        content_type,
        body: event.data,
    })
}
