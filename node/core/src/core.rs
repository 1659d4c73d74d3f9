//! The command side of a node, put together: new jobs accepted on any member, commands on
//! existing jobs decided by the leader on its write model and appended through its writer,
//! and the reads behind the read barrier. It owns no state of its own; each part does:
//! [`Leader`] (whether and in which term this node decides, and its fenced writer),
//! [`WriteModel`] (the aggregates), [`ReadBarrier`], [`Reads`] and [`JobGauges`]. It does not
//! launch, track or talk to drivers.
//!
//! In a cluster, every member accepts submissions (a new job's id comes from a Raft-leased
//! block, so no two members can create the same job), but only the leader decides commands on
//! existing jobs: it is the one writer of their events, so its aggregates are always current.
//! Followers forward such requests to it (the API) and read from their projections.

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::job_gauges::JobGauges;
use crate::leader::{Leader, LeaderParts, WriterConfig};
use crate::leader_terms::LeaderTerms;
use crate::leadership::{LeaderState, Member};
use crate::metrics;
use crate::read_barrier::ReadBarrier;
use crate::reads::Reads;
use crate::write_model::WriteModel;
use kindling_events::spec::JobSpec;
use kindling_events::{
    Aggregate, Command, Envelope, Event, Job, JobId, LogPosition, NewEvent, NodeId, Origin, Term,
};
use kindling_store::{EventLog, ProjectionStore};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex};

/// Where a node keeps events and reads: the log, the projections, and how far the projector
/// has brought the projections.
pub struct Storage {
    pub log: Arc<dyn EventLog>,
    pub projections: Arc<dyn ProjectionStore>,
    pub projected: watch::Receiver<LogPosition>,
    /// The id under which leaders open their fenced writer: the same for every leader of
    /// one cluster, so each new one deposes the last at the log itself.
    pub writer_id: String,
    /// Whether the leader's writes are fenced at the log (`--kafka-transactions`).
    pub fenced_writes: bool,
    /// Where newer leader terms appeared in the log, as the projector read it.
    pub terms: Arc<LeaderTerms>,
}

pub struct Core {
    pub node: NodeId,
    pub clock: Arc<dyn Clock>,
    /// Where new jobs are appended (any member may create one).
    log: Arc<dyn EventLog>,
    /// Job ids.
    member: Arc<dyn Member>,
    leader: Leader,
    model: Arc<WriteModel>,
    barrier: Arc<ReadBarrier>,
    reads: Reads,
    gauges: JobGauges,
    /// How long a read of a job this node has not seen yet waits for it to arrive from the
    /// log (a job created on another member a moment ago). Zero on a single node.
    arrival_wait: Duration,
}

impl Core {
    pub async fn new(
        node: NodeId,
        storage: Storage,
        member: Arc<dyn Member>,
        clock: Arc<dyn Clock>,
        leadership: watch::Receiver<LeaderState>,
        arrival_wait: Duration,
    ) -> Result<Self> {
        let Storage {
            log,
            projections,
            projected,
            writer_id,
            fenced_writes,
            terms,
        } = storage;
        let barrier = Arc::new(ReadBarrier::new(log.clone(), projected));
        let model = Arc::new(WriteModel::default());
        let leader = Leader::new(LeaderParts {
            node,
            clock: clock.clone(),
            log: log.clone(),
            projections: projections.clone(),
            barrier: barrier.clone(),
            member: member.clone(),
            leadership,
            writer: WriterConfig {
                writer_id,
                fenced_writes,
                terms,
            },
            model: model.clone(),
        });
        let core = Core {
            node,
            clock,
            member,
            leader,
            model,
            barrier,
            reads: Reads::new(log.clone(), projections),
            log,
            gauges: JobGauges::default(),
            arrival_wait,
        };
        core.gauges.count(&core.reads.all_jobs().await?);
        Ok(core)
    }

    /// The read side: jobs, statements, histories, the log, the registry.
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// Waits until the projections reflect the log up to `position` (exclusive), or the
    /// deadline passes.
    pub async fn await_projected(&self, position: LogPosition, timeout: Duration) -> bool {
        self.barrier.await_projected(position, timeout).await
    }

    /// Waits until the projections reflect everything appended so far, as far as this node
    /// can tell; for the node's own bookkeeping.
    pub async fn catch_up(&self) -> bool {
        self.barrier.catch_up().await
    }

