//! `POST /calls/{id}/decide`: the one state change that matters. In order: same origin and
//! CSRF token, a reviewer identity, a reason of sane size, the call still pending, separation
//! of duties for approvals, the call's policy rule (`hitl_wire::policy::may_decide`); then
//! `POST /decide/{id}` on the gate with the reviewer's name, their ID token when they signed
//! in at an OpenID Provider, and the reason verbatim. Answers JSON: the gate's `DecidedCall`;
//! 202 with the progress when an approval was counted and more are needed; or `ApiError`.

use axum::{
    Json,
    extract::{Form, Path, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use hitl_wire::extauth::{ApiError, DecideAnswer, DecideRequest, ParkedCall, client::AdminError};
use serde::Deserialize;

use super::{SharedState, now};
use crate::{
    render::{card::MAX_REASON, policy},
    security::{Identity, csrf, identity, identity::Resolved},
};

/// Whether the call's rule lets `reviewer` take this decision (the gate checks it again):
/// the sentence that says why not.
fn eligible(
    state: &SharedState,
    call: &ParkedCall,
    reviewer: &Identity,
    approve: bool,
    reason: &str,
) -> Result<(), String> {
    policy::check(
        call,
        reviewer,
        |name| state.live.static_groups(name),
        approve,
        reason,
    )
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    csrf: Option<String>,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

pub async fn decide(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    let form_token = form.as_ref().ok().and_then(|Form(f)| f.csrf.as_deref());
    if let Err(e) = csrf::check(&state.signer, &headers, form_token) {
        tracing::warn!(%id, error = %e, "decision refused: CSRF");
        return refuse(StatusCode::FORBIDDEN, e.to_string());
    }
    let reviewer = match state.identity.resolve_why(&headers, now()) {
        Resolved::Reviewer(reviewer) => Some(reviewer),
        Resolved::Expired { user } => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                format!(
                    "Your sign-in as {user} at the identity provider has expired: sign in again \
                     to decide."
                ),
            );
        }
        Resolved::Nobody => None,
    };
    let Some(reviewer) = reviewer else {
        let how = if state.identity.any_sign_in() {
            "Sign in to decide: decisions are recorded under the reviewer's name."
        } else if state.identity.configured() {
            "Your auth proxy did not say who you are, so you cannot decide."
        } else {
            "Nobody can decide here: no reviewer sign-in is configured."
        };
        return refuse(StatusCode::UNAUTHORIZED, how);
    };
    let Form(form) = match form {
        Ok(form) => form,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("bad decision form: {e}")),
    };
    let approved = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("decision must be `approve` or `reject`, not `{other}`"),
            );
        }
    };
    if form.reason.chars().count() > MAX_REASON {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("the reason is longer than {MAX_REASON} characters"),
        );
    }

    // The call as the gate holds it: our live copy, or a fresh look at that one call if we
    // have not seen it (never a listing: the queue may be longer than one).
    let call = match state.live.get(&id) {
        Some(call) => Some(call),
        None => match state.admin.pending_call(&id).await {
            Ok(call) => Some(call),
            Err(AdminError::NotFound(_)) => None,
            Err(e) => return refuse(StatusCode::BAD_GATEWAY, e.to_string()),
        },
    };
    let Some(call) = call else {
        return refuse(
            StatusCode::NOT_FOUND,
            "This call is no longer pending: it was decided elsewhere, expired, or abandoned.",
        );
    };
    if approved && state.separation_of_duties && identity::is_requester(&reviewer.user, &call) {
        tracing::warn!(%id, reviewer = %reviewer.user, "self-approval refused");
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "You asked for this call yourself (as {}), so another reviewer must approve it. \
                 You can still reject it.",
                reviewer.user
            ),
        );
    }

    if let Err(why) = eligible(&state, &call, &reviewer, approved, &form.reason) {
        tracing::warn!(%id, reviewer = %reviewer.user, %why, "decision refused: policy");
        return refuse(StatusCode::FORBIDDEN, why);
    }

    let request = DecideRequest {
        id_token: reviewer.id_token.clone(),
        approved,
        reason: form.reason,
        reviewer: Some(reviewer.user.clone()),
    };
    match state.admin.decide_step(&id, &request).await {
        Ok(DecideAnswer::Decided(record)) => {
            tracing::info!(%id, reviewer = %reviewer.user, outcome = record.outcome.as_str(), "decided");
            // The gate's event will say the same; dropping it now keeps this tab snappy.
            state.live.remove(&record);
            Json(record).into_response()
        }
        Ok(DecideAnswer::Counted(call)) => {
            let progress = policy::progress(&call).unwrap_or_else(|| "counted".to_owned());
            tracing::info!(%id, reviewer = %reviewer.user, %progress, "approval counted");
            // The card as it now stands, for every open page (the gate's event says the same).
            let tool_name = call.tool_name.clone();
            state.live.insert(state.cards.make(*call).await);
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({
                    "counted": true,
                    "progress": format!("Approval counted: {progress}. The call waits for more."),
                    "toolName": tool_name,
                })),
            )
                .into_response()
        }
        Err(AdminError::NotFound(message)) => refuse(StatusCode::NOT_FOUND, message),
        Err(AdminError::Conflict(message)) => {
            refuse(StatusCode::CONFLICT, format!("Already decided: {message}"))
        }
        Err(e) => {
            tracing::error!(%id, error = %e, "deciding failed");
            refuse(StatusCode::BAD_GATEWAY, e.to_string())
        }
    }
}
