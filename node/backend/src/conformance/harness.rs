//! What an adapter's tests provide to run the conformance suite: backend instances for the
//! cluster under test, conformance drivers, and the cluster's part in their lives (releasing a
//! driver, forgetting an ended one). Where the cluster is a fake, the harness also plays what
//! the real one would do by itself (a kubelet starting a pod, a ResourceManager running an
//! application), in a task of its own; the cases never know.

use crate::{BackendEvent, ClusterBackend};
use async_trait::async_trait;
use kindling_events::spec::JobSpec;
use kindling_events::JobId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a conformance driver ends, after printing its [`marker`](super::marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exits at once with this code.
    AtOnce(i32),
    /// It runs until [`Harness::release`], then exits with this code.
    OnRelease(i32),
}

impl Ending {
    pub fn code(self) -> i32 {
        match self {
            Ending::AtOnce(c) | Ending::OnRelease(c) => c,
        }
    }
}

/// How much of a driver's exit code the cluster keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCodes {
    /// The code the driver exited with.
    Exact,
    /// Only whether it was zero: a non-zero exit is reported as some non-zero code (the
    /// standalone master records a state, not a code).
    ZeroOrNot,
}

#[async_trait]
pub trait Harness: Send + Sync {
    /// A new backend instance for the cluster under test, with the same configuration each
    /// time (as a node that restarts builds it again), reporting to `events`; `stop` ends
    /// its watches and pollers.
    async fn backend(
        &self,
        events: mpsc::UnboundedSender<BackendEvent>,
        stop: CancellationToken,
    ) -> Arc<dyn ClusterBackend>;

    /// A batch for `job` whose driver prints [`marker(job)`](super::marker) on a line of
    /// its own, then ends as `ending` says.
    fn batch(&self, job: JobId, ending: Ending) -> JobSpec;

    /// Lets the running driver of `job` (an [`Ending::OnRelease`] one) exit.
    async fn release(&self, job: JobId);

    /// Makes the cluster forget the ended driver of `job` (its pod deleted, its application
    /// aged out of the ResourceManager), as it eventually does; `false` where the cluster
    /// keeps what a node serves the driver's log from, so there is nothing to forget.
    async fn forget(&self, job: JobId) -> bool;

    /// The longest anything may take on this cluster (a driver starting, an end reported).
    fn deadline(&self) -> Duration;

    fn exit_codes(&self) -> ExitCodes {
        ExitCodes::Exact
    }

    /// The reason the cluster gives for a driver that exited with `exit_code`, where it gives
    /// one (`BackendEvent::Exited::reason`).
    fn exit_reason(&self, _exit_code: i32) -> Option<String> {
        None
    }

    /// The reason the cluster gives for a driver stopped on request, where it gives one.
    fn kill_reason(&self) -> Option<String> {
        None
    }
}
