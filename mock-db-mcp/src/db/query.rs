//! `cluster_db_query`'s engine: one SQL statement on a connection SQLite itself keeps
//! read-only, behind an authorizer that refuses anything but reading, with caps on SQL size,
//! rows, bytes, time and memory.
//!
//! Defence in depth, each layer enough on its own for writes:
//! 1. the connection is opened `SQLITE_OPEN_READ_ONLY` and has `PRAGMA query_only = ON`;
//! 2. an authorizer allows only `SELECT`, column reads, functions, recursive CTEs and a short
//!    list of read-only `PRAGMA`s — every write, `ATTACH`, schema change, transaction control
//!    and pragma assignment fails at prepare time, naming what was refused;
//! 3. the prepared statement must report itself read-only (`sqlite3_stmt_readonly`);
//! 4. exactly one statement: a trailing second statement is refused.
//!
//! Budgets, each ending the query with an error that names it: a **time budget** (the
//! progress handler interrupts the statement once it has run for [`Budgets::time`]) and a
//! **memory budget** (SQLite's process-wide hard heap limit, [`Budgets::memory_bytes`]; the
//! reader keeps its temporary tables and sorts in memory, so DISTINCT, ORDER BY and GROUP BY
//! over huge values count against it instead of spilling to disk). Values are capped at
//! 64 KiB each (`SQLITE_LIMIT_LENGTH`). Each query runs in its own read transaction, so the
//! rows and the schema version it reports are one snapshot.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rusqlite::{
    Connection, ErrorCode,
    hooks::{AuthAction, AuthContext, Authorization},
    limits::Limit,
    types::ValueRef,
};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{DbError, SchemaVersion, schema};

/// Longest SQL text accepted, in bytes.
pub const MAX_SQL_BYTES: usize = 8 * 1024;
/// Most rows returned; more matching rows set `truncated`.
pub const MAX_ROWS: usize = 200;
/// Rough budget for the values returned (text and blob bytes); past it the rows stop.
const MAX_RESULT_BYTES: usize = 1024 * 1024;
/// Longest single string or blob a query may build.
const MAX_VALUE_BYTES: i32 = 64 * 1024;
/// SQLite calls the progress handler (which checks the clock) every this many VM
/// instructions: well under a millisecond.
const PROGRESS_EVERY_OPS: i32 = 1_000;

/// Our own statements on a reader, run past the authorizer ([`ReadOnly::trusted`]) and kept
/// prepared in the connection's statement cache.
const BEGIN_SQL: &str = "BEGIN DEFERRED";
const COMMIT_SQL: &str = "COMMIT";
/// Every statement text the trusted side prepares through the cache: the caller's SQL with
/// one of these texts never comes from (or goes into) the cache.
const TRUSTED_SQL: [&str; 3] = [BEGIN_SQL, COMMIT_SQL, schema::CURRENT_VERSION_SQL];

/// Run one of our own bodiless, rowless statements from the statement cache.
fn execute_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// How much one query may use. Defaults: [`Budgets::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Wall-clock time one statement may run.
    pub time: Duration,
    /// SQLite's heap, process-wide (all connections together), in bytes.
    pub memory_bytes: u64,
}

impl Budgets {
    /// 1 s (honest queries on this database take milliseconds) and 64 MiB (a quarter of the
    /// kind manifest's 256 MiB container limit).
    pub const DEFAULT: Self = Self {
        time: Duration::from_secs(1),
        memory_bytes: 64 * 1024 * 1024,
    };
}

impl Default for Budgets {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// `1 s`, `250 ms`: for messages.
fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// `64 MiB`: for messages.
fn show_bytes(n: u64) -> String {
    if n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else {
        format!("{n} bytes")
    }
}

/// Pragmas that only report, and may take a table or index name as their argument.
const READ_ONLY_PRAGMAS_WITH_ARG: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
];
/// Pragmas that only report when given no value (with one, some of them write).
const READ_ONLY_PRAGMAS_NO_ARG: &[&str] = &[
    "user_version",
    "schema_version",
    "data_version",
    "application_id",
    "page_count",
    "page_size",
    "freelist_count",
    "encoding",
    "collation_list",
    "function_list",
    "pragma_list",
    "module_list",
    "compile_options",
    "database_list",
];
/// SQL functions refused even though reading: they reach outside the database.
const REFUSED_FUNCTIONS: &[&str] = &["load_extension", "fts3_tokenizer", "readfile", "writefile"];

