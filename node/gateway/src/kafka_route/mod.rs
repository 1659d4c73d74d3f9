//! The Kafka transport of the driver gateway ("Kafka mode"): each session's driver is reached
//! through its own pair of one-partition topics, `<prefix>.job.<id>.requests` (node to
//! driver: `NodeMessage`s) and `<prefix>.job.<id>.replies` (driver to node:
//! `DriverMessage`s), every record keyed by the driver's attempt. The route belongs to no
//! node: the driver never reconnects, whichever member leads reads its replies and writes its
//! requests, so a route is to the gateway what a gRPC stream is, a link.
//!
//! Resuming without loss or double recording. The leader reads the replies of every session
//! it follows with one consumer (by `assign`: no group membership, no rebalance) and commits
//! a reply's offset, in the consumer group `<prefix>.routes`, only once its handling is
//! durable: a result recorded in the event log, a registration answered, or nothing to
//! record. A new leader resumes each running session's route at the committed offset, so it
//! sees every reply whose handling the last leader may not have finished; handling one again
//! records nothing new (the aggregate ignores a second completion, start or ready) and
//! acknowledges the result again. A result the last leader recorded but did not acknowledge
//! is still held by the runner: the new leader sends `Registered` on resuming, on which the
//! runner resends what it holds. Requests are not re-run: statements carry ids and the
//! runner runs each id at most once, so the new leader may resend every statement in flight.
//!
//! A deposed leader stops following (`stop_all`) and commits nothing after losing the lead:
//! recording fails with `NotLeader`, and a reply that failed is never committed. A commit
//! that raced the loss can only move the offset back, which makes a later leader re-read
//! replies: harmless, as above.
//!
//! This module owns the topics and the Kafka clients. What a reply means is the gateway's
//! business; nothing here decides about sessions.
//!
//! - [`KafkaRoutes`] (here): the clients, the followed routes, reading and writing.
//! - `topics`: names, client settings, creating and listing topics.
//! - `resume`: which routes a new leader picks up, and how (a pure decision).
//! - `route`: one followed route, its replies handled in order and committed.

mod resume;
mod route;
#[cfg(test)]
mod tests;
mod topics;

pub use resume::{resume_of, Resume};
use route::Route;
pub use topics::RouteConfig;

use super::{Gateway, Outgoing};
use kindling_backend::KafkaRoute;
use kindling_core::{Error, Result};
use kindling_events::{Attempt, JobId};
use kindling_proto::driver::v1 as pb;
use parking_lot::Mutex;
use prost::Message as _;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Deadline of each admin or metadata round trip.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a fetch waits at the end of the replies for new ones. tansu answers a fetch only
/// when this is over, so it bounds the latency a reply adds there.
const FETCH_WAIT: Duration = Duration::from_millis(50);
/// Pause before retrying what failed on the broker or the event log.
const RETRY: Duration = Duration::from_millis(200);
/// Replies taken from the consumer but not yet handled, per route.
const INBOX: usize = 1024;
/// How often an idle route checks whether its session ended without its driver being told
/// (a launch that failed, a driver that ended while no member led).
const SWEEP: Duration = Duration::from_secs(10);

/// A route this node follows.
struct Followed {
    job: JobId,
    attempt: Attempt,
    inbox: mpsc::Sender<Reply>,
    /// Called as each reply of `attempt` is read, before the ones ahead of it in `inbox` are
    /// handled.
    heard: Heard,
    stop: CancellationToken,
}

/// What the dispatcher calls when a route's driver is heard from.
type Heard = Arc<dyn Fn() + Send + Sync>;

/// No link yet (the driver has not registered with this leader).
const NO_LINK: u64 = u64::MAX;

/// The gateway link of a route's driver, shared by the route (which sets it when the driver
/// registers) and the dispatcher (which counts every reply of the driver as heard from the
/// moment it is read). Handling a reply can wait seconds on the event log; the heartbeats
/// queued behind it must not go unnoticed meanwhile, or the scheduler declares a live driver
/// dead.
pub(super) struct RouteLink {
    gw: std::sync::Weak<Gateway>,
    job: JobId,
    conn: AtomicU64,
}

impl RouteLink {
    fn new(gw: &Arc<Gateway>, job: JobId, conn: Option<u64>) -> Arc<Self> {
        Arc::new(RouteLink {
            gw: Arc::downgrade(gw),
            job,
            conn: AtomicU64::new(conn.unwrap_or(NO_LINK)),
        })
    }

