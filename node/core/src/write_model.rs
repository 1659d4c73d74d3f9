//! The leader's write model: the job aggregates it has loaded, each behind its own lock so
//! that commands on one job are decided one at a time. It is only valid while this node
//! leads in one term: the [`Leader`](crate::leader::Leader) clears it on every take-over and
//! step-down, and jobs are loaded again from the projections (which then hold every event
//! any former leader wrote).
//!
//! The map's lock is never held across an await, and does not poison: a panic in one request
//! leaves the write model usable by every later one.

use kindling_events::{Job, JobId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// One job's aggregate, locked while a command on it is decided and appended.
pub type Aggregate = Arc<tokio::sync::Mutex<Job>>;

#[derive(Default)]
pub struct WriteModel {
    jobs: Mutex<HashMap<JobId, Aggregate>>,
}

impl WriteModel {
    /// The aggregate of `id`, if it is loaded.
    pub fn get(&self, id: JobId) -> Option<Aggregate> {
        self.jobs.lock().get(&id).cloned()
    }

    /// The aggregate of `job`: the one already held (always current) or, the first time,
    /// `job` as read from the projections.
    pub fn adopt(&self, job: Job) -> Aggregate {
        self.jobs
            .lock()
            .entry(job.id)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(job)))
            .clone()
    }

    /// Holds `aggregate` as the job's, in place of any other.
    pub fn insert(&self, id: JobId, aggregate: Aggregate) {
        self.jobs.lock().insert(id, aggregate);
    }

    pub fn remove(&self, id: JobId) {
        self.jobs.lock().remove(&id);
    }

    /// Forgets every aggregate (another term, or another member, writes now).
    pub fn clear(&self) {
        self.jobs.lock().clear();
    }

    /// How many aggregates are loaded.
    pub fn len(&self) -> usize {
        self.jobs.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_events::{Envelope, Event, LogPosition, NewEvent, NodeId, Origin};

    fn job(id: u64) -> Job {
        let spec = kindling_store::conformance::batch_spec(None);
        let env = Envelope::new(
            LogPosition(id),
            NewEvent {
                aggregate: kindling_events::Aggregate::Job(JobId(id)),
                version: 1,
                origin: Origin::Api,
                node: NodeId(1),
                actor: None,
                at_ms: 0,
                event: Event::JobSubmitted { spec },
            },
        );
        Job::created(&env).unwrap()
    }

    /// A request that panics while it holds the map (here: a thread) must not leave every
    /// later request failing on a poisoned lock, as a `std::sync::Mutex` would.
    #[test]
    fn a_panic_while_the_map_is_locked_leaves_it_usable() {
        let model = Arc::new(WriteModel::default());
        model.adopt(job(1));
        let holder = model.clone();
        let crashed = std::thread::spawn(move || {
            let _held = holder.jobs.lock();
            panic!("a request failed while holding the write model");
        })
        .join();
        assert!(crashed.is_err());
        assert!(model.get(JobId(1)).is_some());
        model.adopt(job(2));
        assert_eq!(model.len(), 2);
    }
}
