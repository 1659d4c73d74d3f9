//! Invariant 5: every statement's result is recorded exactly once. In the log, each statement
//! is submitted once and ends once (completed or cancelled); every acknowledged statement is
//! there with the code its client sent; the statement ledger (each statement's code appends
//! its token when it runs) shows no statement ran twice, a statement that completed `ok` ran
//! exactly once, and nothing ran that the log does not hold; and every client that read an
//! available statement saw the same output.

use super::{Invariant, Observations, Violation};
use crate::history::{OpKind, OpResult};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Default)]
struct Seen {
    submitted: usize,
    ended: usize,
    code: String,
    ok: bool,
}

/// Whether a statement's code is the one that writes `token` (quoted, as the workload's code
/// has it, so `n1` is not found in `n10`).
fn holds(code: &str, token: &str) -> bool {
    code.contains(&format!("\"{token}\""))
}

pub fn check(o: &Observations) -> Vec<Violation> {
    let v = |m: String| Violation::new(Invariant::Statements, m);
    let mut out = vec![];
    let Some(reference) = o.reference() else {
        return out;
    };
    let states = reference.states();
    let mut seen: BTreeMap<(u64, u64), Seen> = BTreeMap::new();
    for (job, events) in &o.job_events() {
        for e in events {
            let Some(sid) = e.data.get("statement").and_then(Value::as_u64) else {
                continue;
            };
            let s = seen.entry((*job, sid)).or_default();
            match e.kind.as_str() {
                "StatementSubmitted" => {
                    s.submitted += 1;
                    s.code = e.data["code"].as_str().unwrap_or_default().to_string();
                }
                "StatementCompleted" => {
                    s.ended += 1;
                    s.ok = e.data["output"].get("Ok").is_some();
                }
                "StatementCancelled" => s.ended += 1,
                _ => {}
            }
        }
    }
    let mut runs: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &o.statement_runs {
        *runs.entry(t.as_str()).or_default() += 1;
    }
    for ((job, sid), s) in &seen {
        if s.submitted != 1 {
            out.push(v(format!(
                "job {job} statement {sid} was submitted {} times in the log",
                s.submitted
            )));
        }
        let job_ended = states
            .get(job)
            .is_some_and(|st| matches!(st.as_str(), "success" | "dead" | "killed" | "error"));
        if s.ended > 1 || (s.ended == 0 && job_ended) {
            out.push(v(format!(
                "job {job} statement {sid} has {} results in the log (one expected)",
                s.ended
            )));
        }
    }
    for op in &o.history {
        if op.kind != OpKind::SubmitStatement || op.result != OpResult::Ok {
            continue;
        }
        let (Some(job), Some(sid), Some(token)) = (op.job, op.statement, op.token.as_deref())
        else {
            continue;
        };
        match seen.get(&(job, sid)) {
            None => out.push(v(format!(
                "acknowledged statement {sid} of job {job} ({token}) is not in the log"
            ))),
            Some(s) if !holds(&s.code, token) => out.push(v(format!(
                "acknowledged statement {sid} of job {job} holds other code than {token}'s"
            ))),
            Some(s) => {
                let n = runs.get(token).copied().unwrap_or(0);
                if s.ok && n != 1 {
                    out.push(v(format!(
                        "statement {sid} of job {job} ({token}) completed ok but ran {n} times"
                    )));
                }
            }
        }
    }
    for (token, n) in &runs {
        if *n > 1 {
            out.push(v(format!("statement {token} ran {n} times")));
        }
        if !seen.values().any(|s| holds(&s.code, token)) {
            out.push(v(format!(
                "statement {token} ran but the log holds no such statement"
            )));
        }
    }
    let mut outputs: BTreeMap<(u64, u64), &Value> = BTreeMap::new();
    for op in &o.history {
        if op.kind != OpKind::ReadStatement
            || op.result != OpResult::Ok
            || op.state.as_deref() != Some("available")
        {
            continue;
        }
        let (Some(job), Some(sid), Some(output)) = (op.job, op.statement, op.output.as_ref())
        else {
            continue;
        };
        if let Some(first) = outputs.insert((job, sid), output) {
            if first != output {
                out.push(v(format!(
                    "statement {sid} of job {job} showed two outputs: {first} and {output}"
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
    use crate::history::Op;
    use serde_json::json;

    fn st(position: u64, kind: &str, data: Value) -> crate::records::EventRecord {
        let mut e = event(position, "api", None, 1, kind);
        e.data = data;
        e
    }

    fn session(events: Vec<crate::records::EventRecord>) -> Observations {
        Observations {
            snapshots: vec![node(1, &[(7, "killed", events)])],
            ..Default::default()
        }
    }

    fn ack(sid: u64, token: &str) -> Op {
        let mut op = Op::new(0, OpKind::SubmitStatement, 0, 1, OpResult::Ok);
        op.job = Some(7);
        op.statement = Some(sid);
        op.token = Some(token.into());
        op
    }

    fn read(sid: u64, output: Value) -> Op {
        let mut op = Op::new(0, OpKind::ReadStatement, 2, 3, OpResult::Ok);
        op.job = Some(7);
        op.statement = Some(sid);
        op.state = Some("available".into());
        op.output = Some(output);
        op
    }

    fn good() -> Vec<crate::records::EventRecord> {
        vec![
            st(
                1,
                "StatementSubmitted",
                json!({"statement": 0, "code": "write(\"t0\")"}),
            ),
            st(
                2,
                "StatementCompleted",
                json!({"statement": 0, "output": {"Ok": {}}}),
            ),
            st(
                3,
                "StatementSubmitted",
                json!({"statement": 1, "code": "write(\"t1\")"}),
            ),
            st(4, "StatementCancelled", json!({"statement": 1})),
        ]
    }

    #[test]
    fn passes_when_each_statement_ran_and_ended_once() {
        let mut o = session(good());
        o.history = vec![
            ack(0, "t0"),
            ack(1, "t1"),
            read(0, json!(42)),
            read(0, json!(42)),
        ];
        o.statement_runs = vec!["t0".into()];
        assert_eq!(check(&o), vec![]);
    }

    #[test]
    fn fails_on_a_statement_run_twice() {
        let mut o = session(good());
        o.history = vec![ack(0, "t0")];
        o.statement_runs = vec!["t0".into(), "t0".into()];
        let v = check(&o);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().any(|v| v.message.contains("t0 ran 2 times")));
    }

    #[test]
    fn fails_on_two_results_or_none() {
        let mut ev = good();
        ev.push(st(
            5,
            "StatementCompleted",
            json!({"statement": 0, "output": {"Ok": {}}}),
        ));
        ev.push(st(
            6,
            "StatementSubmitted",
            json!({"statement": 2, "code": "x"}),
        ));
        let mut o = session(ev);
        o.statement_runs = vec!["t0".into()];
        let v = check(&o);
        assert_eq!(v.len(), 2, "{v:?}");
    }

    #[test]
    fn fails_on_a_lost_acknowledged_statement_or_two_outputs() {
        let mut o = session(good());
        o.history = vec![ack(5, "t5"), read(0, json!(42)), read(0, json!(43))];
        o.statement_runs = vec!["t0".into()];
        let v = check(&o);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].message.contains("is not in the log"));
        assert!(v[1].message.contains("two outputs"));
    }
}
