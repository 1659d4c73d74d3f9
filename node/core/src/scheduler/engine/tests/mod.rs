//! The engine's decisions, table by table, without I/O: a state, an input, the actions and
//! the state that follow. The fixtures build jobs by folding real events, as the write model
//! would hold them.

mod launching;
mod log;
mod recovery;
mod retries;
mod sessions;

use super::*;
use kindling_events::spec::DurationSpec;
use kindling_events::{
    Attempt, Capacity, ClusterConfig, Command, Envelope, Event, Job, JobId, JobSpec, JobState,
    LogPosition, NewEvent, NodeId, Origin, Outcome, Term,
};
use kindling_store::conformance::{batch_spec, session_spec};
use std::time::{Duration, Instant};

const TERM: Term = Term(5);

/// An engine whose built-in cluster runs `max_drivers` drivers at once, started in `TERM`.
fn engine(max_drivers: u32) -> Engine {
    let mut e = Engine::new(EngineConfig {
        builtin: Cluster {
            name: DEFAULT_CLUSTER.into(),
            config: ClusterConfig {
                capacity: Capacity {
                    max_drivers: Some(max_drivers),
                    ..Capacity::default()
                },
                ..ClusterConfig::local()
            },
            revision: LogPosition(0),
            registered_at_ms: 0,
            updated_at_ms: 0,
        },
        heartbeat_timeout: Duration::from_secs(10),
        recovery_grace: Duration::from_secs(30),
        secret_key: vec![7; 32],
        gateway_tls: Some(kindling_backend::GatewayTls {
            ca_pem: Some("-----BEGIN CERTIFICATE-----".into()),
        }),
    });
    assert!(e.start(TERM, vec![], Registry::default()).is_empty());
    e
}

fn env(position: u64, aggregate: Aggregate, origin: Origin, event: Event) -> Envelope {
    Envelope::new(
        LogPosition(position),
        NewEvent {
            aggregate,
            version: 1,
            origin,
            node: NodeId(1),
            actor: None,
            at_ms: 1_000,
            event,
        },
    )
}

fn job_env(position: u64, job: u64, origin: Origin, event: Event) -> Envelope {
    env(position, Aggregate::Job(JobId(job)), origin, event)
}

fn sched() -> Origin {
    Origin::Scheduler { term: TERM }
}

/// A job as the write model holds it after `events` (its submission first).
fn job(id: u64, spec: JobSpec, events: Vec<Event>) -> Job {
    let mut j = Job::created(&job_env(
        id * 100,
        id,
        Origin::Api,
        Event::JobSubmitted { spec },
    ))
    .expect("a submission");
    for (i, e) in events.into_iter().enumerate() {
        let mut env = job_env(id * 100 + 1 + i as u64, id, sched(), e);
        env.version = j.version + 1;
        j.apply(&env);
    }
    j
}

fn scheduled(attempt: u32, id: u64) -> Event {
    Event::JobScheduled {
        attempt: Attempt(attempt),
        driver_name: kindling_backend::driver_name(JobId(id), Attempt(attempt)),
        secret_digest: String::new(),
    }
}

/// A batch whose first attempt was scheduled and launched.
fn running_batch(id: u64) -> Job {
    job(
        id,
        batch_spec(None),
        vec![
            scheduled(1, id),
            Event::DriverLaunched {
                attempt: Attempt(1),
                driver_id: "d".into(),
            },
        ],
    )
}

/// A session whose driver registered: idle.
fn idle_session(id: u64) -> Job {
    job(
        id,
        session_spec(None),
        vec![
            scheduled(1, id),
            Event::DriverLaunched {
                attempt: Attempt(1),
                driver_id: "d".into(),
            },
            Event::SessionReady {
                attempt: Attempt(1),
            },
        ],
    )
}

fn loaded(job: Job) -> crate::Result<Loaded> {
    Ok(Loaded {
        job,
        last_seen: None,
    })
}

/// An engine that took over with `active` jobs, and the lookups it asked for answered with
/// `found` (so the running ones are watched).
fn watching(active: Vec<Job>) -> Engine {
    let mut e = engine(4);
    let now = Instant::now();
    for a in e.start(TERM, active.clone(), Registry::default()) {
        let Action::Lane {
            op: LaneOp::Find { job, attempt, .. },
            ..
        } = a
        else {
            continue;
        };
        let found = Ok(kindling_backend::Found::Running {
            driver_id: "d".into(),
        });
        let load = e.on_found(job, attempt, found, now);
        let Some(Action::Load { need, .. }) = load.into_iter().next() else {
            panic!("a lookup's answer reads the job");
        };
        let j = active.iter().find(|j| j.id == job).unwrap().clone();
        e.on_loaded(
            job,
            need,
            Ok(Loaded {
                job: j,
                last_seen: Some(now),
            }),
        );
    }
    e
}

fn commands(actions: &[Action]) -> Vec<(JobId, Command)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Command { job, cmd } => Some((*job, cmd.clone())),
            _ => None,
        })
        .collect()
}

fn lane_ops(actions: &[Action]) -> Vec<LaneOp> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Lane { op, .. } => Some(op.clone()),
            _ => None,
        })
        .collect()
}

fn ttl(text: &str, millis: u64) -> Option<DurationSpec> {
    Some(DurationSpec {
        text: text.into(),
        millis,
    })
}

#[allow(dead_code)]
fn state(j: &Job) -> JobState {
    j.state
}

#[allow(dead_code)]
fn outcome_of(cmd: &Command) -> Option<&Outcome> {
    match cmd {
        Command::Finish { outcome, .. } => Some(outcome),
        _ => None,
    }
}
