//! The command side of a node: turns requests into events, appends them durably and keeps the
//! write model (the job aggregates) in step. Reads go to the projections; this module only
//! decides and appends. It does not launch, track or talk to drivers.

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics;
use kindling_events::spec::JobSpec;
use kindling_events::{
    Aggregate, Command, Envelope, Event, Job, JobId, JobState, LogPosition, NewEvent, NodeId,
    Origin,
};
use kindling_raft::IdAllocator;
use kindling_store::{EventLog, JobQuery, ProjectionStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex};

pub struct Core {
    pub node: NodeId,
    pub log: Arc<dyn EventLog>,
    pub projections: Arc<dyn ProjectionStore>,
    pub clock: Arc<dyn Clock>,
    ids: Arc<dyn IdAllocator>,
    /// The write model: aggregates loaded so far, each behind its own lock so commands on one
    /// job are decided one at a time.
    jobs: StdMutex<HashMap<JobId, Arc<Mutex<Job>>>>,
    /// How far the projections reflect the log.
    projected: watch::Receiver<LogPosition>,
    /// Jobs by state, for the `kindling_jobs` gauge.
    states: StdMutex<HashMap<JobState, i64>>,
}

impl Core {
    pub async fn new(
        node: NodeId,
        log: Arc<dyn EventLog>,
        projections: Arc<dyn ProjectionStore>,
        ids: Arc<dyn IdAllocator>,
        clock: Arc<dyn Clock>,
        projected: watch::Receiver<LogPosition>,
    ) -> Result<Self> {
        let core = Core {
            node,
            log,
            projections,
            clock,
            ids,
            jobs: StdMutex::new(HashMap::new()),
            projected,
            states: StdMutex::new(HashMap::new()),
        };
        core.count_states().await?;
        Ok(core)
    }

    async fn count_states(&self) -> Result<()> {
        let all = self.all_jobs().await?;
        let mut states = self.states.lock().unwrap();
        states.clear();
        for j in &all {
            *states.entry(j.state).or_default() += 1;
        }
        for s in JobState::ALL {
            metrics::jobs_in_state(s, *states.get(&s).unwrap_or(&0));
        }
        Ok(())
    }

    fn count_move(&self, from: Option<JobState>, to: JobState) {
        if from == Some(to) {
            return;
        }
        let mut states = self.states.lock().unwrap();
        if let Some(f) = from {
            let n = states.entry(f).or_default();
            *n -= 1;
            metrics::jobs_in_state(f, *n);
        }
        let n = states.entry(to).or_default();
        *n += 1;
        metrics::jobs_in_state(to, *n);
    }

    /// Waits until the projections reflect the log up to `position` (exclusive), or the
    /// deadline passes. Reads after a write call this to see their own writes.
    pub async fn await_projected(&self, position: LogPosition, timeout: Duration) -> bool {
        let mut rx = self.projected.clone();
        let deadline = Instant::now() + timeout;
        loop {
            if *rx.borrow_and_update() >= position {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                return false;
            }
        }
    }

    /// Waits until the projections reflect everything appended so far.
    pub async fn catch_up(&self) -> bool {
        self.await_projected(self.log.end(), Duration::from_secs(5))
            .await
    }

    pub fn projected(&self) -> watch::Receiver<LogPosition> {
        self.projected.clone()
    }

    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        let started = Instant::now();
        let out = self.log.append(events).await?;
        metrics::append_latency(started.elapsed());
        Ok(out)
    }

    /// Accepts a new job: allocates its id, appends `JobSubmitted` and returns the job once
    /// the event is durable. The answer is built from the event, not from a projection.
    pub async fn submit(&self, spec: JobSpec) -> Result<Job> {
        let id = self.ids.next_job_id().await?;
        let kind = spec.kind_name();
        let events: Vec<NewEvent> = Job::submit(spec)
            .into_iter()
            .enumerate()
            .map(|(i, event)| self.new_event(Aggregate::Job(id), i as u64 + 1, Origin::Api, event))
            .collect();
        // The aggregate is registered, locked, before the append: whoever sees the event in
        // the log and looks the job up (the scheduler) waits here instead of loading a second
        // copy of it.
        let provisional = Job::created(&Envelope::new(LogPosition(0), events[0].clone()))
            .expect("first event creates the job");
        let agg = Arc::new(Mutex::new(provisional));
        let mut job = agg.clone().lock_owned().await;
        self.jobs.lock().unwrap().insert(id, agg);
        let envs = match self.append(events).await {
            Ok(envs) => envs,
            Err(e) => {
                self.jobs.lock().unwrap().remove(&id);
                return Err(e);
            }
        };
        *job = Job::created(&envs[0]).expect("first event creates the job");
        for e in &envs[1..] {
            job.apply(e);
        }
        self.count_move(None, job.state);
        metrics::submission(kind);
        Ok(job.clone())
    }

    fn new_event(
        &self,
        aggregate: Aggregate,
        version: u64,
        origin: Origin,
        event: Event,
    ) -> NewEvent {
        NewEvent {
            aggregate,
            version,
            origin,
            node: self.node,
            at_ms: self.clock.now_ms(),
            event,
        }
    }

    /// The aggregate of `id`, loaded from the projections the first time.
    async fn aggregate(&self, id: JobId) -> Result<Arc<Mutex<Job>>> {
        if let Some(j) = self.jobs.lock().unwrap().get(&id) {
            return Ok(j.clone());
        }
        self.catch_up().await;
        let job = self.projections.job(id).await?.ok_or(Error::NotFound(id))?;
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .entry(id)
            .or_insert_with(|| Arc::new(Mutex::new(job)))
            .clone())
    }

    /// The current write-model state of a job.
    pub async fn job(&self, id: JobId) -> Result<Job> {
        Ok(self.aggregate(id).await?.lock().await.clone())
    }

    /// Decides `cmd` against job `id` and appends what it decided. Returns the job after the
    /// events and the envelopes appended (none when the command was already done).
    pub async fn execute(
        &self,
        id: JobId,
        origin: Origin,
        cmd: Command,
    ) -> Result<(Job, Vec<Envelope>)> {
        let agg = self.aggregate(id).await?;
        let mut job = agg.lock().await;
        let events = job.decide(cmd)?;
        if events.is_empty() {
            return Ok((job.clone(), vec![]));
        }
        let before = job.state;
        let new = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| self.new_event(Aggregate::Job(id), job.version + 1 + i as u64, origin, e))
            .collect();
        let envs = self.append(new).await?;
        for e in &envs {
            job.apply(e);
        }
        self.count_move(Some(before), job.state);
        Ok((job.clone(), envs))
    }

    /// Every job the projections hold, deleted ones included.
    pub async fn all_jobs(&self) -> Result<Vec<Job>> {
        let query = JobQuery {
            include_deleted: true,
            limit: usize::MAX,
            ..Default::default()
        };
        Ok(self.projections.jobs(&query).await?.items)
    }

    /// Every job not yet in a terminal state, from the projections (after a catch-up).
    pub async fn active_jobs(&self) -> Result<Vec<Job>> {
        self.catch_up().await;
        let all = self.all_jobs().await?;
        let mut out = Vec::new();
        for j in all.into_iter().filter(|j| !j.state.is_terminal()) {
            out.push(self.job(j.id).await?);
        }
        Ok(out)
    }
}
