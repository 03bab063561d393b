//! The one SQL both engines speak, and what an engine must give the store to run it: a
//! transaction that executes a statement and returns rows ([`Tx`]). Statements are written
//! once, with `?N` parameters (SQLite's spelling; the PostgreSQL engine rewrites them to
//! `$N`), in the dialect the two share: `INSERT … ON CONFLICT`, partial unique indexes,
//! `BIGINT` and `TEXT` columns.

use super::StoreError;

/// A parameter or a column value: the two types the store keeps, each nullable. (Typed even
/// when null, because PostgreSQL types its parameters.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(Some(s.to_owned()))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(Some(s))
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(Some(s.clone()))
    }
}

impl From<Option<String>> for Value {
    fn from(s: Option<String>) -> Self {
        Value::Text(s)
    }
}

impl From<Option<&str>> for Value {
    fn from(s: Option<&str>) -> Self {
        Value::Text(s.map(str::to_owned))
    }
}

impl From<&Option<String>> for Value {
    fn from(s: &Option<String>) -> Self {
        Value::Text(s.clone())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(Some(i))
    }
}

impl From<Option<i64>> for Value {
    fn from(i: Option<i64>) -> Self {
        Value::Int(i)
    }
}

/// `u64` as the store's `BIGINT` (saturating).
pub fn int(n: u64) -> Value {
    Value::Int(Some(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, idx: usize) -> Result<&Value, StoreError> {
        self.0
            .get(idx)
            .ok_or_else(|| StoreError::Engine(format!("no column {idx}")))
    }

    /// A nullable text column.
    pub fn opt_text(&self, idx: usize) -> Result<Option<String>, StoreError> {
        match self.at(idx)? {
            Value::Text(t) => Ok(t.clone()),
            Value::Int(i) => Ok(i.map(|i| i.to_string())),
        }
    }

    /// A text column that must hold a value.
    pub fn text(&self, idx: usize) -> Result<String, StoreError> {
        self.opt_text(idx)?
            .ok_or_else(|| StoreError::Engine(format!("column {idx} is NULL")))
    }

    /// A nullable integer column.
    pub fn opt_int(&self, idx: usize) -> Result<Option<i64>, StoreError> {
        match self.at(idx)? {
            Value::Int(i) => Ok(*i),
            Value::Text(None) => Ok(None),
            Value::Text(Some(t)) => t
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Engine(format!("column {idx} is not an integer: {t:?}"))),
        }
    }

    /// An integer column that must hold a value.
    pub fn int(&self, idx: usize) -> Result<i64, StoreError> {
        self.opt_int(idx)?
            .ok_or_else(|| StoreError::Engine(format!("column {idx} is NULL")))
    }
}

/// A transaction of one engine: the store's statements run through this and nothing else.
pub trait Tx {
    /// Run a statement; how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;

    /// Run a query; its rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;

    /// The next `/history` position (`closed_seq`): unique across every writer of the store.
    fn next_seq(&mut self) -> Result<i64, StoreError>;

    /// Whether other processes write this store too (gate replicas on PostgreSQL): then
    /// held calls are owned per replica, caps are counted in the store, and changes are
    /// announced to the others ([`Tx::notify`]).
    fn shared(&self) -> bool {
        false
    }

    /// Tell the other replicas, once this transaction commits, that approval request
    /// `payload` names changed (nothing to tell when nobody else writes the store).
    fn notify(&mut self, _payload: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Hold lock `key` until this transaction ends, against every other writer of the store
    /// (nothing to hold when there is none).
    fn lock(&mut self, _key: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// The first row of a query, if any.
    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// `sql` with SQLite's `?N` parameters spelled as PostgreSQL's `$N` (the store's statements
/// hold no `?` anywhere else).
pub fn dollar_params(sql: &str) -> String {
    sql.replace('?', "$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_rows_read_back() {
        assert_eq!(
            dollar_params("UPDATE t SET a = ?2 WHERE id = ?1"),
            "UPDATE t SET a = $2 WHERE id = $1"
        );
        let row = Row(vec![
            Value::from("x"),
            Value::Int(None),
            Value::from(7),
            Value::Text(None),
        ]);
        assert_eq!(row.text(0).unwrap(), "x");
        assert_eq!(row.opt_int(1).unwrap(), None);
        assert_eq!(row.int(2).unwrap(), 7);
        assert_eq!(row.opt_text(3).unwrap(), None);
        assert!(row.text(3).is_err() && row.int(9).is_err());
    }
}
