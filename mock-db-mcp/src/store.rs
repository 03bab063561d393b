//! The shared state behind every request: the writer and the audit log under one lock, so a
//! mutation and its audit entry are one step; a small pool of read-only connections for
//! `cluster_db_query`, which never takes that lock (a long query holds up neither writes nor
//! `/state`); async handlers run SQLite off the runtime.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Semaphore;

use hitl_wire::mockdb::{AuditEntry, AuditPart, State, tools};
use serde_json::json;

use crate::{
    audit::{AuditLog, Caller},
    db::{
        Db, DbError, Location, Migration, QueryError, QueryOutput, SchemaVersion, TruncateError,
        query::{Budgets, ReadOnly},
    },
};

/// How long `/readyz` waits for the database to answer.
pub const READY_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Read-only connections, so this many queries run at once; more wait for a free one.
const READERS: usize = 4;

/// Cheap to clone; every clone is the same database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    readers: Arc<Readers>,
}

struct Inner {
    db: Db,
    audit: AuditLog,
}

/// The idle read-only connections; a permit per idle one.
struct Readers {
    idle: Mutex<Vec<ReadOnly>>,
    permits: Semaphore,
}

impl Store {
    pub fn open(location: &Location, budgets: Budgets) -> Result<Self, DbError> {
        let db = Db::open(location)?;
        let idle = (0..READERS)
            .map(|_| db.reader(budgets))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                db,
                audit: AuditLog::default(),
            })),
            readers: Arc::new(Readers {
                idle: Mutex::new(idle),
                permits: Semaphore::new(READERS),
            }),
        })
    }

    /// Run `f` with the lock held, on the blocking pool. A task that died (panicked) comes
    /// back as [`DbError::TaskFailed`], never re-raised.
    async fn with<T, E>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .unwrap_or_else(|err| Err(DbError::TaskFailed(err.to_string()).into()))
    }

    /// Whether the database answers now (`/readyz`): reads its schema version on the
    /// writer's connection, within [`READY_LIMIT`].
    pub async fn ready(&self) -> Result<(), DbError> {
        let answer = self.with(|inner| inner.db.schema_version().map(|_| ()));
        tokio::time::timeout(READY_LIMIT, answer)
            .await
            .unwrap_or_else(|_| {
                Err(DbError::TaskFailed(format!(
                    "the database did not answer within {READY_LIMIT:?}"
                )))
            })
    }

    /// `cluster_db_query`: the rows plus the schema version they were read at, on a reader
    /// of the pool (never under the writer's lock).
    pub async fn query(&self, sql: String) -> Result<(QueryOutput, SchemaVersion), QueryError> {
        let permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|err| DbError::TaskFailed(err.to_string()))?;
        let readers = Arc::clone(&self.readers);
        let result = tokio::task::spawn_blocking(move || {
            let reader = readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .ok_or_else(|| DbError::TaskFailed("no idle reader behind a permit".into()))?;
            let result = reader.run_versioned(&sql);
            readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(reader);
            result
        })
        .await
        .unwrap_or_else(|err| Err(DbError::TaskFailed(err.to_string()).into()));
        drop(permit);
        result
    }

    /// `truncate_table`: empty `table` and audit it.
    pub async fn truncate(
        &self,
        table: String,
        caller: Caller,
    ) -> Result<AuditEntry, TruncateError> {
        self.with(move |inner| {
            let rows_deleted = inner.db.truncate(&table)?;
            Ok(inner.audit.record(
                tools::TRUNCATE_TABLE,
                json!({ "table": table }),
                caller,
                json!({ "rows_deleted": rows_deleted }),
            ))
        })
        .await
    }

    /// `run_migration`: move the schema to `to` and audit it (a no-op is audited too: the
    /// call reached the database).
    /// `approval`: the verified approval that let the call run, if any.
    pub async fn migrate(
        &self,
        to: SchemaVersion,
        caller: Caller,
        approval: Option<hitl_wire::approval::Claims>,
    ) -> Result<(Migration, AuditEntry), DbError> {
        self.with(move |inner| {
            let migration = inner.db.migrate(to)?;
            let mut entry = inner.audit.record(
                tools::RUN_MIGRATION,
                json!({ "version": to }),
                caller,
                json!({
                    "from": migration.from,
                    "to": migration.to,
                    "changed": migration.changed(),
                    "steps": migration.steps,
                }),
            );
            if let Some(approval) = approval {
                entry = inner.audit.amend_last(|e| {
                    e.approved_by = if approval.approvers.is_empty() {
                        vec![approval.reviewer]
                    } else {
                        approval.approvers
                    };
                    e.rule = approval.rule;
                    e.approval_id = Some(approval.id);
                });
            }
            Ok((migration, entry))
        })
        .await
    }

    /// A privileged call refused for want of a valid approval: audited, nothing run.
    pub async fn refuse(
        &self,
        tool: String,
        args: serde_json::Value,
        caller: Caller,
        check: &'static str,
        reason: String,
    ) -> Result<AuditEntry, DbError> {
        self.with(move |inner| {
            Ok(inner.audit.push(AuditEntry {
                approved_by: Vec::new(),
                rule: None,
                seq: 0,
                at: time::OffsetDateTime::now_utc(),
                tool,
                args,
                caller,
                detail: json!({ "check": check, "reason": reason }),
                approval_id: None,
                refused: Some(check.to_owned()),
            }))
        })
        .await
    }

    /// `POST /reset`: seed data and initial schema back, audited; answers the new state.
    pub async fn reset(&self, caller: Caller) -> Result<State, DbError> {
        self.with(move |inner| {
            inner.db.reset()?;
            let row_counts = inner.db.row_counts()?;
            inner.audit.record(
                tools::RESET,
                json!({}),
                caller,
                json!({ "schema_version": SchemaVersion::INITIAL, "row_counts": row_counts }),
            );
            inner.state(AuditPart::All)
        })
        .await
    }

    /// `GET /state`.
    pub async fn state(&self, audit: AuditPart) -> Result<State, DbError> {
        self.with(move |inner| inner.state(audit)).await
    }
}

impl Inner {
    fn state(&self, audit: AuditPart) -> Result<State, DbError> {
        Ok(State {
            schema_version: self.db.schema_version()?.to_string(),
            row_counts: self.db.row_counts()?,
            audit: match audit {
                AuditPart::All => self.audit.entries(),
                AuditPart::None => Vec::new(),
            },
        })
    }
}
