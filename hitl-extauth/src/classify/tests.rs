//! Exhaustive tests of the classifier: every pass, every park, every denial.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

/// A request as the gateway would describe it; `post` fills in a consistent length.
struct Req {
    method: &'static str,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    body_is_text: bool,
    declared_size: Option<u64>,
}

impl Req {
    fn new(method: &'static str) -> Self {
        Self {
            method,
            headers: BTreeMap::new(),
            body: Vec::new(),
            body_is_text: false,
            declared_size: None,
        }
    }

    fn post(body: impl AsRef<[u8]>) -> Self {
        let body = body.as_ref().to_vec();
        let mut req = Self::new("POST")
            .header("content-type", "application/json")
            .header("content-length", &body.len().to_string());
        req.declared_size = Some(body.len() as u64);
        req.body = body;
        req
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_owned(), value.to_owned());
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.remove(name);
        self
    }

    fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self
    }

    fn declared(mut self, size: Option<u64>) -> Self {
        self.declared_size = size;
        self
    }

    fn classify_with(&self, allow: &AllowList) -> Verdict {
        classify(
            &Frame {
                method: self.method,
                path: "/privileged/mcp",
                headers: &self.headers,
                body: &self.body,
                body_is_text: self.body_is_text,
                declared_size: self.declared_size,
            },
            allow,
        )
    }

    fn classify(&self) -> Verdict {
        self.classify_with(&AllowList::default())
    }

    /// The JSON-RPC request the classifier read along with its verdict.
    fn rpc(&self) -> Option<RpcRequest> {
        classify_rpc(
            &Frame {
                method: self.method,
                path: "/privileged/mcp",
                headers: &self.headers,
                body: &self.body,
                body_is_text: self.body_is_text,
                declared_size: self.declared_size,
            },
            &AllowList::default(),
        )
        .rpc
    }

    #[track_caller]
    fn denied(&self) -> Denial {
        match self.classify() {
            Verdict::Deny(denial) => denial,
            other => panic!("expected a denial, got {other:?}"),
        }
    }
}

fn rpc(method: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}).to_string()
}

fn call(name: &str, args: serde_json::Value) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": args}})
        .to_string()
}

fn parked(name: &str, arguments: serde_json::Value) -> Verdict {
    Verdict::Park(ToolCall {
        name: name.into(),
        arguments,
    })
}

// ---- pass ----

#[test]
fn get_without_body_is_the_event_stream() {
    assert_eq!(Req::new("GET").classify(), Verdict::Pass(Pass::EventStream));
    let with_zero_length = Req::new("GET")
        .header("content-length", "0")
        .declared(Some(0));
    assert_eq!(
        with_zero_length.classify(),
        Verdict::Pass(Pass::EventStream)
    );
}

#[test]
fn delete_without_body_ends_the_session() {
    assert_eq!(
        Req::new("DELETE").classify(),
        Verdict::Pass(Pass::SessionEnd)
    );
}

#[test]
fn allow_listed_methods_pass() {
    for method in [
        "initialize",
        "ping",
        "tools/list",
        "notifications/initialized",
    ] {
        assert_eq!(
            Req::post(rpc(method)).classify(),
            Verdict::Pass(Pass::Rpc {
                method: method.into()
            }),
            "{method}"
        );
    }
}

#[test]
fn notifications_pass_without_id_or_params() {
    let body = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert!(matches!(Req::post(body).classify(), Verdict::Pass(_)));
}

#[test]
fn string_ids_and_surrounding_whitespace_are_fine() {
    let body = "\n  {\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"ping\"}\r\n ";
    assert!(matches!(Req::post(body).classify(), Verdict::Pass(_)));
}

#[test]
fn content_type_parameters_and_case_are_fine() {
    let req = Req::post(rpc("ping")).header("content-type", "Application/JSON; charset=utf-8");
    assert!(matches!(req.classify(), Verdict::Pass(_)));
}

#[test]
fn identity_encoding_and_false_partial_marker_are_fine() {
    let req = Req::post(rpc("ping"))
        .header("content-encoding", "identity")
        .header("x-envoy-auth-partial-body", "false");
    assert!(matches!(req.classify(), Verdict::Pass(_)));
}

