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
use crate::read_barrier::ReadBarrier;
use crate::reads::Reads;
use crate::write_model::WriteModel;
use kindling_events::{Envelope, Job, JobId, LogPosition, NewEvent, NodeId, Term};
use kindling_store::{EventLog, ProjectionStore};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

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
    /// Held while the leader checks a new job's name and appends it, so that two jobs
    /// created at once cannot both take a free name.
    names: tokio::sync::Mutex<()>,
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
            names: tokio::sync::Mutex::new(()),
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

mod commands;
mod names;
#[cfg(test)]
mod tests;
