//! The PostgreSQL engine: the store on a server the platform team already runs, for several
//! gate replicas. The schema is versioned and migrated at open under a transaction-scoped
//! advisory lock, so replicas starting together migrate once; `closed_seq` comes from a
//! sequence, unique across replicas. Statements are prepared once per connection.
//!
//! With `STORE_CA_FILE` the connection is TLS (rustls over ring), required, and the server's
//! certificate must chain to that CA and name the URL's host; without it the connection is
//! plaintext, for a server on the same trusted network (a URL that asks for TLS then fails
//! with a reason that names `STORE_CA_FILE`).

use std::{collections::HashMap, path::Path, sync::Arc};

use postgres::{
    Client, NoTls, Statement,
    config::SslMode,
    types::{ToSql, Type},
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    Engine, StoreError,
    sql::{Row, Tx, Value, dollar_params},
};

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // The server's own message (e.g. "password authentication failed for user …").
        StoreError::Engine(format!("PostgreSQL: {}", detail(&e)))
    }
}

/// Any number, the same in every replica: the key of the migration lock.
const MIGRATION_LOCK: i64 = 0x6869_746c_2d6c_6162; // "hitl-lab"

/// The channel on which replicas announce approval requests they changed.
pub const CHANNEL: &str = "hitl_requests";

/// Each schema version, in order; a version is applied once, in one transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, "CREATE SEQUENCE IF NOT EXISTS history_seq;"),
    (2, super::replica::COLUMNS_SQL),
    (3, super::replica::TABLES),
    (4, crate::approval_request::rows::COLUMNS_SQL),
];

/// An open PostgreSQL store.
pub struct Postgres {
    client: Client,
    statements: HashMap<String, Statement>,
    /// To connect again after the server went away.
    config: postgres::Config,
    tls: Option<MakeRustlsConnect>,
    /// The URL without its password, for errors.
    shown: String,
}

/// `url` without its password, for logs and errors: in the user info (`user:***@`), and as a
/// `password=` parameter of the URL's query or of libpq's `key=value` form.
pub fn redacted(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    without_password_parameter(&url)
}

/// Every `password=<value>` (any case; the value up to `&`, whitespace or the end, or quoted
/// as libpq allows) as `password=***`.
fn without_password_parameter(text: &str) -> String {
    const KEY: &str = "password=";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(KEY) {
        let start = from + found;
        // Only a whole key: at the start, or after `?`, `&` or whitespace.
        let whole = start == 0
            || matches!(
                text.as_bytes()[start - 1],
                b'?' | b'&' | b' ' | b'\t' | b'\n'
            );
        let value = start + KEY.len();
        if !whole {
            from = value;
            continue;
        }
        let end = if text[value..].starts_with('\'') {
            // A quoted libpq value: to the closing quote (`\'` escapes one).
            let mut i = value + 1;
            let bytes = text.as_bytes();
            while i < bytes.len() && bytes[i] != b'\'' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            (i + 1).min(text.len())
        } else {
            text[value..]
                .find(['&', ' ', '\t', '\n'])
                .map_or(text.len(), |i| value + i)
        };
        out.push_str(&text[rest..value]);
        out.push_str("***");
        rest = end;
        from = end;
    }
    out.push_str(&text[rest..]);
    out
}

pub(super) fn connect(
    config: &postgres::Config,
    tls: Option<&MakeRustlsConnect>,
    shown: &str,
) -> Result<Client, StoreError> {
    let connected = match tls {
        Some(tls) => config.connect(tls.clone()),
        None => config.connect(NoTls),
    };
    connected.map_err(|e| {
        let why = detail(&e);
        let asks_for_tls = ["no encryption", "SSL", "TLS"]
            .iter()
            .any(|w| why.contains(w));
        let hint = if tls.is_none() && asks_for_tls {
            " (the server wants TLS: set STORE_CA_FILE to the CA of its certificate)"
        } else {
            ""
        };
        StoreError::Engine(format!(
            "cannot connect to {}: {why}{hint}",
            redacted(shown)
        ))
    })
}

