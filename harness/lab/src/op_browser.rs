//! A browser's part of a sign-in at an OpenID Provider like the lab's, without a browser: follow
//! the authorization URL to the provider's sign-in form, post a user name and password, and
//! follow the provider's redirects (keeping its cookies) until it sends the browser back to
//! the client. For tests that check the client's side of the code flow.

use std::collections::BTreeMap;

use anyhow::Context as _;
use reqwest::{StatusCode, header};

/// Where the provider sent the browser back: the full URL (with `code`, `state`, `iss`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Back {
    pub url: String,
}

impl Back {
    /// Query parameter `name` of the URL.
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.url.split_once('?')?.1;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.replace("%3A", ":").replace("%2F", "/"))
        })
    }
}

/// Sign `user` in at the provider that `authorize_url` points to, until it redirects to a
/// URL starting with `back_to`. A refused password is an error carrying the page's status.
pub async fn sign_in(
    authorize_url: &str,
    back_to: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<Back> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let origin = origin(authorize_url).context("the authorization URL has no origin")?;
    let mut jar = BTreeMap::new();
    let mut url = authorize_url.to_owned();
    let mut form_sent = false;
    for _ in 0..10 {
        if url.starts_with(back_to) {
            return Ok(Back { url });
        }
        let request = if !form_sent && url.contains("/interaction/") {
            // The sign-in form posts to `<interaction>/login`.
            form_sent = true;
            let form = format!("username={}&password={}", encode(user), encode(password));
            http.post(format!("{url}/login"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form)
        } else {
            http.get(&url)
        };
        let response = request
            .header(header::COOKIE, cookie_header(&jar))
            .send()
            .await
            .with_context(|| format!("reaching {url}"))?;
        keep_cookies(&mut jar, &response);
        let status = response.status();
        match response.headers().get(header::LOCATION) {
            Some(location) if status.is_redirection() => {
                let location = location.to_str()?.to_owned();
                url = match location.starts_with('/') {
                    true => format!("{origin}{location}"),
                    false => location,
                };
            }
            _ if status == StatusCode::OK && url.contains("/interaction/") && form_sent => {
                anyhow::bail!("the provider showed its form again after the password")
            }
            _ if status == StatusCode::OK && url.contains("/interaction/") => continue,
            _ => anyhow::bail!(
                "the provider answered {status} at {url}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
    anyhow::bail!("the provider did not send the browser back to {back_to}")
}

/// `text` form-urlencoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    Some(format!("{scheme}://{host}"))
}

fn keep_cookies(jar: &mut BTreeMap<String, String>, response: &reqwest::Response) {
    for value in response.headers().get_all(header::SET_COOKIE) {
        let Some((pair, _)) = value
            .to_str()
            .ok()
            .map(|v| v.split_once(';').unwrap_or((v, "")))
        else {
            continue;
        };
        if let Some((name, value)) = pair.split_once('=') {
            jar.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }
}

fn cookie_header(jar: &BTreeMap<String, String>) -> String {
    jar.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}