/// Why a query was not run (or stopped). The text is what the caller sees: it says what was
/// wrong and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("empty SQL: send exactly one SELECT statement")]
    Empty,
    #[error("SQL is {len} bytes; the limit is {MAX_SQL_BYTES} bytes: send a shorter query")]
    TooLong { len: usize },
    #[error(
        "refused: {what}. cluster_db_query is read-only: it runs exactly one SELECT (or WITH … \
         SELECT) statement and never changes data; writes, schema changes, ATTACH/DETACH, \
         transactions and PRAGMA assignments are refused. Nothing was changed."
    )]
    Refused { what: String },
    #[error(
        "more than one statement: cluster_db_query runs exactly one SELECT statement per call; \
         remove everything after the first `;`"
    )]
    MultipleStatements,
    #[error(
        "query stopped: it ran longer than its time budget of {} (QUERY_TIME_BUDGET; a \
         runaway recursive CTE or a huge join?); add a LIMIT or a narrower WHERE. Nothing was \
         changed.",
        show_duration(*budget)
    )]
    TimeBudget { budget: Duration },
    #[error(
        "query stopped: it needed more memory than its budget of {} (QUERY_MEMORY_BUDGET; \
         DISTINCT, ORDER BY or GROUP BY over many large values?); select fewer or smaller \
         values, or add a LIMIT. Nothing was changed.",
        show_bytes(*budget)
    )]
    MemoryBudget { budget: u64 },
    #[error("SQL error: {message}. {schema}")]
    Sql { message: String, schema: String },
    #[error(transparent)]
    Internal(#[from] DbError),
}

/// A query's answer: rows as JSON objects keyed by column name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryOutput {
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
    pub row_count: usize,
    /// More rows matched than were returned (row cap or size cap).
    pub truncated: bool,
}

/// What the authorizer and the progress handler saw during the last statement.
#[derive(Debug, Default)]
struct Watch {
    /// First action the authorizer refused, in words.
    refused: Mutex<Option<String>>,
    /// When the running statement must stop.
    deadline: Mutex<Option<Instant>>,
    /// Our own bookkeeping statements (BEGIN, the schema version) are running, not the
    /// caller's: the authorizer lets them through. `query_only` still forbids writes.
    trusted: AtomicBool,
}

/// A read-only connection with the guard installed.
pub struct ReadOnly {
    conn: Connection,
    watch: Arc<Watch>,
    budgets: Budgets,
}

