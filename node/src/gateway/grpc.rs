//! The gRPC transport of the driver gateway: the tonic `DriverLink` service, a thin shell over
//! [`Gateway`]. A driver opens one stream to any member and sends `Register` first; only the
//! leader accepts it (followers answer UNAVAILABLE with the leader's driver endpoint). When
//! the stream breaks, the session is marked recovering until the driver reconnects.

use super::{Gateway, Outgoing};
use crate::error::Error;
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

/// What a failed registration tells the driver: a refusal ends it (the runner exits), any
/// other failure makes it try again.
fn refusal(e: Error) -> Status {
    match e {
        Error::Domain(_) | Error::NotFound(_) => Status::failed_precondition(e.to_string()),
        e => Status::unavailable(e.to_string()),
    }
}

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
            .map_err(|_| Status::deadline_exceeded("no Register within 10 s"))?;
        let reg = match first {
            Some(Ok(pb::DriverMessage {
                body: Some(pb::driver_message::Body::Register(r)),
            })) => r,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be Register",
                ))
            }
        };
        if gw.core.leading_term().is_none() {
            // Only the leader records what drivers report. The runner tries the next
            // endpoint; the hint lets it go straight to the leader.
            return Err(Status::unavailable(gw.leader_hint()));
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
            while let Some(m) = inbound.next().await {
                match m {
                    Ok(m) => {
                        if let Err(e) = gw.handle(job, conn, m).await {
                            tracing::warn!(job = job.0, error = %e, "driver message not recorded");
                        }
                    }
                    Err(_) => break,
                }
            }
            gw.disconnected(job, conn).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
