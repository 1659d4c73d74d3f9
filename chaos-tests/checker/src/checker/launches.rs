//! Invariant 2: at most one driver launch per (job, attempt) in the launch ledger, and only
//! the attempts the restart policy allows. Kindling never retries a launch today, so every
//! launch is attempt 1. The ledger is written by the spark-submit the nodes run, so it counts
//! what really started, whatever the cluster believes. A launch of a job the cluster does
//! not know, and a ledger line that is not a launch, are violations too.

use super::{Invariant, Observations, Violation};
use std::collections::BTreeMap;

/// The attempts the restart policy allows for a job.
pub const ALLOWED_ATTEMPTS: [u32; 1] = [1];

pub fn check(o: &Observations) -> Vec<Violation> {
    let v = |m: String| Violation::new(Invariant::Launches, m);
    let mut out: Vec<Violation> = o.ledger_errors.iter().map(|e| v(e.to_string())).collect();
    let mut by_attempt: BTreeMap<(u64, u32), Vec<&crate::ledger::Launch>> = BTreeMap::new();
    for l in &o.launches {
        by_attempt.entry((l.job, l.attempt)).or_default().push(l);
    }
    let known = o.reference().map(|r| r.states());
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
        if !ALLOWED_ATTEMPTS.contains(attempt) {
            out.push(v(format!(
                "job {job} was launched as attempt {attempt}; the restart policy allows only {ALLOWED_ATTEMPTS:?}"
            )));
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

    fn obs(launches: Vec<Launch>) -> Observations {
        Observations {
            launches,
            snapshots: vec![node(
                1,
                &[
                    (1, "success", batch_events(1, 1, 1)),
                    (2, "success", batch_events(5, 1, 1)),
                ],
            )],
            ..Default::default()
        }
    }

    #[test]
    fn passes_with_one_launch_per_job() {
        assert_eq!(check(&obs(vec![launch(1, 1, 1), launch(2, 2, 1)])), vec![]);
    }

    #[test]
    fn fails_on_a_double_launch() {
        let v = check(&obs(vec![
            launch(1, 1, 1),
            launch(2, 2, 1),
            launch(3, 1, 1),
        ]));
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message
                .contains("job 1 attempt 1 was launched 2 times"),
            "{v:?}"
        );
    }

    #[test]
    fn fails_on_a_retry_the_policy_does_not_allow() {
        let v = check(&obs(vec![launch(1, 1, 1), launch(2, 1, 2)]));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("attempt 2"), "{v:?}");
    }

    #[test]
    fn fails_on_an_unknown_job_or_a_foreign_line() {
        let (launches, errors) = parse("launch\t1\t2\tc:kindling-9-1\t9\t1\tbatch\ntorn\tline\n");
        let mut o = obs(launches);
        o.ledger_errors = errors;
        let v = check(&o);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].message.contains("ledger line 2"));
        assert!(v[1].message.contains("job 9, which no node knows"));
    }
}
