//! The parts of hitl-ui other lab web pages share: sign-in accounts, signed session cookies,
//! CSRF tokens and the same-origin check (`security`). The reviewer queue itself is the
//! `hitl-ui` binary.

pub mod security;

#[cfg(test)]
mod test_support;
