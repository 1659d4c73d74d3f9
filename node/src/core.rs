//! The command side of a node: turns requests into events, appends them durably and keeps the
//! write model (the job aggregates) in step. It does not launch, track or talk to drivers.
//!
//! In a cluster, every member accepts submissions (a new job's id comes from a Raft-leased
//! block, so no two members can create the same job), but only the leader decides commands on
//! existing jobs: it is the one writer of their events, so its aggregates are always current.
//! Followers forward such requests to it (`api::forward`) and read from their projections.
//! On taking over, the leader runs a catch-up barrier (appends a `SchedulerMarker` and waits
//! until its projections have consumed it) before it decides anything, so its write model
//! starts from every event a former leader wrote.
//!
//! Every event the leader writes carries its term, and every reader ignores one that comes
//! after an event of a newer term (`kindling_events::fence`). With the broker's fence (Kafka
//! transactions) a deposed leader's writes never get in; without it they may (a paused leader,
//! an append held on a cut link and delivered when it heals), and take no effect: the leader
//! checks, once its projector has read past each append, that no newer term came first, and
//! otherwise reports the command as not done and steps down.

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::leader_terms::LeaderTerms;
use crate::metrics;
use kindling_events::spec::JobSpec;
use kindling_events::{
    Aggregate, Command, Envelope, Event, Job, JobId, JobState, LogPosition, NewEvent, NodeId,
    Origin, Term,
};
use kindling_raft::{IdAllocator, LeaderCheck, LeaderState};
use kindling_store::{EventLog, FencedWriter, JobQuery, ProjectionStore, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
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
    /// Whether the leader's writes are fenced at the log (`--kafka-transactions`); without
    /// it the leader fence that readers apply is the only one, and the leader checks each
    /// append against `terms`.
    pub fenced_writes: bool,
    /// Where newer leader terms appeared in the log, as the projector read it.
    pub terms: Arc<LeaderTerms>,
}

/// How long a read waits for the projections to reach the log's end before it gives up.
const READ_BARRIER_WAIT: Duration = Duration::from_secs(5);

/// How long a leader without the broker's fence waits for its projector to read past its own
/// append before it gives up on knowing whether the append counts.
const WRITE_CHECK_WAIT: Duration = Duration::from_secs(10);

/// How far back from the log's end a new leader looks for the newest scheduler term, and in
/// reads of how many events.
const NEWEST_TERM_LOOK_BACK: u64 = 4096;
const LOOK_BACK_CHUNK: u64 = 256;

/// What a node asks of its Raft member: job ids, and whether it still leads.
pub trait Member: IdAllocator + LeaderCheck {}
impl<T: IdAllocator + LeaderCheck> Member for T {}