    pub(super) fn conn(&self) -> Option<u64> {
        Some(self.conn.load(Ordering::Acquire)).filter(|&c| c != NO_LINK)
    }

    pub(super) fn set(&self, conn: u64) {
        self.conn.store(conn, Ordering::Release);
    }

    fn heard(&self) {
        if let (Some(conn), Some(gw)) = (self.conn(), self.gw.upgrade()) {
            gw.heard(self.job, conn);
        }
    }
}

/// One record of a replies topic.
struct Reply {
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

pub struct KafkaRoutes {
    cfg: RouteConfig,
    admin: AdminClient<DefaultClientContext>,
    producer: FutureProducer,
    consumer: Arc<StreamConsumer>,
    /// By replies topic.
    followed: Mutex<HashMap<String, Followed>>,
}

impl KafkaRoutes {
    /// Connects the clients (lazily: nothing is sent until a route is used) and starts the
    /// task that hands each reply to its route, until `shutdown`.
    pub fn start(cfg: RouteConfig, shutdown: CancellationToken) -> Result<Arc<Self>> {
        let kafka =
            |e: rdkafka::error::KafkaError| Error::Unavailable(format!("kafka routes: {e}"));
        let routes = Arc::new(KafkaRoutes {
            admin: cfg.client("route-admin").create().map_err(kafka)?,
            producer: cfg.producer().create().map_err(kafka)?,
            consumer: Arc::new(cfg.consumer().create().map_err(kafka)?),
            cfg,
            followed: Mutex::default(),
        });
        tokio::spawn(routes.clone().dispatch(shutdown));
        Ok(routes)
    }

    /// Creates the topic pair of a session about to be launched and follows its replies.
    pub(super) async fn open(
        self: &Arc<Self>,
        gw: &Arc<Gateway>,
        job: JobId,
        attempt: Attempt,
    ) -> Result<KafkaRoute> {
        let route = self.cfg.route(job);
        self.create(&route).await?;
        self.follow(gw, job, attempt, Resume::Follow)?;
        Ok(route)
    }

    /// Follows the route of every running session a former leader launched in Kafka mode.
    pub(super) async fn resume(self: &Arc<Self>, gw: &Arc<Gateway>) -> Result<()> {
        let jobs = gw.core.active_jobs().await?;
        if !jobs.iter().any(|j| j.is_session()) {
            return Ok(());
        }
        let topics = self.topic_names().await?;
        for job in jobs {
            if let Some(how) = resume_of(&job, &topics, &self.cfg) {
                tracing::info!(job = job.id.0, ?how, "resuming the session's kafka route");
                self.follow(gw, job.id, job.attempt, how)?;
            }
        }
        Ok(())
    }

    /// Stops following `job`'s route (its driver ended or is being stopped).
    pub(super) fn stop(&self, job: JobId) {
        let topic = self.cfg.route(job).replies;
        if let Some(f) = self.followed.lock().remove(&topic) {
            self.unfollow(&topic, f);
        }
    }

    /// Stops following `job`'s route if it still serves `attempt`.
    fn stop_attempt(&self, job: JobId, attempt: Attempt) {
        let topic = self.cfg.route(job).replies;
        let mut followed = self.followed.lock();
        if followed.get(&topic).is_some_and(|f| f.attempt == attempt) {
            let f = followed.remove(&topic).expect("just seen");
            drop(followed);
            self.unfollow(&topic, f);
        }
    }

    /// Stops following every route (this node no longer leads).
    pub(super) fn stop_all(&self) {
        let all: Vec<(String, Followed)> = self.followed.lock().drain().collect();
        for (topic, f) in all {
            self.unfollow(&topic, f);
        }
    }

    fn unfollow(&self, topic: &str, f: Followed) {
        f.stop.cancel();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, 0);
        if let Err(e) = self.consumer.incremental_unassign(&tpl) {
            tracing::warn!(job = f.job.0, error = %e, "cannot stop reading the route's replies");
        }
    }

    fn follow(
        self: &Arc<Self>,
        gw: &Arc<Gateway>,
        job: JobId,
        attempt: Attempt,
        how: Resume,
    ) -> Result<()> {
        let topic = self.cfg.route(job).replies;
        let mut followed = self.followed.lock();
        if let Some(f) = followed.get(&topic) {
            if f.attempt == attempt {
                return Ok(());
            }
            let f = followed.remove(&topic).expect("just seen");
            self.unfollow(&topic, f);
        }
        let conn =
            (how == Resume::Adopt).then(|| gw.link(job, attempt, self.outbox(gw, job, attempt)));
        let link = RouteLink::new(gw, job, conn);
        let heard: Heard = {
            let link = link.clone();
            Arc::new(move || link.heard())
        };
        let (replies, stop) = self.read(&mut followed, &topic, job, attempt, heard)?;
        let route = Route {
            routes: self.clone(),
            gw: gw.clone(),
            job,
            attempt,
            topic,
            link,
            confirmed: false,
            stop,
        };
        tokio::spawn(route.serve(replies));
        Ok(())
    }

