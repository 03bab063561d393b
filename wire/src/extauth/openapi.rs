//! The admin API as an OpenAPI 3.1 document: every path of [`super::paths`], each answer's
//! shape from this crate's own types (their JSON Schemas derived by `utoipa`), and which
//! operations need the admin token. hitl-extauth serves it at [`super::paths::OPENAPI`];
//! `tests/openapi.rs` checks the gate's real answers against it.

use utoipa::{
    IntoParams as _, ToSchema,
    openapi::{
        ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder,
        PathItem, PathsBuilder, Ref, RefOr, Required, Schema,
        path::{OperationBuilder, ParameterBuilder, ParameterIn},
        request_body::RequestBodyBuilder,
        response::{ResponseBuilder, ResponsesBuilder},
        schema::{ObjectBuilder, Type},
        security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    },
};

use super::{
    ApiError, DecideRequest, DecidedCall, Event, HistoryPage, HistoryQuery, ParkedCall,
    PendingList, PendingQuery, paths,
};
use crate::policy::PolicyView;

/// The security scheme of the operations that need `Authorization: Bearer <ADMIN_TOKEN>`.
pub const ADMIN_TOKEN_SCHEME: &str = "adminToken";

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Anyone who reaches the port: the probes, `/metrics`, this document.
    Open,
    /// Only with the admin token (or with the admin API opened on purpose).
    Token,
}

/// One answer an operation gives: its status, what it means, and its body.
struct Answer {
    status: u16,
    says: &'static str,
    body: Body,
}

enum Body {
    /// `application/json` of this component schema.
    Json(String),
    /// Text of this media type.
    Text(&'static str),
    /// A JSON object of no schema named here (this document).
    Object,
}

fn json<T: ToSchema>(status: u16, says: &'static str) -> Answer {
    Answer {
        status,
        says,
        body: Body::Json(T::name().into_owned()),
    }
}

fn text(status: u16, says: &'static str, media_type: &'static str) -> Answer {
    Answer {
        status,
        says,
        body: Body::Text(media_type),
    }
}

/// The answers every operation behind the admin token may also give.
fn token_answers() -> Vec<Answer> {
    vec![
        json::<ApiError>(401, "No or a wrong `Authorization: Bearer <ADMIN_TOKEN>`."),
        json::<ApiError>(
            503,
            "The admin API is off: the gate has no ADMIN_TOKEN (and was not opened).",
        ),
    ]
}

/// One operation: method, path, access, summary, and its answers.
struct Operation {
    method: HttpMethod,
    path: &'static str,
    access: Access,
    summary: &'static str,
    answers: Vec<Answer>,
}

fn operations() -> Vec<Operation> {
    const TEXT: &str = "text/plain";
    let get = |path, access, summary, answers| Operation {
        method: HttpMethod::Get,
        path,
        access,
        summary,
        answers,
    };
    vec![
        get(
            paths::PENDING,
            Access::Token,
            "The oldest calls waiting for a reviewer (1 000 unless `limit` says otherwise); \
             large bodies cut to a preview.",
            vec![
                json::<PendingList>(
                    200,
                    "The pending calls, oldest first; `more` when others wait behind them.",
                ),
                json::<ApiError>(400, "A query parameter that does not parse, or `limit=0`."),
            ],
        ),
        get(
            paths::PENDING_CALL,
            Access::Token,
            "One pending call, whole.",
            vec![
                json::<ParkedCall>(200, "The call, with its whole body and arguments."),
                json::<ApiError>(
                    404,
                    "No such call pending (decided, expired or never parked).",
                ),
                json::<ApiError>(500, "The store could not be read."),
            ],
        ),
        Operation {
            method: HttpMethod::Post,
            path: paths::DECIDE,
            access: Access::Token,
            summary: "Approve or reject a pending approval request.",
            answers: vec![
                json::<DecidedCall>(200, "Decided: the request's record."),
                json::<ParkedCall>(
                    202,
                    "Counted: the rule needs more approvals; the card as it stands.",
                ),
                json::<ApiError>(400, "The body is not JSON."),
                json::<ApiError>(
                    403,
                    "This reviewer may not decide this request (policy, separation of duties).",
                ),
                json::<ApiError>(404, "No such request."),
                json::<ApiError>(
                    409,
                    "Already decided, expired, or this reviewer already approved.",
                ),
                json::<ApiError>(
                    422,
                    "JSON of the wrong shape, a reason the rule requires is missing, or an ID token that does not verify.",
                ),
                json::<ApiError>(500, "The decision could not be recorded."),
            ],
        },
        get(
            paths::HISTORY,
            Access::Token,
            "Ended parks and denials, newest first, a page at a time.",
            vec![
                json::<HistoryPage>(200, "One page; `nextBefore` fetches the next."),
                json::<ApiError>(400, "A query parameter or cursor that does not parse."),
            ],
        ),
        get(
            paths::EVENTS,
            Access::Token,
            "Server-sent events: one `parked` per pending call, then live events; each `data:` is an `Event`.",
            vec![text(200, "The event stream.", "text/event-stream")],
        ),
        get(
            paths::POLICY,
            Access::Token,
            "The approval policy: its rules in order and the static members of each group.",
            vec![json::<PolicyView>(200, "The policy.")],
        ),
        get(
            paths::METRICS,
            Access::Open,
            "Prometheus metrics.",
            vec![text(
                200,
                "OpenMetrics text.",
                "application/openmetrics-text",
            )],
        ),
        get(
            paths::HEALTHZ,
            Access::Open,
            "`ok`, then one `warning: …` line per insecure setting.",
            vec![text(200, "Serving.", TEXT)],
        ),
        get(
            paths::LIVEZ,
            Access::Open,
            "Liveness: `live` while the process serves.",
            vec![text(200, "Alive.", TEXT)],
        ),
        get(
            paths::READYZ,
            Access::Open,
            "Readiness: the store commits and the keys are loaded.",
            vec![
                text(200, "Ready.", TEXT),
                text(
                    503,
                    "Not ready, and why (gated calls are denied meanwhile).",
                    TEXT,
                ),
            ],
        ),
        get(
            paths::OPENAPI,
            Access::Open,
            "This document.",
            vec![Answer {
                status: 200,
                says: "OpenAPI 3.1.",
                body: Body::Object,
            }],
        ),
    ]
}

/// Every operation of the admin API as `(method, path, access)`, in the document's order:
/// what hitl-extauth's router must serve, no more and no less.
pub fn routes() -> Vec<(&'static str, &'static str, Access)> {
    operations()
        .into_iter()
        .map(|op| (method_name(&op.method), op.path, op.access))
        .collect()
}

/// The lower-case name the document gives `method`.
fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        _ => "other",
    }
}