#[test]
fn custom_allow_list_is_honoured() {
    let allow: AllowList = "ping,resources/*".parse().unwrap();
    assert!(matches!(
        Req::post(rpc("resources/read")).classify_with(&allow),
        Verdict::Pass(_)
    ));
    assert_eq!(
        Req::post(rpc("tools/list")).classify_with(&allow),
        Verdict::Deny(Denial::MethodNotAllowed("tools/list".into()))
    );
}

// ---- park ----

#[test]
fn tools_call_parks() {
    assert_eq!(
        Req::post(call("run_migration", json!({"target_version": "v3"}))).classify(),
        parked("run_migration", json!({"target_version": "v3"}))
    );
}

#[test]
fn tools_call_without_arguments_parks_with_empty_object() {
    let body =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_migration"}}"#;
    assert_eq!(
        Req::post(body).classify(),
        parked("run_migration", json!({}))
    );
}

#[test]
fn tools_call_with_meta_and_extra_params_parks() {
    let body = r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"t","arguments":{"a":[1,{"b":null}]},"_meta":{"progressToken":1}}}"#;
    assert_eq!(
        Req::post(body).classify(),
        parked("t", json!({"a": [1, {"b": null}]}))
    );
}

#[test]
fn unicode_escaped_tools_call_parks_rather_than_passes() {
    for method in [r"tools\u002fcall", r"tools\/call", r"\u0074ools/call"] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"name":"run_migration","arguments":{{}}}}}}"#
        );
        assert_eq!(
            Req::post(body).classify(),
            parked("run_migration", json!({})),
            "{method}"
        );
    }
}

#[test]
fn escaped_allow_listed_method_still_passes() {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools\u002flist"}"#;
    assert!(matches!(Req::post(body).classify(), Verdict::Pass(_)));
}

#[test]
fn whitespace_padded_tools_call_parks_when_complete() {
    let body = format!(
        "{}{}{}",
        " ".repeat(1000),
        call("run_migration", json!({})),
        "\n".repeat(1000)
    );
    assert_eq!(
        Req::post(body).classify(),
        parked("run_migration", json!({}))
    );
}

#[test]
fn tools_call_on_custom_allow_list_cannot_be_configured() {
    assert!("tools/call".parse::<AllowList>().is_err());
}

// ---- deny: HTTP shape ----

#[test]
fn other_http_methods_are_denied() {
    for method in [
        "PUT", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "get", "Post", "",
    ] {
        let mut req = Req::post(rpc("ping"));
        req.method = method;
        assert_eq!(
            req.denied(),
            Denial::HttpMethod(method.into()),
            "{method:?}"
        );
    }
}

#[test]
fn bodies_on_get_and_delete_are_denied() {
    for method in ["GET", "DELETE"] {
        let cases = [
            Req::new(method).body(rpc("ping")),
            Req::new(method).declared(Some(5)),
            Req::new(method).header("content-length", "5"),
            Req::new(method).header("transfer-encoding", "chunked"),
            Req::new(method).header("x-envoy-auth-partial-body", "true"),
        ];
        for req in cases {
            let denial = req.denied();
            assert!(
                matches!(denial, Denial::BodyOnBodyless { .. }),
                "{method}: {denial:?}"
            );
            assert!(
                denial
                    .to_string()
                    .starts_with(&format!("{method} with a body"))
            );
        }
    }
}

#[test]
fn partial_marker_denies() {
    let req = Req::post(rpc("ping")).header("x-envoy-auth-partial-body", "TRUE");
    assert!(matches!(req.denied(), Denial::Partial(_)));
}

#[test]
fn body_shorter_than_declared_is_partial() {
    let full = call("run_migration", json!({}));
    let req = Req::post(&full)
        .body(&full.as_bytes()[..10])
        .header("content-length", &full.len().to_string());
    let denial = req.denied();
    assert_eq!(
        denial,
        Denial::Partial(format!("10 of {} bytes forwarded", full.len()))
    );
    assert!(
        denial
            .to_string()
            .contains("cut at the gateway's forwarding limit")
    );
}