pub struct Core {
    pub node: NodeId,
    pub log: Arc<dyn EventLog>,
    pub projections: Arc<dyn ProjectionStore>,
    pub clock: Arc<dyn Clock>,
    /// Job ids, and confirmation that this node still leads.
    member: Arc<dyn Member>,
    /// The write model: aggregates loaded so far, each behind its own lock so commands on one
    /// job are decided one at a time.
    jobs: StdMutex<HashMap<JobId, Arc<Mutex<Job>>>>,
    /// How far the projections reflect the log.
    projected: watch::Receiver<LogPosition>,
    /// Jobs by state, for the `kindling_jobs` gauge.
    states: StdMutex<HashMap<JobState, i64>>,
    /// Who leads, as Raft sees it.
    leadership: watch::Receiver<LeaderState>,
    /// The term in which this node took over as the one writer (after its barrier), if it
    /// leads now.
    leading: watch::Sender<Option<Term>>,
    /// How long a read of a job this node has not seen yet waits for it to arrive from the
    /// log (a job created on another member a moment ago). Zero on a single node.
    arrival_wait: Duration,
    writer_id: String,
    fenced_writes: bool,
    terms: Arc<LeaderTerms>,
    /// The leader's writer and the term it was opened in: every event the leader decides goes
    /// through it, so once a newer leader opened its own, this node's late writes are refused
    /// by the log (Kafka: a transactional producer with a stable transactional id).
    writer: StdMutex<Option<(Term, Arc<dyn FencedWriter>)>>,
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
        let core = Core {
            node,
            log,
            projections,
            clock,
            member,
            jobs: StdMutex::new(HashMap::new()),
            projected,
            states: StdMutex::new(HashMap::new()),
            leadership,
            leading: watch::Sender::new(None),
            arrival_wait,
            writer_id,
            fenced_writes,
            terms,
            writer: StdMutex::new(None),
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

    /// Waits until the projections reflect everything appended so far, as far as this node
    /// can tell: the log's current end if its store answers, else the end it knows. For the
    /// node's own bookkeeping; reads served to clients go through [`Core::read_barrier`].
    pub async fn catch_up(&self) -> bool {
        let end = match self.log.current_end().await {
            Ok(end) => end,
            Err(_) => self.log.end(),
        };
        self.await_projected(end, READ_BARRIER_WAIT).await
    }

    /// Waits until the projections reflect every event acknowledged anywhere in the cluster
    /// before the call, so that a read through this node never goes back behind what a
    /// client saw through another (a session read `idle` on one node must not read
    /// `starting` on the next). Fails, as retryable, when this node cannot ask the log for
    /// its end (cut off from the broker) or its projections do not get there in time (the
    /// projection store is away): a stale answer would be worse.
    pub async fn read_barrier(&self) -> Result<()> {
        let end = self.log.current_end().await.map_err(|e| {
            Error::Unavailable(format!(
                "this node cannot confirm that its reads are current ({e}); retry, another \
                 node may answer"
            ))
        })?;
        if self.await_projected(end, READ_BARRIER_WAIT).await {
            return Ok(());
        }
        Err(Error::Unavailable(format!(
            "this node's projections are behind the event log (at {}, the log ends at {}); \
             retry, another node may answer",
            self.projected.borrow().0,
            end.0
        )))
    }

    pub fn projected(&self) -> watch::Receiver<LogPosition> {
        self.projected.clone()
    }

    pub(crate) async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        let started = Instant::now();
        let out = self.log.append(events).await?;
        metrics::append_latency(started.elapsed());
        Ok(out)
    }

