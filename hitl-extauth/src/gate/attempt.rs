//! One attempt at an action: what its approval request says (attach, use the approval once,
//! repeat a recent rejection, or open a request), the attempt held in the parking lot, and
//! the approval spent on it with a token bound to its exact bytes.

use super::*;

impl Gate {
    /// One attempt at an action: find what its approval request says (attach, use, repeat a
    /// rejection, or open one) — `incoming`'s body is UTF-8 and `requester` verified.
    pub(super) fn attempt(
        &self,
        incoming: Incoming,
        tool: ToolCall,
        requester: Option<String>,
    ) -> Admission<'_> {
        let route = incoming
            .route
            .clone()
            .unwrap_or_else(|| incoming.path.clone());
        let call = self.parked_call(incoming, tool, requester);
        let arguments = crate::park::arguments(&call).into_owned();
        let (canonical, key) = match action::canonical(&arguments).and_then(|canonical| {
            let action = Action {
                requester: call.requester.as_deref(),
                route: &route,
                tool: &call.tool_name,
                arguments: &arguments,
            };
            Ok((canonical, action.key()?))
        }) {
            Ok(found) => found,
            Err(e) => return Admission::Answer(self.refuse(e.to_string(), &refused_call(&call))),
        };
        if self.rule(&call).is_none() {
            let reason = format!(
                "no rule of the approval policy covers {} on {}: denied (nobody may approve it)",
                call.tool_name, call.path
            );
            return Admission::Answer(self.refuse(reason, &refused_call(&call)));
        }
        self.meet(call, key, canonical, true)
    }

    /// The approval policy's rule for `call` (its path, tool and arguments).
    pub(super) fn rule(&self, call: &ParkedCall) -> Option<&hitl_wire::policy::Rule> {
        let arguments = crate::park::arguments(call);
        self.settings
            .policy
            .rule_for(&call.path, &call.tool_name, &arguments)
    }

    /// Attempt `call` of the action `key` (arguments `canonical`) meets its request: attach,
    /// use, repeat a rejection, or open one. `may_race`: an opening that another replica beat
    /// may meet again once (then attaching to that replica's request).
    pub(super) fn meet(
        &self,
        mut call: ParkedCall,
        key: String,
        canonical: String,
        may_race: bool,
    ) -> Admission<'_> {
        let now = call.received_at;
        let open = || self.request_row(&call, &key, &canonical);
        let (met, expiry) = self
            .requests
            .meet(&key, open, &call.id, call.expires_at, now);
        if let Some(expiry) = expiry {
            let _won = self.audit.transition(expiry, None);
        }
        let met = match met {
            Ok(met) => met,
            Err(full) => return Admission::Answer(self.refuse(full.0, &refused_call(&call))),
        };
        let request_id = match &met {
            Met::Open { id } | Met::Approved { id, .. } | Met::Rejected { id, .. } => id.clone(),
            Met::Nothing => call.id.clone(),
        };
        // The attempt knows its request (for its timeout's message).
        call.request = self.requests.view(&request_id);
        let call = Arc::new(call);
        let (request_id, write) = match met {
            Met::Approved {
                id,
                reviewer,
                reason,
            } => {
                return Admission::Using {
                    call,
                    id,
                    reviewer,
                    reason,
                };
            }
            Met::Rejected { id, reason } => {
                return Admission::Answer(self.rejected_again(&call, id, reason));
            }
            Met::Open { id } => (id.clone(), RequestWrite::Attach(id)),
            Met::Nothing => match self.requests.row(&call.id) {
                Some(row) => {
                    let opened = may_race.then(|| Box::new((key, canonical)));
                    let mut admission = self.hold(
                        call.clone(),
                        call.id.clone(),
                        RequestWrite::Open(Box::new(row)),
                    );
                    if let Admission::Parked(parking) = &mut admission {
                        parking.opened = opened;
                    }
                    return admission;
                }
                // Cannot happen (a request not yet committed is never swept); fail closed.
                None => {
                    let reason = "the approval request could not be opened; send the call again";
                    return Admission::Answer(self.refuse(reason.to_owned(), &refused_call(&call)));
                }
            },
        };
        self.hold(call, request_id, write)
    }

    /// Hold attempt `call` of request `request_id` in the lot until it is answered, its park
    /// and `write` (its request opened or attached to) committed together.
    pub(super) fn hold(
        &self,
        call: Arc<ParkedCall>,
        request_id: String,
        write: RequestWrite,
    ) -> Admission<'_> {
        let mut committed = None;
        let mut write = Some(write);
        let caps = Caps {
            total: self.settings.capacity.total,
            per_requester: self.settings.capacity.per_requester,
        };
        let parked = self.lot.park(Arc::clone(&call), |call| {
            committed = Some(self.audit.park_for(Arc::clone(call), write.take(), caps));
        });
        let (decision, committed) = match (parked, committed) {
            (Ok(decision), Some(committed)) => (decision, committed),
            (Err(full), _) => {
                self.attempt_ended(&request_id, &call.id, false);
                return Admission::Answer(self.refuse(full.to_string(), &refused_call(&call)));
            }
            (Ok(_), None) => unreachable!("the lot runs before_visible on every park"),
        };
        Admission::Parked(Parking {
            committed,
            opened: None,
            waiting: Waiting {
                gate: self,
                id: call.id.clone(),
                request: request_id,
                decision,
                settled: false,
            },
            call,
        })
    }

    /// The stored row of the request `call` opens: its card shows the canonical arguments.
    pub(super) fn request_row(
        &self,
        call: &ParkedCall,
        key: &str,
        canonical: &str,
    ) -> requests::Row {
        let rule = self.rule(call);
        let ttl = rule
            .and_then(|r| r.max_ttl)
            .map_or(self.settings.clocks.ttl, |max| {
                max.min(self.settings.clocks.ttl)
            });
        let open_until = call.received_at + ttl;
        let shown = serde_json::from_str(canonical).unwrap_or(serde_json::Value::Null);
        requests::Row {
            approvals: Vec::new(),
            id: call.id.clone(),
            action_key: key.to_owned(),
            state: RequestState::Open,
            card: ParkedCall {
                tool_args: crate::park::lean(&call.body, shown),
                request: Some(RequestView {
                    approvals: Vec::new(),
                    rule: rule.map(|r| r.view.clone()),
                    id: call.id.clone(),
                    state: RequestState::Open,
                    action_key: key.to_owned(),
                    canonical_args: canonical.to_owned(),
                    attempts: 1,
                    waiting: true,
                    open_until,
                }),
                ..call.clone()
            },
            opened_at: call.received_at,
            open_until,
            reviewer: None,
            reason: String::new(),
            decided_at: None,
            usable_until: None,
            attempts: 1,
            waiting: false,
        }
    }

    /// A re-send of an action rejected within [`REJECTION_HOLD`]: the same rejection, at once.
    pub(super) fn rejected_again(&self, call: &ParkedCall, id: String, reason: String) -> Answer {
        let reason = if reason.trim().is_empty() {
            NO_REASON_GIVEN.to_owned()
        } else {
            reason
        };
        self.metrics.checked(CheckVerdict::Deny);
        let record = ended(call, Outcome::Rejected, None, reason.clone());
        let _committed = self.close_unparked(record);
        Answer::deny(reason, Some(id))
    }

    /// Use the approval of request `id` for attempt `call`: one conditional write decides
    /// which attempt gets it; this one passes only if it won and its record is committed.
    pub(super) async fn use_approval(
        &self,
        call: Arc<ParkedCall>,
        id: String,
        reviewer: String,
        reason: String,
    ) -> Answer {
        self.metrics.checked(CheckVerdict::Park);
        let record = ended(&call, Outcome::Approved, Some(reviewer), reason);
        self.spend(&id, record, Some(call.id.clone())).await
    }

    /// Spend approval `id` on the attempt of `record` (`link`: not yet linked to it), record
    /// the attempt, and let it through with a token bound to its exact bytes — or deny.
    pub(super) async fn spend(
        &self,
        id: &str,
        record: DecidedCall,
        link: Option<String>,
    ) -> Answer {
        // Only a held attempt (a decision's, no link to make) was parked; one using an
        // earlier approval was answered at once.
        let parked = link.is_none();
        let used = requests::use_by(id, &record.call.id, OffsetDateTime::now_utc());
        let grant = self.requests.grant(id);
        // The use and the attempt's record are one commit: one fsync between the decision
        // and the release, and never a use without its record.
        let won = self
            .audit
            .transition_recorded(used.clone(), link, Some(record.clone()))
            .await;
        match won {
            Ok(Ok(true)) => {
                self.requests.applied(&used);
                self.counted(&record, parked);
                self.released(id, &record, grant)
            }
            Ok(Ok(false)) => {
                // Spent by another attempt (perhaps on another replica): take the request as
                // the store holds it, so the next send asks anew.
                if let Ok(Some(row)) = self.audit.request(id).await {
                    self.requests.sync(row, OffsetDateTime::now_utc());
                }
                let reason = format!(
                    "the approval of request {id} was already used by another call; an approval \
                     lets one call through: send the call again to ask for a new one"
                );
                // Answered once its record is committed, as every denial.
                let record = DecidedCall {
                    outcome: Outcome::Denied,
                    reason: reason.clone(),
                    ..record
                };
                let _committed = if parked {
                    self.close(record)
                } else {
                    self.close_unparked(record)
                }
                .await;
                Answer::deny(reason, Some(id.to_owned()))
            }
            Ok(Err(e)) => not_recorded(id, &e.to_string()),
            Err(_) => not_recorded(id, &StoreError::WriterGone.to_string()),
        }
    }

    /// Attempt `attempt` of request `id` is no longer held; `announce`: re-announce the card
    /// (its `waiting` flag changed).
    pub(super) fn attempt_ended(&self, id: &str, attempt: &str, announce: bool) {
        self.requests.detach(id, attempt);
        if announce {
            self.announce(id);
        }
    }

    /// Publish request `id`'s card as it is now (if open).
    pub(super) fn announce(&self, id: &str) {
        if let Some(card) = self.requests.card(id) {
            self.events.publish(|| Event::Parked {
                call: card.preview().into_owned(),
            });
        }
    }

    /// The park's record is committed: let reviewers see its request, start its clock,
    /// announce the request's card (new, or with one more attempt).
    pub(super) fn reveal(&self, call: &Arc<ParkedCall>, request: &str) {
        let id = &call.id;
        self.lot.reveal(id);
        self.requests.reveal(request);
        self.metrics.checked(CheckVerdict::Park);
        self.metrics.parked();
        self.expire_later(id);
        tracing::info!(
            %id, tool = %call.tool_name, requester = call.requester.as_deref().unwrap_or("-"),
            sha256 = %call.body_sha256, "parked"
        );
        self.announce(request);
        if request == id
            && let Some(card) = self.requests.card(request)
        {
            self.notice(hitl_wire::notify::Kind::Opened, &card, None);
        }
    }

    /// `incoming`'s body must be UTF-8 and `requester` its verified requester (both checked
    /// by [`Gate::park`]).
    pub(super) fn parked_call(
        &self,
        incoming: Incoming,
        tool: ToolCall,
        requester: Option<String>,
    ) -> ParkedCall {
        let Incoming {
            method,
            path,
            headers,
            body,
            ..
        } = incoming;
        let claimed_requester = hitl_wire::headers::claimed_requester(&headers);
        let body = String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let received_at = OffsetDateTime::now_utc();
        ParkedCall {
            id: uuid::Uuid::new_v4().to_string(),
            received_at,
            method,
            path,
            headers: redact(headers),
            rpc_method: TOOLS_CALL.to_owned(),
            tool_name: tool.name,
            tool_args: crate::park::lean(&body, tool.arguments),
            body_sha256: hex::encode(Sha256::digest(body.as_bytes())),
            body,
            expires_at: received_at + self.settings.park_timeout,
            requester,
            claimed_requester,
            preview_of_bytes: None,
            request: None,
        }
    }

    /// Let the approved attempt of `record` through on request `id`'s approval, with a token
    /// bound to its exact bytes (none when running without a signing key).
    pub(super) fn released(
        &self,
        id: &str,
        record: &DecidedCall,
        grant: requests::Grant,
    ) -> Answer {
        Answer::Allow {
            approval_id: Some(id.to_owned()),
            token: self
                .settings
                .signer
                .as_ref()
                .map(|signer| signer.sign(&claims(record, id, grant))),
        }
    }
}
