//! Which sessions' routes a new leader picks up, and how: a pure decision over the jobs the
//! log holds and the topics the brokers have.

use super::RouteConfig;
use kindling_events::{Job, JobState};
use std::collections::HashSet;

/// How a running session's route is picked up again by a new leader, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Follow its replies; the driver has not registered yet (its `Register` is among them).
    Follow,
    /// Follow its replies and count the driver as linked now: a former leader registered it.
    Adopt,
}

/// What a new leader does with `job`'s route, given the topics that exist. Sessions
/// launched in gRPC mode have no topics: their drivers reconnect by themselves.
pub fn resume_of(job: &Job, topics: &HashSet<String>, cfg: &RouteConfig) -> Option<Resume> {
    if !job.is_session() || job.driver_name.is_none() {
        return None;
    }
    let route = cfg.route(job.id);
    if !topics.contains(&route.requests) || !topics.contains(&route.replies) {
        return None;
    }
    match job.state {
        JobState::Starting => Some(Resume::Follow),
        JobState::Idle | JobState::Busy | JobState::Recovering | JobState::ShuttingDown => {
            Some(Resume::Adopt)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_events::spec::{BatchSpec, JobKind, JobSpec, SessionKind, SessionSpec};
    use kindling_events::{Aggregate, Envelope, JobId, LogPosition, NewEvent, NodeId, Origin};

    fn cfg() -> RouteConfig {
        RouteConfig {
            brokers: "127.0.0.1:9092".into(),
            prefix: "kindling.test".into(),
            replication: 1,
            client_id: "test".into(),
        }
    }

    fn session(id: u64, state: JobState) -> Job {
        let spec = JobSpec {
            kind: JobKind::Session(SessionSpec {
                kind: SessionKind::Pyspark,
                heartbeat_timeout_secs: 60,
                ttl: None,
                idle_timeout: None,
            }),
            name: None,
            owner: None,
            proxy_user: None,
            resources: Default::default(),
        };
        let event = NewEvent {
            aggregate: Aggregate::Job(JobId(id)),
            version: 1,
            origin: Origin::Api,
            node: NodeId(1),
            actor: None,
            at_ms: 0,
            event: Job::submit(spec).remove(0),
        };
        let mut job = Job::created(&Envelope::new(LogPosition(0), event)).unwrap();
        job.state = state;
        job.driver_name = Some(format!("kindling-{id}-1"));
        job
    }

    #[test]
    fn topics_are_named_after_the_prefix_and_the_job() {
        let r = cfg().route(JobId(7));
        assert_eq!(r.requests, "kindling.test.job.7.requests");
        assert_eq!(r.replies, "kindling.test.job.7.replies");
    }

    #[test]
    fn a_new_leader_adopts_registered_drivers_and_follows_starting_ones() {
        let cfg = cfg();
        let all: HashSet<String> = (1..=20)
            .flat_map(|i| {
                let r = cfg.route(JobId(i));
                [r.requests, r.replies]
            })
            .collect();
        let cases = [
            (JobState::Starting, Some(Resume::Follow)),
            (JobState::Idle, Some(Resume::Adopt)),
            (JobState::Busy, Some(Resume::Adopt)),
            (JobState::Recovering, Some(Resume::Adopt)),
            (JobState::ShuttingDown, Some(Resume::Adopt)),
            (JobState::Dead, None),
            (JobState::Killed, None),
            (JobState::Error, None),
            (JobState::Success, None),
        ];
        for (i, (state, want)) in cases.into_iter().enumerate() {
            let job = session(i as u64 + 1, state);
            assert_eq!(resume_of(&job, &all, &cfg), want, "{state:?}");
        }
    }

    #[test]
    fn sessions_without_topics_or_drivers_are_not_resumed() {
        let cfg = cfg();
        let r = cfg.route(JobId(1));
        let both: HashSet<String> = [r.requests.clone(), r.replies.clone()].into();
        let only_requests: HashSet<String> = [r.requests].into();
        let idle = session(1, JobState::Idle);
        assert_eq!(resume_of(&idle, &both, &cfg), Some(Resume::Adopt));
        // Launched in gRPC mode: its driver reconnects by itself.
        assert_eq!(resume_of(&idle, &HashSet::new(), &cfg), None);
        assert_eq!(resume_of(&idle, &only_requests, &cfg), None);
        let mut queued = session(1, JobState::NotStarted);
        queued.driver_name = None;
        assert_eq!(resume_of(&queued, &both, &cfg), None);
        let mut batch = session(1, JobState::Running);
        batch.spec.kind = JobKind::Batch(BatchSpec {
            file: "app.py".into(),
            class_name: None,
            args: vec![],
        });
        assert_eq!(resume_of(&batch, &both, &cfg), None);
    }
}
