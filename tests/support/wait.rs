//! Waiting for something to become true, with a deadline: the one polling loop the fixtures
//! and tests use (a test that hangs says what it was waiting for).

use std::{future::Future, time::Duration};

use anyhow::bail;
use tokio::time::Instant;

/// How long the helpers wait for something to show up before failing the test.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How often a check is retried.
const POLL: Duration = Duration::from_millis(25);

/// Retry `check` until it returns `Ok(Some(_))`, or fail after [`PATIENCE`] with the last
/// word from `check`.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    eventually_within(PATIENCE, what, check).await
}

/// [`eventually`] with a deadline of `patience` (for waits known to be long, like thousands
/// of parks landing).
pub async fn eventually_within<T, F, Fut>(
    patience: Duration,
    what: &str,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + patience;
    loop {
        let last = match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if Instant::now() >= deadline {
            match last {
                Some(e) => bail!("timed out after {patience:?} waiting for {what}: {e:#}"),
                None => bail!("timed out after {patience:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(POLL).await;
    }
}
