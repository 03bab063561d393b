//! The gate's store: the audit trail (one row per attempt and per denial, `/history`) and the
//! approval requests, behind one contract with two engines beside it — SQLite ([`sqlite`],
//! the embedded default: one file, one replica) and PostgreSQL ([`postgres`]).
//!
//! One writer per process owns the engine's connection; the async side only queues
//! [`Command`]s, so no database call ever runs on a runtime worker. Commands are applied in
//! the order they were queued, a burst of them per transaction (group commit), and each is
//! acknowledged only once its transaction is committed. The statements are written once
//! ([`trail`], [`crate::approval_request::rows`]) over [`sql::Tx`], which each engine
//! implements. Closing a call upserts the whole row, so the outcome lands even if the insert
//! was lost. On open, rows still `pending` (the process stopped while they waited) are closed
//! as `lost`, and the live approval requests are read back.

pub mod caps;
mod listen;
pub mod postgres;
pub mod replica;
pub mod sql;
pub mod sqlite;
pub mod trail;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, mpsc},
    thread,
    time::Instant,
};

use hitl_wire::extauth::{DecidedCall, HistoryPage, HistoryQuery, Outcome, ParkedCall};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::approval_request::rows::{self as requests, Transition};
pub use caps::Caps;
use caps::Counts;
pub use listen::Change;
use sql::Tx;

/// What a park writes about its approval request, in the park's own transaction.
#[derive(Debug)]
pub enum RequestWrite {
    /// The park opens this request.
    Open(Box<requests::Row>),
    /// The park attaches to the request with this id.
    Attach(String),
}

/// Default and largest `/history` page.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;
/// Most commands applied in one transaction.
const MAX_BATCH: usize = 512;
/// Most records nobody waits for (denials) kept to write again while the store is away.
const MAX_UNRECORDED: usize = 10_000;
/// The reason recorded on calls closed as `lost`.
pub const LOST_REASON: &str =
    "hitl-extauth stopped while this call was waiting for review; closed as lost on restart";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("audit database: {0}")]
    Engine(String),
    #[error("audit database holds a malformed {what} for call {id}: {detail}")]
    Corrupt {
        what: &'static str,
        id: String,
        detail: String,
    },
    #[error("bad history cursor {0:?}")]
    BadCursor(String),
    #[error("audit database: commit failed: {0}")]
    Commit(String),
    #[error("the audit writer has stopped")]
    WriterGone,
    /// A cap across the replicas would be passed (the reason says which); nothing written.
    #[error("{0}")]
    Full(String),
    /// Another replica opened a request for the same action a moment before (its id).
    #[error(
        "another replica of the gate opened approval request {0} for this same call a moment \
         ago; send the call again: it attaches to that request"
    )]
    Raced(String),
    #[error("audit database {path}: cannot make it owner-only: {source}")]
    Permissions {
        path: String,
        source: std::io::Error,
    },
}

/// Where a call stands in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Pending,
    Closed(Outcome),
}