impl ReadOnly {
    /// Install the guard on `conn`, which the caller opened with `SQLITE_OPEN_READ_ONLY`.
    pub fn new(mut conn: Connection, budgets: Budgets) -> Result<Self, DbError> {
        conn.pragma_update(None, "query_only", true)
            .map_err(DbError::sqlite("set query_only"))?;
        // Temporary b-trees and sorts in memory, under the heap limit (not on disk, which a
        // read-only container root may not even allow).
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(DbError::sqlite("set temp_store"))?;
        set_heap_limit(&conn, budgets.memory_bytes)?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
            .map_err(DbError::sqlite("limit value length"))?;
        conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES as i32)
            .map_err(DbError::sqlite("limit SQL length"))?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)
            .map_err(DbError::sqlite("limit attached databases"))?;
        let watch = Arc::new(Watch::default());
        let auth_watch = Arc::clone(&watch);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| match authorize(&ctx) {
            _ if auth_watch.trusted.load(Ordering::Relaxed) => Authorization::Allow,
            Ok(()) => Authorization::Allow,
            Err(what) => {
                let mut refused = auth_watch
                    .refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // SQLite stops preparing at the first refusal, so there is only one.
                refused.get_or_insert(what);
                Authorization::Deny
            }
        }))
        .map_err(DbError::sqlite("install authorizer"))?;
        let progress_watch = Arc::clone(&watch);
        conn.progress_handler(
            PROGRESS_EVERY_OPS,
            Some(move || {
                progress_watch
                    .deadline
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .is_some_and(|deadline| Instant::now() >= deadline)
            }),
        )
        .map_err(DbError::sqlite("install progress handler"))?;
        Ok(Self {
            conn,
            watch,
            budgets,
        })
    }

    /// Run one of our own statements past the authorizer.
    fn trusted<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        self.watch.trusted.store(true, Ordering::Relaxed);
        let out = f(&self.conn);
        self.watch.trusted.store(false, Ordering::Relaxed);
        out
    }

    /// Run `sql` (one read-only statement) and read the schema version, both in one read
    /// transaction.
    pub fn run_versioned(&self, sql: &str) -> Result<(QueryOutput, SchemaVersion), QueryError> {
        self.trusted(|conn| execute_cached(conn, BEGIN_SQL))
            .map_err(DbError::sqlite("begin the read"))?;
        let result = self
            .trusted(schema::current)
            .map_err(QueryError::from)
            .and_then(|version| {
                let output = self.run(sql, || self.trusted(super::schema_summary))?;
                Ok((output, version))
            });
        // A read transaction: ending it can only fail if it is already gone.
        let _ = self.trusted(|conn| execute_cached(conn, COMMIT_SQL));
        result
    }

    /// Run `sql` (one read-only statement). `schema` is a one-line description of the tables,
    /// appended to SQL errors so the caller can fix the query.
    pub fn run(
        &self,
        sql: &str,
        schema: impl FnOnce() -> String,
    ) -> Result<QueryOutput, QueryError> {
        if sql.trim().is_empty() {
            return Err(QueryError::Empty);
        }
        if sql.len() > MAX_SQL_BYTES {
            return Err(QueryError::TooLong { len: sql.len() });
        }
        self.reset_watch();
        *self
            .watch
            .deadline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Instant::now() + self.budgets.time);
        let result = self.run_guarded(sql);
        *self
            .watch
            .deadline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        result.map_err(|err| self.explain(err, schema))
    }

    fn reset_watch(&self) {
        *self
            .watch
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn run_guarded(&self, sql: &str) -> Result<QueryOutput, rusqlite::Error> {
        // The caller's statements are cached (the authorizer vetted each when it was
        // prepared, and vets it again whenever SQLite re-prepares it after a schema change),
        // except the texts of our own trusted statements: those are prepared afresh, so the
        // authorizer sees them as the caller's and never reuses one we prepared past it.
        let (mut fresh, mut cached);
        let stmt: &mut rusqlite::Statement<'_> = if TRUSTED_SQL.contains(&sql.trim()) {
            fresh = self.conn.prepare(sql)?;
            &mut fresh
        } else {
            cached = self.conn.prepare_cached(sql)?;
            &mut cached
        };
        if !stmt.readonly() {
            // Unreachable with the authorizer in place; kept as an independent check.
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
                Some("statement is not read-only".into()),
            ));
        }
        let columns = unique_column_names(stmt.column_names());
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut truncated = false;
        while let Some(row) = rows.next()? {
            if out.len() == MAX_ROWS || bytes > MAX_RESULT_BYTES {
                truncated = true;
                break;
            }
            let mut object = Map::with_capacity(columns.len());
            for (i, name) in columns.iter().enumerate() {
                let value = row.get_ref(i)?;
                bytes += value_size(&value);
                object.insert(name.clone(), to_json(value));
            }
            out.push(object);
        }
        Ok(QueryOutput {
            columns,
            row_count: out.len(),
            rows: out,
            truncated,
        })
    }

    /// Turn an engine error into what the caller should be told.
    fn explain(&self, err: rusqlite::Error, schema: impl FnOnce() -> String) -> QueryError {
        let refused = self
            .watch
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(what) = refused {
            return QueryError::Refused { what };
        }
        match err {
            rusqlite::Error::MultipleStatement => QueryError::MultipleStatements,
            rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::OperationInterrupted => {
                QueryError::TimeBudget {
                    budget: self.budgets.time,
                }
            }
            rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::OutOfMemory => {
                QueryError::MemoryBudget {
                    budget: self.budgets.memory_bytes,
                }
            }
            rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ReadOnly => {
                QueryError::Refused {
                    what: "the statement would write".into(),
                }
            }
            rusqlite::Error::SqliteFailure(_, Some(message)) => QueryError::Sql {
                message,
                schema: schema(),
            },
            other => QueryError::Sql {
                message: other.to_string(),
                schema: schema(),
            },
        }
    }
}

