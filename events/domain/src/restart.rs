//! A batch's restart policy: whether a failed driver is launched again, how often, after how
//! long, and which failures count. It lives in the job's Spark conf under `kindling.restart.*`
//! (as the cluster lives under `kindling.cluster`), so Livy's clients can set it through
//! `conf`, a cluster can give a default the same way, and the policy a job runs under is
//! fixed in its `JobSubmitted` event. Backends never pass `kindling.*` keys to Spark.
//!
//! - `kindling.restart.policy`: `never` (the default) or `onFailure`.
//! - `kindling.restart.maxAttempts`: attempts in all, the first included (default 3, at most
//!   [`MAX_ATTEMPTS`]).
//! - `kindling.restart.backoff`: the wait before the second attempt (default 10s); it doubles
//!   for each later attempt, up to `kindling.restart.maxBackoff` (default 5m).
//! - `kindling.restart.onExitCodes` (`1,137`) and `kindling.restart.onReasons`
//!   (`OOMKilled,Evicted`, matched in the failure's reason): only these failures count. With
//!   neither set, every failure counts. A kill never does, nor does a success.
//!
//! Sessions are never restarted: a new driver would not hold the session's state.

use crate::event::Outcome;
use crate::ids::Attempt;
use crate::units::parse_duration;
use std::collections::BTreeMap;
use std::fmt;

pub const POLICY_KEY: &str = "kindling.restart.policy";
pub const MAX_ATTEMPTS_KEY: &str = "kindling.restart.maxAttempts";
pub const BACKOFF_KEY: &str = "kindling.restart.backoff";
pub const MAX_BACKOFF_KEY: &str = "kindling.restart.maxBackoff";
pub const ON_EXIT_CODES_KEY: &str = "kindling.restart.onExitCodes";
pub const ON_REASONS_KEY: &str = "kindling.restart.onReasons";
/// Every key of a restart policy.
pub const KEYS: [&str; 6] = [
    POLICY_KEY,
    MAX_ATTEMPTS_KEY,
    BACKOFF_KEY,
    MAX_BACKOFF_KEY,
    ON_EXIT_CODES_KEY,
    ON_REASONS_KEY,
];
/// Most attempts one job may be given.
pub const MAX_ATTEMPTS: u32 = 100;
/// Longest wait between attempts: a day.
pub const MAX_BACKOFF_MS: u64 = 86_400_000;
const DEFAULT_ATTEMPTS: u32 = 3;
const DEFAULT_BACKOFF_MS: u64 = 10_000;
const DEFAULT_MAX_BACKOFF_MS: u64 = 300_000;

/// Launch a failed batch's driver again, up to `max_attempts` in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub max_attempts: u32,
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Exit codes that count as a failure to retry (with `reasons`); both empty: any.
    pub exit_codes: Vec<i32>,
    /// Words of a failure's reason that make it count (`OOMKilled`).
    pub reasons: Vec<String>,
}

/// A restart setting that cannot be read; the message names the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPolicy(pub String);

impl fmt::Display for InvalidPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(key: &str, what: &str, got: &str) -> InvalidPolicy {
    InvalidPolicy(format!("conf.{key} must be {what}, got {got:?}"))
}

fn millis(conf: &BTreeMap<String, String>, key: &str, default: u64) -> Result<u64, InvalidPolicy> {
    let Some(text) = conf.get(key) else {
        return Ok(default);
    };
    let d = parse_duration(text.trim())
        .map_err(|e| InvalidPolicy(format!("conf.{key} must be a duration like 30s: {e}")))?;
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms > MAX_BACKOFF_MS {
        return Err(bad(key, "at most 24h", text));
    }
    Ok(ms)
}

