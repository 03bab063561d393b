//! The limits against real sockets: a slow-header client is cut, an idle one is closed, an
//! oversized body gets 413 and a trickled one 400, neither reaching the handler, and past the
//! connection cap a client waits for a free slot.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, routing::post};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

use super::*;

async fn start(limits: Limits, hits: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/echo",
        post(move |body: axum::body::Bytes| {
            let hits = Arc::clone(&hits);
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                body.len().to_string()
            }
        }),
    );
    tokio::spawn(async move { serve(listener, app, &limits, 1024, std::future::pending()).await });
    addr
}

/// Read until the server closes; how long that took.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some(started.elapsed())
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_at_the_header_timeout() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let addr = start(limits, Arc::default()).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let trickle = async {
        for byte in b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), trickle).await;
    let closed = until_closed(&mut slow, Duration::from_secs(3)).await;
    assert!(closed.is_some(), "the slow client is still connected");
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_idle_timeout() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let addr = start(limits, Arc::default()).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let closed = until_closed(&mut silent, Duration::from_secs(3)).await;
    assert!(closed.is_some(), "the idle client is still connected");
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_never_reaches_the_handler() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = start(Limits::default(), Arc::clone(&hits)).await;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/echo");
    let ok = client
        .post(&url)
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1024");
    let big = client
        .post(&url)
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    // Chunked, so the size is only known while reading.
    let stream = futures_stream(vec![vec![b'x'; 800], vec![b'x'; 800]]);
    let chunked = client
        .post(&url)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "only the small body was handled"
    );
}

#[tokio::test]
async fn a_body_trickled_past_the_body_deadline_is_cut_and_never_handled() {
    let hits = Arc::new(AtomicUsize::new(0));
    let limits = Limits {
        body_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let addr = start(limits, Arc::clone(&hits)).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    // One byte every 100 ms: never idle, but the body would take 10 s.
    let trickle = async {
        for _ in 0..100 {
            if slow.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), trickle).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the handler never ran");
}

#[tokio::test]
async fn past_the_connection_cap_a_client_waits_until_a_connection_closes() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let addr = start(limits, Arc::default()).await;
    let held: Vec<_> = futures::future::join_all((0..2).map(|_| TcpStream::connect(addr)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // Let the server accept both before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = format!("http://{addr}/echo");
    let third = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .body("abc")
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "served past the cap");
    drop(held);
    let status = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a connection closed")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

fn futures_stream(
    chunks: Vec<Vec<u8>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures::stream::iter(chunks.into_iter().map(Ok))
}

#[test]
fn durations_and_defaults() {
    // The grammar is `hitl_wire::duration`'s; a bare number is seconds.
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Service {
        #[command(flatten)]
        limits: Limits,
    }
    let parsed = Service::try_parse_from(["s", "--http-idle-timeout", "2m"]).unwrap();
    assert_eq!(parsed.limits.idle_timeout, Duration::from_secs(120));
    assert_eq!(
        parsed.limits.header_read_timeout,
        DEFAULT_HEADER_READ_TIMEOUT
    );
    let bare = Service::try_parse_from(["s", "--http-idle-timeout", "10"]).unwrap();
    assert_eq!(bare.limits.idle_timeout, Duration::from_secs(10));
    for bad in ["0s", "soon"] {
        let error = Service::try_parse_from(["s", "--http-idle-timeout", bad])
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains(hitl_wire::env::http::IDLE_TIMEOUT),
            "{error}"
        );
    }
    assert_eq!(Limits::default().body_limit(7), 7);
    assert_eq!(parse_count("3"), Ok(3));
    assert!(parse_count("0").is_err());
    assert!(parse_count("many").is_err());
}
