//! The orders database: one SQLite database in WAL mode, with a writer connection for the
//! tools that change things and `/state`, and guarded read-only reader connections for
//! `cluster_db_query` ([`Db::reader`]). WAL lets readers and the writer work at the same
//! time: a long query never holds up a write or `/state`.
//!
//! A scratch file by default (in the temp directory, seeded at start, removed when the
//! database is dropped), or a file of the caller's that persists across restarts.

pub mod query;
pub mod schema;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
};

use rusqlite::{Connection, OpenFlags};

pub use query::{QueryError, QueryOutput};
pub use schema::{Migration, SchemaVersion};

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A scratch file, seeded at start and removed when the process exits.
    Memory,
    /// A SQLite file, created (and seeded) if missing, reused as is otherwise.
    File(PathBuf),
}

/// Something went wrong inside the database (not the caller's fault).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{context}: {source}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("schema_migrations records an unknown version {0:?}")]
    UnknownRecordedVersion(String),
    #[error("database task failed: {0}")]
    TaskFailed(String),
    #[error("making {path} readable by its owner only: {source}")]
    Permissions {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl DbError {
    /// `map_err` adapter that adds what we were doing.
    pub fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| Self::Sqlite { context, source }
    }
}

/// `truncate_table` was asked for a table that isn't one of ours.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown table {table:?}: truncate_table accepts exactly one of the existing tables: {}",
    allowed.join(", ")
)]
pub struct UnknownTable {
    pub table: String,
    pub allowed: Vec<String>,
}

/// Result of `truncate_table`.
#[derive(Debug, thiserror::Error)]
pub enum TruncateError {
    #[error(transparent)]
    UnknownTable(#[from] UnknownTable),
    #[error(transparent)]
    Internal(#[from] DbError),
}

/// The open database.
pub struct Db {
    writer: Connection,
    path: PathBuf,
    /// A scratch file of ours, removed on drop.
    scratch: bool,
}

impl Drop for Db {
    fn drop(&mut self) {
        if self.scratch {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = self.path.clone().into_os_string();
                name.push(suffix);
                let _ = std::fs::remove_file(name);
            }
        }
    }
}

impl Db {
    /// Open (creating and seeding if new) the database at `location`.
    pub fn open(location: &Location) -> Result<Self, DbError> {
        let (path, scratch) = match location {
            Location::Memory => {
                // The counter keeps databases of one process (unit tests) apart.
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let path =
                    std::env::temp_dir().join(format!("mock-db-mcp-{}-{n}.db", std::process::id()));
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = path.clone().into_os_string();
                    name.push(suffix);
                    let _ = std::fs::remove_file(name);
                }
                (path, true)
            }
            Location::File(path) => (path.clone(), false),
        };
        // The audit holds callers' identity headers, arguments and approval ids: the file
        // (and the journals SQLite gives its mode) is its owner's alone.
        hitl_wire::private::database(&path).map_err(|source| DbError::Permissions {
            path: path.display().to_string(),
            source,
        })?;
        let mut writer = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(DbError::sqlite("open the database"))?;
        writer
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(DbError::sqlite("set busy timeout"))?;
        // Readers see the last commit and never block the writer (nor it them).
        writer
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(DbError::sqlite("switch to WAL"))?;
        if !schema::is_initialised(&writer)? {
            schema::create_seeded(&mut writer)?;
        }
        Ok(Self {
            writer,
            path,
            scratch,
        })
    }