/// The admin API's OpenAPI 3.1 document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for op in operations() {
        paths = paths.path(op.path, PathItem::new(op.method.clone(), operation(&op)));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("hitl-extauth admin API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The reviewer's queue, its decisions, the audit trail, the live feed and \
                     the operator's probes of hitl-extauth, the human-in-the-loop gate.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components()))
        .build()
}

fn operation(op: &Operation) -> utoipa::openapi::path::Operation {
    let mut answers = ResponsesBuilder::new();
    let mut all = op.answers.iter().collect::<Vec<_>>();
    let token = token_answers();
    if op.access == Access::Token {
        all.extend(&token);
    }
    for answer in all {
        let mut response = ResponseBuilder::new().description(answer.says);
        response = match &answer.body {
            Body::Json(name) => response.content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(name.clone())))
                    .build(),
            ),
            Body::Text(media_type) => response.content(
                *media_type,
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            ),
            Body::Object => response.content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                    .build(),
            ),
        };
        answers = answers.response(answer.status.to_string(), response.build());
    }
    let mut builder = OperationBuilder::new()
        .summary(Some(op.summary))
        .responses(answers.build());
    if op.access == Access::Token {
        builder = builder.security(SecurityRequirement::new(
            ADMIN_TOKEN_SCHEME,
            Vec::<String>::new(),
        ));
    }
    if op.path.contains("{id}") {
        builder = builder.parameter(
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("The approval request's (a card's) id."))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    if op.path == paths::HISTORY {
        builder = builder.parameters(Some(HistoryQuery::into_params(|| Some(ParameterIn::Query))));
    }
    if op.path == paths::PENDING {
        builder = builder.parameters(Some(PendingQuery::into_params(|| Some(ParameterIn::Query))));
    }
    if op.path == paths::DECIDE {
        builder = builder.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(DecideRequest::name())))
                        .build(),
                )
                .build(),
        ));
    }
    builder.build()
}

/// Every shape the operations name, with the shapes they are made of; and the token scheme.
fn components() -> utoipa::openapi::Components {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    add::<PendingList>(&mut schemas);
    add::<ParkedCall>(&mut schemas);
    add::<DecideRequest>(&mut schemas);
    add::<DecidedCall>(&mut schemas);
    add::<HistoryPage>(&mut schemas);
    add::<Event>(&mut schemas);
    add::<PolicyView>(&mut schemas);
    add::<ApiError>(&mut schemas);
    ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            ADMIN_TOKEN_SCHEME,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
        .build()
}

fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_shape_is_a_component() {
        let doc = serde_json::to_value(document()).unwrap();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in text
            .split("\"#/components/schemas/")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').unwrap()])
        {
            assert!(
                schemas.contains_key(name),
                "{name} is named but not defined"
            );
        }
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
