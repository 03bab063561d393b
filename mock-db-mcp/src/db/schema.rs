//! The orders schema: its versions, the migration step between each neighbouring pair (up and
//! down), the seed data, and the `schema_migrations` table that records where the database is.
//!
//! Versions form a line, `v1 → v2 → v3 → v4`; the database starts at `v2`.
//!
//! | step      | up                                                   | down                         |
//! |-----------|------------------------------------------------------|------------------------------|
//! | base → v1 | `customers`, `orders`                                | —                            |
//! | v1 → v2   | index `idx_orders_customer` on `orders(customer)`    | drop the index               |
//! | v2 → v3   | column `orders.shipped_at` + `idx_orders_shipped_at` | drop the index, the column   |
//! | v3 → v4   | table `refunds`                                      | drop the table (and its rows)|
//!
//! Going down is real: it undoes the later steps, dropping what they added. Each step runs in
//! its own transaction together with its `schema_migrations` row, so the recorded version
//! always matches the schema.

use std::fmt;

use rmcp::schemars::{self, JsonSchema};
use rusqlite::{Connection, OptionalExtension as _, Transaction};
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::DbError;

/// Bookkeeping table: one row per step applied, newest last; the last row is the version.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";
/// The version the schema is at: the last row of [`MIGRATIONS_TABLE`].
pub const CURRENT_VERSION_SQL: &str =
    "SELECT version FROM schema_migrations ORDER BY id DESC LIMIT 1";

/// A schema version the database can be at.
//
// Plain `//` comments on the variants and `inline` keep its JSON Schema a flat `enum` outside
// `$defs`, which every model's tool calling understands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum SchemaVersion {
    // Base tables `customers` and `orders`.
    V1,
    // Adds an index on `orders.customer` (the starting version).
    V2,
    // Adds `orders.shipped_at` and its index.
    V3,
    // Adds the `refunds` table.
    V4,
}

impl SchemaVersion {
    /// Every version, oldest first.
    pub const ALL: [SchemaVersion; 4] = [Self::V1, Self::V2, Self::V3, Self::V4];
    /// Where a fresh (or reset) database starts.
    pub const INITIAL: SchemaVersion = Self::V2;

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::V3 => "v3",
            Self::V4 => "v4",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a step moved the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// One applied step, `from` and `to` neighbours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub from: SchemaVersion,
    pub to: SchemaVersion,
    pub direction: Direction,
}

/// What `migrate` did: `steps` is empty when the database was already at `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migration {
    pub from: SchemaVersion,
    pub to: SchemaVersion,
    pub steps: Vec<Step>,
}

impl Migration {
    pub fn changed(&self) -> bool {
        !self.steps.is_empty()
    }
}

/// SQL that builds `version` from the one below it.
fn up_sql(version: SchemaVersion) -> &'static str {
    match version {
        SchemaVersion::V1 => {
            "CREATE TABLE customers (
                 name TEXT PRIMARY KEY,
                 tier TEXT NOT NULL
             );
             CREATE TABLE orders (
                 id       INTEGER PRIMARY KEY,
                 customer TEXT NOT NULL,
                 amount   REAL NOT NULL,
                 status   TEXT NOT NULL
             );"
        }
        SchemaVersion::V2 => "CREATE INDEX idx_orders_customer ON orders (customer);",
        SchemaVersion::V3 => {
            "ALTER TABLE orders ADD COLUMN shipped_at TEXT;
             CREATE INDEX idx_orders_shipped_at ON orders (shipped_at);"
        }
        SchemaVersion::V4 => {
            "CREATE TABLE refunds (
                 id         INTEGER PRIMARY KEY,
                 order_id   INTEGER NOT NULL,
                 amount     REAL NOT NULL,
                 reason     TEXT NOT NULL,
                 created_at TEXT NOT NULL
             );"
        }
    }
}

/// SQL that takes `version` back to the one below it (`None` for the base).
fn down_sql(version: SchemaVersion) -> Option<&'static str> {
    match version {
        SchemaVersion::V1 => None,
        SchemaVersion::V2 => Some("DROP INDEX idx_orders_customer;"),
        SchemaVersion::V3 => Some(
            "DROP INDEX idx_orders_shipped_at;
             ALTER TABLE orders DROP COLUMN shipped_at;",
        ),
        SchemaVersion::V4 => Some("DROP TABLE refunds;"),
    }
}