    /// A new guarded read-only connection to this database (see [`query`]).
    pub fn reader(&self, budgets: query::Budgets) -> Result<query::ReadOnly, DbError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .map_err(DbError::sqlite("open a read-only connection"))?;
        query::ReadOnly::new(conn, budgets)
    }

    pub fn schema_version(&self) -> Result<SchemaVersion, DbError> {
        schema::current(&self.writer)
    }

    /// Run one read-only statement on a fresh reader with the default budgets (tests).
    #[cfg(test)]
    pub fn query(&self, sql: &str) -> Result<QueryOutput, QueryError> {
        self.reader(query::Budgets::DEFAULT)?
            .run_versioned(sql)
            .map(|(output, _)| output)
    }

    /// Our tables (not SQLite's, not the migrations bookkeeping), sorted.
    pub fn tables(&self) -> Result<Vec<String>, DbError> {
        tables(&self.writer)
    }

    pub fn row_counts(&self) -> Result<BTreeMap<String, u64>, DbError> {
        self.tables()?
            .into_iter()
            .map(|table| {
                let n: i64 = self
                    .writer
                    .query_row(
                        &format!("SELECT count(*) FROM {}", quote(&table)),
                        [],
                        |r| r.get(0),
                    )
                    .map_err(DbError::sqlite("count rows"))?;
                Ok((table, u64::try_from(n).unwrap_or_default()))
            })
            .collect()
    }

    /// `orders(id, customer, …); customers(…)`: appended to SQL errors.
    #[cfg(test)]
    pub fn schema_summary(&self) -> String {
        schema_summary(&self.writer)
    }

    /// Delete every row of `table`, which must be one of [`Db::tables`]. Returns rows deleted.
    pub fn truncate(&self, table: &str) -> Result<u64, TruncateError> {
        let allowed = self.tables()?;
        if !allowed.iter().any(|t| t == table) {
            return Err(UnknownTable {
                table: table.to_owned(),
                allowed,
            }
            .into());
        }
        // `table` matched a name from sqlite_master exactly, and is quoted besides.
        let deleted = self
            .writer
            .execute(&format!("DELETE FROM {}", quote(table)), [])
            .map_err(DbError::sqlite("truncate table"))?;
        Ok(deleted as u64)
    }

    pub fn migrate(&mut self, to: SchemaVersion) -> Result<Migration, DbError> {
        schema::migrate(&mut self.writer, to)
    }

    /// Drop everything and start again from the seed at [`SchemaVersion::INITIAL`].
    pub fn reset(&mut self) -> Result<(), DbError> {
        let tx = self
            .writer
            .transaction()
            .map_err(DbError::sqlite("begin reset"))?;
        let tables: Vec<String> = {
            let mut stmt = tx
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                )
                .map_err(DbError::sqlite("list tables for reset"))?;
            stmt.query_map([], |row| row.get(0))
                .and_then(|rows| rows.collect())
                .map_err(DbError::sqlite("list tables for reset"))?
        };
        // Dropping a table drops its indexes and its `sqlite_sequence` row with it.
        for table in tables {
            tx.execute_batch(&format!("DROP TABLE {}", quote(&table)))
                .map_err(DbError::sqlite("drop table for reset"))?;
        }
        tx.commit().map_err(DbError::sqlite("commit reset"))?;
        schema::create_seeded(&mut self.writer)
    }
}

/// Our tables on `conn` (not SQLite's, not the migrations bookkeeping), sorted.
fn tables(conn: &Connection) -> Result<Vec<String>, DbError> {
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> ?1 ORDER BY name",
        )
        .map_err(DbError::sqlite("list tables"))?;
    stmt.query_map([schema::MIGRATIONS_TABLE], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(DbError::sqlite("list tables"))
}

/// `Tables: orders(id, customer, …); customers(…)`, read on `conn`: appended to SQL errors.
pub(crate) fn schema_summary(conn: &Connection) -> String {
    let describe = || -> Result<String, DbError> {
        let mut parts = Vec::new();
        for table in tables(conn)? {
            let mut stmt = conn
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .map_err(DbError::sqlite("describe table"))?;
            let columns: Vec<String> = stmt
                .query_map([&table], |row| row.get(0))
                .and_then(|rows| rows.collect())
                .map_err(DbError::sqlite("describe table"))?;
            parts.push(format!("{table}({})", columns.join(", ")));
        }
        Ok(format!("Tables: {}", parts.join("; ")))
    };
    describe().unwrap_or_default()
}

