//! Notifications (issue #28): when an approval request opens, is decided or expires, a POST
//! to each configured receiver — generic JSON or Slack's incoming-webhook format — signed
//! with HMAC-SHA256 over the timestamp and the body ([`hitl_wire::notify`]). Sent from a
//! bounded queue by a task of their own, each retried with backoff: a receiver that is slow,
//! down or wrong never blocks, approves or loses a call; its failures are logged and counted
//! (`hitl_extauth_notifications_total{result}`). A notification decides nothing.

use std::{sync::Arc, time::Duration};

use hitl_wire::notify::{Notification, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use prometheus_client::metrics::{counter::Counter, family::Family};
use tokio::sync::{Semaphore, mpsc};

use crate::metrics::ResultLabel;

/// Notifications waiting to be sent; past it, new ones are dropped (and counted).
const QUEUE: usize = 1_024;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 16;
/// Tries per delivery, and the first wait between two (doubling).
const TRIES: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where notifications go, and how they are signed.
#[derive(Clone, PartialEq, Eq)]
pub struct Receivers {
    /// Receivers of the generic JSON body.
    pub webhooks: Vec<String>,
    /// Slack incoming webhooks.
    pub slack: Vec<String>,
    /// The HMAC key (`NOTIFY_SECRET_FILE`).
    pub secret: Vec<u8>,
    /// hitl-ui's address, for the link to the card (`REVIEW_URL`).
    pub review_url: Option<String>,
}

impl std::fmt::Debug for Receivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Webhook URLs carry their own secrets (Slack's do): count them, never print them.
        f.debug_struct("Receivers")
            .field("webhooks", &self.webhooks.len())
            .field("slack", &self.slack.len())
            .field("review_url", &self.review_url)
            .finish_non_exhaustive()
    }
}

/// The sending side; cheap to clone. Without receivers it sends nothing.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    queue: Option<mpsc::Sender<Notification>>,
    review_url: Option<String>,
    counted: Family<ResultLabel, Counter>,
}

impl Notifier {
    /// Start sending to `receivers` (needs a Tokio runtime), counting into `counted`.
    pub fn start(receivers: Option<Receivers>, counted: Family<ResultLabel, Counter>) -> Self {
        let Some(receivers) = receivers.filter(|r| !r.webhooks.is_empty() || !r.slack.is_empty())
        else {
            return Self {
                counted,
                ..Self::default()
            };
        };
        let (queue, rx) = mpsc::channel(QUEUE);
        let review_url = receivers.review_url.clone();
        tokio::spawn(deliver_all(rx, receivers, counted.clone()));
        Self {
            queue: Some(queue),
            review_url,
            counted,
        }
    }

    /// The link to request `id`'s card in hitl-ui, if hitl-ui's address is known.
    pub fn link(&self, id: &str) -> Option<String> {
        self.review_url
            .as_deref()
            .map(|base| format!("{}/#request-{id}", base.trim_end_matches('/')))
    }

    /// Queue `notification` (never waits).
    pub fn send(&self, notification: Notification) {
        let Some(queue) = &self.queue else {
            return;
        };
        if queue.try_send(notification).is_err() {
            self.count("dropped");
            tracing::warn!("notification queue full: a notification was dropped");
        }
    }

    fn count(&self, result: &'static str) {
        self.counted.get_or_create(&ResultLabel { result }).inc();
    }
}

/// The HTTP(S) client notifications go out with: rustls over ring trusting the system's
/// roots, HTTP/1.1.
type Http = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<hyper::body::Bytes>,
>;

fn http() -> Result<Http, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))
        .map_err(|e| format!("the system's CA certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https),
    )
}

/// The task that sends: each notification to each receiver, a few at once.
async fn deliver_all(
    mut rx: mpsc::Receiver<Notification>,
    receivers: Receivers,
    counted: Family<ResultLabel, Counter>,
) {
    let http = match http() {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "notifications: no HTTP client; none will be sent");
            return;
        }
    };
    let receivers = Arc::new(receivers);
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(notification) = rx.recv().await {
        let generic = serde_json::to_vec(&notification).unwrap_or_default();
        let slack = serde_json::to_vec(&notification.slack()).unwrap_or_default();
        let targets = receivers
            .webhooks
            .iter()
            .map(|url| (url.clone(), generic.clone()))
            .chain(
                receivers
                    .slack
                    .iter()
                    .map(|url| (url.clone(), slack.clone())),
            );
        for (url, body) in targets {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let (http, receivers, counted) =
                (http.clone(), Arc::clone(&receivers), counted.clone());
            let kind = notification.kind.as_str();
            tokio::spawn(async move {
                let sent = deliver(&http, &url, &body, &receivers.secret).await;
                let result = if sent { "sent" } else { "failed" };
                counted.get_or_create(&ResultLabel { result }).inc();
                if !sent {
                    tracing::warn!(receiver = %shown(&url), kind, "notification not delivered after {TRIES} tries");
                }
                drop(slot);
            });
        }
    }
}

/// POST `body` to `url`, signed, retrying with backoff: whether a 2xx came back.
async fn deliver(http: &Http, url: &str, body: &[u8], secret: &[u8]) -> bool {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=TRIES {
        // Signed at each try: the timestamp says when this request was made.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let request = hyper::Request::post(url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(SIGNATURE_HEADER, sign(secret, now, body))
            .body(http_body_util::Full::new(
                hyper::body::Bytes::copy_from_slice(body),
            ));
        let request = match request {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(receiver = %shown(url), error = %e, "notification receiver URL unusable");
                return false;
            }
        };
        match tokio::time::timeout(POST_TIMEOUT, http.request(request)).await {
            Ok(Ok(reply)) if reply.status().is_success() => return true,
            Ok(Ok(reply)) => {
                tracing::debug!(receiver = %shown(url), status = %reply.status(), attempt, "notification refused")
            }
            Ok(Err(e)) => {
                tracing::debug!(receiver = %shown(url), error = %e, attempt, "notification failed")
            }
            Err(_) => tracing::debug!(receiver = %shown(url), attempt, "notification timed out"),
        }
        if attempt < TRIES {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    false
}

/// A receiver's URL without its path (Slack's path is its secret), its query, or any
/// `user:password@` it carries: scheme and host only.
fn shown(url: &str) -> String {
    match url.find("://").map(|i| i + 3) {
        Some(start) => {
            let end = url[start..]
                .find(['/', '?', '#'])
                .map_or(url.len(), |i| start + i);
            let authority = &url[start..end];
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{}{host}/…", &url[..start])
        }
        None => "(a receiver)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_receiver_is_logged_by_scheme_and_host_alone() {
        for (url, want) in [
            (
                "https://hooks.slack.com/services/T0/B0/s3cret",
                "https://hooks.slack.com/…",
            ),
            (
                "https://bot:s3cret@hooks.example/in?token=s3cret",
                "https://hooks.example/…",
            ),
            ("http://127.0.0.1:9/x#s3cret", "http://127.0.0.1:9/…"),
            ("not a url", "(a receiver)"),
        ] {
            assert_eq!(shown(url), want, "{url}");
        }
    }
}