    /// Waits until the projections reflect every event acknowledged anywhere in the cluster
    /// before the call; a read served to a client passes it first.
    pub async fn read_barrier(&self) -> Result<()> {
        self.barrier.pass().await
    }

    /// How far the projections reflect the log; changes as they move on.
    pub fn projected(&self) -> watch::Receiver<LogPosition> {
        self.barrier.projected()
    }

    /// The term this node leads in, once its barrier is behind it.
    pub fn leading_term(&self) -> Option<Term> {
        self.leader.term()
    }

    /// Changes when this node starts or stops deciding commands as leader.
    pub fn leading(&self) -> watch::Receiver<Option<Term>> {
        self.leader.leading()
    }

    /// Who leads, as Raft sees it.
    pub fn leadership(&self) -> watch::Receiver<LeaderState> {
        self.leader.leadership()
    }

    /// See [`Leader::take_over`].
    pub async fn take_over(&self, term: Term) -> Result<LogPosition> {
        self.leader.take_over(term).await
    }

    /// See [`Leader::confirm`].
    pub async fn confirm_leading(&self) -> Result<Term> {
        self.leader.confirm().await
    }

    /// Stops deciding commands and forgets the write model (another member now writes).
    pub fn step_down(&self) {
        self.leader.step_down();
    }

