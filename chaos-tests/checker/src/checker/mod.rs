//! The checker: one invariant per file, each a pure function from what the run observed (the
//! history, the launch and statement ledgers, every node's final state, the fault records) to
//! the violations it finds. Each has unit tests on synthetic observations: one that passes
//! and at least one that shows it can fail.

pub mod acknowledged;
pub mod launches;
pub mod monotonic_states;
pub mod projections;
pub mod recovery;
pub mod scheduler_terms;
pub mod statements;

use crate::history::Op;
use crate::ledger::{Exit, Launch, LedgerError};
use crate::records::FaultRecord;
use crate::records::{EventRecord, NodeSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// 1. Every acknowledged submission exists and reaches a terminal state.
    Acknowledged,
    /// 2. At most one launch per (job, attempt); attempts as the restart policy allows.
    Launches,
    /// 3. Every job's states, as seen by any client, only move forward.
    MonotonicStates,
    /// 4. At most one leader writes per term; a deposed leader's late write counts nowhere.
    SchedulerTerms,
    /// 5. Every statement's result is recorded exactly once.
    Statements,
    /// 6. After healing, every node's projections equal a fresh replay.
    Projections,
    /// 7. The cluster serves again within the bound after the last fault.
    Recovery,
}

impl Invariant {
    pub const ALL: [Invariant; 7] = [
        Invariant::Acknowledged,
        Invariant::Launches,
        Invariant::MonotonicStates,
        Invariant::SchedulerTerms,
        Invariant::Statements,
        Invariant::Projections,
        Invariant::Recovery,
    ];

    pub fn number(self) -> usize {
        Self::ALL.iter().position(|i| *i == self).unwrap() + 1
    }

    pub fn title(self) -> &'static str {
        match self {
            Invariant::Acknowledged => "acknowledged submissions exist and end",
            Invariant::Launches => "at most one launch per (job, attempt)",
            Invariant::MonotonicStates => "job states only move forward",
            Invariant::SchedulerTerms => "one scheduler per term, late writes fenced",
            Invariant::Statements => "statement results recorded exactly once",
            Invariant::Projections => "projections equal a fresh replay",
            Invariant::Recovery => "serves again within the bound",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub message: String,
}

impl Violation {
    pub fn new(invariant: Invariant, message: impl Into<String>) -> Self {
        Violation {
            invariant,
            message: message.into(),
        }
    }
}

/// Everything a run observed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Observations {
    pub history: Vec<Op>,
    pub launches: Vec<Launch>,
    /// Batch programs that exited on their own, from the same ledger.
    #[serde(default)]
    pub exits: Vec<Exit>,
    pub ledger_errors: Vec<LedgerError>,
    /// Statement tokens, one per execution, from the statement ledger.
    pub statement_runs: Vec<String>,
    /// Every member's final state, after healing.
    pub snapshots: Vec<NodeSnapshot>,
    /// The spare node's state: a fresh replay of the log into empty projections.
    pub fresh: Option<NodeSnapshot>,
    /// Every job's events as the log holds them, read once in log order after healing.
    #[serde(default)]
    pub events: BTreeMap<u64, Vec<EventRecord>>,
    /// Where the log ended when `events` was read. The cluster may go on writing after that
    /// (a leader launching a job that waited in the queue): nodes read later may hold more.
    #[serde(default)]
    pub events_end: Option<u64>,
    /// The log's events about no job (leaders' take-over markers, registry changes), read
    /// with `events`: a new leader's marker fences its predecessor on every job.
    #[serde(default)]
    pub cluster_events: Vec<EventRecord>,
    /// Whether the leaders wrote through the broker's fence (Kafka transactions). Then no
    /// deposed leader's write may reach the log at all.
    #[serde(default)]
    pub log_fenced: bool,
    pub faults: Vec<FaultRecord>,
    /// From the final heal until the cluster served, if it did.
    pub final_recovery_ms: Option<u64>,
    pub recovery_bound_ms: u64,
    /// Problems the harness met while healing and collecting (each is a finding).
    pub notes: Vec<String>,
}

impl Observations {
    /// The snapshot to take as the cluster's account: the fresh replay if it could be read,
    /// else the first member that could.
    pub fn reference(&self) -> Option<&NodeSnapshot> {
        self.fresh
            .iter()
            .chain(self.snapshots.iter())
            .find(|s| s.errors.is_empty() && !s.listing.is_empty())
            .or_else(|| self.snapshots.iter().find(|s| s.errors.is_empty()))
    }