#[test]
fn truncated_tools_call_is_denied_not_parked() {
    // What Envoy forwards for a 70 KiB body with a 64 KiB limit: the first 64 KiB, marked.
    let padded = format!(
        "{}{}",
        " ".repeat(70 * 1024),
        call("run_migration", json!({}))
    );
    let mut req = Req::post(&padded).header("x-envoy-auth-partial-body", "true");
    req.body.truncate(64 * 1024);
    assert!(matches!(req.denied(), Denial::Partial(_)));
}

#[test]
fn unknown_length_is_denied() {
    let req = Req::post(rpc("ping"))
        .declared(None)
        .without("content-length");
    assert_eq!(req.denied(), Denial::UnknownLength);
    assert!(req.denied().to_string().contains("no Content-Length"));
}

#[test]
fn a_complete_body_without_content_length_is_denied_on_both_gateways() {
    // Envoy: a complete chunked POST has size -1. agentgateway: `Transfer-Encoding` stripped,
    // size = the bytes it buffered. Neither carries a Content-Length: no proof of the length.
    let body = call("run_migration", json!({}));
    let behind_envoy = Req::post(&body).declared(None).without("content-length");
    let behind_agentgateway = Req::post(&body).without("content-length");
    assert_eq!(behind_envoy.denied(), Denial::UnknownLength);
    assert_eq!(behind_agentgateway.denied(), Denial::UnknownLength);
}

#[test]
fn size_minus_one_with_a_content_length_is_a_cut_body() {
    // agentgateway's only partial marker: `size: -1` when the body was cut at maxRequestBytes.
    let full = format!(
        "{}{}",
        call("run_migration", json!({})),
        " ".repeat(70 * 1024)
    );
    let mut req = Req::post(&full).declared(None);
    req.body.truncate(64 * 1024);
    let denial = req.denied();
    assert_eq!(denial, Denial::Partial("65536 bytes forwarded".into()));
    // … and Envoy's marker gives the same reason.
    let mut envoy = Req::post(&full).header("x-envoy-auth-partial-body", "true");
    envoy.body.truncate(64 * 1024);
    assert_eq!(envoy.denied(), denial);
}

#[test]
fn text_with_replacement_characters_is_denied() {
    // agentgateway sends the body as lossy text: a truncated UTF-8 sequence arrives as U+FFFD
    // of the same length, so the lengths agree but the bytes differ from the backend's.
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"run_migration","arguments":{{"version":"v3{}"}}}}}}"#,
        '\u{fffd}'
    );
    let mut req = Req::post(&body);
    req.body_is_text = true;
    assert_eq!(req.denied(), Denial::LossyText);
    // The same bytes as `raw_body` are what the backend gets: they may park.
    req.body_is_text = false;
    assert!(matches!(req.classify(), Verdict::Park(_)));
}

#[test]
fn length_disagreements_are_denied() {
    let body = rpc("ping");
    let longer = Req::post(&body)
        .declared(Some(3))
        .header("content-length", "3");
    assert!(matches!(longer.denied(), Denial::LengthMismatch(_)));
    let header_disagrees = Req::post(&body).header("content-length", "999");
    assert!(matches!(
        header_disagrees.denied(),
        Denial::LengthMismatch(_)
    ));
    let header_garbage = Req::post(&body).header("content-length", "12abc");
    assert!(matches!(header_garbage.denied(), Denial::LengthMismatch(_)));
}

#[test]
fn empty_post_is_denied() {
    assert_eq!(Req::post("").denied(), Denial::EmptyBody);
}

#[test]
fn encoded_bodies_are_denied() {
    for encoding in ["gzip", "br", "deflate, identity"] {
        let req = Req::post(rpc("ping")).header("content-encoding", encoding);
        assert_eq!(req.denied(), Denial::ContentEncoding(encoding.into()));
    }
}

#[test]
fn non_json_content_types_are_denied() {
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonp",
        "",
    ] {
        let req = Req::post(rpc("ping")).header("content-type", ct);
        assert_eq!(req.denied(), Denial::ContentType(ct.into()), "{ct:?}");
    }
    let missing = Req::post(rpc("ping")).without("content-type");
    assert_eq!(missing.denied(), Denial::ContentType(String::new()));
}