    /// Appends what the leader decided (the registry's commands use it); see
    /// [`Leader::append`].
    pub async fn leader_append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        self.leader.append(events).await
    }

    pub(crate) fn new_event(
        &self,
        aggregate: Aggregate,
        version: u64,
        origin: Origin,
        actor: Option<String>,
        event: Event,
    ) -> NewEvent {
        NewEvent {
            aggregate,
            version,
            origin,
            node: self.node,
            actor,
            at_ms: self.clock.now_ms(),
            event,
        }
    }

    /// A client's `events` on `aggregate`, at version `after` + 1 on, asked for by `actor`.
    pub(crate) fn client_events(
        &self,
        aggregate: Aggregate,
        after: u64,
        actor: Option<String>,
        events: Vec<Event>,
    ) -> Vec<NewEvent> {
        let versions = after + 1..;
        let at_ms = self.clock.now_ms();
        versions
            .zip(events)
            .map(|(version, event)| NewEvent {
                aggregate,
                version,
                origin: Origin::Api,
                node: self.node,
                actor: actor.clone(),
                at_ms,
                event,
            })
            .collect()
    }

    /// Accepts a new job: allocates its id, appends `JobSubmitted` and returns the job once
    /// the event is durable. The answer is built from the event, not from a projection.
    /// Runs to the end even if the caller goes away (see [`detached`]). `actor`: who asked.
    pub async fn submit(self: &Arc<Self>, spec: JobSpec, actor: Option<String>) -> Result<Job> {
        let core = self.clone();
        detached(async move { core.submit_now(spec, actor).await }).await
    }

    async fn submit_now(&self, spec: JobSpec, actor: Option<String>) -> Result<Job> {
        let id = self.member.next_job_id().await?;
        let kind = spec.kind_name();
        let events: Vec<NewEvent> = Job::submit(spec)
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                let version = i as u64 + 1;
                self.new_event(
                    Aggregate::Job(id),
                    version,
                    Origin::Api,
                    actor.clone(),
                    event,
                )
            })
            .collect();
        // On the leader the aggregate is registered, locked, before the append: whoever sees
        // the event in the log and looks the job up (the scheduler) waits here instead of
        // loading a second copy of it. A follower keeps no aggregates: the leader loads the
        // job from its projections when it first needs it.
        let provisional = Job::created(&Envelope::new(LogPosition(0), events[0].clone()))
            .expect("first event creates the job");
        let agg = Arc::new(Mutex::new(provisional));
        let mut job = agg.clone().lock_owned().await;
        let registered = self.leading_term().is_some();
        if registered {
            self.model.insert(id, agg);
        }
        let started = Instant::now();
        let envs = match self.log.append(events).await.map_err(Error::from) {
            Ok(envs) => envs,
            Err(e) => {
                if registered {
                    self.model.remove(id);
                }
                return Err(e);
            }
        };
        metrics::append_latency(started.elapsed());
        *job = Job::created(&envs[0]).expect("first event creates the job");
        for e in &envs[1..] {
            job.apply(e);
        }
        self.gauges.moved(None, job.state);
        metrics::submission(kind);
        Ok(job.clone())
    }

    /// The aggregate of `id`, loaded from the projections the first time.
    async fn aggregate(&self, id: JobId) -> Result<crate::write_model::Aggregate> {
        if let Some(j) = self.model.get(id) {
            return Ok(j);
        }
        let job = self.projected_job(id).await?;
        Ok(self.model.adopt(job))
    }

    /// A job as the projections hold it once they reflect the log as this node knows it. A
    /// job not there yet may have been created on another member a moment ago: in a cluster
    /// the read waits, up to `arrival_wait`, for it to arrive.
    async fn projected_job(&self, id: JobId) -> Result<Job> {
        self.read_barrier().await?;
        if let Some(job) = self.reads.job(id).await? {
            return Ok(job);
        }
        let deadline = Instant::now() + self.arrival_wait;
        let mut projected = self.projected();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::NotFound(id));
            }
            projected.borrow_and_update();
            if tokio::time::timeout(left, projected.changed())
                .await
                .is_err()
            {
                return Err(Error::NotFound(id));
            }
            if let Some(job) = self.reads.job(id).await? {
                return Ok(job);
            }
        }
    }

    /// A job's current state: the write model's on the leader (always current), the
    /// projections' elsewhere (current up to what this node has read of the log).
    pub async fn job(&self, id: JobId) -> Result<Job> {
        if self.leading_term().is_some() {
            return Ok(self.aggregate(id).await?.lock().await.clone());
        }
        self.projected_job(id).await
    }

    /// Decides `cmd` against job `id` and appends what it decided. Returns the job after the
    /// events and the envelopes appended (none when the command was already done).
    pub async fn execute(
        self: &Arc<Self>,
        id: JobId,
        origin: Origin,
        cmd: Command,
    ) -> Result<(Job, Vec<Envelope>)> {
        self.execute_as(id, origin, None, cmd).await
    }

    /// [`Core::execute`] for a request of `actor`, whom its events record.
    pub async fn execute_as(
        self: &Arc<Self>,
        id: JobId,
        origin: Origin,
        actor: Option<String>,
        cmd: Command,
    ) -> Result<(Job, Vec<Envelope>)> {
        let core = self.clone();
        detached(async move { core.execute_now(id, origin, actor, cmd).await }).await
    }

    async fn execute_now(
        &self,
        id: JobId,
        origin: Origin,
        actor: Option<String>,
        cmd: Command,
    ) -> Result<(Job, Vec<Envelope>)> {
        if self.leading_term().is_none() {
            return Err(self.leader.not_leader());
        }
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
            .map(|(i, e)| {
                let version = job.version + 1 + i as u64;
                self.new_event(Aggregate::Job(id), version, origin, actor.clone(), e)
            })
            .collect();
        let envs = self.leader.append(new).await?;
        for e in &envs {
            job.apply(e);
        }
        self.gauges.moved(Some(before), job.state);
        Ok((job.clone(), envs))
    }

    /// Every job not yet in a terminal state: the leader's aggregates, else the projections.
    ///
    /// One read barrier covers them all: the listing after it reflects the whole log as of
    /// the barrier, which is what loading each job on its own would give, without a broker
    /// round trip per job. (It used to load each through [`Core::job`], one barrier each: a
    /// new leader facing a backlog of a thousand queued jobs on a slow broker spent longer
    /// than a leader's tenure recovering, failed, and the backlog grew; the hour-long chaos
    /// run stalled on it.) On the leader, a job already in its write model keeps that
    /// (always current) copy; the others enter the write model from the listing.
    pub async fn active_jobs(&self) -> Result<Vec<Job>> {
        self.read_barrier().await?;
        let listed = self.reads.all_jobs().await?;
        let leading = self.leading_term().is_some();
        let mut out = Vec::new();
        for job in listed.into_iter().filter(|j| !j.state.is_terminal()) {
            if !leading {
                out.push(job);
                continue;
            }
            let current = self.model.adopt(job).lock().await.clone();
            if !current.state.is_terminal() {
                out.push(current);
            }
        }
        Ok(out)
    }
}

/// Runs a command's decision, its append and the update of the write model in a task of its
/// own, so that a caller that goes away (an HTTP client that hung up, a follower whose
/// forwarded request was cut, a gateway link that closed) cannot stop it half-way. Dropped
/// between an append that lands and the aggregate that records it, the aggregate would be
/// left a version behind the log, and the next command decided on it: the hour-long chaos
/// run logged two different statements under one id that way.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    match tokio::spawn(work).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::Unavailable(format!(
            "the command was not carried out: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests;
