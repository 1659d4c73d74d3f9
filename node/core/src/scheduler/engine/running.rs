//! A driver the scheduler counts as running: its attempt, cluster and demand, and where it
//! stands with its backend ([`Phase`]).

use kindling_backend::BackendEvent;
use kindling_events::plan::Demand;
use kindling_events::{Attempt, Cluster, Job};
use std::time::{Duration, Instant};

/// Where a driver the scheduler counts as running stands with its backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// The launch is under way; what the backend reports meanwhile waits for its answer.
    Launching { early: Vec<BackendEvent> },
    /// Being looked up after a take-over or a change of its cluster; looked up again at
    /// `retry_at` if the lookup failed.
    Finding { retry_at: Option<Instant> },
    /// Launched or found: the backend watches it and reports its end.
    Watched,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub attempt: Attempt,
    pub owner: Option<String>,
    pub cluster: String,
    pub demand: Demand,
    /// Its queue and user on its cluster, for the shares of the queues and users.
    pub queue: String,
    pub user: Option<String>,
    pub driver_name: String,
    pub phase: Phase,
    pub killing: bool,
    /// Set when the scheduler itself stops the driver: the reason it is dead.
    pub doomed: Option<String>,
    /// How long a session's driver has been away, for the reconnect grace.
    pub disconnected: Disconnected,
}

impl Running {
    pub fn new(job: &Job, cluster: &Cluster, driver_name: String, phase: Phase) -> Self {
        Running {
            attempt: job.attempt,
            owner: job.spec.owner.clone(),
            cluster: cluster.name.clone(),
            demand: Demand::of(&job.spec, &cluster.config.spark_conf),
            queue: kindling_events::queues::queue_of(&job.spec).to_string(),
            user: kindling_events::queues::user_of(&job.spec).map(str::to_string),
            driver_name,
            phase,
            killing: false,
            doomed: None,
            disconnected: Disconnected::default(),
        }
    }
}

/// How long a session's driver has been away, as this scheduler saw it: from the first check
/// that found the session recovering until one that finds it otherwise. A driver that
/// reconnected gets the whole grace again when it next loses its link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disconnected {
    since: Option<Instant>,
}

impl Disconnected {
    /// One check's view at `now`: while `recovering`, how long the driver has been away;
    /// otherwise (it reconnected, or never lost its link) `None`, and the count starts over.
    pub fn observe(&mut self, recovering: bool, now: Instant) -> Option<Duration> {
        if !recovering {
            self.since = None;
            return None;
        }
        Some(now.saturating_duration_since(*self.since.get_or_insert(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_that_reconnected_gets_the_whole_grace_when_it_is_next_away() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut d = Disconnected::default();
        assert_eq!(d.observe(false, at(0)), None);
        assert_eq!(d.observe(true, at(10)), Some(Duration::ZERO));
        assert_eq!(d.observe(true, at(25)), Some(Duration::from_secs(15)));
        // Back (idle) at 30 s; away again two minutes later: counted from then, not from 10 s.
        assert_eq!(d.observe(false, at(30)), None);
        assert_eq!(d.observe(false, at(100)), None);
        assert_eq!(d.observe(true, at(150)), Some(Duration::ZERO));
        assert_eq!(d.observe(true, at(151)), Some(Duration::from_secs(1)));
    }
}