/// `name` as an SQL identifier: double-quoted, inner quotes doubled.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(db: &Db) -> Vec<(String, u64)> {
        db.row_counts().unwrap().into_iter().collect()
    }

    #[test]
    fn a_new_database_holds_the_seed_at_v2() {
        let db = Db::open(&Location::Memory).unwrap();
        assert_eq!(db.schema_version().unwrap(), SchemaVersion::V2);
        assert_eq!(counts(&db), [("customers".into(), 3), ("orders".into(), 3)]);
    }

    #[test]
    fn truncate_accepts_only_existing_tables() {
        let db = Db::open(&Location::Memory).unwrap();
        for bad in [
            "schema_migrations",
            "sqlite_master",
            "Orders",
            "orders; --",
            "\"orders\"",
        ] {
            match db.truncate(bad) {
                Err(TruncateError::UnknownTable(e)) => {
                    assert_eq!(e.allowed, ["customers", "orders"])
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert_eq!(db.truncate("orders").unwrap(), 3);
        assert_eq!(db.truncate("orders").unwrap(), 0);
        assert_eq!(counts(&db)[1], ("orders".into(), 0));
    }

    #[test]
    fn migrations_go_up_and_down_and_are_idempotent() {
        let mut db = Db::open(&Location::Memory).unwrap();
        let up = db.migrate(SchemaVersion::V4).unwrap();
        assert_eq!(
            (up.from, up.to, up.steps.len()),
            (SchemaVersion::V2, SchemaVersion::V4, 2)
        );
        assert!(db.tables().unwrap().contains(&"refunds".to_string()));
        assert!(db.schema_summary().contains("shipped_at"));
        // The reader sees the new schema.
        db.query("SELECT shipped_at FROM orders").unwrap();

        let again = db.migrate(SchemaVersion::V4).unwrap();
        assert!(!again.changed());

        let down = db.migrate(SchemaVersion::V1).unwrap();
        assert_eq!(down.steps.len(), 3);
        assert_eq!(db.schema_version().unwrap(), SchemaVersion::V1);
        assert!(!db.schema_summary().contains("shipped_at"));
        assert_eq!(db.tables().unwrap(), ["customers", "orders"]);
        // Data in the base tables survives.
        assert_eq!(counts(&db), [("customers".into(), 3), ("orders".into(), 3)]);
    }

    #[test]
    fn reset_restores_seed_and_initial_version() {
        let mut db = Db::open(&Location::Memory).unwrap();
        db.migrate(SchemaVersion::V4).unwrap();
        db.truncate("customers").unwrap();
        db.reset().unwrap();
        assert_eq!(db.schema_version().unwrap(), SchemaVersion::V2);
        assert_eq!(counts(&db), [("customers".into(), 3), ("orders".into(), 3)]);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_database_is_its_owners_alone() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("mock-db-mcp-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("orders.db");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut db = Db::open(&Location::File(path.clone())).unwrap();
        db.migrate(SchemaVersion::V3).unwrap();
        for name in ["orders.db", "orders.db-wal"] {
            let mode = std::fs::metadata(dir.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        drop(db);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_database_persists() {
        let dir = std::env::temp_dir().join(format!("mock-db-mcp-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("orders.db");
        let _ = std::fs::remove_file(&path);
        {
            let mut db = Db::open(&Location::File(path.clone())).unwrap();
            db.migrate(SchemaVersion::V3).unwrap();
            db.truncate("orders").unwrap();
            assert!(db.query("DELETE FROM customers").is_err());
        }
        let db = Db::open(&Location::File(path.clone())).unwrap();
        assert_eq!(db.schema_version().unwrap(), SchemaVersion::V3);
        assert_eq!(counts(&db), [("customers".into(), 3), ("orders".into(), 0)]);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