// ---- deny: JSON ----

#[test]
fn non_utf8_is_denied() {
    let denial = Req::post(b"{\"jsonrpc\":\"2.0\",\"method\":\"p\xc3\x28ing\"}").denied();
    assert_eq!(denial, Denial::Json(StrictError::NotUtf8 { offset: 28 }));
    assert!(denial.to_string().contains("not valid UTF-8"));
}

#[test]
fn unparseable_bodies_are_denied() {
    for body in [
        "not json",
        "{",
        r#"{"jsonrpc":"2.0","method":"ping"} trailing"#,
        r#"{"jsonrpc":"2.0","method":"ping"}{"jsonrpc":"2.0","method":"ping"}"#,
        "\u{feff}{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}",
        r#"{"jsonrpc":"2.0","method":"ping",}"#,
        r#"{"jsonrpc":"2.0","method":"\ud800"}"#,
    ] {
        let denial = Req::post(body).denied();
        assert!(
            matches!(denial, Denial::Json(StrictError::Syntax(_))),
            "{body}: {denial:?}"
        );
        assert!(denial.to_string().starts_with("body is not valid JSON"));
    }
}

#[test]
fn duplicate_keys_are_denied_at_any_depth() {
    let cases = [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}"#,
            "method",
            "",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping"}"#,
            "method",
            "",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_migration","name":"cluster_db_query"}}"#,
            "name",
            "/params",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"sql":"a","sql":"b"}}}"#,
            "sql",
            "/params/arguments",
        ),
    ];
    for (body, key, path) in cases {
        assert_eq!(
            Req::post(body).denied(),
            Denial::Json(StrictError::DuplicateKey {
                key: key.into(),
                path: path.into()
            }),
            "{body}"
        );
    }
    assert!(
        Req::post(cases[0].0)
            .denied()
            .to_string()
            .contains(r#"duplicate key "method" in the object at the top level"#)
    );
}

#[test]
fn batches_are_denied() {
    for body in [
        format!("[{}]", rpc("ping")),
        format!("[{},{}]", rpc("ping"), call("t", json!({}))),
        "[]".into(),
    ] {
        assert_eq!(Req::post(body).denied(), Denial::Batch);
    }
    assert!(Denial::Batch.to_string().contains("batches"));
}

#[test]
fn non_object_messages_are_denied() {
    for (body, kind) in [
        ("null", "null"),
        ("true", "boolean"),
        ("1", "number"),
        (r#""ping""#, "string"),
    ] {
        assert_eq!(Req::post(body).denied(), Denial::NotAnObject(kind));
    }
}

// ---- deny: JSON-RPC ----

#[test]
fn wrong_or_missing_version_is_denied() {
    for body in [
        r#"{"id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
        r#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0 ","id":1,"method":"ping"}"#,
    ] {
        assert_eq!(Req::post(body).denied(), Denial::Version, "{body}");
    }
}

#[test]
fn unexpected_members_are_denied() {
    for (body, member) in [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}"#,
            "Method",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","extra":1}"#,
            "extra",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#,
            "result",
        ),
    ] {
        assert_eq!(
            Req::post(body).denied(),
            Denial::UnexpectedMember(member.into()),
            "{body}"
        );
    }
}

#[test]
fn responses_and_method_less_messages_are_denied() {
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":1}"#,
    ] {
        assert_eq!(Req::post(body).denied(), Denial::NoMethod, "{body}");
    }
}

#[test]
fn non_string_method_is_denied() {
    for method in ["1", "null", r#"["tools/call"]"#, r#"{"a":1}"#] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":{method}}}"#);
        assert_eq!(Req::post(body).denied(), Denial::MethodNotString);
    }
}

#[test]
fn bad_ids_are_denied() {
    for id in ["null", "true", "[1]", "{}"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        assert_eq!(Req::post(body).denied(), Denial::BadId, "{id}");
    }
}