/// Where the store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file (`:memory:` for none).
    Sqlite(PathBuf),
    /// A PostgreSQL database: a `postgres://` URL, the password when it is kept out of the
    /// URL (`STORE_PASSWORD_FILE`), and the CA that signs the server's certificate when the
    /// connection is TLS (`STORE_CA_FILE`).
    Postgres {
        url: String,
        password: Option<String>,
        ca_file: Option<PathBuf>,
    },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Location::Postgres { url, .. } => write!(f, "{}", postgres::redacted(url)),
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What the writer is asked to do.
enum Command {
    Park {
        call: Arc<ParkedCall>,
        request: Option<RequestWrite>,
        caps: Caps,
        ack: Reply<()>,
    },
    /// Request `id` as it stands now.
    Read {
        id: String,
        reply: Reply<Option<requests::Row>>,
    },
    /// The requests `which` at `now`.
    Select {
        which: requests::Which,
        now: OffsetDateTime,
        reply: Reply<Vec<requests::Row>>,
    },
    /// This replica is alive; close the calls of replicas that are not, if it may `judge`
    /// (shared store only).
    Beat {
        judge: bool,
    },
    /// One request transition; `link` is an attempt that asked for it (a use); `record` a
    /// history record written with it if it wins (a decision nobody waits for, an expiry).
    /// (Several transitions: all win, or none is written.)
    Transition {
        transitions: Vec<Transition>,
        link: Option<String>,
        record: Option<Box<DecidedCall>>,
        ack: Reply<bool>,
    },
    Close {
        record: Box<DecidedCall>,
        ack: Option<Reply<()>>,
    },
    History {
        query: HistoryQuery,
        reply: Reply<HistoryPage>,
    },
    Lookup {
        id: String,
        reply: Reply<Option<Standing>>,
    },
    /// A coalesced record stands for one more request.
    Bump {
        id: String,
        count: u64,
        at: OffsetDateTime,
    },
    Flush(Reply<()>),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Park { .. } => "Park",
            Command::Read { .. } => "Read",
            Command::Select { .. } => "Select",
            Command::Beat { .. } => "Beat",
            Command::Close { .. } => "Close",
            Command::Transition { .. } => "Transition",
            Command::History { .. } => "History",
            Command::Lookup { .. } => "Lookup",
            Command::Bump { .. } => "Bump",
            Command::Flush(_) => "Flush",
        })
    }
}

/// An engine: runs one closure in one transaction and commits it.
pub trait Engine: Send + 'static {
    /// Run `f` in a new transaction and commit; `Err` when the transaction could not begin
    /// or commit (then nothing `f` wrote is kept).
    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn Tx)) -> Result<(), StoreError>;
}

/// Handle to the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    commands: mpsc::Sender<Command>,
    /// What other replicas change, until the gate takes it (shared store only).
    changes: Arc<Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Change>>>>,
}

/// What opening the store found.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// Calls that were pending when the previous process stopped, now closed as `lost`.
    pub lost: usize,
    /// Approval requests that outlive the process: open, approved unused, rejected in hold.
    pub requests: Vec<requests::Row>,
}

/// What the writer knows besides its engine.
struct Ctx {
    /// This replica's id (the owner of the calls it parks).
    replica: String,
    /// Its `REPLICA_NAME`, if given.
    name: Option<String>,
    /// Whether other replicas write the store too.
    shared: bool,
}

impl Store {
    /// Open (or create) the SQLite store at `path` (`:memory:` for none).
    pub fn open(path: &Path) -> Result<(Self, Opened), StoreError> {
        Self::open_at(&Location::Sqlite(path.to_path_buf()))
    }

    /// Open the store at `location` (migrating its schema), close leftovers as `lost`, read
    /// back the live requests, and start the writer. Everything runs on the writer's own
    /// thread (an engine may block, and may not run inside the async runtime); this waits
    /// for it to be ready.
    pub fn open_at(location: &Location) -> Result<(Self, Opened), StoreError> {
        Self::open_as(location, None)
    }

