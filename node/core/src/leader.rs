//! Leadership as the core lives it: whether this node decides commands now, in which term,
//! and the one writer the leader appends through. On taking over, the leader runs a catch-up
//! barrier (appends a `SchedulerMarker` and waits until its projections have consumed it)
//! before it decides anything, so its write model starts from every event a former leader
//! wrote.
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
use crate::leadership::{LeaderState, Member};
use crate::metrics;
use crate::read_barrier::ReadBarrier;
use crate::write_model::WriteModel;
use kindling_events::{Aggregate, Envelope, Event, LogPosition, NewEvent, NodeId, Origin, Term};
use kindling_store::{EventLog, FencedWriter, ProjectionStore, StoreError};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a leader without the broker's fence waits for its projector to read past its own
/// append before it gives up on knowing whether the append counts.
const WRITE_CHECK_WAIT: Duration = Duration::from_secs(10);

/// How far back from the log's end a new leader looks for the newest scheduler term, and in
/// reads of how many events.
const NEWEST_TERM_LOOK_BACK: u64 = 4096;
const LOOK_BACK_CHUNK: u64 = 256;

/// How the leader writes: under which id it opens its fenced writer, and whether the log
/// fences at all.
pub struct WriterConfig {
    /// The id under which leaders open their fenced writer: the same for every leader of
    /// one cluster, so each new one deposes the last at the log itself.
    pub writer_id: String,
    /// Whether the leader's writes are fenced at the log (`--kafka-transactions`); without
    /// it the leader fence that readers apply is the only one, and the leader checks each
    /// append against the terms the projector saw.
    pub fenced_writes: bool,
    /// Where newer leader terms appeared in the log, as the projector read it.
    pub terms: Arc<LeaderTerms>,
}

pub struct Leader {
    node: NodeId,
    clock: Arc<dyn Clock>,
    log: Arc<dyn EventLog>,
    projections: Arc<dyn ProjectionStore>,
    barrier: Arc<ReadBarrier>,
    /// Confirmation that this node still leads.
    member: Arc<dyn Member>,
    /// Who leads, as Raft sees it.
    leadership: watch::Receiver<LeaderState>,
    /// The term in which this node took over as the one writer (after its barrier), if it
    /// leads now.
    leading: watch::Sender<Option<Term>>,
    cfg: WriterConfig,
    /// The leader's writer and the term it was opened in: every event the leader decides goes
    /// through it, so once a newer leader opened its own, this node's late writes are refused
    /// by the log (Kafka: a transactional producer with a stable transactional id).
    writer: Mutex<Option<(Term, Arc<dyn FencedWriter>)>>,
    /// The aggregates loaded in this term; cleared whenever the term ends.
    model: Arc<WriteModel>,
}

/// What a [`Leader`] is made of.
pub struct LeaderParts {
    pub node: NodeId,
    pub clock: Arc<dyn Clock>,
    pub log: Arc<dyn EventLog>,
    pub projections: Arc<dyn ProjectionStore>,
    pub barrier: Arc<ReadBarrier>,
    pub member: Arc<dyn Member>,
    pub leadership: watch::Receiver<LeaderState>,
    pub writer: WriterConfig,
    pub model: Arc<WriteModel>,
}

impl Leader {
    pub fn new(p: LeaderParts) -> Self {
        Leader {
            node: p.node,
            clock: p.clock,
            log: p.log,
            projections: p.projections,
            barrier: p.barrier,
            member: p.member,
            leadership: p.leadership,
            leading: watch::Sender::new(None),
            cfg: p.writer,
            writer: Mutex::new(None),
            model: p.model,
        }
    }

    /// The term this node leads in, once its barrier is behind it.
    pub fn term(&self) -> Option<Term> {
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

    /// The error of a command that only the leader may decide.
    pub fn not_leader(&self) -> Error {
        Error::NotLeader(self.leadership.borrow().leader)
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
        let writer: Arc<dyn FencedWriter> = if self.cfg.fenced_writes {
            self.log.fenced_writer(&self.cfg.writer_id).await?
        } else {
            Arc::new(Unfenced(self.log.clone()))
        };
        let marker = NewEvent {
            aggregate: Aggregate::Cluster,
            version: 0,
            origin: Origin::Scheduler { term },
            node: self.node,
            actor: None,
            at_ms: self.clock.now_ms(),
            event: Event::SchedulerMarker {
                nonce: rand::random(),
            },
        };
        let started = Instant::now();
        let env = writer.append(vec![marker]).await?.remove(0);
        metrics::append_latency(started.elapsed());
        let barrier = env.position.next();
        let mut leadership = self.leadership.clone();
        loop {
            if self
                .barrier
                .await_projected(barrier, Duration::from_secs(1))
                .await
            {
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
                projected = self.barrier.position().0,
                "still catching up with the log before scheduling"
            );
        }
        self.ensure_newest(term, env.position).await?;
        self.model.clear();
        *self.writer.lock() = Some((term, writer));
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
    pub async fn confirm(&self) -> Result<Term> {
        let term = self.term().ok_or_else(|| self.not_leader())?;
        self.member.confirm_leadership().await.map_err(|e| {
            tracing::warn!(term = term.0, error = %e, "leadership not confirmed; not acting");
            Error::Unavailable(e.to_string())
        })?;
        match self.term() {
            Some(t) if t == term => Ok(term),
            _ => Err(self.not_leader()),
        }
    }

    /// Stops deciding commands and forgets the write model (another member now writes).
    pub fn step_down(&self) {
        self.leading.send_replace(None);
        self.writer.lock().take();
        self.model.clear();
    }

    /// Appends what the leader decided through its fenced writer, each event stamped with
    /// the writer's term. A writer deposed by a newer leader makes this node step down at once,
    /// before Raft tells it. Without the broker's fence, the append counts only if no newer
    /// term came before it in the log ([`Leader::ensure_counted`]).
    pub async fn append(&self, mut events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        let writer = self.writer.lock().clone();
        let Some((term, writer)) = writer else {
            return Err(self.not_leader());
        };
        for e in &mut events {
            e.origin = e.origin.decided_in(term);
        }
        let started = Instant::now();
        match writer.append(events).await {
            Ok(out) => {
                metrics::append_latency(started.elapsed());
                if !self.cfg.fenced_writes {
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
            .barrier
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
        if let Some((newer, at)) = self.cfg.terms.newer_before(term, first.position) {
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
