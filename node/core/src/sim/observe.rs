//! What the simulation saw, for the chaos harness's checker: the log folded into jobs, every
//! event by aggregate, each node's projections and a fresh replay's, and a digest of the
//! events that tells two runs of one seed apart.

use super::*;

/// Every job in the log, as its events fold.
async fn fold(log: &dyn EventLog) -> BTreeMap<JobId, Job> {
    let mut jobs: BTreeMap<JobId, Job> = BTreeMap::new();
    for env in read_all(log).await {
        let Aggregate::Job(id) = env.aggregate else {
            continue;
        };
        match jobs.get_mut(&id) {
            Some(j) => {
                j.apply(&env);
            }
            None => {
                if let Some(j) = Job::created(&env) {
                    jobs.insert(id, j);
                }
            }
        }
    }
    jobs
}

async fn read_all(log: &dyn EventLog) -> Vec<Envelope> {
    let mut out = vec![];
    loop {
        let batch = log
            .read(LogPosition(out.len() as u64), 4096)
            .await
            .expect("the healed log reads");
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

/// Waits (virtual time, polled each second) until every job in the log has ended and no
/// driver runs.
pub(super) async fn settle(world: &World, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let jobs = fold(world.log.as_ref()).await;
        let active: Vec<u64> = jobs
            .values()
            .filter(|j| !j.state.is_terminal())
            .map(|j| j.id.0)
            .collect();
        let running = world.cluster.running();
        if active.is_empty() && running.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "after {limit:?} of healing, jobs {active:?} have not ended and drivers {running:?} still run"
            ));
        }
        sleep(Duration::from_secs(1)).await;
    }
}

/// A digest of every job's events, by which two runs of one seed are compared.
pub(super) fn digest(events: &BTreeMap<u64, Vec<EventRecord>>) -> u64 {
    use std::hash::{Hash, Hasher};
    // Fixed keys: the same digest in every process.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (job, events) in events {
        job.hash(&mut h);
        for e in events {
            (e.position, &e.origin, e.term, e.node, &e.kind).hash(&mut h);
            e.data.to_string().hash(&mut h);
        }
    }
    h.finish()
}

fn record(env: &Envelope) -> EventRecord {
    let doc = serde_json::to_value(EventDoc::from(env)).expect("an event serializes");
    serde_json::from_value(doc).expect("the harness reads what the API serves")
}

/// What projections serve, shaped as the chaos harness collects it over HTTP.
async fn snapshot(node: u64, projections: &Reads, log: &BTreeMap<u64, Envelope>) -> NodeSnapshot {
    let mut s = NodeSnapshot {
        node,
        ..Default::default()
    };
    let query = JobQuery {
        include_deleted: true,
        limit: usize::MAX,
        ..Default::default()
    };
    let jobs = match projections.jobs(&query).await {
        Ok(page) => page.items,
        Err(e) => {
            s.errors.push(e.to_string());
            return s;
        }
    };
    for job in &jobs {
        let doc = serde_json::to_value(JobDoc::from(job)).expect("a job serializes");
        s.listing.push(doc.clone());
        s.docs.insert(job.id.0, doc);
        match projections.history(job.id).await {
            Ok(positions) => {
                let events = positions
                    .iter()
                    .filter_map(|p| log.get(&p.0))
                    .map(record)
                    .collect();
                s.events.insert(job.id.0, events);
            }
            Err(e) => s.errors.push(e.to_string()),
        }
    }
    s
}

pub(super) async fn observe(
    world: &World,
    members: &[u64],
    final_recovery_ms: Option<u64>,
    notes: Vec<String>,
) -> Observations {
    let envelopes = read_all(world.log.as_ref()).await;
    let end = LogPosition(envelopes.len() as u64);
    let log: BTreeMap<u64, Envelope> = envelopes
        .iter()
        .map(|e| (e.position.0, e.clone()))
        .collect();
    let mut events: BTreeMap<u64, Vec<EventRecord>> = BTreeMap::new();
    let mut cluster_events = vec![];
    for e in &envelopes {
        match e.aggregate {
            Aggregate::Job(id) => events.entry(id.0).or_default().push(record(e)),
            Aggregate::Cluster | Aggregate::Registry | Aggregate::Tokens => {
                cluster_events.push(record(e))
            }
        }
    }
    let mut snapshots = vec![];
    let mut notes = notes;
    for id in members {
        let Some(core) = world.core(*id) else {
            continue;
        };
        if !core.await_projected(end, Duration::from_secs(60)).await {
            notes.push(format!("node {id} did not project the log's end {}", end.0));
        }
        snapshots.push(snapshot(*id, core.reads(), &log).await);
    }
    // A fresh replay: the whole log into empty projections.
    let fresh = SledProjections::temporary().expect("temporary projections");
    for chunk in envelopes.chunks(1024) {
        fresh.apply(chunk).await.expect("a fresh replay applies");
    }
    let fresh = Reads::new(world.log.clone(), Arc::new(fresh));
    let fresh = snapshot(0, &fresh, &log).await;
    Observations {
        history: world.history.lock().unwrap().clone(),
        launches: world.cluster.ledger(),
        exits: vec![],
        ledger_errors: vec![],
        statement_runs: vec![],
        snapshots,
        fresh: Some(fresh),
        events,
        events_end: Some(end.0),
        cluster_events,
        log_fenced: world.cfg.fenced_writes,
        faults: vec![],
        final_recovery_ms,
        recovery_bound_ms: 30_000,
        notes,
    }
}
