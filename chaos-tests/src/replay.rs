//! Replay throughput: N events (batch jobs of four events each) appended to a sled log, then
//! folded into fresh sled projections the way a node's projector does on start.

use anyhow::Result;
use kindling_events::spec::{BatchSpec, JobKind, JobSpec};
use kindling_events::{
    Aggregate, Attempt, Event, JobId, LogPosition, NewEvent, NodeId, Origin, Outcome, Term,
};
use kindling_store::{EventLog, ProjectionStore, SledEventLog, SledProjections};
use std::time::Instant;

pub fn job_events(job: u64) -> Vec<NewEvent> {
    let term = Origin::Scheduler { term: Term(1) };
    let e = |version: u64, origin: Origin, event: Event| NewEvent {
        aggregate: Aggregate::Job(JobId(job)),
        version,
        origin,
        node: NodeId(1),
        actor: None,
        at_ms: 1_700_000_000_000 + job as i64,
        event,
    };
    vec![
        e(
            1,
            Origin::Api,
            Event::JobSubmitted {
                spec: JobSpec {
                    kind: JobKind::Batch(BatchSpec {
                        file: "/apps/etl.py".into(),
                        class_name: None,
                        args: vec!["--day".into(), "2026-11-21".into()],
                    }),
                    name: Some(format!("etl-{job}")),
                    owner: Some("ann".into()),
                    proxy_user: None,
                    resources: Default::default(),
                },
            },
        ),
        e(
            2,
            term,
            Event::JobScheduled {
                attempt: Attempt(1),
                driver_name: format!("kindling-{job}-1"),
                secret_digest: String::new(),
            },
        ),
        e(
            3,
            term,
            Event::DriverLaunched {
                attempt: Attempt(1),
                driver_id: format!("local:{job}"),
            },
        ),
        e(
            4,
            term,
            Event::JobFinished {
                attempt: Attempt(1),
                outcome: Outcome::Succeeded,
                exit_code: Some(0),
            },
        ),
    ]
}

pub async fn run(events: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = SledEventLog::open(&dir.path().join("log"))?;
    let jobs = events.div_ceil(4) as u64;
    let t = Instant::now();
    let mut batch = Vec::with_capacity(40_000);
    for job in 0..jobs {
        batch.extend(job_events(job));
        if batch.len() >= 40_000 {
            log.append(std::mem::take(&mut batch)).await?;
        }
    }
    log.append(batch).await?;
    let written = log.end().0;
    println!(
        "wrote {written} events ({jobs} jobs) in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let projections = SledProjections::open(&dir.path().join("projections"))?;
    let t = Instant::now();
    let log: std::sync::Arc<dyn EventLog> = std::sync::Arc::new(log);
    kindling_store::catch_up(log, &projections, LogPosition(written), |_| {}).await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(projections.checkpoint().await? == LogPosition(written));
    let sample = projections
        .job(JobId(jobs / 2))
        .await?
        .expect("a replayed job");
    anyhow::ensure!(sample.state == kindling_events::JobState::Success && sample.version == 4);
    println!(
        "replayed {written} events into fresh projections in {:.2} s: {:.0} events/s",
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