    /// Appends what the leader decided through its fenced writer, each event stamped with
    /// the writer's term. A writer deposed by a newer leader makes this node step down at once,
    /// before Raft tells it. Without the broker's fence, the append counts only if no newer
    /// term came before it in the log ([`Core::ensure_counted`]).
    pub(crate) async fn leader_append(&self, mut events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        let writer = self.writer.lock().unwrap().clone();
        let Some((term, writer)) = writer else {
            return Err(Error::NotLeader(self.leadership.borrow().leader));
        };
        for e in &mut events {
            e.origin = e.origin.decided_in(term);
        }
        let started = Instant::now();
        match writer.append(events).await {
            Ok(out) => {
                metrics::append_latency(started.elapsed());
                if !self.fenced_writes {
                    self.ensure_counted(term, &out).await?;
                }
                Ok(out)
            }
            Err(StoreError::Fenced(reason)) => {
                tracing::warn!(%reason, "a newer leader fenced this node's writes; stepping down");
                self.step_down();
                Err(Error::NotLeader(None))
            }
            Err(e @ StoreError::Backend(_)) => {
                // The append may or may not have landed, and the writer may be unusable (the
                // broker went away mid-transaction). Start over as leader: a new writer, a new
                // barrier, aggregates reloaded from whatever the log holds.
                tracing::warn!(error = %e, "leader append failed; taking over again");
                self.step_down();
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Makes sure that `appended`, written by this node as the leader of `term` without the
    /// broker's fence, counts: that no event of a newer term lies before it in the log, which
    /// would make every reader ignore it. Waits until this node's projector has read past it,
    /// so everything before it is known. If a newer term came first, the command did not
    /// happen and this node no longer leads: it steps down and says so (a client may retry,
    /// at the new leader). If the projector does not get there in time, nobody can say yet:
    /// it steps down too, to take over again from whatever the log holds.
    async fn ensure_counted(&self, term: Term, appended: &[Envelope]) -> Result<()> {
        let (Some(first), Some(last)) = (appended.first(), appended.last()) else {
            return Ok(());
        };
        if !self
            .await_projected(last.position.next(), WRITE_CHECK_WAIT)
            .await
        {
            tracing::warn!(
                term = term.0,
                position = first.position.0,
                "cannot tell whether this leader's append counts; taking over again"
            );
            self.step_down();
            return Err(Error::Unavailable(format!(
                "the event log was not read back within {WRITE_CHECK_WAIT:?}; the request may \
                 or may not have been applied, check before retrying"
            )));
        }
        if let Some((newer, at)) = self.terms.newer_before(term, first.position) {
            tracing::warn!(
                term = term.0,
                newer = newer.0,
                newer_at = at.0,
                position = first.position.0,
                "a newer leader wrote first: this append takes no effect; stepping down"
            );
            metrics::late_write();
            self.step_down();
            return Err(Error::NotLeader(None));
        }
        Ok(())
    }

    /// Accepts a new job: allocates its id, appends `JobSubmitted` and returns the job once
    /// the event is durable. The answer is built from the event, not from a projection.
    /// Runs to the end even if the caller goes away (see [`detached`]).
    pub async fn submit(self: &Arc<Self>, spec: JobSpec) -> Result<Job> {
        let core = self.clone();
        detached(async move { core.submit_now(spec).await }).await
    }

    async fn submit_now(&self, spec: JobSpec) -> Result<Job> {
        let id = self.member.next_job_id().await?;
        let kind = spec.kind_name();
        let events: Vec<NewEvent> = Job::submit(spec)
            .into_iter()
            .enumerate()
            .map(|(i, event)| self.new_event(Aggregate::Job(id), i as u64 + 1, Origin::Api, event))
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
            self.jobs.lock().unwrap().insert(id, agg);
        }
        let envs = match self.append(events).await {
            Ok(envs) => envs,
            Err(e) => {
                if registered {
                    self.jobs.lock().unwrap().remove(&id);
                }
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

    /// The term this node leads in, once its barrier is behind it.
    pub fn leading_term(&self) -> Option<Term> {
        let term = (*self.leading.borrow())?;
        let now = *self.leadership.borrow();
        (now.is_leader && now.term == term).then_some(term)
    }

    /// Changes when this node starts or stops deciding commands as leader.
    pub fn leading(&self) -> watch::Receiver<Option<Term>> {
        self.leading.subscribe()
    }

    /// Who leads, as Raft sees it.
    pub fn leadership(&self) -> watch::Receiver<LeaderState> {
        self.leadership.clone()
    }

    /// Makes this node the one writer of job events for `term`: appends a catch-up marker,
    /// waits until the projections have consumed it (so they hold every event any former
    /// leader wrote), and drops whatever aggregates it held, which are reloaded from there.
    /// Returns the marker's position. Fails if leadership moves on meanwhile.
    ///
    /// The log's fence deposes whoever opened the writer before, whatever its term: a
    /// deposed leader that still believes it leads (paused, partitioned, not yet told) would
    /// depose its successor by taking over again. So a term older than the log's newest
    /// scheduler term takes nothing over: looked at before the writer is opened, and again
    /// behind the marker (a successor may have written between the look and the marker).
    pub async fn take_over(&self, term: Term) -> Result<LogPosition> {
        self.step_down();
        // As far as this node has read: asking the broker for its end would wait on a dead
        // predecessor's open transaction, which only opening the writer below resolves. The
        // look behind the marker covers what this one misses.
        self.ensure_newest(term, self.log.end()).await?;
        // Depose whoever wrote as leader before: from here on their appends fail.
        let writer: Arc<dyn FencedWriter> = if self.fenced_writes {
            self.log.fenced_writer(&self.writer_id).await?
        } else {
            Arc::new(Unfenced(self.log.clone()))
        };
        let marker = self.new_event(
            Aggregate::Cluster,
            0,
            Origin::Scheduler { term },
            Event::SchedulerMarker {
                nonce: rand::random(),
            },
        );
        let started = Instant::now();
        let env = writer.append(vec![marker]).await?.remove(0);
        metrics::append_latency(started.elapsed());
        let barrier = env.position.next();
        let mut leadership = self.leadership.clone();
        loop {
            if self.await_projected(barrier, Duration::from_secs(1)).await {
                break;
            }
            let now = *leadership.borrow_and_update();
            if !now.is_leader || now.term != term {
                return Err(Error::Unavailable(format!(
                    "leadership moved on while term {} was catching up",
                    term.0
                )));
            }
            tracing::warn!(
                barrier = barrier.0,
                projected = self.projected.borrow().0,
                "still catching up with the log before scheduling"
            );
        }
        self.ensure_newest(term, env.position).await?;
        self.jobs.lock().unwrap().clear();
        *self.writer.lock().unwrap() = Some((term, writer));
        self.leading.send_replace(Some(term));
        tracing::info!(
            term = term.0,
            barrier = env.position.0,
            "caught up with the log; deciding commands as leader"
        );
        Ok(env.position)
    }

    /// Fails if a leader's event of a newer term than `term` lies before `end`: a newer
    /// leader has acted, so this node's belief that it leads in `term` is out of date.
    async fn ensure_newest(&self, term: Term, end: LogPosition) -> Result<()> {
        // What the projections applied covers the log far back; the look at the log's tail
        // covers what they have not reached yet.
        let applied = self.projections.fence().await?.newest();
        if applied > term {
            return Err(Error::Unavailable(format!(
                "term {} is out of date: the projections hold a leader's event of term {}",
                term.0, applied.0
            )));
        }
        match newest_leader_term(self.log.as_ref(), end).await? {
            Some((newest, at)) if newest > term => Err(Error::Unavailable(format!(
                "term {} is out of date: the log holds a leader's event of term {} at {}",
                term.0, newest.0, at.0
            ))),
            _ => Ok(()),
        }
    }

    /// Confirms with a quorum that this node still leads, in the term it took over in, before
    /// it acts outside the log (launching drivers). The leadership watch can be behind: a
    /// leader paused past an election resumes believing it leads, and without the log's fence
    /// (`--kafka-transactions false`) its writes and launches would go through until Raft
    /// tells it. This narrows that window to the time between the check and the act.
    pub async fn confirm_leading(&self) -> Result<Term> {
        let not_leader = || Error::NotLeader(self.leadership.borrow().leader);
        let term = self.leading_term().ok_or_else(not_leader)?;
        self.member.confirm_leadership().await.map_err(|e| {
            tracing::warn!(term = term.0, error = %e, "leadership not confirmed; not acting");
            Error::Unavailable(e.to_string())
        })?;
        match self.leading_term() {
            Some(t) if t == term => Ok(term),
            _ => Err(not_leader()),
        }
    }

    /// Stops deciding commands and forgets the write model (another member now writes).
    pub fn step_down(&self) {
        self.leading.send_replace(None);
        self.writer.lock().unwrap().take();
        self.jobs.lock().unwrap().clear();
    }

    /// The aggregate of `id`, loaded from the projections the first time.
    async fn aggregate(&self, id: JobId) -> Result<Arc<Mutex<Job>>> {
        if let Some(j) = self.jobs.lock().unwrap().get(&id) {
            return Ok(j.clone());
        }
        let job = self.projected_job(id).await?;
        Ok(self.adopt(job))
    }

    /// The write model's aggregate of `job`: the one already held (always current) or, the
    /// first time, `job` as read from the projections.
    fn adopt(&self, job: Job) -> Arc<Mutex<Job>> {
        self.jobs
            .lock()
            .unwrap()
            .entry(job.id)
            .or_insert_with(|| Arc::new(Mutex::new(job)))
            .clone()
    }

    /// A job as the projections hold it once they reflect the log as this node knows it. A
    /// job not there yet may have been created on another member a moment ago: in a cluster
    /// the read waits, up to `arrival_wait`, for it to arrive.
    async fn projected_job(&self, id: JobId) -> Result<Job> {
        self.read_barrier().await?;
        if let Some(job) = self.projections.job(id).await? {
            return Ok(job);
        }
        let deadline = Instant::now() + self.arrival_wait;
        let mut projected = self.projected.clone();
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
            if let Some(job) = self.projections.job(id).await? {
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
        let core = self.clone();
        detached(async move { core.execute_now(id, origin, cmd).await }).await
    }

    async fn execute_now(
        &self,
        id: JobId,
        origin: Origin,
        cmd: Command,
    ) -> Result<(Job, Vec<Envelope>)> {
        if self.leading_term().is_none() {
            let leader = self.leadership.borrow().leader;
            return Err(Error::NotLeader(leader));
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
            .map(|(i, e)| self.new_event(Aggregate::Job(id), job.version + 1 + i as u64, origin, e))
            .collect();
        let envs = self.leader_append(new).await?;
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
        let listed = self.all_jobs().await?;
        let leading = self.leading_term().is_some();
        let mut out = Vec::new();
        for job in listed.into_iter().filter(|j| !j.state.is_terminal()) {
            if !leading {
                out.push(job);
                continue;
            }
            let current = self.adopt(job).lock().await.clone();
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

/// The newest leader term before `end`, and where an event of it was written: looked for
/// among the last `NEWEST_TERM_LOOK_BACK` events, in the nearest stretch of `LOOK_BACK_CHUNK`
/// events that holds any leader's event (a leader writes a marker when it takes over and acts
/// on every job it launches, so its events are near the end). The newest, not the last: a
/// deposed leader's late write may come after its successor's.
pub async fn newest_leader_term(
    log: &dyn EventLog,
    end: LogPosition,
) -> Result<Option<(Term, LogPosition)>> {
    let floor = end.0.saturating_sub(NEWEST_TERM_LOOK_BACK);
    let mut to = end.0;
    while to > floor {
        let from = to.saturating_sub(LOOK_BACK_CHUNK).max(floor);
        let events = log.read(LogPosition(from), (to - from) as usize).await?;
        // A deposed leader's late write may come last: the newest term is what counts.
        let newest = events
            .iter()
            .filter(|e| e.position.0 < to)
            .filter_map(|e| e.leader_term().map(|t| (t, e.position)))
            .max_by_key(|(t, _)| *t);
        if newest.is_some() {
            return Ok(newest);
        }
        to = from;
    }
    Ok(None)
}

/// The leader's writer when the log's own fence is switched off: plain appends.
struct Unfenced(Arc<dyn EventLog>);

#[async_trait::async_trait]
impl FencedWriter for Unfenced {
    async fn append(&self, events: Vec<NewEvent>) -> kindling_store::Result<Vec<Envelope>> {
        self.0.append(events).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::test_log::ObservedLog;
    use kindling_store::conformance::{batch_spec, new_event};
    use kindling_store::{SledEventLog, SledProjections};
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio_util::sync::CancellationToken;

    struct Ids(AtomicU64);

    #[async_trait::async_trait]
    impl IdAllocator for Ids {
        async fn next_job_id(&self) -> kindling_raft::Result<JobId> {
            Ok(JobId(self.0.fetch_add(1, Ordering::SeqCst)))
        }
    }

    /// A member of a cluster of one: it always leads.
    #[async_trait::async_trait]
    impl LeaderCheck for Ids {
        async fn confirm_leadership(&self) -> kindling_raft::Result<()> {
            Ok(())
        }
    }

    /// A node's core on `log` (with its projector running), led by this node in `term`.
    async fn core_on(
        log: Arc<ObservedLog>,
        dir: &std::path::Path,
        term: u64,
    ) -> (
        Core,
        watch::Sender<LeaderState>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        member_on(log, dir, 1, term, true).await
    }

    /// Node `node`'s core on `log`, with projections of its own, believing it leads in
    /// `term`; `fenced` as `--kafka-transactions`.
    async fn member_on(
        log: Arc<ObservedLog>,
        dir: &std::path::Path,
        node: u64,
        term: u64,
        fenced: bool,
    ) -> (
        Core,
        watch::Sender<LeaderState>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let projections: Arc<dyn ProjectionStore> =
            Arc::new(SledProjections::open(&dir.join(format!("projections-{node}"))).unwrap());
        let (tx, projected) = watch::channel(LogPosition(0));
        let terms = Arc::new(LeaderTerms::default());
        let shutdown = CancellationToken::new();
        let projector = tokio::spawn(crate::projector::run(
            log.clone(),
            projections.clone(),
            tx,
            terms.clone(),
            shutdown.clone(),
        ));
        let (leader, leadership) = watch::channel(LeaderState {
            term: Term(term),
            leader: Some(NodeId(node)),
            is_leader: true,
        });
        let core = Core::new(
            NodeId(node),
            Storage {
                log: log.clone(),
                projections,
                projected,
                writer_id: "leader".into(),
                fenced_writes: fenced,
                terms,
            },
            Arc::new(Ids(AtomicU64::new(100))),
            Arc::new(SystemClock),
            leadership,
            Duration::ZERO,
        )
        .await
        .unwrap();
        (core, leader, shutdown, projector)
    }

    /// A sled log in `dir`, observed.
    fn observed_log(dir: &std::path::Path) -> Arc<ObservedLog> {
        Arc::new(ObservedLog::new(
            SledEventLog::open(&dir.join("log")).unwrap(),
        ))
    }

    /// `JobSubmitted` of a batch for each of `jobs`.
    fn submissions(jobs: std::ops::Range<u64>) -> Vec<NewEvent> {
        jobs.map(|job| {
            let spec = batch_spec(None);
            new_event(job, 1, Origin::Api, Event::JobSubmitted { spec })
        })
        .collect()
    }

    #[tokio::test]
    async fn a_new_leader_loads_every_active_job_behind_one_read_barrier() {
        let dir = tempfile::tempdir().unwrap();
        let log = observed_log(dir.path());
        log.append(submissions(0..40)).await.unwrap();
        let (core, _leader, shutdown, projector) = core_on(log.clone(), dir.path(), 1).await;
        core.take_over(Term(1)).await.unwrap();
        assert_eq!(core.leading_term(), Some(Term(1)));

        let asked_before = log.end_asks();
        let active = core.active_jobs().await.unwrap();
        assert_eq!(active.len(), 40);
        assert!(active.iter().all(|j| j.state == JobState::NotStarted));
        assert_eq!(
            log.end_asks() - asked_before,
            1,
            "one barrier for all forty jobs, not one each"
        );
        // And they are the leader's write model now, each loaded once.
        assert_eq!(core.jobs.lock().unwrap().len(), 40);
        shutdown.cancel();
        projector.await.unwrap();
    }

    /// A command whose caller goes away while its append is in flight still records the
    /// append in the write model: the next command is decided on the current aggregate.
    #[tokio::test]
    async fn a_command_whose_caller_went_away_mid_append_still_updates_the_aggregate() {
        let dir = tempfile::tempdir().unwrap();
        let log = observed_log(dir.path());
        let (core, _leader, shutdown, projector) = core_on(log.clone(), dir.path(), 1).await;
        let core = Arc::new(core);
        core.take_over(Term(1)).await.unwrap();
        let session = core
            .submit(kindling_store::conformance::session_spec(None))
            .await
            .unwrap();
        let statement = |code: &str| Command::SubmitStatement {
            kind: kindling_events::spec::SessionKind::Pyspark,
            code: code.into(),
        };

        log.hold_answers(true);
        let mut landed = log.subscribe();
        let before = *landed.borrow_and_update();
        let first = tokio::spawn({
            let core = core.clone();
            let cmd = statement("1 + 1");
            async move { core.execute(session.id, Origin::Api, cmd).await }
        });
        // The statement is in the log; its caller hangs up before the answer comes.
        landed.wait_for(|end| *end > before).await.unwrap();
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        log.hold_answers(false);

        let (_, envs) = core
            .execute(session.id, Origin::Api, statement("2 + 2"))
            .await
            .unwrap();
        let submitted: Vec<_> = log
            .read(LogPosition(0), 100)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.event {
                Event::StatementSubmitted { statement, .. } => Some((statement, e.version)),
                _ => None,
            })
            .collect();
        assert_eq!(submitted.len(), 2, "{submitted:?}");
        assert_ne!(
            submitted[0], submitted[1],
            "two statements decided on one version of the session: {submitted:?}"
        );
        assert_eq!(envs[0].version, submitted[1].1);
        shutdown.cancel();
        projector.await.unwrap();
    }

    /// A deposed leader that still believes it leads takes nothing over once its successor
    /// has written: opening the log's writer would depose the successor in turn.
    #[tokio::test]
    async fn a_leader_of_an_older_term_than_the_logs_newest_takes_nothing_over() {
        let dir = tempfile::tempdir().unwrap();
        let log = observed_log(dir.path());
        let successor = Origin::Scheduler { term: Term(9) };
        log.append(submissions(0..1)).await.unwrap();
        let queued = Event::JobQueued {
            reason: "full".into(),
        };
        log.append(vec![new_event(0, 2, successor, queued)])
            .await
            .unwrap();
        // And plain events after it: the last scheduler event decides, not the last event.
        log.append(submissions(1..300)).await.unwrap();
        assert_eq!(
            newest_leader_term(log.as_ref(), log.end()).await.unwrap(),
            Some((Term(9), LogPosition(1)))
        );

        let (stale, leader, shutdown, projector) = core_on(log.clone(), dir.path(), 5).await;
        let end = log.end();
        let refused = stale.take_over(Term(5)).await.unwrap_err();
        assert!(
            refused.to_string().contains("term 5 is out of date"),
            "{refused}"
        );
        assert_eq!(stale.leading_term(), None);
        assert_eq!(log.end(), end, "a refused take-over writes nothing");
        // Elected in the successor's term (or a newer one), it takes over.
        leader.send_modify(|s| s.term = Term(9));
        stale.take_over(Term(9)).await.unwrap();
        assert_eq!(stale.leading_term(), Some(Term(9)));
        shutdown.cancel();
        projector.await.unwrap();
    }

    /// The ninth hour-long chaos run's two violations, replayed: without the broker's fence, a
    /// deposed leader that has not heard of its successor decides a kill on its stale copy of
    /// the job, after the successor took over. The kill lands in the log, takes no effect for
    /// any reader, and its caller is told it did not happen; the deposed leader steps down.
    #[tokio::test]
    async fn a_deposed_leaders_late_command_takes_no_effect_and_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = observed_log(dir.path());
        log.append(submissions(0..1)).await.unwrap();
        let (stale, _s, stop_stale, p_stale) =
            member_on(log.clone(), dir.path(), 2, 777, false).await;
        let stale = Arc::new(stale);
        stale.take_over(Term(777)).await.unwrap();
        // Loaded into the stale leader's write model before its successor takes over.
        assert_eq!(
            stale.job(JobId(0)).await.unwrap().state,
            JobState::NotStarted
        );
        let (leader, _l, stop_leader, p_leader) =
            member_on(log.clone(), dir.path(), 1, 778, false).await;
        let leader = Arc::new(leader);
        leader.take_over(Term(778)).await.unwrap();

        let kill = Command::Kill {
            reason: "killed by a client".into(),
        };
        let before = log.end();
        let refused = stale
            .execute(JobId(0), Origin::Api, kill.clone())
            .await
            .unwrap_err();
        assert!(matches!(refused, Error::NotLeader(_)), "{refused}");
        assert_eq!(
            stale.leading_term(),
            None,
            "the deposed leader stepped down"
        );
        let late = log.read(before, 10).await.unwrap();
        assert_eq!(late.len(), 2, "the kill landed in the log: {late:?}");
        assert!(late
            .iter()
            .all(|e| e.origin == Origin::ApiDecided { term: Term(777) }));

        // Nobody counts it: the leader's write model, both nodes' projections, a replay.
        assert!(leader.catch_up().await && stale.catch_up().await);
        let fresh = SledProjections::open(&dir.path().join("fresh")).unwrap();
        fresh
            .apply(&log.read(LogPosition(0), 100).await.unwrap())
            .await
            .unwrap();
        for (who, job) in [
            ("leader", leader.job(JobId(0)).await.unwrap()),
            (
                "leader's projections",
                leader.projections.job(JobId(0)).await.unwrap().unwrap(),
            ),
            (
                "stale node's projections",
                stale.projections.job(JobId(0)).await.unwrap().unwrap(),
            ),
            ("fresh replay", fresh.job(JobId(0)).await.unwrap().unwrap()),
        ] {
            assert!(!job.kill_requested, "{who}: {job:?}");
            assert_eq!(job.state, JobState::NotStarted, "{who}");
        }
        // The client's retry reaches the leader, which decides it on the current job.
        let (job, envs) = leader.execute(JobId(0), Origin::Api, kill).await.unwrap();
        assert_eq!(job.state, JobState::Killed);
        assert!(envs
            .iter()
            .all(|e| e.origin == Origin::ApiDecided { term: Term(778) }));
        stop_stale.cancel();
        stop_leader.cancel();
        p_stale.await.unwrap();
        p_leader.await.unwrap();
    }

    /// The check has no false alarm: a leader's command written before its successor took
    /// over counts, and the successor's write model starts from it.
    #[tokio::test]
    async fn a_command_written_before_the_successor_took_over_counts() {
        let dir = tempfile::tempdir().unwrap();
        let log = observed_log(dir.path());
        log.append(submissions(0..1)).await.unwrap();
        let (old, _o, stop_old, p_old) = member_on(log.clone(), dir.path(), 2, 3, false).await;
        let old = Arc::new(old);
        old.take_over(Term(3)).await.unwrap();
        let kill = Command::Kill {
            reason: "killed by a client".into(),
        };
        let (job, _) = old.execute(JobId(0), Origin::Api, kill).await.unwrap();
        assert_eq!(job.state, JobState::Killed);
        assert_eq!(old.leading_term(), Some(Term(3)));

        let (new, _n, stop_new, p_new) = member_on(log.clone(), dir.path(), 1, 4, false).await;
        new.take_over(Term(4)).await.unwrap();
        assert_eq!(new.job(JobId(0)).await.unwrap().state, JobState::Killed);
        stop_old.cancel();
        stop_new.cancel();
        p_old.await.unwrap();
        p_new.await.unwrap();
    }
}