/// SQLite's process-wide hard heap limit (`PRAGMA hard_heap_limit`): past it every
/// allocation fails with `SQLITE_NOMEM`. It only ever lowers the limit.
pub fn set_heap_limit(conn: &Connection, bytes: u64) -> Result<(), DbError> {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    conn.query_row(&format!("PRAGMA hard_heap_limit = {bytes}"), [], |_| Ok(()))
        .map_err(DbError::sqlite("set the heap limit"))
}

/// The policy: `Ok` to allow, `Err(what)` naming the refused action.
fn authorize(ctx: &AuthContext<'_>) -> Result<(), String> {
    match ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => Ok(()),
        AuthAction::Function { function_name } => {
            if REFUSED_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(function_name))
            {
                Err(format!("the function {function_name}()"))
            } else {
                Ok(())
            }
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let allowed = READ_ONLY_PRAGMAS_WITH_ARG.contains(&name.as_str())
                || (pragma_value.is_none() && READ_ONLY_PRAGMAS_NO_ARG.contains(&name.as_str()));
            if allowed {
                Ok(())
            } else {
                Err(match pragma_value {
                    Some(value) => format!("PRAGMA {pragma_name} = {value}"),
                    None => format!("PRAGMA {pragma_name} (not a read-only pragma)"),
                })
            }
        }
        // CREATE, DROP and ALTER first write the schema table: say what the statement does.
        AuthAction::Insert { table_name } if is_schema_table(table_name) => {
            Err("CREATE (a schema change)".into())
        }
        AuthAction::Delete { table_name } if is_schema_table(table_name) => {
            Err("DROP (a schema change)".into())
        }
        AuthAction::Update { table_name, .. } if is_schema_table(table_name) => {
            Err("ALTER (a schema change)".into())
        }
        AuthAction::Insert { table_name } => Err(format!("INSERT into {table_name}")),
        AuthAction::Update { table_name, .. } => Err(format!("UPDATE of {table_name}")),
        AuthAction::Delete { table_name } => Err(format!("DELETE from {table_name}")),
        AuthAction::Attach { .. } => Err("ATTACH".into()),
        AuthAction::Detach { .. } => Err("DETACH".into()),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Err("transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT)".into())
        }
        AuthAction::CreateTable { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateIndex { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateVtable { .. } => Err("CREATE (a schema change)".into()),
        AuthAction::DropTable { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropView { .. }
        | AuthAction::DropTempView { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropVtable { .. } => Err("DROP (a schema change)".into()),
        AuthAction::AlterTable { .. } => Err("ALTER TABLE (a schema change)".into()),
        AuthAction::Reindex { .. } => Err("REINDEX".into()),
        AuthAction::Analyze { .. } => Err("ANALYZE".into()),
        _ => Err("this kind of statement".into()),
    }
}

/// SQLite's schema table, under any of its names.
fn is_schema_table(name: &str) -> bool {
    [
        "sqlite_master",
        "sqlite_schema",
        "sqlite_temp_master",
        "sqlite_temp_schema",
    ]
    .iter()
    .any(|t| t.eq_ignore_ascii_case(name))
}

/// Column names, with repeats (`SELECT a.id, b.id`) made unique as `id`, `id:2`, ….
fn unique_column_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let mut candidate = name.to_owned();
        let mut n = 1;
        while out.contains(&candidate) {
            n += 1;
            candidate = format!("{name}:{n}");
        }
        out.push(candidate);
    }
    out
}

