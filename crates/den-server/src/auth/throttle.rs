//! Failed sign-in throttling, per username and per client address.
//!
//! After too many failures in the window, sign-in for that name or address is refused for the
//! rest of the window, even with the right password, so guessing cannot go faster than the limit.
//! The counts live in memory: per den process, and reset on restart.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits for failed sign-ins.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    pub per_username: u32,
    pub per_address: u32,
    pub window: Duration,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self {
            per_username: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug)]
pub(crate) struct LoginThrottle {
    limits: ThrottleLimits,
    // A std mutex: nothing awaits while it is held, and each critical section is a map lookup.
    failures: Mutex<HashMap<Key, Window>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Username(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl LoginThrottle {
    pub(crate) fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds until allowed)` when either the name or the address is locked out.
    pub(crate) fn check(&self, username: &str, address: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let keys = [
            (
                Key::Username(username.to_lowercase()),
                self.limits.per_username,
            ),
            (Key::Address(address), self.limits.per_address),
        ];
        for (key, limit) in keys {
            if let Some(window) = failures.get(&key) {
                let elapsed = now.duration_since(window.started);
                if elapsed < self.limits.window && window.failures >= limit {
                    return Err((self.limits.window - elapsed).as_secs().max(1));
                }
            }
        }
        Ok(())
    }

    /// Counts a failed sign-in against the name and the address.
    pub(crate) fn record_failure(&self, username: &str, address: IpAddr) {
        let now = Instant::now();
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        // Drop expired windows so the map cannot grow without bound.
        failures.retain(|_, window| now.duration_since(window.started) < self.limits.window);
        for key in [
            Key::Username(username.to_lowercase()),
            Key::Address(address),
        ] {
            let window = failures.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            window.failures += 1;
        }
    }

    /// A successful sign-in clears the name's count (not the address's).
    pub(crate) fn record_success(&self, username: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        failures.remove(&Key::Username(username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_locked_after_the_limit_and_other_names_are_not() {
        let limits = ThrottleLimits {
            per_username: 3,
            per_address: 100,
            window: Duration::from_secs(60),
        };
        let throttle = LoginThrottle::new(limits);
        let address: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(throttle.check("Alice", address).is_ok());
            throttle.record_failure("Alice", address);
        }
        assert!(
            throttle.check("alice", address).is_err(),
            "case must not bypass the lock"
        );
        assert!(throttle.check("bob", address).is_ok());
    }

    #[test]
    fn address_is_locked_across_names() {
        let limits = ThrottleLimits {
            per_username: 100,
            per_address: 2,
            window: Duration::from_secs(60),
        };
        let throttle = LoginThrottle::new(limits);
        let address: IpAddr = "10.0.0.1".parse().unwrap();
        throttle.record_failure("a", address);
        throttle.record_failure("b", address);
        assert!(throttle.check("c", address).is_err());
        assert!(throttle.check("c", "10.0.0.2".parse().unwrap()).is_ok());
    }
}