#[test]
fn non_object_params_are_denied() {
    for params in ["[]", "null", "1", r#""x""#] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{params}}}"#);
        assert_eq!(
            Req::post(body).denied(),
            Denial::ParamsNotObject,
            "{params}"
        );
    }
}

#[test]
fn unknown_methods_are_denied() {
    for method in [
        "resources/read",
        "Tools/call",
        "tools/call ",
        " tools/call",
        "tools/call\u{0}",
        "tools//call",
        "tools/list/",
        "TOOLS/LIST",
        "notifications/",
        "",
    ] {
        assert_eq!(
            Req::post(rpc(method)).denied(),
            Denial::MethodNotAllowed(method.into()),
            "{method:?}"
        );
    }
    assert_eq!(
        Denial::MethodNotAllowed("resources/read".into()).to_string(),
        r#"JSON-RPC method "resources/read" is not on the gate's allow-list"#
    );
}

#[test]
fn malformed_tools_calls_are_denied() {
    let cases = [
        (
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"t"}}"#,
            "notification",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            "no \"params\"",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            "no \"name\"",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}"#,
            "empty",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}"#,
            "must be a string",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[]}}"#,
            "must be an object",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":null}}"#,
            "must be an object",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":"{}"}}"#,
            "must be an object",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","Name":"u"}}"#,
            "only by case",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","ARGUMENTS":{}}}"#,
            "only by case",
        ),
    ];
    for (body, why) in cases {
        let denial = Req::post(body).denied();
        assert!(
            matches!(denial, Denial::BadToolCall(_)),
            "{body}: {denial:?}"
        );
        let reason = denial.to_string();
        assert!(
            reason.starts_with("malformed tools/call: ") && reason.contains(why),
            "{reason}"
        );
    }
}

#[test]
fn tools_call_params_shape_checked_before_anything_parks() {
    // params as an array never parks, even for tools/call
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["run_migration"]}"#;
    assert_eq!(Req::post(body).denied(), Denial::ParamsNotObject);
}

#[test]
fn every_denial_reason_is_a_sentence() {
    // No empty reasons, no debug formatting leaking into what callers see.
    let denials = [
        Denial::HttpMethod("PUT".into()),
        Denial::BodyOnBodyless {
            method: "GET".into(),
            detail: "3 body bytes".into(),
        },
        Denial::Partial("x".into()),
        Denial::UnknownLength,
        Denial::LengthMismatch("content-length \"3\" disagrees with the declared size 5".into()),
        Denial::LossyText,
        Denial::EmptyBody,
        Denial::ContentEncoding("gzip".into()),
        Denial::ContentType("text/plain".into()),
        Denial::Json(StrictError::Syntax("x".into())),
        Denial::Batch,
        Denial::NotAnObject("null"),
        Denial::Version,
        Denial::UnexpectedMember("x".into()),
        Denial::NoMethod,
        Denial::MethodNotString,
        Denial::BadId,
        Denial::ParamsNotObject,
        Denial::MethodNotAllowed("x".into()),
        Denial::BadToolCall("x".into()),
    ];
    for denial in denials {
        let reason = denial.to_string();
        assert!(reason.len() > 10 && !reason.contains("Denial"), "{reason}");
    }
}

#[test]
fn the_verdict_carries_the_json_rpc_id_it_read() {
    let request = |id: serde_json::Value, tool_call| Some(RpcRequest { id, tool_call });
    assert_eq!(Req::post(rpc("tools/list")).rpc(), request(json!(1), false));
    assert_eq!(
        Req::post(call("run_migration", json!({}))).rpc(),
        request(json!(7), true)
    );
    // A denied request is still answered by its id.
    assert_eq!(
        Req::post(r#"{"jsonrpc":"2.0","id":"x","method":"resources/read"}"#).rpc(),
        request(json!("x"), false)
    );
    // Only an id the strict reading is sure of: none for a duplicate id, a bad id, a
    // notification, a batch, or a body that is not JSON.
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":{"x":1},"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
        "not json",
    ] {
        assert_eq!(Req::post(body).rpc(), None, "{body}");
    }
    // Nor for a frame the classifier never parsed.
    assert_eq!(
        Req::post(rpc("tools/list")).without("content-length").rpc(),
        None
    );
}
