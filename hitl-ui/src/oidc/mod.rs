//! Signing reviewers in at an OpenID Provider (authorization code flow with PKCE, `state` and
//! `nonce`), with the `openidconnect` crate: [`Provider::start`] sends the browser to the
//! provider and returns the sign-in in progress ([`flow::Flow`], kept in a tagged cookie);
//! [`Provider::finish`] takes the code back, exchanges it with the PKCE verifier, and verifies
//! the ID token (signature against the provider's keys, issuer, audience, expiry, nonce).
//! Discovery runs at each step, so a provider's new keys are picked up at the next sign-in.

pub mod flow;
pub mod http;

use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    core::{CoreClient, CoreProviderMetadata, CoreResponseType},
};

use crate::security::oidc_session::{self, ClaimNames, MAX_TOKEN_BYTES, Reviewer};
pub use flow::Flow;

/// How hitl-ui is registered at the provider.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Fixed redirect URL; `None`: derived from the browser's (allowed) `Host`.
    pub redirect_url: Option<String>,
    pub scopes: Vec<String>,
    pub claims: ClaimNames,
}

/// Why a sign-in at the provider failed (shown to the reviewer, logged in full).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider's configuration could not be read: {0}")]
    Discovery(String),
    #[error("bad OpenID Connect setting: {0}")]
    Config(String),
    #[error("the identity provider refused the sign-in: {0}")]
    Exchange(String),
    #[error("the identity provider sent no ID token")]
    NoIdToken,
    #[error("the ID token does not verify: {0}")]
    Verify(String),
    #[error("{0}")]
    Claims(#[from] oidc_session::ClaimsError),
    #[error("the ID token is too large to keep ({0} bytes)")]
    TooLarge(usize),
}

/// A verified sign-in: who, their groups, and the ID token as issued.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub reviewer: Reviewer,
    pub id_token: String,
}

/// The provider, as hitl-ui uses it.
#[derive(Debug, Clone)]
pub struct Provider {
    settings: Settings,
    http: http::Http,
    /// The provider's metadata and keys as last discovered, and when: reused for
    /// [`DISCOVERY_TTL`], so that anonymous visits to the sign-in cannot make hitl-ui fetch
    /// them from the provider once each.
    discovered:
        std::sync::Arc<tokio::sync::Mutex<Option<(std::time::Instant, CoreProviderMetadata)>>>,
}

/// How long discovered provider metadata (and its JWKS) is reused.
pub const DISCOVERY_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl Provider {
    pub fn new(settings: Settings) -> Result<Self, OidcError> {
        IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| OidcError::Config(format!("OIDC_ISSUER_URL: {e}")))?;
        let http = http::Http::new().map_err(|e| OidcError::Config(e.to_string()))?;
        Ok(Self {
            settings,
            http,
            discovered: std::sync::Arc::default(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The redirect URL for a browser that reached us as `origin` (`http://host:port`).
    pub fn redirect_for(&self, origin: &str) -> String {
        self.settings
            .redirect_url
            .clone()
            .unwrap_or_else(|| format!("{}{}", origin.trim_end_matches('/'), CALLBACK_PATH))
    }

    /// The provider's metadata: discovered at most once per [`DISCOVERY_TTL`] (one discovery
    /// at a time; a failed one is not kept).
    async fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        let mut discovered = self.discovered.lock().await;
        if let Some((at, metadata)) = discovered.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Config(e.to_string()))?;
        let http = |request| self.http.clone().send(request);
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        *discovered = Some((std::time::Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    async fn client(&self, redirect: &str) -> Result<Client, OidcError> {
        let metadata = self.metadata().await?;
        let redirect =
            RedirectUrl::new(redirect.to_owned()).map_err(|e| OidcError::Config(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send the browser, and the sign-in in progress to keep until it comes back.
    /// `fresh`: ask the provider for the password again (`prompt=login`), not its session:
    /// after a sign-out here, the next person at this browser may be someone else.
    pub async fn start(&self, redirect: &str, fresh: bool) -> Result<(String, Flow), OidcError> {
        let client = self.client(redirect).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if fresh {
            request = request.add_prompt(openidconnect::core::CoreAuthPrompt::Login);
        }
        let (url, state, nonce) = request.url();
        let flow = Flow {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            redirect: redirect.to_owned(),
            expires: 0,
        };
        Ok((url.to_string(), flow))
    }

    /// Exchange `code` for tokens (with the flow's PKCE verifier) and verify the ID token
    /// (with the flow's nonce). The caller checked `state` against the flow.
    pub async fn finish(&self, flow: &Flow, code: &str) -> Result<SignedIn, OidcError> {
        let client = self.client(&flow.redirect).await?;
        let http = |request| self.http.clone().send(request);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
        let id_token =
            openidconnect::TokenResponse::id_token(&tokens).ok_or(OidcError::NoIdToken)?;
        id_token
            .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce.clone()))
            .map_err(|e| OidcError::Verify(error_chain(&e)))?;
        self.accept(id_token.to_string())
    }

    /// The reviewer a verified ID token names, if it can be kept in a cookie.
    fn accept(&self, id_token: String) -> Result<SignedIn, OidcError> {
        if id_token.len() > MAX_TOKEN_BYTES {
            return Err(OidcError::TooLarge(id_token.len()));
        }
        let reviewer = oidc_session::reviewer(&id_token, &self.settings.claims)?;
        Ok(SignedIn { reviewer, id_token })
    }

    /// Verify a raw ID token as a sign-in would, nonce included (tests of tampering and
    /// expiry against the real provider).
    #[cfg(test)]
    pub async fn verify(
        &self,
        redirect: &str,
        id_token: &str,
        nonce: &str,
    ) -> Result<SignedIn, OidcError> {
        let client = self.client(redirect).await?;
        let token: openidconnect::core::CoreIdToken = id_token
            .parse()
            .map_err(|e| OidcError::Verify(format!("not an ID token: {e}")))?;
        token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_owned()))
            .map_err(|e| OidcError::Verify(error_chain(&e)))?;
        self.accept(id_token.to_owned())
    }
}

/// Where the provider sends the browser back.
pub const CALLBACK_PATH: &str = "/oidc/callback";

type Client = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// An error and its sources, one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
