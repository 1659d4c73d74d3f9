//! The gRPC transport of the driver gateway: the tonic `DriverLink` service, a thin shell over
//! [`Gateway`]. A driver opens one stream to any member and sends `Register` first; only the
//! leader accepts it (followers answer UNAVAILABLE with the leader's driver endpoint). When
//! the stream breaks, the session is marked recovering until the driver reconnects.

use super::{Gateway, Outgoing};
use crate::status::{refusal, status};
use kindling_core::ErrorCode;
use kindling_events::{Attempt, JobId};
use kindling_proto::driver::v1 as pb;
use pb::driver_link_server::DriverLink;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

pub struct DriverService(pub Arc<Gateway>);

type NodeStream = Pin<Box<dyn Stream<Item = Outgoing> + Send>>;

#[tonic::async_trait]
impl DriverLink for DriverService {
    type ConnectStream = NodeStream;

    async fn connect(
        &self,
        request: Request<Streaming<pb::DriverMessage>>,
    ) -> Result<Response<NodeStream>, Status> {
        let gw = self.0.clone();
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), inbound.next())
            .await
            .map_err(|_| status(ErrorCode::Timeout, "no Register within 10 s"))?;
        let reg = match first {
            Some(Ok(pb::DriverMessage {
                body: Some(pb::driver_message::Body::Register(r)),
            })) => r,
            _ => {
                return Err(status(
                    ErrorCode::BadRequest,
                    "the first message must be Register",
                ))
            }
        };
        if gw.core.leading_term().is_none() {
            // Only the leader records what drivers report. The runner tries the next
            // endpoint; the hint lets it go straight to the leader.
            return Err(status(ErrorCode::Unavailable, gw.leader_hint()));
        }
        gw.register(&reg).await.map_err(refusal)??;
        let job = JobId(reg.job_id);
        let attempt = Attempt(reg.attempt);
        let (tx, rx) = mpsc::channel(1024);
        let conn = gw.link(job, attempt, tx);
        if let Err(e) = gw.welcome(job, Some(&reg)).await {
            gw.unlink(job, conn);
            return Err(refusal(e));
        }
        tokio::spawn(async move {
            let inbound = inbound.map_while(Result::ok);
            let heard = || gw.heard(job, conn);
            pump(inbound, heard, |m| async {
                if let Err(e) = gw.handle(job, m).await {
                    tracing::warn!(job = job.0, error = %e, "driver message not recorded");
                }
            })
            .await;
            gw.disconnected(job, conn).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Messages read ahead of the one being handled, at most.
const READ_AHEAD: usize = 256;

/// Reads a driver's stream apart from handling what it carries: `heard` counts each message
/// the moment it arrives, and `handle` takes them one at a time, in order. A statement's
/// result waits on its append to the log, which a slow or unreachable broker can hold for
/// seconds; heartbeats read only after it would leave a live driver silent for as long, and
/// the scheduler declared such a driver dead. Returns once the stream has ended and every
/// message read is handled.
async fn pump<M, F>(
    inbound: impl Stream<Item = M> + Send,
    heard: impl Fn(),
    handle: impl Fn(M) -> F,
) where
    F: std::future::Future<Output = ()>,
{
    let (tx, mut rx) = mpsc::channel(READ_AHEAD);
    let read = async move {
        tokio::pin!(inbound);
        while let Some(m) = inbound.next().await {
            heard();
            if tx.send(m).await.is_err() {
                return;
            }
        }
    };
    let work = async {
        while let Some(m) = rx.recv().await {
            handle(m).await;
        }
    };
    tokio::join!(read, work);
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;

    #[tokio::test]
    async fn heartbeats_count_while_an_earlier_message_waits_on_the_log() {
        let (tx, rx) = mpsc::unbounded_channel::<&str>();
        let heard = AtomicUsize::new(0);
        let handled = Mutex::new(Vec::new());
        let append_done = Notify::new();
        let pumped = pump(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
            || {
                heard.fetch_add(1, Ordering::SeqCst);
            },
            |m| {
                let (handled, append_done) = (&handled, &append_done);
                async move {
                    if m == "result" {
                        // The result's append to the log is held until the test lets it go.
                        append_done.notified().await;
                    }
                    handled.lock().push(m);
                }
            },
        );
        let driver = async {
            tx.send("result").unwrap();
            for _ in 0..3 {
                tx.send("heartbeat").unwrap();
            }
            // Every message is heard though the first is still being handled.
            let all_heard = async {
                while heard.load(Ordering::SeqCst) < 4 {
                    tokio::task::yield_now().await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), all_heard)
                .await
                .expect("the heartbeats were heard while the result waited on the log");
            assert!(handled.lock().is_empty());
            append_done.notify_one();
            tx.send("started").unwrap();
            drop(tx);
        };
        tokio::join!(pumped, driver);
        assert_eq!(heard.load(Ordering::SeqCst), 5);
        assert_eq!(
            *handled.lock(),
            ["result", "heartbeat", "heartbeat", "heartbeat", "started"],
            "handled one at a time, in the order sent"
        );
    }
}