    /// Starts reading `topic` where the last reader's committed position is (its start if
    /// none), until the returned token is cancelled.
    fn read(
        &self,
        followed: &mut HashMap<String, Followed>,
        topic: &str,
        job: JobId,
        attempt: Attempt,
        heard: Heard,
    ) -> Result<(mpsc::Receiver<Reply>, CancellationToken)> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Stored)
            .and_then(|()| self.consumer.incremental_assign(&tpl))
            .map_err(|e| Error::Unavailable(format!("cannot read {topic}: {e}")))?;
        let (inbox, replies) = mpsc::channel(INBOX);
        let stop = CancellationToken::new();
        followed.insert(
            topic.to_string(),
            Followed {
                job,
                attempt,
                inbox,
                heard,
                stop: stop.clone(),
            },
        );
        Ok((replies, stop))
    }

    /// Hands each reply to the route that follows its topic.
    async fn dispatch(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let received = tokio::select! {
                m = self.consumer.recv() => m,
                _ = shutdown.cancelled() => return,
            };
            let m = match received {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the driver routes' replies failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => continue,
                        _ = shutdown.cancelled() => return,
                    }
                }
            };
            let followed = self.followed.lock().get(m.topic()).map(|f| {
                let ours = m.key() == Some(f.attempt.0.to_string().as_bytes());
                (f.inbox.clone(), ours.then(|| f.heard.clone()))
            });
            let Some((inbox, heard)) = followed else {
                continue;
            };
            // Any message of the driver is a heartbeat, from the moment it is read.
            if let Some(heard) = heard {
                heard();
            }
            let reply = Reply {
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or_default().to_vec(),
            };
            // A stopped route has dropped its inbox: the reply is left for the next reader.
            let _ = inbox.send(reply).await;
        }
    }

    /// A link's outgoing side: produces each message to the requests topic, in order. It
    /// ends with the link (all senders gone, after what was queued) or on an `Err` (the
    /// leader let go of its links); a write that fails is retried while this node leads.
    fn outbox(
        self: &Arc<Self>,
        gw: &Arc<Gateway>,
        job: JobId,
        attempt: Attempt,
    ) -> mpsc::Sender<Outgoing> {
        let (tx, mut rx) = mpsc::channel::<Outgoing>(INBOX);
        let routes = self.clone();
        let core = gw.core.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = rx.recv().await {
                if !routes
                    .send(job, attempt, &m, || core.leading_term().is_some())
                    .await
                {
                    return;
                }
            }
        });
        tx
    }

    /// Produces one request; false if it was given up (`keep_trying` said no after a failed
    /// write).
    async fn send(
        &self,
        job: JobId,
        attempt: Attempt,
        m: &pb::NodeMessage,
        keep_trying: impl Fn() -> bool,
    ) -> bool {
        let topic = self.cfg.route(job).requests;
        let key = attempt.0.to_string();
        let payload = m.encode_to_vec();
        loop {
            let record = FutureRecord::to(&topic)
                .partition(0)
                .key(&key)
                .payload(&payload);
            match self.producer.send(record, REQUEST_TIMEOUT).await {
                Ok(_) => return true,
                // Maybe written: writing it again may duplicate it, which the runner ignores
                // (statement ids, acks and registrations are idempotent).
                Err((e, _)) => {
                    tracing::warn!(job = job.0, %topic, error = %e, "cannot write to the driver route; retrying");
                    if !keep_trying() {
                        return false;
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// Records that every reply of `topic` before `next` is handled.
    fn commit(&self, topic: &str, next: i64) {
        let mut tpl = TopicPartitionList::new();
        let committed = tpl
            .add_partition_offset(topic, 0, Offset::Offset(next))
            .and_then(|()| self.consumer.commit(&tpl, CommitMode::Async));
        if let Err(e) = committed {
            // The reply will be handled again by a later leader, which is harmless.
            tracing::warn!(%topic, error = %e, "cannot commit the route's position");
        }
    }
}
