//! The sign-in against the lab's real OpenID Provider (npm `oidc-provider`, as the local lab
//! runs it): a code + PKCE round trip that names the reviewer and their groups from the ID
//! token, and every way a token or a code is refused: another flow's verifier or nonce, a
//! tampered token, an expired one.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hitl_lab::{
    components,
    oidc_provider::{self, CLIENT_ID, Setup},
    op_browser,
    proc::Running,
};

use super::*;

/// Where the provider sends the browser back (nothing listens there: the test reads the URL).
const BACK: &str = "http://127.0.0.1:9/oidc/callback";
/// ID tokens live this long here: long enough to finish a sign-in, short enough to watch
/// one expire.
const TTL_SEC: u64 = 2;

async fn provider_up() -> (Running, Provider, std::path::PathBuf) {
    let installed = tokio::task::spawn_blocking(oidc_provider::ensure)
        .await
        .unwrap()
        .expect("the lab's OpenID Provider installs (npm ci)");
    let dir = std::env::temp_dir().join(format!("hitl-ui-oidc-{}", std::process::id()));
    let port = hitl_lab::net::free_port().unwrap();
    let setup = Setup::write(
        &dir,
        port,
        oidc_provider::workshop_users(),
        &["http://127.0.0.1:9".to_owned()],
    )
    .unwrap();
    let spec = components::oidc_provider::spec_with_ttl(&installed, &setup, &dir, TTL_SEC);
    let running = Running::start(spec).await.expect("the provider starts");
    let provider = Provider::new(Settings {
        issuer: setup.issuer.clone(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: std::fs::read_to_string(&setup.client_secret_file).unwrap(),
        redirect_url: Some(BACK.to_owned()),
        scopes: vec!["openid".into(), "profile".into(), "groups".into()],
        claims: ClaimNames {
            name: "preferred_username".into(),
            groups: "groups".into(),
        },
    })
    .unwrap();
    (running, provider, dir)
}

/// A sign-in of `user` up to the provider's redirect back: the flow and the code.
async fn code_for(provider: &Provider, user: &str) -> (Flow, String) {
    let (url, flow) = provider.start(BACK, false).await.unwrap();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let back = op_browser::sign_in(&url, BACK, user, user).await.unwrap();
    assert_eq!(back.param("state").as_deref(), Some(flow.state.as_str()));
    (flow, back.param("code").expect("a code"))
}

#[tokio::test]
async fn the_sign_in_against_the_real_provider() {
    let (_op, provider, dir) = provider_up().await;

    // Code + PKCE: dba-ann, in group dba, from the ID token itself.
    let (flow, code) = code_for(&provider, "dba-ann").await;
    let signed = provider.finish(&flow, &code).await.unwrap();
    assert_eq!(signed.reviewer.user, "dba-ann");
    assert_eq!(signed.reviewer.groups, ["dba"]);
    // A code is good once.
    let again = provider.finish(&flow, &code).await;
    assert!(matches!(again, Err(OidcError::Exchange(_))), "{again:?}");

    // A wrong password is refused at the provider.
    let (url, _) = provider.start(BACK, false).await.unwrap();
    assert!(
        op_browser::sign_in(&url, BACK, "sre-sam", "wrong")
            .await
            .is_err()
    );

    // Another flow's PKCE verifier: the provider refuses the code.
    let (flow, code) = code_for(&provider, "sre-sam").await;
    let thief = Flow {
        pkce_verifier: "x".repeat(43),
        ..flow.clone()
    };
    let refused = provider.finish(&thief, &code).await;
    assert!(
        matches!(refused, Err(OidcError::Exchange(_))),
        "{refused:?}"
    );

    // Another flow's nonce: the code is exchanged, the token refused.
    let (flow, code) = code_for(&provider, "sre-sam").await;
    let replay = Flow {
        nonce: "another sign-in's nonce".into(),
        ..flow.clone()
    };
    let refused = provider.finish(&replay, &code).await;
    assert!(matches!(refused, Err(OidcError::Verify(_))), "{refused:?}");

    // A token whose claims were changed (sre-sam into group dba) no longer verifies.
    let (flow, code) = code_for(&provider, "sre-sam").await;
    let good = provider.finish(&flow, &code).await.unwrap();
    assert!(
        provider
            .verify(BACK, &good.id_token, &flow.nonce)
            .await
            .is_ok()
    );
    let parts: Vec<&str> = good.id_token.split('.').collect();
    let claims = String::from_utf8(B64.decode(parts[1]).unwrap()).unwrap();
    let forged = claims.replace(r#""groups":["sre"]"#, r#""groups":["dba"]"#);
    assert_ne!(forged, claims);
    let tampered = format!("{}.{}.{}", parts[0], B64.encode(forged), parts[2]);
    let refused = provider.verify(BACK, &tampered, &flow.nonce).await;
    assert!(matches!(refused, Err(OidcError::Verify(_))), "{refused:?}");

    // The same token once it has expired.
    tokio::time::sleep(Duration::from_secs(TTL_SEC + 1)).await;
    let refused = provider.verify(BACK, &good.id_token, &flow.nonce).await;
    assert!(matches!(refused, Err(OidcError::Verify(_))), "{refused:?}");
    std::fs::remove_dir_all(dir).ok();
}
