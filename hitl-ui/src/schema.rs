//! The live schema version, read from mock-db-mcp's `GET /state` so a `run_migration` card can
//! say "Schema v2 → v3" from the database's real version. Never older than the question: a caller gets
//! a reading taken after it asked. Concurrent callers share one request (a burst of parks
//! costs one read), and short timeouts keep a dead database from holding a card back.

use std::time::{Duration, Instant};

use hitl_wire::mockdb::{AuditPart, State, StateQuery};
use tokio::sync::Mutex;

/// What we know about the current schema version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaVersion {
    Known(String),
    /// `MOCK_DB_STATE_URL` is not set.
    NotConfigured,
    /// Set, but the read failed; the reason is for the card.
    Unavailable(String),
}

/// Reads and briefly caches the schema version.
#[derive(Debug)]
pub struct SchemaProbe {
    url: Option<String>,
    http: reqwest::Client,
    cache: Mutex<Option<(Instant, SchemaVersion)>>,
}

impl SchemaProbe {
    pub fn new(url: Option<String>) -> reqwest::Result<Self> {
        Ok(Self {
            url: url.filter(|u| !u.is_empty()),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_millis(300))
                .timeout(Duration::from_millis(800))
                .build()?,
            cache: Mutex::new(None),
        })
    }

    /// The current version: read after this call began (possibly by a concurrent caller).
    pub async fn current(&self) -> SchemaVersion {
        let Some(url) = &self.url else {
            return SchemaVersion::NotConfigured;
        };
        let asked = Instant::now();
        let mut cache = self.cache.lock().await;
        if let Some((read_at, version)) = cache.as_ref()
            && *read_at >= asked
        {
            return version.clone();
        }
        let started = Instant::now();
        let version = match self.read(url).await {
            Ok(version) => SchemaVersion::Known(version),
            Err(reason) => {
                tracing::warn!(%url, %reason, "cannot read the schema version");
                SchemaVersion::Unavailable(reason)
            }
        };
        *cache = Some((started, version.clone()));
        version
    }

    async fn read(&self, url: &str) -> Result<String, String> {
        // The version only: the audit can be a megabyte, and this is read per batch of parks.
        let response = self
            .http
            .get(url)
            .query(&StateQuery {
                audit: AuditPart::None,
            })
            .send()
            .await
            .map_err(|e| format!("mock-db state unreachable ({})", short_reason(&e)))?;
        if !response.status().is_success() {
            return Err(format!("mock-db state answered {}", response.status()));
        }
        let state: State = response
            .json()
            .await
            .map_err(|_| "mock-db state is not the expected JSON".to_owned())?;
        Ok(state.schema_version)
    }
}

fn short_reason(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection refused"
    } else {
        "request failed"
    }
}

/// `3` → `v3`, `v3` → `v3`: versions read the same whatever form the agent used.
pub fn display_version(version: &str) -> String {
    let version = version.trim();
    if !version.is_empty() && version.chars().all(|c| c.is_ascii_digit()) {
        format!("v{version}")
    } else {
        version.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_display_uniformly() {
        assert_eq!(display_version("3"), "v3");
        assert_eq!(display_version(" v3 "), "v3");
        assert_eq!(display_version("2024_01_add_index"), "2024_01_add_index");
    }

    #[tokio::test]
    async fn each_question_gets_a_reading_taken_after_it() {
        use std::sync::{
            Arc,
            atomic::{AtomicU64, Ordering},
        };
        let reads = Arc::new(AtomicU64::new(1));
        let counter = reads.clone();
        let app = axum::Router::new().route(
            "/state",
            axum::routing::get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    axum::Json(serde_json::json!({
                        "schema_version": format!("v{n}"), "row_counts": {}, "audit": []
                    }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/state", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let probe = SchemaProbe::new(Some(url)).unwrap();
        assert_eq!(probe.current().await, SchemaVersion::Known("v2".into()));
        // A migration just ran: the next card must not show the old reading.
        assert_eq!(probe.current().await, SchemaVersion::Known("v3".into()));
    }

    #[tokio::test]
    async fn not_configured_and_unreachable_are_distinct() {
        let none = SchemaProbe::new(None).unwrap();
        assert_eq!(none.current().await, SchemaVersion::NotConfigured);
        // A port that was just freed: connection refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dead = SchemaProbe::new(Some(format!("http://127.0.0.1:{port}/state"))).unwrap();
        assert!(matches!(
            dead.current().await,
            SchemaVersion::Unavailable(_)
        ));
    }
}
