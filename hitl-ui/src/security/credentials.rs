//! The built-in sign-in's accounts: `user:password` pairs from env or a mounted secret file,
//! checked in constant time.

use std::collections::BTreeMap;

use super::Signer;

/// A problem with the configured accounts (reported at start-up, never at sign-in).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    #[error("entry {0} is not `user:password`")]
    Malformed(usize),
    #[error("entry {0}: user name must be 1-64 printable characters without spaces")]
    BadUser(usize),
    #[error("entry {0}: empty password")]
    EmptyPassword(usize),
    #[error("user `{0}` is listed twice")]
    Duplicate(String),
    #[error("no accounts listed")]
    Empty,
}

/// Accounts that may sign in. Passwords are kept only as keyed hashes.
#[derive(Debug)]
pub struct Credentials {
    hasher: Signer,
    accounts: BTreeMap<String, String>,
}

const PURPOSE: &str = "password";

impl Credentials {
    /// Parse `alice:secret,bob:secret2`, or the same one per line; blank lines and lines
    /// starting with `#` are skipped. A password may contain `:` (split at the first one).
    pub fn parse(text: &str) -> Result<Self, CredentialsError> {
        let hasher = Signer::new(None).map_err(|_| CredentialsError::Empty)?;
        let mut accounts = BTreeMap::new();
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|entry| !entry.is_empty());
        for (index, entry) in entries.enumerate() {
            let n = index + 1;
            let (user, password) = entry
                .split_once(':')
                .ok_or(CredentialsError::Malformed(n))?;
            if !valid_user(user) {
                return Err(CredentialsError::BadUser(n));
            }
            if password.is_empty() {
                return Err(CredentialsError::EmptyPassword(n));
            }
            let tag = hasher.sign(PURPOSE, password.as_bytes());
            // `Alice` and `alice` (or a look-alike) would be one person with two accounts.
            if accounts.contains_key(user)
                || accounts
                    .keys()
                    .any(|known: &String| hitl_wire::identity::same_person(known, user))
            {
                return Err(CredentialsError::Duplicate(user.to_owned()));
            }
            if accounts.insert(user.to_owned(), tag).is_some() {
                return Err(CredentialsError::Duplicate(user.to_owned()));
            }
        }
        if accounts.is_empty() {
            return Err(CredentialsError::Empty);
        }
        Ok(Self { hasher, accounts })
    }

    /// The canonical user name if `user` / `password` match an account.
    pub fn check(&self, user: &str, password: &str) -> Option<&str> {
        match self.accounts.get_key_value(user) {
            Some((name, tag)) => self
                .hasher
                .verify(PURPOSE, password.as_bytes(), tag)
                .then_some(name.as_str()),
            None => {
                // Same work for unknown users, so timing does not tell which names exist.
                let _ = self.hasher.verify(PURPOSE, password.as_bytes(), "00");
                None
            }
        }
    }

    /// Whether `user` is (still) a configured account.
    pub fn has_user(&self, user: &str) -> bool {
        self.accounts.contains_key(user)
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether there are no accounts (parsing refuses that, so never for a parsed list).
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

/// 1–64 printable, non-space characters that make an acceptable identity (no control,
/// bidi or zero-width characters, one script: `hitl_wire::identity::Identity`).
pub fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.chars().count() <= 64
        && user.chars().all(|c| !c.is_whitespace() && !c.is_control())
        && hitl_wire::identity::Identity::parse(user).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_and_file_forms() {
        let env = Credentials::parse("alice:secret, bob:s3:cret").unwrap();
        assert_eq!(env.len(), 2);
        assert_eq!(env.check("alice", "secret"), Some("alice"));
        assert_eq!(env.check("bob", "s3:cret"), Some("bob"));

        let file = Credentials::parse("# reviewers\nalice:secret\n\n carol:pw \n").unwrap();
        assert_eq!(file.len(), 2);
        assert_eq!(file.check("carol", "pw"), Some("carol"));
    }

    #[test]
    fn wrong_password_or_user_is_refused() {
        let creds = Credentials::parse("alice:secret").unwrap();
        assert_eq!(creds.check("alice", "Secret"), None);
        assert_eq!(creds.check("alice", ""), None);
        assert_eq!(creds.check("mallory", "secret"), None);
        assert_eq!(creds.check("Alice", "secret"), None);
        assert!(creds.has_user("alice"));
        assert!(!creds.has_user("mallory"));
    }

    #[test]
    fn bad_configuration_is_reported() {
        use CredentialsError::*;
        assert_eq!(Credentials::parse("alice").unwrap_err(), Malformed(1));
        assert_eq!(Credentials::parse("a:1,:2").unwrap_err(), BadUser(2));
        assert_eq!(Credentials::parse("a b:1").unwrap_err(), BadUser(1));
        assert_eq!(Credentials::parse("a:").unwrap_err(), EmptyPassword(1));
        assert_eq!(
            Credentials::parse("a:1,a:2").unwrap_err(),
            Duplicate("a".into())
        );
        assert_eq!(
            Credentials::parse(" \n# only a comment").unwrap_err(),
            Empty
        );
    }
}