/// How long a starting gate waits for its PostgreSQL to accept connections (they often
/// start together: a pod and its database, the local lab's processes).
pub const START_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// [`connect`], retrying while nothing accepts the connection, up to [`START_WAIT`]; an
/// answer from the server (a wrong password, no such database) or a failed TLS handshake ends
/// it at once.
fn connect_at_start(
    config: &postgres::Config,
    tls: Option<&MakeRustlsConnect>,
    shown: &str,
) -> Result<Client, StoreError> {
    let deadline = std::time::Instant::now() + START_WAIT;
    let mut said = false;
    loop {
        let attempt = match tls {
            Some(tls) => config.connect(tls.clone()),
            None => config.connect(NoTls),
        };
        match attempt {
            Ok(client) => return Ok(client),
            // Nobody listening yet ("error connecting to server"), not a TLS or server refusal.
            Err(e)
                if e.as_db_error().is_none()
                    && e.to_string().starts_with("error connecting to server")
                    && std::time::Instant::now() < deadline =>
            {
                if !said {
                    tracing::warn!(store = %redacted(shown), error = %e, "waiting for PostgreSQL");
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            Err(_) => return connect(config, tls, shown),
        }
    }
}

/// PostgreSQL's own message for `e` when the server sent one, else the client's.
fn detail(e: &postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |db| db.message().to_owned())
}

/// TLS that trusts only the CA in `ca_file` (PEM).
fn tls(ca_file: &Path) -> Result<MakeRustlsConnect, StoreError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject as _};
    let bad =
        |why: String| StoreError::Engine(format!("STORE_CA_FILE {}: {why}", ca_file.display()));
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl Postgres {
    /// Connect to `url` (`password` overrides any in it; TLS trusting `ca_file` when given)
    /// and migrate the schema.
    pub fn open(
        url: &str,
        password: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| {
            StoreError::Engine(format!("STORE_URL {}: {e}", redacted(url)))
        })?;
        if let Some(password) = password {
            config.password(password);
        }
        config.application_name("hitl-extauth");
        config.connect_timeout(std::time::Duration::from_secs(10));
        let tls = ca_file.map(tls).transpose()?;
        if tls.is_some() {
            config.ssl_mode(SslMode::Require);
        }
        let client = connect_at_start(&config, tls.as_ref(), url)?;
        let mut store = Self {
            client,
            statements: HashMap::new(),
            config,
            tls,
            shown: redacted(url),
        };
        store.migrate()?;
        Ok(store)
    }

    /// After the server went away: connect again, or say why not.
    fn reconnect(&mut self) -> Result<(), StoreError> {
        self.client = connect(&self.config, self.tls.as_ref(), &self.shown)?;
        self.statements.clear();
        tracing::info!(store = %self.shown, "store: connected to PostgreSQL again");
        Ok(())
    }

    /// How replica `replica` follows the others' changes: its own connection, alike.
    pub fn listener(&self, replica: &str) -> super::listen::Listener {
        super::listen::Listener {
            config: self.config.clone(),
            tls: self.tls.clone(),
            shown: self.shown.clone(),
            replica: replica.to_owned(),
        }
    }

    /// Bring the schema to the newest version, once, whoever else is starting.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )?;
        let applied: Vec<i64> = tx
            .query("SELECT version FROM schema_migrations", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !applied.contains(&0) {
            tx.batch_execute(super::trail::SCHEMA)?;
            tx.batch_execute(crate::approval_request::rows::SCHEMA)?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES (0)", &[])?;
        }
        for (version, sql) in MIGRATIONS {
            if !applied.contains(version) {
                tx.batch_execute(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version],
                )?;
                tracing::info!(version, "store: schema migrated");
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl Engine for Postgres {
    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn Tx)) -> Result<(), StoreError> {
        if self.client.is_closed() {
            // Every write fails closed until the server is back; then the gate goes on.
            self.reconnect()?;
        }
        let tx = self.client.transaction()?;
        let mut open = PgTx {
            tx,
            statements: &mut self.statements,
        };
        f(&mut open);
        open.tx.commit()?;
        Ok(())
    }
}

pub(super) struct PgTx<'c> {
    pub(super) tx: postgres::Transaction<'c>,
    pub(super) statements: &'c mut HashMap<String, Statement>,
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(&dollar_params(sql))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

fn params(values: &[Value]) -> Vec<Box<dyn ToSql + Sync>> {
    values
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                Value::Text(t) => Box::new(t.clone()),
                Value::Int(i) => Box::new(*i),
            }
        })
        .collect()
}

fn column(row: &postgres::Row, idx: usize) -> Result<Value, StoreError> {
    let ty = row.columns()[idx].type_();
    Ok(if *ty == Type::INT8 {
        Value::Int(row.try_get::<_, Option<i64>>(idx)?)
    } else if *ty == Type::INT4 {
        Value::Int(row.try_get::<_, Option<i32>>(idx)?.map(i64::from))
    } else {
        Value::Text(row.try_get::<_, Option<String>>(idx)?)
    })
}

impl Tx for PgTx<'_> {
    fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        if values.is_empty() {
            // Savepoints and other statements without parameters: not worth a prepare.
            self.tx.batch_execute(sql)?;
            return Ok(0);
        }
        let statement = self.statement(sql)?;
        let params = params(values);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p).collect();
        Ok(self.tx.execute(&statement, &refs)?)
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let params = params(values);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p).collect();
        self.tx
            .query(&statement, &refs)?
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| column(row, i))
                    .collect::<Result<_, _>>()
                    .map(Row)
            })
            .collect()
    }

    fn next_seq(&mut self) -> Result<i64, StoreError> {
        let row = self.tx.query_one("SELECT nextval('history_seq')", &[])?;
        Ok(row.get(0))
    }

    fn shared(&self) -> bool {
        true
    }

    fn notify(&mut self, payload: &str) -> Result<(), StoreError> {
        self.execute(
            "SELECT pg_notify(?1, ?2)",
            &[Value::from(CHANNEL), Value::from(payload)],
        )?;
        Ok(())
    }

    fn lock(&mut self, key: i64) -> Result<(), StoreError> {
        self.tx
            .execute("SELECT pg_advisory_xact_lock($1)", &[&key])?;
        Ok(())
    }
}