    /// [`Store::open_at`], as the replica named `name` (`REPLICA_NAME`). On PostgreSQL the
    /// store is shared: this replica registers, closes the calls of replicas that stopped,
    /// and follows what the others change ([`Store::changes`]).
    pub fn open_as(location: &Location, name: Option<&str>) -> Result<(Self, Opened), StoreError> {
        let replica = replica::id(name);
        let ctx = Ctx {
            replica: replica.clone(),
            name: replica::name(name).map(str::to_owned),
            shared: matches!(location, Location::Postgres { .. }),
        };
        let location = location.clone();
        let (ready, opened) = mpsc::channel();
        let (commands, rx) = mpsc::channel();
        let (changes_tx, changes) = tokio::sync::mpsc::unbounded_channel();
        thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || match location {
                Location::Sqlite(path) => serve(|| sqlite::Sqlite::open(&path), &ready, rx, ctx),
                Location::Postgres {
                    url,
                    password,
                    ca_file,
                } => {
                    let me = ctx.replica.clone();
                    let open = move || {
                        let engine = postgres::Postgres::open(
                            &url,
                            password.as_deref(),
                            ca_file.as_deref(),
                        )?;
                        engine.listener(&me).follow(changes_tx)?;
                        Ok(engine)
                    };
                    serve(open, &ready, rx, ctx)
                }
            })
            .map_err(|e| StoreError::Engine(format!("cannot start the writer thread: {e}")))?;
        let opened = opened.recv().map_err(|_| StoreError::WriterGone)??;
        tracing::info!(%replica, "store opened");
        Ok((
            Self {
                commands,
                changes: Arc::new(Mutex::new(Some(changes))),
            },
            opened,
        ))
    }

    /// What other replicas change in the store, as it happens: once (the gate takes it);
    /// never anything on a store nobody else writes.
    pub fn changes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Change>> {
        self.changes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// The requests `which` at `now`, as the store holds them (the cold ones too).
    pub async fn requests(
        &self,
        which: requests::Which,
        now: OffsetDateTime,
    ) -> Result<Vec<requests::Row>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Select { which, now, reply });
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Request `id` as it stands in the store now (another replica may have moved it).
    pub async fn request(&self, id: &str) -> Result<Option<requests::Row>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Read {
            id: id.to_owned(),
            reply,
        });
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    fn send(&self, command: Command) {
        if let Err(mpsc::SendError(command)) = self.commands.send(command) {
            tracing::error!(?command, "store writer has stopped; record not written");
        }
    }

    /// Queue the insert of a newly parked call; `Ok` from the returned receiver means
    /// committed. A burst of parks shares one transaction (group commit), so each waits for
    /// one shared fsync.
    pub fn park(&self, call: Arc<ParkedCall>) -> oneshot::Receiver<Result<(), StoreError>> {
        self.park_for(call, None, Caps::NONE)
    }

    /// [`Store::park`], and in the same transaction what the park does to its approval
    /// request (opens it, or attaches to it), within `caps` across the replicas (a store
    /// nobody else writes leaves the caps to the process).
    pub fn park_for(
        &self,
        call: Arc<ParkedCall>,
        request: Option<RequestWrite>,
        caps: Caps,
    ) -> oneshot::Receiver<Result<(), StoreError>> {
        let (ack, committed) = oneshot::channel();
        self.send(Command::Park {
            call,
            request,
            caps,
            ack,
        });
        committed
    }

    /// Queue one request transition (and the attempt that caused it, if any); the receiver
    /// says, once committed, whether this write won (`false`: the request was no longer in
    /// `transition.from`).
    pub fn transition(
        &self,
        transition: Transition,
        link: Option<String>,
    ) -> oneshot::Receiver<Result<bool, StoreError>> {
        self.transition_recorded(transition, link, None)
    }

    /// [`Store::transition`], and if it wins, `record` on the history in the same commit.
    pub fn transition_recorded(
        &self,
        transition: Transition,
        link: Option<String>,
        record: Option<DecidedCall>,
    ) -> oneshot::Receiver<Result<bool, StoreError>> {
        self.transitions(vec![transition], link, record)
    }

    /// Several transitions of one request in one commit (a decision and the use it is put
    /// to): `true` only if every one won; if any did not, none is written.
    pub fn transitions(
        &self,
        transitions: Vec<Transition>,
        link: Option<String>,
        record: Option<DecidedCall>,
    ) -> oneshot::Receiver<Result<bool, StoreError>> {
        let (ack, won) = oneshot::channel();
        self.send(Command::Transition {
            transitions,
            link,
            record: record.map(Box::new),
            ack,
        });
        won
    }

    /// Queue the close of a call; `Ok` from the returned receiver means committed.
    pub fn close(&self, record: DecidedCall) -> oneshot::Receiver<Result<(), StoreError>> {
        let (ack, committed) = oneshot::channel();
        self.send(Command::Close {
            record: Box::new(record),
            ack: Some(ack),
        });
        committed
    }

    /// Queue a finished record nobody waits for (a denial).
    pub fn record(&self, record: DecidedCall) {
        self.send(Command::Close {
            record: Box::new(record),
            ack: None,
        });
    }

    /// Queue "record `id` now stands for `count` requests, the last at `at`".
    pub fn bump(&self, id: &str, count: u64, at: OffsetDateTime) {
        self.send(Command::Bump {
            id: id.to_owned(),
            count,
            at,
        });
    }

    /// Closed calls, newest first.
    pub async fn history(&self, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::History { query, reply });
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Wait until everything queued so far is committed (or the writer is gone).
    pub async fn flush(&self) {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Flush(reply));
        let _ = answer.await;
    }

    /// Whether the store commits now: an empty transaction through the writer, within
    /// `limit` (readiness: while it fails, every gated call would be denied).
    pub async fn ready(&self, limit: std::time::Duration) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Flush(reply));
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Engine(
                "the store could not begin a transaction".into(),
            )),
            Err(_) => Err(StoreError::Engine(format!(
                "the store did not commit within {limit:?}"
            ))),
        }
    }

    /// Whether `id` was ever parked here, and how it stands. Sees every command queued before.
    pub async fn lookup(&self, id: &str) -> Result<Option<Standing>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Lookup {
            id: id.to_owned(),
            reply,
        });
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// The writer's thread: open the engine, report what opening found (or why it failed),
/// then take what is queued, a burst per transaction, until every handle is gone. On a
/// shared store the replica's heartbeat rides in the first transaction of every second.
fn serve<E: Engine>(
    open: impl FnOnce() -> Result<E, StoreError>,
    ready: &mpsc::Sender<Result<Opened, StoreError>>,
    commands: mpsc::Receiver<Command>,
    ctx: Ctx,
) {
    let opened = open().and_then(|mut engine| {
        let opened = start(&mut engine, &ctx)?;
        Ok((engine, opened))
    });
    let mut engine = match opened {
        Ok((engine, opened)) => {
            let _ = ready.send(Ok(opened));
            engine
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut beaten = Instant::now();
    // Since when this replica's beats have committed without a break.
    let mut alive_since: Option<Instant> = None;
    // Denials' records whose transaction failed (the store was away): written with the next.
    let mut unrecorded: Vec<Command> = Vec::new();
    loop {
        let mut batch = match commands.recv_timeout(replica::HEARTBEAT) {
            Ok(first) => vec![first],
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let beats = ctx.shared && beaten.elapsed() >= replica::HEARTBEAT;
        if beats {
            let judge = alive_since.is_some_and(|t| t.elapsed() >= replica::DEAD_AFTER);
            batch.push(Command::Beat { judge });
            beaten = Instant::now();
        }
        if !unrecorded.is_empty() {
            // Records a failed transaction could not keep go first, in their order.
            batch.splice(0..0, std::mem::take(&mut unrecorded));
        }
        if !batch.is_empty() {
            let again = retryable(&batch);
            let committed = apply(&mut engine, batch, &ctx);
            if !committed {
                keep_for_later(&mut unrecorded, again);
            }
            if beats {
                alive_since = if committed {
                    alive_since.or(Some(beaten))
                } else {
                    None
                };
            }
        }
    }
    tracing::debug!("store writer: every handle dropped, stopping");
}

/// The commands of `batch` nobody waits for (a denial's record, a repeat's count): kept to
/// be written again if the batch's transaction fails, so a denial a caller saw while the store
/// was away still reaches `/history` once it is back. (Everything else was answered with the
/// failure: a park was denied, a decision refused.)
fn retryable(batch: &[Command]) -> Vec<Command> {
    batch
        .iter()
        .filter_map(|command| match command {
            Command::Close { record, ack: None } => Some(Command::Close {
                record: record.clone(),
                ack: None,
            }),
            Command::Bump { id, count, at } => Some(Command::Bump {
                id: id.clone(),
                count: *count,
                at: *at,
            }),
            _ => None,
        })
        .collect()
}

/// Add `again` to the records kept for later, dropping the oldest past [`MAX_UNRECORDED`].
fn keep_for_later(unrecorded: &mut Vec<Command>, again: Vec<Command>) {
    unrecorded.extend(again);
    if unrecorded.len() > MAX_UNRECORDED {
        let dropped = unrecorded.len() - MAX_UNRECORDED;
        unrecorded.drain(..dropped);
        tracing::error!(
            dropped,
            "store: away too long; the oldest denial records kept for it are dropped"
        );
    }
}

/// What a store opened with: attempts left `pending` closed as `lost` (on a shared store,
/// only those of replicas that stopped; this one registers), the live requests.
fn start(engine: &mut impl Engine, ctx: &Ctx) -> Result<Opened, StoreError> {
    let now = OffsetDateTime::now_utc();
    let mut opened = Err(StoreError::WriterGone);
    engine.transaction(&mut |tx| {
        let lost = if ctx.shared {
            // The other replicas hear that these requests' callers are gone.
            replica::arrive(tx, &ctx.replica, ctx.name.as_deref(), now).and_then(
                |(lost, touched)| {
                    for id in &touched {
                        announce(tx, ctx, id)?;
                    }
                    Ok(lost)
                },
            )
        } else {
            trail::close_leftovers(tx, now)
        };
        opened = lost.and_then(|lost| {
            Ok(Opened {
                lost,
                requests: requests::live(tx, now, &ctx.replica)?,
            })
        });
    })?;
    opened
}

/// An acknowledgement to send once the transaction's fate is known.
enum Ack {
    Done(Reply<()>, Result<(), StoreError>),
    Won(Reply<bool>, Result<bool, StoreError>),
    Read(
        Reply<Option<requests::Row>>,
        Box<Result<Option<requests::Row>, StoreError>>,
    ),
}

/// Tell the other replicas (once committed) that request `id` changed.
fn announce(tx: &mut dyn Tx, ctx: &Ctx, id: &str) -> Result<(), StoreError> {
    tx.notify(&format!("{} {id}", ctx.replica))
}

/// Apply a batch in one transaction; acknowledge writes only after the commit. Whether it
/// committed.
fn apply(engine: &mut impl Engine, batch: Vec<Command>, ctx: &Ctx) -> bool {
    let mut batch = Some(batch);
    let mut acks: Vec<Ack> = Vec::new();
    let committed = engine.transaction(&mut |tx| {
        let mut counts = Counts::default();
        for command in batch.take().into_iter().flatten() {
            // Each command all or nothing: a failed one leaves no half of itself behind, and
            // (PostgreSQL aborts a transaction on any error) does not take the batch with it.
            let began = tx.execute("SAVEPOINT command", &[]).is_ok();
            let (ack, failed) = one(tx, command, ctx, &mut counts);
            if began && failed {
                let _ = tx.execute("ROLLBACK TO SAVEPOINT command", &[]);
            }
            if began {
                let _ = tx.execute("RELEASE SAVEPOINT command", &[]);
            }
            acks.extend(ack);
        }
    });
    if let Err(e) = &committed {
        tracing::error!(error = %e, "store: commit failed");
    }
    let committed = committed.map_err(|e| e.to_string());
    for ack in acks {
        match ack {
            Ack::Done(reply, result) => {
                let _ = reply.send(committed.clone().map_err(StoreError::Commit).and(result));
            }
            Ack::Won(reply, result) => {
                let _ = reply.send(committed.clone().map_err(StoreError::Commit).and(result));
            }
            Ack::Read(reply, result) => {
                let _ = reply.send(committed.clone().map_err(StoreError::Commit).and(*result));
            }
        }
    }
    committed.is_ok()
}

/// Carry out one command inside the batch's transaction: what to acknowledge after the
/// commit, and whether it failed.
fn one(tx: &mut dyn Tx, command: Command, ctx: &Ctx, counts: &mut Counts) -> (Option<Ack>, bool) {
    match command {
        Command::Park {
            call,
            request,
            caps,
            ack,
        } => {
            let opens = matches!(request, Some(RequestWrite::Open(_)));
            let now = OffsetDateTime::now_utc();
            let result = counts
                .take(tx, caps, call.requester.as_deref(), opens, now)
                .and_then(|()| trail::park_with_request(tx, &call, request.as_ref(), &ctx.replica))
                .and_then(|named| named.map_or(Ok(()), |id| announce(tx, ctx, &id)));
            match &result {
                Err(StoreError::Full(why)) => {
                    tracing::warn!(id = %call.id, %why, "store: not parked")
                }
                Err(StoreError::Raced(other)) => {
                    tracing::info!(id = %call.id, %other, "store: another replica opened this action's request")
                }
                Err(e) => {
                    tracing::error!(id = %call.id, error = %e, "store: recording a parked call failed")
                }
                Ok(()) => {}
            }
            let failed = result.is_err();
            (Some(Ack::Done(ack, result)), failed)
        }
        Command::Select { which, now, reply } => {
            let rows = requests::select(tx, which, now, &ctx.replica);
            let failed = rows.is_err();
            let _ = reply.send(rows);
            (None, failed)
        }
        Command::Read { id, reply } => {
            let result = requests::one(tx, &id, &ctx.replica);
            let failed = result.is_err();
            (Some(Ack::Read(reply, Box::new(result))), failed)
        }
        Command::Beat { judge } => {
            let result = replica::beat(tx, &ctx.replica, OffsetDateTime::now_utc(), judge)
                .and_then(|(_, touched)| touched.iter().try_for_each(|id| announce(tx, ctx, id)));
            if let Err(e) = &result {
                tracing::error!(error = %e, "store: the replica's heartbeat failed");
            }
            (None, result.is_err())
        }
        Command::Close { record, ack } => {
            let result = trail::upsert_closed(tx, &record).and_then(|()| {
                record
                    .call
                    .request
                    .as_ref()
                    .map_or(Ok(()), |r| announce(tx, ctx, &r.id))
            });
            if let Err(e) = &result {
                tracing::error!(id = %record.call.id, error = %e, "store: recording an outcome failed");
            }
            let failed = result.is_err();
            (ack.map(|ack| Ack::Done(ack, result)), failed)
        }
        Command::History { query, reply } => {
            let page = trail::history(tx, &query);
            let failed = page.is_err();
            let _ = reply.send(page);
            (None, failed)
        }
        Command::Lookup { id, reply } => {
            let standing = trail::lookup(tx, &id);
            let failed = standing.is_err();
            let _ = reply.send(standing);
            (None, failed)
        }
        Command::Bump { id, count, at } => {
            let result = trail::bump(tx, &id, count, at);
            if let Err(e) = &result {
                tracing::error!(%id, error = %e, "store: counting a repeated denial failed");
            }
            (None, result.is_err())
        }
        Command::Transition {
            transitions,
            link,
            record,
            ack,
        } => {
            let result = transition_in(tx, &transitions, link.as_deref(), record.as_deref())
                .and_then(|won| match transitions.first() {
                    Some(first) if won => announce(tx, ctx, &first.id).map(|()| won),
                    _ => Ok(won),
                });
            if let Err(e) = &result {
                let id = transitions.first().map_or("-", |t| t.id.as_str());
                tracing::error!(%id, error = %e, "store: a request transition failed");
            }
            // Lost (or failed): nothing of it stays, not even a first step that won.
            let failed = !matches!(result, Ok(true));
            (Some(Ack::Won(ack, result)), failed)
        }
        Command::Flush(ack) => (Some(Ack::Done(ack, Ok(()))), false),
    }
}

/// Transitions of one request, in order: the attempt's link, each conditional write, and if
/// all won, the record.
fn transition_in(
    tx: &mut dyn Tx,
    transitions: &[Transition],
    link: Option<&str>,
    record: Option<&DecidedCall>,
) -> Result<bool, StoreError> {
    if let (Some(attempt), Some(first)) = (link, transitions.first()) {
        requests::link(tx, &first.id, attempt, first.at)?;
    }
    for transition in transitions {
        if !requests::apply(tx, transition)? {
            return Ok(false);
        }
    }
    if let Some(record) = record {
        trail::upsert_closed(tx, record)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
