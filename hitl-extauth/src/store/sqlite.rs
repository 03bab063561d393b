//! The SQLite engine: one file (WAL, `synchronous=FULL`: a commit is on disk), owner-only,
//! the embedded default for one replica. `closed_seq` comes from a counter this process
//! owns, which is sound because nobody else writes the file.

use std::path::Path;

use rusqlite::{Connection, types::ValueRef};

use super::{
    Engine, StoreError,
    sql::{Row, Tx, Value},
};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Engine(e.to_string())
    }
}

/// An open SQLite store.
pub struct Sqlite {
    conn: Connection,
    next_seq: i64,
}

impl Sqlite {
    /// Open (or create) the database at `path` (`:memory:` for none) and bring its schema up
    /// to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        owner_only(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Approvals are only acted on once committed: make a commit mean "on disk".
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Temporary tables and sorts in memory: a pod's root filesystem is read-only and has
        // no /tmp (the gate's are small: pages of history, the open requests).
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(super::trail::SCHEMA)?;
        conn.execute_batch(crate::approval_request::rows::SCHEMA)?;
        add_count_column(&conn)?;
        for (table, column, ty) in super::replica::COLUMNS
            .into_iter()
            .chain(crate::approval_request::rows::COLUMNS)
        {
            add_column(&conn, table, column, ty)?;
        }
        conn.execute_batch(super::replica::TABLES)?;
        let next_seq: i64 = conn.query_row(
            "SELECT COALESCE(MAX(closed_seq), 0) + 1 FROM parked_calls",
            [],
            |r| r.get(0),
        )?;
        Ok(Self { conn, next_seq })
    }
}

/// The trail holds every call's arguments and who asked: readable by its owner only. The
/// database file is created `0600` (SQLite gives its `-wal` and `-shm` files the database's
/// mode) or tightened, with any journal files beside it, before SQLite opens it.
fn owner_only(path: &Path) -> Result<(), StoreError> {
    if path.as_os_str() == ":memory:" || path.as_os_str().is_empty() {
        return Ok(());
    }
    hitl_wire::private::database(path).map_err(|source| StoreError::Permissions {
        path: path.display().to_string(),
        source,
    })
}

/// Databases written before denials were recorded have no `count` column.
fn add_count_column(conn: &Connection) -> Result<(), StoreError> {
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('parked_calls') WHERE name = 'count'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE parked_calls ADD COLUMN count INTEGER NOT NULL DEFAULT 1")?;
    }
    Ok(())
}

/// Databases written before replicas lack their columns.
fn add_column(conn: &Connection, table: &str, column: &str, ty: &str) -> Result<(), StoreError> {
    let has: bool = conn
        .prepare(&format!(
            "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
        ))?
        .exists([column])?;
    if !has {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))?;
    }
    Ok(())
}

impl Engine for Sqlite {
    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn Tx)) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let mut open = SqliteTx {
            tx,
            next_seq: &mut self.next_seq,
        };
        f(&mut open);
        open.tx.commit()?;
        Ok(())
    }
}

struct SqliteTx<'c> {
    tx: rusqlite::Transaction<'c>,
    next_seq: &'c mut i64,
}

fn params(values: &[Value]) -> Vec<rusqlite::types::Value> {
    values
        .iter()
        .map(|v| match v {
            Value::Text(Some(t)) => rusqlite::types::Value::Text(t.clone()),
            Value::Int(Some(i)) => rusqlite::types::Value::Integer(*i),
            Value::Text(None) | Value::Int(None) => rusqlite::types::Value::Null,
        })
        .collect()
}

impl Tx for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        let mut stmt = self.tx.prepare_cached(sql)?;
        let changed = stmt.execute(rusqlite::params_from_iter(params(values)))?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.tx.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params(values)), |r| {
                (0..columns)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            ValueRef::Null => Value::Text(None),
                            ValueRef::Integer(n) => Value::Int(Some(n)),
                            ValueRef::Real(x) => Value::Text(Some(x.to_string())),
                            ValueRef::Text(t) | ValueRef::Blob(t) => {
                                Value::Text(Some(String::from_utf8_lossy(t).into_owned()))
                            }
                        })
                    })
                    .collect::<rusqlite::Result<Vec<Value>>>()
                    .map(Row)
            })?
            .collect::<rusqlite::Result<Vec<Row>>>()?;
        Ok(rows)
    }

    fn next_seq(&mut self) -> Result<i64, StoreError> {
        let seq = *self.next_seq;
        *self.next_seq += 1;
        Ok(seq)
    }
}
