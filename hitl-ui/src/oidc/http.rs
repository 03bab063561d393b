//! The HTTP client the OpenID Connect library talks to the provider with (discovery, JWKS,
//! token endpoint): hyper with rustls over ring and the system's roots, HTTP/1.1, a timeout
//! and a body limit, no redirects followed (as the library advises, against SSRF).

use std::{sync::Arc, time::Duration};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use openidconnect::{HttpRequest, HttpResponse};

/// Longest the provider may take to answer one request.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read (discovery documents and key sets are a few KB).
const MAX_BODY: usize = 1024 * 1024;

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Why a request to the provider failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the identity provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("reaching the identity provider: {0}")]
    Request(String),
}

/// A client for the provider; cheap to clone.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
}

impl Http {
    pub fn new() -> Result<Self, HttpError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|e| HttpError::Request(format!("the system's CA certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Self { client })
    }

    /// Send `request`; the whole answer, whatever its status (the library reads it).
    pub async fn send(self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let request = hyper::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| HttpError::Request(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| HttpError::Request(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body.to_vec()))
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| HttpError::Timeout(TIMEOUT))?
    }
}