fn to_json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
            Value::String(format!("X'{hex}'"))
        }
    }
}

fn value_size(value: &ValueRef<'_>) -> usize {
    match value {
        ValueRef::Text(b) | ValueRef::Blob(b) => b.len() + 8,
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, Location};

    fn db() -> Db {
        Db::open(&Location::Memory).expect("open in-memory db")
    }

    fn query(db: &Db, sql: &str) -> Result<QueryOutput, QueryError> {
        db.query(sql)
    }

    fn refused(db: &Db, sql: &str) -> String {
        match query(db, sql) {
            Err(QueryError::Refused { what }) => what,
            other => panic!("expected {sql:?} to be refused, got {other:?}"),
        }
    }

    fn order_count(db: &Db) -> i64 {
        query(db, "SELECT COUNT(*) AS n FROM orders").unwrap().rows[0]["n"]
            .as_i64()
            .unwrap()
    }

    #[test]
    fn selects_joins_and_counts_work() {
        let db = db();
        let out = query(
            &db,
            "SELECT o.id, o.customer, c.tier, o.amount FROM orders o \
             JOIN customers c ON c.name = o.customer WHERE o.status = 'paid' ORDER BY o.id",
        )
        .unwrap();
        assert_eq!(out.columns, ["id", "customer", "tier", "amount"]);
        assert_eq!(out.row_count, 2);
        assert_eq!(out.rows[0]["customer"], "acme");
        assert_eq!(out.rows[0]["tier"], "gold");
        assert_eq!(out.rows[1]["amount"], 42.5);
        assert!(!out.truncated);
        assert_eq!(order_count(&db), 3);
    }

    #[test]
    fn every_kind_of_write_is_refused_and_changes_nothing() {
        let db = db();
        for (sql, what) in [
            ("DELETE FROM orders", "DELETE from orders"),
            ("delete from orders where 1", "DELETE from orders"),
            ("UPDATE orders SET amount = 0", "UPDATE of orders"),
            (
                "INSERT INTO customers VALUES ('x', 'gold')",
                "INSERT into customers",
            ),
            (
                "WITH x AS (SELECT 1) DELETE FROM orders",
                "DELETE from orders",
            ),
            ("SELECT 1; DELETE FROM orders", "DELETE from orders"),
            ("DROP TABLE orders", "DROP"),
            ("CREATE TABLE t (a)", "CREATE"),
            ("CREATE TEMP TABLE t (a)", "CREATE"),
            ("ALTER TABLE orders ADD COLUMN x", "ALTER TABLE"),
            ("ATTACH DATABASE ':memory:' AS other", "ATTACH"),
            ("ATTACH DATABASE '/tmp/evil.db' AS other", "ATTACH"),
            ("DETACH DATABASE main", "DETACH"),
            ("PRAGMA user_version = 7", "PRAGMA user_version = 7"),
            ("PRAGMA query_only = OFF", "PRAGMA query_only"),
            ("PRAGMA journal_mode = DELETE", "PRAGMA journal_mode"),
            ("PRAGMA writable_schema = ON", "PRAGMA writable_schema"),
            ("BEGIN", "transaction control"),
            ("VACUUM", ""),
            ("REINDEX", ""),
            ("SELECT load_extension('x')", "load_extension"),
        ] {
            let got = refused(&db, sql);
            assert!(
                got.contains(what),
                "{sql:?} refused as {got:?}, expected {what:?}"
            );
        }
        assert_eq!(order_count(&db), 3);
        assert_eq!(
            query(&db, "PRAGMA user_version").unwrap().rows[0]["user_version"],
            0
        );
    }

    #[test]
    fn read_only_pragmas_are_allowed() {
        let db = db();
        let out = query(&db, "PRAGMA table_info(orders)").unwrap();
        assert_eq!(out.row_count, 4);
        query(&db, "SELECT name FROM pragma_table_info('customers')").unwrap();
        query(&db, "PRAGMA user_version").unwrap();
    }

    #[test]
    fn a_second_read_statement_is_refused_too() {
        let db = db();
        assert!(matches!(
            query(&db, "SELECT 1; SELECT 2"),
            Err(QueryError::MultipleStatements)
        ));
        // A trailing semicolon and comments are one statement.
        query(&db, "SELECT 1; -- done\n").unwrap();
    }

    #[test]
    fn size_limits_are_enforced() {
        let db = db();
        assert!(matches!(query(&db, "  \n"), Err(QueryError::Empty)));
        let huge = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        assert!(matches!(
            query(&db, &huge),
            Err(QueryError::TooLong { len }) if len == huge.len()
        ));
        let many = query(
            &db,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 1000) \
             SELECT i FROM n",
        )
        .unwrap();
        assert_eq!(many.row_count, MAX_ROWS);
        assert!(many.truncated);
        assert!(matches!(
            query(&db, "SELECT length(zeroblob(10000000))"),
            Err(QueryError::Sql { .. })
        ));
    }

    #[test]
    fn runaway_queries_are_stopped() {
        let db = db();
        let started = Instant::now();
        let err = query(
            &db,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
             SELECT count(*) FROM n",
        )
        .unwrap_err();
        assert!(
            matches!(err, QueryError::TimeBudget { budget } if budget == Budgets::DEFAULT.time),
            "{err:?}"
        );
        assert!(err.to_string().contains("time budget of 1 s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The connection is still usable afterwards.
        assert_eq!(order_count(&db), 3);
    }

    #[test]
    fn sql_errors_say_what_is_wrong_and_what_exists() {
        let db = db();
        let err = query(&db, "SELECT * FROM nope").unwrap_err().to_string();
        assert!(err.contains("no such table: nope"), "{err}");
        assert!(err.contains("orders("), "{err}");
        let err = query(&db, "SELEC 1").unwrap_err().to_string();
        assert!(err.contains("syntax error"), "{err}");
    }

    #[test]
    fn repeated_column_names_stay_distinct() {
        let db = db();
        let out = query(&db, "SELECT 1 AS a, 2 AS a, 3 AS a").unwrap();
        assert_eq!(out.columns, ["a", "a:2", "a:3"]);
        assert_eq!(out.rows[0]["a:3"], 3);
    }

    #[test]
    fn a_reader_reuses_statements_but_never_our_trusted_ones() {
        assert!(schema::CURRENT_VERSION_SQL.contains(schema::MIGRATIONS_TABLE));
        let mut db = db();
        let reader = db.reader(Budgets::DEFAULT).unwrap();
        let run = |sql: &str| reader.run_versioned(sql).map(|(out, _)| out);
        // Twice: the second run comes from the statement cache, and so do BEGIN/COMMIT.
        for _ in 0..2 {
            assert_eq!(
                run("SELECT COUNT(*) AS n FROM orders").unwrap().rows[0]["n"],
                3
            );
        }
        // Our own statements' texts, sent as the caller's SQL, still meet the authorizer.
        for sql in [BEGIN_SQL, COMMIT_SQL, " BEGIN DEFERRED ", "COMMIT\n"] {
            assert!(
                matches!(run(sql), Err(QueryError::Refused { ref what }) if what.contains("transaction control")),
                "{sql:?}"
            );
        }
        assert!(run(schema::CURRENT_VERSION_SQL).is_ok());
        // A cached statement follows the schema: after v4 → v1 the refunds table is gone.
        db.migrate(SchemaVersion::V4).unwrap();
        assert_eq!(
            run("SELECT COUNT(*) AS n FROM refunds").unwrap().row_count,
            1
        );
        db.migrate(SchemaVersion::V1).unwrap();
        let err = run("SELECT COUNT(*) AS n FROM refunds")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such table: refunds"), "{err}");
        assert_eq!(
            run("SELECT COUNT(*) AS n FROM orders").unwrap().rows[0]["n"],
            3
        );
    }
}
