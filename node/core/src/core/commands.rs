//! The command side of [`Core`]: new jobs accepted on any member, and commands on existing
//! jobs decided by the leader on its write model and appended through its writer, each in a
//! task of its own ([`detached`]) so a caller that goes away cannot stop it half-way. Every
//! event a request causes records its actor.

use super::Core;
use crate::error::{Error, Result};
use crate::metrics;
use kindling_events::spec::JobSpec;
use kindling_events::{
    Aggregate, Command, Envelope, Event, Job, JobId, LogPosition, NewEvent, Origin,
};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

impl Core {
    /// `events` on `aggregate`, at version `after` + 1 on, written for `origin` and asked
    /// for by `actor`.
    pub(crate) fn new_events(
        &self,
        aggregate: Aggregate,
        after: u64,
        origin: Origin,
        actor: Option<String>,
        events: Vec<Event>,
    ) -> Vec<NewEvent> {
        let at_ms = self.clock.now_ms();
        (after + 1..)
            .zip(events)
            .map(|(version, event)| NewEvent {
                aggregate,
                version,
                origin,
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
        if spec.name.as_deref().is_some_and(|n| !n.trim().is_empty()) {
            return self.submit_named(spec, actor).await;
        }
        self.create(spec, actor, false).await
    }

    /// Appends a new job's `JobSubmitted` and returns the job once it is durable: through
    /// the leader's fenced writer when `decided` (a deposed leader's late append does not
    /// count), else through the log any member writes to.
    pub(super) async fn create(
        &self,
        spec: JobSpec,
        actor: Option<String>,
        decided: bool,
    ) -> Result<Job> {
        let id = self.member.next_job_id().await?;
        let kind = spec.kind_name();
        let events = self.new_events(Aggregate::Job(id), 0, Origin::Api, actor, Job::submit(spec));
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
        let appended = if decided {
            self.leader.append(events).await
        } else {
            self.log.append(events).await.map_err(Error::from)
        };
        let envs = match appended {
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
        let new = self.new_events(Aggregate::Job(id), job.version, origin, actor, events);
        let envs = self.leader.append(new).await?;
        for e in &envs {
            job.apply(e);
        }
        self.gauges.moved(Some(before), job.state);
        if job.state.is_terminal() && !before.is_terminal() {
            let kind = if job.is_session() { "session" } else { "batch" };
            let began = job.started_at_ms.unwrap_or(job.submitted_at_ms);
            let ended = job.finished_at_ms.unwrap_or_else(|| self.clock.now_ms());
            metrics::job_ended(kind, job.state, ended - began);
        }
        Ok((job.clone(), envs))
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
