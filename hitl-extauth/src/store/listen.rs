//! Following the other replicas: a thread with its own PostgreSQL connection `LISTEN`s on
//! the channel every replica notifies (in the transaction that changes an approval request,
//! so only committed changes are heard), reads the changed requests as they now stand (a
//! burst in one statement per 64), and hands them to the gate. A decision taken on one
//! replica reaches the call held on another in one notification and one read, not a polling
//! loop. After any reconnection (the server went away, notifications may have been missed)
//! every live request is read again: a resync.

use std::{collections::HashMap, time::Duration};

use postgres::{Client, Statement, fallible_iterator::FallibleIterator as _};
use tokio::sync::mpsc::UnboundedSender;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    StoreError,
    postgres::{CHANNEL, PgTx, connect, redacted},
};
use crate::approval_request::rows::{self as requests, Row};

/// What another replica changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// This request, as it stands now (any state).
    Request(Box<Row>),
    /// Every live request, after the connection to the store was made again.
    Resync(Vec<Row>),
}

/// Longest wait between two reconnection attempts.
const MOST_BACKOFF: Duration = Duration::from_secs(5);

/// How to connect, as whom.
pub struct Listener {
    pub(super) config: postgres::Config,
    pub(super) tls: Option<MakeRustlsConnect>,
    pub(super) shown: String,
    pub(super) replica: String,
}

impl Listener {
    /// Connect and `LISTEN` (failing here fails the start: the store is unusable), then
    /// follow on a thread of its own until the gate stops taking changes.
    pub fn follow(self, changes: UnboundedSender<Change>) -> Result<(), StoreError> {
        let client = self.listen()?;
        std::thread::Builder::new()
            .name("store-listener".into())
            .spawn(move || self.run(client, &changes))
            .map_err(|e| StoreError::Engine(format!("cannot start the listener thread: {e}")))?;
        Ok(())
    }

    fn listen(&self) -> Result<Client, StoreError> {
        let mut client = connect(&self.config, self.tls.as_ref(), &self.shown)?;
        client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
        Ok(client)
    }

    fn run(&self, mut client: Client, changes: &UnboundedSender<Change>) {
        let mut statements = HashMap::new();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.pass(&mut client, &mut statements, changes) {
                Ok(()) => return, // the gate is gone
                Err(e) => tracing::warn!(
                    store = %redacted(&self.shown), error = %e,
                    "store: lost the notifications from other replicas; reconnecting"
                ),
            }
            loop {
                std::thread::sleep(backoff);
                if changes.is_closed() {
                    return;
                }
                match self.listen() {
                    Ok(again) => {
                        client = again;
                        statements.clear();
                        backoff = Duration::from_millis(100);
                        break;
                    }
                    Err(_) => backoff = (backoff * 2).min(MOST_BACKOFF),
                }
            }
            // Whatever was announced meanwhile is lost: read everything live again.
            let now = time::OffsetDateTime::now_utc();
            match read(&mut client, &mut statements, |tx| {
                requests::live(tx, now, &self.replica)
            }) {
                Ok(rows) => {
                    if changes.send(Change::Resync(rows)).is_err() {
                        return;
                    }
                    tracing::info!("store: following other replicas again (resynced)");
                }
                Err(e) => tracing::warn!(error = %e, "store: resync failed; retrying"),
            }
        }
    }

    /// Take notifications until the connection fails (`Err`) or the gate is gone (`Ok`).
    fn pass(
        &self,
        client: &mut Client,
        statements: &mut HashMap<String, Statement>,
        changes: &UnboundedSender<Change>,
    ) -> Result<(), StoreError> {
        loop {
            if changes.is_closed() {
                return Ok(());
            }
            let mut ids: Vec<String> = Vec::new();
            {
                let mut notifications = client.notifications();
                // Wait (a second at most, to notice a gate that is gone) for one, then take
                // whatever else has arrived, and read them all at once.
                let first = notifications.timeout_iter(Duration::from_secs(1)).next()?;
                let mut rest = notifications.iter();
                let mut next = first;
                while let Some(n) = next {
                    let (from, id) = n.payload().split_once(' ').unwrap_or(("", n.payload()));
                    if from != self.replica && !ids.iter().any(|seen| seen == id) {
                        ids.push(id.to_owned());
                    }
                    next = if ids.len() < 256 { rest.next()? } else { None };
                }
            }
            if client.is_closed() {
                return Err(StoreError::Engine("the connection closed".into()));
            }
            for chunk in ids.chunks(requests::MANY) {
                let rows = read(client, statements, |tx| {
                    requests::many(tx, chunk, &self.replica)
                })?;
                for row in rows {
                    if changes.send(Change::Request(Box::new(row))).is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Run `f` in a read transaction on the listener's own connection.
fn read<T>(
    client: &mut Client,
    statements: &mut HashMap<String, Statement>,
    f: impl FnOnce(&mut PgTx<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = client.transaction()?;
    let mut open = PgTx { tx, statements };
    let found = f(&mut open)?;
    open.tx.commit()?;
    Ok(found)
}