/// The seed lab's rows.
const SEED_SQL: &str = "
    INSERT INTO customers (name, tier) VALUES
        ('acme', 'gold'), ('globex', 'silver'), ('initech', 'bronze');
    INSERT INTO orders (id, customer, amount, status) VALUES
        (1, 'acme', 199.00, 'paid'),
        (2, 'globex', 42.50, 'paid'),
        (3, 'initech', 1800.00, 'pending');
";

/// Build the schema up to [`SchemaVersion::INITIAL`] and insert the seed rows, on a database
/// with none of our tables.
pub fn create_seeded(conn: &mut Connection) -> Result<(), DbError> {
    let tx = conn.transaction().map_err(DbError::sqlite("begin seed"))?;
    tx.execute_batch(&format!(
        "CREATE TABLE {MIGRATIONS_TABLE} (
             id         INTEGER PRIMARY KEY AUTOINCREMENT,
             version    TEXT NOT NULL,
             direction  TEXT NOT NULL,
             applied_at TEXT NOT NULL
         );"
    ))
    .map_err(DbError::sqlite("create schema_migrations"))?;
    for version in SchemaVersion::ALL
        .into_iter()
        .take_while(|v| *v <= SchemaVersion::INITIAL)
    {
        tx.execute_batch(up_sql(version))
            .map_err(DbError::sqlite("create initial schema"))?;
        record(&tx, version, Direction::Up)?;
    }
    tx.execute_batch(SEED_SQL)
        .map_err(DbError::sqlite("insert seed rows"))?;
    tx.commit().map_err(DbError::sqlite("commit seed"))
}

/// Whether the database already holds our schema (a persisted file from an earlier run).
pub fn is_initialised(conn: &Connection) -> Result<bool, DbError> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [MIGRATIONS_TABLE],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(DbError::sqlite("look for schema_migrations"))
}

/// The version recorded by the last applied step.
pub fn current(conn: &Connection) -> Result<SchemaVersion, DbError> {
    // Prepared once per connection (every query reads it); SQLite re-prepares it itself
    // after a migration changes the schema.
    let text: String = conn
        .prepare_cached(CURRENT_VERSION_SQL)
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(DbError::sqlite("read the schema version"))?;
    SchemaVersion::parse(&text).ok_or(DbError::UnknownRecordedVersion(text))
}

/// Move the schema to `to`, one step at a time (each its own transaction). A no-op, with no
/// steps, when already there.
pub fn migrate(conn: &mut Connection, to: SchemaVersion) -> Result<Migration, DbError> {
    let from = current(conn)?;
    let mut steps = Vec::new();
    let mut at = from;
    while at != to {
        let step = if to > at {
            let next = SchemaVersion::ALL[at.index() + 1];
            apply(conn, next, up_sql(next), Direction::Up)?;
            Step {
                from: at,
                to: next,
                direction: Direction::Up,
            }
        } else {
            let prev = SchemaVersion::ALL[at.index() - 1];
            // `at` > `to` >= V1, so `at` is never the base and always has a down step.
            let sql = down_sql(at).ok_or(DbError::UnknownRecordedVersion(at.to_string()))?;
            apply(conn, prev, sql, Direction::Down)?;
            Step {
                from: at,
                to: prev,
                direction: Direction::Down,
            }
        };
        at = step.to;
        steps.push(step);
    }
    Ok(Migration { from, to, steps })
}

fn apply(
    conn: &mut Connection,
    result: SchemaVersion,
    sql: &str,
    direction: Direction,
) -> Result<(), DbError> {
    let tx = conn
        .transaction()
        .map_err(DbError::sqlite("begin migration step"))?;
    tx.execute_batch(sql)
        .map_err(DbError::sqlite("apply migration step"))?;
    record(&tx, result, direction)?;
    tx.commit()
        .map_err(DbError::sqlite("commit migration step"))
}

fn record(
    tx: &Transaction<'_>,
    version: SchemaVersion,
    direction: Direction,
) -> Result<(), DbError> {
    let now = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("unknown"));
    tx.execute(
        &format!(
            "INSERT INTO {MIGRATIONS_TABLE} (version, direction, applied_at) VALUES (?1, ?2, ?3)"
        ),
        (version.as_str(), direction.as_str(), now),
    )
    .map_err(DbError::sqlite("record migration"))?;
    Ok(())
}