fn items(conf: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    conf.get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl RestartPolicy {
    /// The policy `conf` sets: `None` for `never` (or no policy), an error naming the key
    /// for a value that cannot be read or a setting without `policy=onFailure`.
    pub fn of(conf: &BTreeMap<String, String>) -> Result<Option<RestartPolicy>, InvalidPolicy> {
        let policy = conf.get(POLICY_KEY).map(|p| p.trim());
        match policy {
            None | Some("never") => {
                if let Some(key) = KEYS[1..].iter().find(|k| conf.contains_key(**k)) {
                    return Err(InvalidPolicy(format!(
                        "conf.{key} is set but conf.{POLICY_KEY} is not onFailure; set it, or \
                         remove conf.{key}"
                    )));
                }
                return Ok(None);
            }
            Some("onFailure") => {}
            Some(other) => return Err(bad(POLICY_KEY, "never or onFailure", other)),
        }
        let max_attempts = match conf.get(MAX_ATTEMPTS_KEY) {
            None => DEFAULT_ATTEMPTS,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_ATTEMPTS).contains(n))
                .ok_or_else(|| {
                    bad(
                        MAX_ATTEMPTS_KEY,
                        &format!("a number from 1 to {MAX_ATTEMPTS}"),
                        v,
                    )
                })?,
        };
        let backoff_ms = millis(conf, BACKOFF_KEY, DEFAULT_BACKOFF_MS)?;
        let max_backoff_ms = millis(
            conf,
            MAX_BACKOFF_KEY,
            DEFAULT_MAX_BACKOFF_MS.max(backoff_ms),
        )?;
        if max_backoff_ms < backoff_ms {
            return Err(InvalidPolicy(format!(
                "conf.{MAX_BACKOFF_KEY} must not be shorter than conf.{BACKOFF_KEY}"
            )));
        }
        let exit_codes = items(conf, ON_EXIT_CODES_KEY)
            .iter()
            .map(|c| {
                c.parse::<i32>()
                    .map_err(|_| bad(ON_EXIT_CODES_KEY, "exit codes separated by commas", c))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(RestartPolicy {
            max_attempts,
            backoff_ms,
            max_backoff_ms,
            exit_codes,
            reasons: items(conf, ON_REASONS_KEY),
        }))
    }

    /// Whether a failure with `reason` and `exit_code` is one this policy retries.
    pub fn counts(&self, reason: &str, exit_code: Option<i32>) -> bool {
        if self.exit_codes.is_empty() && self.reasons.is_empty() {
            return true;
        }
        exit_code.is_some_and(|c| self.exit_codes.contains(&c))
            || self.reasons.iter().any(|r| reason.contains(r.as_str()))
    }

    /// How long to wait before the attempt after `ended`, if the policy launches one after
    /// `ended` ended with `outcome`: never after a success or a kill, never past
    /// `max_attempts`, never for attempt 0 (a job refused before any launch).
    pub fn retry_after(
        &self,
        ended: Attempt,
        outcome: &Outcome,
        exit_code: Option<i32>,
    ) -> Option<u64> {
        let reason = match outcome {
            Outcome::Failed { reason } | Outcome::Error { reason } => reason,
            Outcome::Succeeded | Outcome::Killed { .. } => return None,
        };
        if ended.0 == 0 || ended.0 >= self.max_attempts || !self.counts(reason, exit_code) {
            return None;
        }
        let doublings = (ended.0 - 1).min(40);
        Some(
            self.backoff_ms
                .saturating_mul(1u64 << doublings)
                .min(self.max_backoff_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn failed(reason: &str) -> Outcome {
        Outcome::Failed {
            reason: reason.into(),
        }
    }

    #[test]
    fn no_policy_or_never_restarts_nothing() {
        assert_eq!(RestartPolicy::of(&conf(&[])), Ok(None));
        assert_eq!(RestartPolicy::of(&conf(&[(POLICY_KEY, "never")])), Ok(None));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_stops_at_max_attempts() {
        let p = RestartPolicy::of(&conf(&[
            (POLICY_KEY, "onFailure"),
            (MAX_ATTEMPTS_KEY, "4"),
            (BACKOFF_KEY, "1s"),
            (MAX_BACKOFF_KEY, "3s"),
        ]))
        .unwrap()
        .unwrap();
        let after = |n: u32| p.retry_after(Attempt(n), &failed("exit 1"), Some(1));
        assert_eq!(
            [after(0), after(1), after(2), after(3), after(4)],
            [None, Some(1000), Some(2000), Some(3000), None]
        );
        let killed = Outcome::Killed {
            reason: "by a client".into(),
        };
        assert_eq!(p.retry_after(Attempt(1), &killed, None), None);
        assert_eq!(
            p.retry_after(Attempt(1), &Outcome::Succeeded, Some(0)),
            None
        );
    }

    #[test]
    fn only_the_listed_failures_count_when_some_are_listed() {
        let p = RestartPolicy::of(&conf(&[
            (POLICY_KEY, "onFailure"),
            (ON_EXIT_CODES_KEY, "137, 143"),
            (ON_REASONS_KEY, "OOMKilled,Evicted"),
        ]))
        .unwrap()
        .unwrap();
        assert!(p.counts("exited with code 137", Some(137)));
        assert!(p.counts("the pod was Evicted: low memory", None));
        assert!(!p.counts("exited with code 1", Some(1)));
        let error = Outcome::Error {
            reason: "the driver could not be launched".into(),
        };
        assert_eq!(p.retry_after(Attempt(1), &error, None), None);
    }

    #[test]
    fn unreadable_settings_name_their_key() {
        for (pairs, key) in [
            (vec![(POLICY_KEY, "always")], POLICY_KEY),
            (vec![(MAX_ATTEMPTS_KEY, "3")], MAX_ATTEMPTS_KEY),
            (
                vec![(POLICY_KEY, "onFailure"), (MAX_ATTEMPTS_KEY, "0")],
                MAX_ATTEMPTS_KEY,
            ),
            (
                vec![(POLICY_KEY, "onFailure"), (MAX_ATTEMPTS_KEY, "101")],
                MAX_ATTEMPTS_KEY,
            ),
            (
                vec![(POLICY_KEY, "onFailure"), (BACKOFF_KEY, "soon")],
                BACKOFF_KEY,
            ),
            (
                vec![(POLICY_KEY, "onFailure"), (BACKOFF_KEY, "2d")],
                BACKOFF_KEY,
            ),
            (
                vec![
                    (POLICY_KEY, "onFailure"),
                    (BACKOFF_KEY, "1m"),
                    (MAX_BACKOFF_KEY, "10s"),
                ],
                MAX_BACKOFF_KEY,
            ),
            (
                vec![(POLICY_KEY, "onFailure"), (ON_EXIT_CODES_KEY, "1,x")],
                ON_EXIT_CODES_KEY,
            ),
        ] {
            let e = RestartPolicy::of(&conf(&pairs)).unwrap_err();
            assert!(e.0.contains(key), "{pairs:?}: {e}");
        }
    }
}
