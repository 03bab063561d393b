//! What the gate writes and signs about an attempt: its finished record, its denial record,
//! the approval token's claims, the requester it can prove, and the headers it redacts.

use super::*;

/// The finished record of `call`, ended now.
pub(super) fn ended(
    call: &ParkedCall,
    outcome: Outcome,
    reviewer: Option<String>,
    reason: String,
) -> DecidedCall {
    let decided_at = OffsetDateTime::now_utc();
    DecidedCall {
        waited_ms: u64::try_from((decided_at - call.received_at).whole_milliseconds()).unwrap_or(0),
        call: call.clone(),
        outcome,
        reviewer,
        reason,
        decided_at,
        count: 1,
    }
}

/// Deny an approved attempt whose use could not be recorded: fail closed.
pub(super) fn not_recorded(id: &str, e: &str) -> Answer {
    tracing::error!(%id, error = %e, "approval not recorded; denying");
    Answer::deny(
        format!("approved, but the approval could not be recorded ({e}); denied"),
        Some(id.to_owned()),
    )
}

/// What an approval token asserts about an approved attempt of request `id`.
pub(super) fn claims(record: &DecidedCall, id: &str, grant: requests::Grant) -> Claims {
    let iat = record.decided_at.unix_timestamp();
    Claims {
        approvers: grant.approvers,
        rule: grant.rule,
        id: id.to_owned(),
        sha256: record.call.body_sha256.clone(),
        tool: record.call.tool_name.clone(),
        requester: record.call.requester.clone(),
        reviewer: record.reviewer.clone().unwrap_or_default(),
        iat,
        exp: iat + approval::TTL_SECS,
    }
}

/// Who asked for a call, as far as the gate can prove it: the requester of the token it
/// verified ([`crate::requester`]); identity headers and stated claims never count.
pub fn requester(verified: &Verified) -> Option<String> {
    match verified {
        Verified::Requester(identity) => Some(identity.as_str().to_owned()),
        Verified::Absent | Verified::Invalid(_) => None,
    }
}

/// What a denial record keeps of an attempt.
pub(super) fn refused_call(call: &ParkedCall) -> Refused<'_> {
    Refused {
        method: &call.method,
        path: &call.path,
        headers: Some(&call.headers),
        body: call.body.as_bytes(),
        requester: call.requester.clone(),
    }
}

/// What a denial record keeps of `incoming`.
pub(super) fn refused(incoming: &Incoming) -> Refused<'_> {
    Refused {
        method: &incoming.method,
        path: &incoming.path,
        headers: Some(&incoming.headers),
        body: &incoming.body,
        requester: requester(&incoming.verified),
    }
}

pub(super) fn redact_in_place(headers: &mut BTreeMap<String, String>) {
    for name in REDACTED_HEADERS {
        if let Some(value) = headers.get_mut(name) {
            *value = REDACTED.to_owned();
        }
    }
}

pub(super) fn redact(mut headers: BTreeMap<String, String>) -> BTreeMap<String, String> {
    redact_in_place(&mut headers);
    headers
}

/// The id suffix of a request's own record of its decision (made while nobody was held).
pub const DECISION_SUFFIX: &str = ".decision";
/// The id suffix of a request's own record of its expiry (`APPROVAL_TTL`).
pub const EXPIRY_SUFFIX: &str = ".expiry";

/// `record` as the approval request's own history record: its id is the request's with
/// `suffix`, so it never collides with an attempt's (the first attempt shares the request's id).
pub(super) fn request_record(record: &DecidedCall, suffix: &str) -> DecidedCall {
    DecidedCall {
        call: ParkedCall {
            id: format!("{}{suffix}", record.call.id),
            ..record.call.clone()
        },
        ..record.clone()
    }
}
