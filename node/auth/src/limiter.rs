//! Failed authentications, counted per client address and per user name in fixed windows:
//! past the limit, a key is refused without checking its credentials until its window ends,
//! so a password cannot be guessed faster than the limit from one place or for one user.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Keys kept at most; past this, expired windows are dropped, then every window.
const MAX_KEYS: usize = 100_000;

pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl FailureLimiter {
    /// Allows `max_failures` failures per key in each `window`.
    pub fn new(max_failures: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            max_failures,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` if `key` has used its failures in the current window.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let windows = self.windows.lock();
        match windows.get(key) {
            Some(&(start, count)) if count >= self.max_failures => {
                let end = start + self.window;
                if now < end {
                    Err(end.duration_since(now).as_secs().max(1))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `key`.
    pub fn fail(&self, key: &str, now: Instant) {
        let mut windows = self.windows.lock();
        if windows.len() >= MAX_KEYS && !windows.contains_key(key) {
            let window = self.window;
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
            if windows.len() >= MAX_KEYS {
                tracing::warn!("failed authentications from too many places; limits reset");
                windows.clear();
            }
        }
        let entry = windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Forgets the failures of `key` (its owner proved who it is).
    pub fn forgive(&self, key: &str) {
        self.windows.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_past_the_limit_until_its_window_ends() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("ip:10.0.0.1", t0).is_ok());
            limiter.fail("ip:10.0.0.1", t0);
        }
        assert_eq!(limiter.check("ip:10.0.0.1", t0), Err(60));
        assert_eq!(
            limiter.check("ip:10.0.0.1", t0 + Duration::from_secs(45)),
            Err(15)
        );
        assert!(limiter.check("ip:10.0.0.2", t0).is_ok(), "other keys go on");
        assert!(limiter
            .check("ip:10.0.0.1", t0 + Duration::from_secs(60))
            .is_ok());
        limiter.fail("user:a", t0);
        limiter.forgive("user:a");
        limiter.fail("user:a", t0);
        limiter.fail("user:a", t0);
        assert!(limiter.check("user:a", t0).is_ok());
    }
}
