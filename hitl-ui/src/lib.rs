//! The parts of hitl-ui other lab web pages share (`security`): sign-in accounts, signed
//! session cookies with server-side sign-out, CSRF tokens and the same-origin check, the
//! `Host` allow-list and sign-in throttling. The reviewer queue itself is the
//! `hitl-ui` binary.

pub mod security;

#[cfg(test)]
mod test_support;
