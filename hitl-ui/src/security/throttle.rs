//! Sign-in rate limiting: failed sign-ins are counted per user name and per client address;
//! past a few free failures each further one doubles a lock-out (1 s, 2 s, 4 s, … at most
//! 5 min) during which sign-ins for that user or from that address are refused without even
//! checking the password. A success clears the user's count. Memory is bounded: at most
//! [`MAX_ENTRIES`] keys; counts are forgotten [`FORGET_AFTER`] after the last failure, and when
//! full the stalest key goes first.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Failures for one user name before the lock-out starts (a typo or two is free).
pub const FREE_PER_USER: u32 = 5;
/// Failures from one address before the lock-out starts (a shared NAT, a few people).
pub const FREE_PER_ADDRESS: u32 = 20;
/// First lock-out; doubles with every further failure.
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(1);
/// Longest lock-out.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(300);
/// A key's count is forgotten this long after its last failure.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most keys remembered at once.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Instant,
}

/// The counts.
#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Throttle {
    /// `Err(wait)` if a sign-in for `user` from `address` must be refused right now.
    pub fn check(&self, user: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = [user_key(user), Key::Address(address)]
            .iter()
            .filter_map(|key| entries.get(key))
            .filter(|entry| now < entry.locked_until)
            .map(|entry| entry.locked_until - now)
            .max();
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Count a failed sign-in.
    pub fn failed(&self, user: &str, address: IpAddr, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, free) in [
            (user_key(user), FREE_PER_USER),
            (Key::Address(address), FREE_PER_ADDRESS),
        ] {
            if !entries.contains_key(&key) && entries.len() >= MAX_ENTRIES {
                make_room(&mut entries, now);
            }
            let entry = entries.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
                locked_until: now,
            });
            if now.duration_since(entry.last_failure) > FORGET_AFTER {
                entry.failures = 0;
            }
            entry.failures += 1;
            entry.last_failure = now;
            if entry.failures > free {
                entry.locked_until = now + lockout(entry.failures - free);
            }
        }
    }

    /// A successful sign-in: the user's count starts again (the address keeps its count, so
    /// one good account does not unlock guessing at others from the same place).
    pub fn succeeded(&self, user: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&user_key(user));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

fn user_key(user: &str) -> Key {
    Key::User(user.trim().to_lowercase())
}

/// The `n`th lock-out (1-based): 1 s, 2 s, 4 s, … capped.
fn lockout(n: u32) -> Duration {
    FIRST_LOCKOUT
        .checked_mul(1u32.checked_shl(n - 1).unwrap_or(u32::MAX))
        .unwrap_or(MAX_LOCKOUT)
        .min(MAX_LOCKOUT)
}

/// Forget what has expired; if that frees nothing, the key whose last failure is oldest.
fn make_room(entries: &mut HashMap<Key, Entry>, now: Instant) {
    entries
        .retain(|_, e| now.duration_since(e.last_failure) <= FORGET_AFTER || now < e.locked_until);
    if entries.len() >= MAX_ENTRIES
        && let Some(stalest) = entries
            .iter()
            .min_by_key(|(_, e)| e.last_failure)
            .map(|(k, _)| k.clone())
    {
        entries.remove(&stalest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn a_few_typos_are_free_then_the_lockout_doubles() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_PER_USER {
            assert!(throttle.check("bob", HOME, t0).is_ok());
            throttle.failed("bob", HOME, t0);
        }
        assert!(throttle.check("bob", HOME, t0).is_ok());
        throttle.failed("bob", HOME, t0);
        assert_eq!(
            throttle.check("BOB ", HOME, t0),
            Err(Duration::from_secs(1))
        );
        let t1 = t0 + Duration::from_secs(1);
        assert!(throttle.check("bob", HOME, t1).is_ok());
        throttle.failed("bob", HOME, t1);
        assert_eq!(throttle.check("bob", HOME, t1), Err(Duration::from_secs(2)));
        // Another user from another address is not affected.
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        assert!(throttle.check("alice", other, t1).is_ok());
        // Success starts the user's count again.
        throttle.succeeded("bob");
        assert!(throttle.check("bob", other, t1).is_ok());
    }

    #[test]
    fn guessing_many_users_from_one_address_locks_the_address() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for n in 0..=FREE_PER_ADDRESS {
            throttle.failed(&format!("user{n}"), HOME, now);
        }
        assert!(throttle.check("someone-new", HOME, now).is_err());
        assert!(
            throttle
                .check("someone-new", "10.0.0.9".parse().unwrap(), now)
                .is_ok()
        );
    }

    #[test]
    fn lockouts_are_capped_and_counts_forgotten() {
        assert_eq!(lockout(1), Duration::from_secs(1));
        assert_eq!(lockout(4), Duration::from_secs(8));
        assert_eq!(lockout(40), MAX_LOCKOUT);
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..=FREE_PER_USER {
            throttle.failed("bob", HOME, t0);
        }
        let later = t0 + FORGET_AFTER + Duration::from_secs(1);
        throttle.failed("bob", HOME, later);
        assert!(
            throttle.check("bob", HOME, later).is_ok(),
            "old failures forgotten"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for n in 0..(MAX_ENTRIES + 500) {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(n as u32));
            throttle.failed(&format!("u{n}"), address, now);
        }
        assert!(throttle.len() <= MAX_ENTRIES);
    }
}
