//! The launch ledger's format: one line per launch, tab-separated, that the chaos harness's
//! `spark-submit` appends (see the harness's `ledger` for the script), and the statement
//! ledger of tokens. The ledger, not the cluster's own account, is the source of truth for
//! "at most one launch per (job, attempt)".
//!
//! ```text
//! launch <epoch ms> <pid> <KINDLING_DRIVER> <KINDLING_JOB_ID> <KINDLING_ATTEMPT> <batch|session>
//! exit <epoch ms> <pid> <KINDLING_JOB_ID> <KINDLING_ATTEMPT> <exit code>
//! ```
//!
//! A batch's program writes its `exit` line just before it exits on its own (one killed
//! writes none): a later attempt of the same job must be launched after it.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One recorded launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// 1-based line in the ledger.
    pub line: usize,
    pub at_ms: i64,
    pub pid: u32,
    /// `KINDLING_DRIVER`: `<cluster id>:<driver name>`.
    pub driver: String,
    pub job: u64,
    pub attempt: u32,
    /// `batch` or `session`.
    pub kind: String,
}

#[derive(Debug, Clone, Error, PartialEq, Eq, Serialize, Deserialize)]
#[error("ledger line {line}: {reason}: {text:?}")]
pub struct LedgerError {
    pub line: usize,
    pub reason: String,
    pub text: String,
}

/// Job and attempt from a driver tag `<cluster>:kindling-<job>-<attempt>`.
fn from_driver_name(tag: &str) -> Option<(u64, u32)> {
    let name = tag.rsplit(':').next()?;
    let rest = name.strip_prefix("kindling-")?;
    let (job, attempt) = rest.rsplit_once('-')?;
    Some((job.parse().ok()?, attempt.parse().ok()?))
}

/// A batch program's own exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub line: usize,
    pub at_ms: i64,
    pub pid: u32,
    pub job: u64,
    pub attempt: u32,
    pub code: i32,
}

/// The exit line `f` (split on tabs), if it is one.
fn exit_line(line: usize, f: &[&str]) -> Option<Exit> {
    if f.len() != 6 || f[0] != "exit" {
        return None;
    }
    Some(Exit {
        line,
        at_ms: f[1].parse().ok()?,
        pid: f[2].parse().ok()?,
        job: f[3].parse().ok()?,
        attempt: f[4].parse().ok()?,
        code: f[5].parse().ok()?,
    })
}

/// Every batch program's exit in a ledger (the lines that are not one are [`parse`]'s).
pub fn exits(text: &str) -> Vec<Exit> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| exit_line(i + 1, &raw.split('\t').collect::<Vec<_>>()))
        .collect()
}

/// Every launch in a ledger, and every line that is neither a launch nor an exit (a torn or
/// foreign line is itself a finding: the checker reports it).
pub fn parse(text: &str) -> (Vec<Launch>, Vec<LedgerError>) {
    let mut launches = vec![];
    let mut errors = vec![];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let err = |reason: &str| LedgerError {
            line,
            reason: reason.into(),
            text: raw.to_string(),
        };
        let f: Vec<&str> = raw.split('\t').collect();
        if exit_line(line, &f).is_some() {
            continue;
        }
        if f.len() != 7 || f[0] != "launch" {
            errors.push(err("not a launch line of 7 tab-separated fields"));
            continue;
        }
        let (Ok(at_ms), Ok(pid)) = (f[1].parse::<i64>(), f[2].parse::<u32>()) else {
            errors.push(err("time or pid is not a number"));
            continue;
        };
        let ids = match (f[4].parse::<u64>(), f[5].parse::<u32>()) {
            (Ok(j), Ok(a)) => Some((j, a)),
            _ => from_driver_name(f[3]),
        };
        let Some((job, attempt)) = ids else {
            errors.push(err(
                "no job id and attempt (neither in the environment nor the driver name)",
            ));
            continue;
        };
        launches.push(Launch {
            line,
            at_ms,
            pid,
            driver: f[3].to_string(),
            job,
            attempt,
            kind: f[6].to_string(),
        });
    }
    (launches, errors)
}

/// Tokens in a statement ledger, one per execution, in order.
pub fn parse_statement_ledger(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_launches_and_reports_foreign_lines() {
        let text = "launch\t1700000000000\t42\tabc:kindling-7-1\t7\t1\tbatch\n\
                    launch\t1700000000001\t43\tabc:kindling-8-1\t\t\tsession\n\
                    garbage\n\
                    launch\t1700000000002\t44\tabc:kind\t\t\tbatch\n\
                    launch\t17000\t45\n\
                    exit\t1700000000009\t42\t7\t1\t3\n\
                    exit\t1700000000009\t42\tx\t1\t3\n";
        let (l, e) = parse(text);
        assert_eq!(
            exits(text),
            [Exit {
                line: 6,
                at_ms: 1_700_000_000_009,
                pid: 42,
                job: 7,
                attempt: 1,
                code: 3
            }]
        );
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].job, l[0].attempt, l[0].pid), (7, 1, 42));
        // Without the environment variables the ids come from the driver name.
        assert_eq!(
            (l[1].job, l[1].attempt, l[1].kind.as_str()),
            (8, 1, "session")
        );
        assert_eq!(
            e.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![3, 4, 5, 7]
        );
    }

    #[test]
    fn statement_ledger_lines_are_tokens() {
        assert_eq!(
            parse_statement_ledger("a\n\nb\n"),
            vec!["a".to_string(), "b".to_string()]
        );
    }
}
