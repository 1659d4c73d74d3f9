//! Invariant 2: at most one driver launch per (job, attempt) in the launch ledger, only the
//! attempts the job's restart policy allows (1 to its `maxAttempts`, 1 alone without one),
//! each after the one before, and never two drivers of one job at once: attempt `n + 1` is
//! launched only after attempt `n`'s program exited. The ledger is written by the
//! spark-submit the nodes run, so it counts what really started, whatever the cluster
//! believes. A launch of a job the cluster does not know, and a ledger line that is neither a
//! launch nor an exit, are violations too.

use super::{Invariant, Observations, Violation};
use crate::ledger::{Exit, Launch};
use std::collections::BTreeMap;

/// The attempts a job's restart policy allows, as its native document shows the policy.
fn allowed_attempts(doc: Option<&serde_json::Value>) -> u32 {
    doc.and_then(|d| d["restartPolicy"]["maxAttempts"].as_u64())
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1)
}

pub fn check(o: &Observations) -> Vec<Violation> {
    let v = |m: String| Violation::new(Invariant::Launches, m);
    let mut out: Vec<Violation> = o.ledger_errors.iter().map(|e| v(e.to_string())).collect();
    let mut by_attempt: BTreeMap<(u64, u32), Vec<&Launch>> = BTreeMap::new();
    for l in &o.launches {
        by_attempt.entry((l.job, l.attempt)).or_default().push(l);
    }
    let exits: BTreeMap<(u64, u32), &Exit> =
        o.exits.iter().map(|e| ((e.job, e.attempt), e)).collect();
    let reference = o.reference();
    let known = reference.map(|r| r.states());
    for ((job, attempt), ls) in &by_attempt {
        if ls.len() > 1 {
            let who: Vec<String> = ls
                .iter()
                .map(|l| format!("pid {} at {} (line {})", l.pid, l.at_ms, l.line))
                .collect();
            out.push(v(format!(
                "job {job} attempt {attempt} was launched {} times: {}",
                ls.len(),
                who.join(", ")
            )));
        }
        let doc = reference.and_then(|r| {
            r.docs
                .get(job)
                .or_else(|| r.listing.iter().find(|d| d["id"].as_u64() == Some(*job)))
        });
        let allowed = allowed_attempts(doc);
        if *attempt == 0 || *attempt > allowed {
            out.push(v(format!(
                "job {job} was launched as attempt {attempt}; its restart policy allows \
                 attempts 1 to {allowed}"
            )));
        }
        if *attempt > 1 {
            let launched = ls.iter().map(|l| l.at_ms).min().unwrap_or_default();
            match (
                by_attempt.get(&(*job, attempt - 1)),
                exits.get(&(*job, attempt - 1)),
            ) {
                (None, _) => out.push(v(format!(
                    "job {job} was launched as attempt {attempt} without attempt {}",
                    attempt - 1
                ))),
                (Some(_), None) => out.push(v(format!(
                    "job {job} attempt {attempt} was launched while attempt {} had not \
                     exited (no exit in the ledger)",
                    attempt - 1
                ))),
                (Some(_), Some(e)) if e.at_ms > launched => out.push(v(format!(
                    "job {job} attempt {attempt} was launched at {launched}, before attempt \
                     {} exited at {}: two drivers at once",
                    attempt - 1,
                    e.at_ms
                ))),
                _ => {}
            }
        }
        if let Some(states) = &known {
            if !states.contains_key(job) {
                out.push(v(format!(
                    "the ledger holds a launch of job {job}, which no node knows"
                )));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;
    use crate::ledger::{parse, Launch};

    fn launch(line: usize, job: u64, attempt: u32) -> Launch {
        Launch {
            line,
            at_ms: 1_700_000_000_000 + line as i64,
            pid: 100 + line as u32,
            driver: format!("c:kindling-{job}-{attempt}"),
            job,
            attempt,
            kind: "batch".into(),
        }
    }

    fn exit(line: usize, job: u64, attempt: u32) -> Exit {
        Exit {
            line,
            at_ms: 1_700_000_000_000 + line as i64,
            pid: 100 + line as u32,
            job,
            attempt,
            code: 1,
        }
    }

    /// Job 1 has no restart policy; job 2 may run 2 attempts.
    fn obs(launches: Vec<Launch>, exits: Vec<Exit>) -> Observations {
        let mut snapshot = node(
            1,
            &[
                (1, "success", batch_events(1, 1, 1)),
                (2, "dead", batch_events(5, 1, 1)),
            ],
        );
        // As a run collects it: job 2 is in the listing only.
        snapshot.docs.remove(&2);
        snapshot.listing[1]["restartPolicy"] = serde_json::json!({"maxAttempts": 2});
        Observations {
            launches,
            exits,
            snapshots: vec![snapshot],
            ..Default::default()
        }
    }

    #[test]
    fn passes_with_one_launch_per_attempt_each_after_the_last_exited() {
        let launches = vec![launch(1, 1, 1), launch(2, 2, 1), launch(4, 2, 2)];
        assert_eq!(check(&obs(launches, vec![exit(3, 2, 1)])), vec![]);
    }

    #[test]
    fn fails_on_a_double_launch() {
        let v = check(&obs(
            vec![launch(1, 1, 1), launch(2, 2, 1), launch(3, 1, 1)],
            vec![],
        ));
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message
                .contains("job 1 attempt 1 was launched 2 times"),
            "{v:?}"
        );
    }

    #[test]
    fn fails_on_a_retry_the_policy_does_not_allow() {
        let v = check(&obs(
            vec![launch(1, 1, 1), launch(3, 1, 2)],
            vec![exit(2, 1, 1)],
        ));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("attempts 1 to 1"), "{v:?}");
        let v = check(&obs(
            vec![launch(1, 2, 1), launch(3, 2, 2), launch(5, 2, 3)],
            vec![exit(2, 2, 1), exit(4, 2, 2)],
        ));
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.contains("job 2 was launched as attempt 3"),
            "{v:?}"
        );
    }

    #[test]
    fn fails_on_two_drivers_of_one_job_at_once() {
        let early = check(&obs(
            vec![launch(1, 2, 1), launch(2, 2, 2)],
            vec![exit(3, 2, 1)],
        ));
        assert_eq!(early.len(), 1);
        assert!(
            early[0].message.contains("two drivers at once"),
            "{early:?}"
        );
        let never = check(&obs(vec![launch(1, 2, 1), launch(2, 2, 2)], vec![]));
        assert_eq!(never.len(), 1);
        assert!(never[0].message.contains("had not exited"), "{never:?}");
        let skipped = check(&obs(vec![launch(2, 2, 2)], vec![]));
        assert!(
            skipped[0].message.contains("without attempt 1"),
            "{skipped:?}"
        );
    }

    #[test]
    fn fails_on_an_unknown_job_or_a_foreign_line() {
        let (launches, errors) = parse("launch\t1\t2\tc:kindling-9-1\t9\t1\tbatch\ntorn\tline\n");
        let mut o = obs(launches, vec![]);
        o.ledger_errors = errors;
        let v = check(&o);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].message.contains("ledger line 2"));
        assert!(v[1].message.contains("job 9, which no node knows"));
    }
}
