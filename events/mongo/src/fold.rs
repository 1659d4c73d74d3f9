//! Folding a batch of log events into the documents it changes: pure, with no I/O. The store
//! loads the documents the batch touches, this module applies the events to them (the domain's
//! `Job::apply` and `Statement::apply` decide what each event does, fencing included), and
//! the store writes back only what changed.

use crate::documents::{JobDoc, CHUNK};
use kindling_events::{job::Applied, Envelope, Job, JobId, Statement, StatementId};
use std::collections::{BTreeSet, HashMap};

/// The documents an `apply` must read before folding.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Touched {
    pub jobs: BTreeSet<JobId>,
    pub statements: BTreeSet<(JobId, StatementId)>,
}

pub fn touched<'a>(events: impl IntoIterator<Item = &'a Envelope>) -> Touched {
    let mut t = Touched::default();
    for env in events {
        let Some(job) = env.job() else { continue };
        t.jobs.insert(job);
        if let Some(s) = env.event.statement() {
            t.statements.insert((job, s));
        }
    }
    t
}

/// What a batch changed: the documents to write, in the order they must be written.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Full history chunks: written before the job documents that count them.
    pub chunks: Vec<(JobId, u64, Vec<u64>)>,
    pub statements: Vec<Statement>,
    pub jobs: Vec<JobDoc>,
}

/// Applies `events` to the loaded documents. `jobs` and `statements` hold what the store has
/// for every document `touched(events)` names (absent ones are simply missing).
pub fn fold<'a>(
    events: impl IntoIterator<Item = &'a Envelope>,
    mut jobs: HashMap<JobId, JobDoc>,
    mut statements: HashMap<(JobId, StatementId), Statement>,
) -> Changes {
    let mut changes = Changes::default();
    let mut dirty_jobs = BTreeSet::new();
    let mut dirty_statements = BTreeSet::new();
    for env in events {
        let Some(id) = env.job() else { continue };
        let applied = match jobs.get_mut(&id) {
            None => match Job::created(env) {
                Some(job) => {
                    jobs.insert(
                        id,
                        JobDoc {
                            job,
                            tail: vec![],
                            chunks: 0,
                        },
                    );
                    Applied::Yes
                }
                // Events of a job whose submission is not in the log: nothing to project.
                None => continue,
            },
            Some(doc) => doc.job.apply(env),
        };
        if applied == Applied::AlreadyApplied {
            continue;
        }
        // A fenced event changes nothing but the position the document reflects.
        dirty_jobs.insert(id);
        if applied == Applied::Fenced {
            continue;
        }
        let Some(doc) = jobs.get_mut(&id) else {
            continue;
        };
        doc.tail.push(env.position.0);
        if doc.tail.len() == CHUNK {
            changes
                .chunks
                .push((id, doc.chunks, std::mem::take(&mut doc.tail)));
            doc.chunks += 1;
        }
        if let Some(sid) = env.event.statement() {
            let mut slot = statements.remove(&(id, sid));
            if Statement::apply(&mut slot, env) {
                dirty_statements.insert((id, sid));
            }
            if let Some(s) = slot {
                statements.insert((id, sid), s);
            }
        }
    }
    changes.jobs = dirty_jobs
        .into_iter()
        .filter_map(|id| jobs.remove(&id))
        .collect();
    changes.statements = dirty_statements
        .into_iter()
        .filter_map(|key| statements.remove(&key))
        .collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_store::conformance::sample_history;

    fn fold_all(events: &[Envelope], jobs: HashMap<JobId, JobDoc>) -> Changes {
        fold(events, jobs, HashMap::new())
    }

    #[test]
    fn a_fresh_fold_writes_every_job_and_statement_once() {
        let history = sample_history();
        let t = touched(&history);
        assert_eq!(t.jobs.len(), 2);
        assert_eq!(t.statements.len(), 2);
        let changes = fold_all(&history, HashMap::new());
        assert_eq!(changes.jobs.len(), 2);
        assert_eq!(changes.statements.len(), 2);
        assert!(changes.chunks.is_empty());
        let session = &changes.jobs[1];
        assert_eq!(session.tail, [1, 3, 5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn events_already_reflected_write_nothing() {
        let history = sample_history();
        let first = fold_all(&history, HashMap::new());
        let jobs = first.jobs.into_iter().map(|d| (d.job.id, d)).collect();
        let statements = first
            .statements
            .into_iter()
            .map(|s| ((s.job, s.id), s))
            .collect();
        assert_eq!(fold(&history, jobs, statements), Changes::default());
    }

    #[test]
    fn a_full_tail_moves_to_a_chunk() {
        let history = sample_history();
        let mut doc = fold_all(&history[..1], HashMap::new()).jobs.remove(0);
        doc.tail = (0..CHUNK as u64 - 1).collect();
        doc.job.applied = kindling_events::LogPosition(0);
        let jobs = HashMap::from([(doc.job.id, doc)]);
        let changes = fold_all(&history[2..3], jobs);
        assert_eq!(changes.chunks.len(), 1);
        assert_eq!(changes.chunks[0].1, 0);
        assert_eq!(changes.chunks[0].2.len(), CHUNK);
        assert_eq!(changes.jobs[0].chunks, 1);
        assert!(changes.jobs[0].tail.is_empty());
    }
}
