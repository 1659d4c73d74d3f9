//! One lane per cluster: a task that runs the scheduler's backend calls for that cluster
//! (launch, find, kill) one after another and reports their results as messages. The
//! scheduler's loop never awaits a backend, so a cluster that is slow or unreachable delays
//! only its own lane; calls on one cluster stay in order, so a kill never overtakes the
//! launch it undoes.

use super::engine::{LaneOp as Op, LaunchError};
use kindling_backend::{BackendError, Backends, Found};
use kindling_events::{Attempt, Cluster, JobId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest a launch or a lookup may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub enum Reply {
    Launched {
        job: JobId,
        attempt: Attempt,
        result: Result<String, LaunchError>,
    },
    Found {
        job: JobId,
        attempt: Attempt,
        result: Result<Found, String>,
    },
}

/// A reply, with the generation of lanes that sent it: replies of lanes from an earlier
/// term of leadership are stale.
pub type Tagged = (u64, Reply);

pub struct Lanes {
    backends: Arc<Backends>,
    replies: mpsc::UnboundedSender<Tagged>,
    lanes: HashMap<String, mpsc::UnboundedSender<(Cluster, Op)>>,
    generation: u64,
}

impl Lanes {
    pub fn new(backends: Arc<Backends>, replies: mpsc::UnboundedSender<Tagged>) -> Self {
        Lanes {
            backends,
            replies,
            lanes: HashMap::new(),
            generation: 0,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Queues `op` on the lane of `cluster`, as configured now.
    pub fn send(&mut self, cluster: &Cluster, op: Op) {
        let tx = self.lanes.entry(cluster.name.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(
                cluster.name.clone(),
                self.backends.clone(),
                rx,
                self.replies.clone(),
                self.generation,
            ));
            tx
        });
        if tx.send((cluster.clone(), op)).is_err() {
            tracing::error!(cluster = %cluster.name, "a cluster's lane stopped");
            self.lanes.remove(&cluster.name);
        }
    }

    /// Ends the lane of a cluster that left the registry (after what is queued on it).
    pub fn close(&mut self, name: &str) {
        self.lanes.remove(name);
    }

    /// Ends every lane (the node no longer schedules); their replies become stale.
    pub fn clear(&mut self) {
        self.lanes.clear();
        self.generation += 1;
    }
}

async fn run(
    name: String,
    backends: Arc<Backends>,
    mut ops: mpsc::UnboundedReceiver<(Cluster, Op)>,
    replies: mpsc::UnboundedSender<Tagged>,
    generation: u64,
) {
    while let Some((cluster, op)) = ops.recv().await {
        let backend = backends.get(&cluster).await;
        let reply = match op {
            Op::Launch(spec) => {
                let spec = *spec;
                let (job, attempt) = (spec.job, spec.attempt);
                let result = match &backend {
                    Err(e) => Err(LaunchError {
                        cause: e.clone(),
                        certain: true,
                    }),
                    Ok(b) => match timed(&name, b.launch(spec)).await {
                        Ok(Ok(driver_id)) => Ok(driver_id),
                        Ok(Err(e)) => Err(LaunchError {
                            certain: matches!(e, BackendError::LaunchFailed(_)),
                            cause: e.to_string(),
                        }),
                        Err(_) => Err(LaunchError {
                            cause: format!(
                                "cluster {name} did not answer within {} s",
                                CALL_TIMEOUT.as_secs()
                            ),
                            certain: false,
                        }),
                    },
                };
                if result.is_err() {
                    crate::metrics::backend_error(&name, call_of(&backend, "launch"));
                }
                Reply::Launched {
                    job,
                    attempt,
                    result,
                }
            }
            Op::Find {
                job,
                attempt,
                driver_name,
            } => {
                let result = match &backend {
                    Err(e) => Err(e.clone()),
                    Ok(b) => {
                        match tokio::time::timeout(CALL_TIMEOUT, b.find(job, attempt, &driver_name))
                            .await
                        {
                            Ok(r) => r.map_err(|e| e.to_string()),
                            Err(_) => Err(format!(
                                "cluster {name} did not answer within {} s",
                                CALL_TIMEOUT.as_secs()
                            )),
                        }
                    }
                };
                if result.is_err() {
                    crate::metrics::backend_error(&name, call_of(&backend, "find"));
                }
                Reply::Found {
                    job,
                    attempt,
                    result,
                }
            }
            Op::Kill { job, driver_name } => {
                let result = match &backend {
                    Err(e) => Err(e.clone()),
                    Ok(b) => match tokio::time::timeout(CALL_TIMEOUT, b.kill(&driver_name)).await {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(_) => Err("no answer".into()),
                    },
                };
                if let Err(e) = result {
                    crate::metrics::backend_error(&name, call_of(&backend, "kill"));
                    tracing::warn!(cluster = %name, job = job.0, driver = %driver_name, error = %e, "kill failed");
                }
                continue;
            }
        };
        if replies.send((generation, reply)).is_err() {
            return;
        }
    }
}

/// A launch call, timed out after [`CALL_TIMEOUT`] and measured.
async fn timed<T, E>(
    cluster: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<Result<T, E>, tokio::time::error::Elapsed> {
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(CALL_TIMEOUT, call).await;
    let ok = matches!(result, Ok(Ok(_)));
    crate::metrics::launch_call(cluster, ok, started.elapsed());
    result
}

/// Which call failed: `call`, or `connect` when the cluster's backend could not be built.
fn call_of<B>(backend: &Result<B, String>, call: &'static str) -> &'static str {
    if backend.is_err() {
        "connect"
    } else {
        call
    }
}