    /// Every job's events that count: as read from the log, or (when it could not be read)
    /// as the reference node served them, without the late writes of deposed leaders, which
    /// every reader ignores ([`Observations::late_writes`]).
    pub fn job_events(&self) -> BTreeMap<u64, Vec<EventRecord>> {
        let all = if !self.events.is_empty() {
            &self.events
        } else if let Some(r) = self.reference() {
            &r.events
        } else {
            return BTreeMap::new();
        };
        let late = self.late_writes();
        all.iter()
            .map(|(job, events)| {
                let counted = events
                    .iter()
                    .filter(|e| !late.contains_key(&e.position))
                    .cloned()
                    .collect();
                (*job, counted)
            })
            .collect()
    }

    /// The late writes of deposed leaders: every event a leader wrote (it carries the
    /// leader's term) that comes after an event of a newer term in the log, by position, with
    /// the newer term and where it first appeared. This is the checker's own reading of the
    /// rule the nodes apply (`kindling_events::fence`), written apart from theirs: without the
    /// broker's fence such writes reach the log, and no reader may count them.
    pub fn late_writes(&self) -> BTreeMap<u64, (u64, u64)> {
        let mut all: BTreeMap<u64, EventRecord> = self
            .log()
            .into_iter()
            .map(|(position, (_, e))| (position, e))
            .collect();
        for e in &self.cluster_events {
            all.entry(e.position).or_insert_with(|| e.clone());
        }
        let mut newest: Option<(u64, u64)> = None; // (term, first position)
        let mut late = BTreeMap::new();
        for (position, e) in all {
            let Some(term) = e.term else { continue };
            match newest {
                Some((t, at)) if term < t => {
                    late.insert(position, (t, at));
                }
                Some((t, _)) if term == t => {}
                _ => newest = Some((term, position)),
            }
        }
        late
    }

    /// Every job event the log or any node served, by log position, late writes included.
    pub fn log(&self) -> BTreeMap<u64, (u64, EventRecord)> {
        let mut out = BTreeMap::new();
        let served = self.fresh.iter().chain(self.snapshots.iter());
        for events in std::iter::once(&self.events).chain(served.map(|s| &s.events)) {
            for (job, events) in events {
                for e in events {
                    out.entry(e.position).or_insert_with(|| (*job, e.clone()));
                }
            }
        }
        out
    }
}

/// Runs every checker.
pub fn check_all(o: &Observations) -> Vec<Violation> {
    let mut v = vec![];
    v.extend(acknowledged::check(o));
    v.extend(launches::check(o));
    v.extend(monotonic_states::check(o));
    v.extend(scheduler_terms::check(o));
    v.extend(statements::check(o));
    v.extend(projections::check(o));
    v.extend(recovery::check(o));
    v
}

/// Helpers for the checkers' tests.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use crate::history::{OpKind, OpResult};
    use serde_json::json;

    pub fn event(
        position: u64,
        origin: &str,
        term: Option<u64>,
        node: u64,
        kind: &str,
    ) -> EventRecord {
        EventRecord {
            position,
            version: 0,
            origin: origin.into(),
            term,
            node,
            kind: kind.into(),
            data: json!({}),
        }
    }

    /// A node that serves these jobs, each with its state and events.
    pub fn node(id: u64, jobs: &[(u64, &str, Vec<EventRecord>)]) -> NodeSnapshot {
        let mut s = NodeSnapshot {
            node: id,
            ..Default::default()
        };
        for (job, state, events) in jobs {
            let doc = json!({"id": job, "type": "batch", "state": state, "killRequested": false});
            s.listing.push(doc.clone());
            s.docs.insert(*job, doc);
            s.events.insert(*job, events.clone());
        }
        s
    }

    /// A batch's usual events, at positions from `p`, written by the scheduler of `term`.
    pub fn batch_events(p: u64, term: u64, leader: u64) -> Vec<EventRecord> {
        vec![
            event(p, "api", None, 2, "JobSubmitted"),
            event(p + 1, "scheduler", Some(term), leader, "JobScheduled"),
            event(p + 2, "scheduler", Some(term), leader, "DriverLaunched"),
            event(p + 3, "scheduler", Some(term), leader, "JobFinished"),
        ]
    }

    pub fn submit(job: u64, invoke: u64, complete: u64, exit_code: i32) -> Op {
        let mut op = Op::new(0, OpKind::SubmitBatch, invoke, complete, OpResult::Ok);
        op.job = Some(job);
        op.state = Some("not_started".into());
        op.exit_code = Some(exit_code);
        op
    }

    pub fn read(job: u64, invoke: u64, complete: u64, state: &str) -> Op {
        let mut op = Op::new(0, OpKind::ReadJob, invoke, complete, OpResult::Ok);
        op.job = Some(job);
        op.state = Some(state.into());
        op
    }
}
