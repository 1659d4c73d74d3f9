//! The conformance suite of the `ClusterBackend` port, written once: every adapter (local,
//! standalone, Kubernetes, YARN) runs the same [`cases`] against its cluster through a small
//! [`Harness`] of its own, which builds backend instances and plays whatever the cluster does
//! by itself where the cluster is a fake. The cases speak only through the port and the
//! events a backend reports; what a cluster genuinely does differently (how much of an exit
//! code it keeps, whether it can forget an ended driver) the harness says, never the cases.
//!
//! An adapter's test binary gets one test per case with
//! [`backend_conformance_tests!`](crate::backend_conformance_tests!). Real Spark drivers are
//! slow, so the suite starts four drivers per backend in all.

pub mod cases;
mod harness;
mod instance;

pub use harness::{Ending, ExitCodes, Harness};
pub use instance::Instance;

use crate::LaunchSpec;
use kindling_events::spec::JobSpec;
use kindling_events::{Attempt, JobId};

/// The line a conformance driver prints first, so its log can be recognised.
pub fn marker(job: JobId) -> String {
    format!("kindling-conformance {}", job.0)
}

/// The launch of attempt 1 of `job`, under the name the port derives for it.
pub fn launch_spec(job: JobId, spec: JobSpec) -> LaunchSpec {
    LaunchSpec {
        job,
        attempt: Attempt(1),
        driver_name: crate::driver_name(job, Attempt(1)),
        spec,
        session: None,
    }
}

/// One test per case of the suite, for an adapter's test binary. The argument is an
/// expression giving a future of the adapter's [`Harness`]; it is evaluated once per test,
/// so each case has a cluster of its own. The calling crate needs `tokio` (macros and the
/// multi-threaded runtime).
///
/// ```ignore
/// kindling_backend::backend_conformance_tests!(LocalHarness::start());
/// ```
#[macro_export]
macro_rules! backend_conformance_tests {
    ($harness:expr) => {
        $crate::backend_conformance_tests!(@case $harness,
            a_running_driver_is_found_after_a_restart_relaunched_once_and_killed);
        $crate::backend_conformance_tests!(@case $harness,
            exits_are_reported_with_their_codes_and_found_after_a_restart);
        $crate::backend_conformance_tests!(@case $harness,
            a_drivers_log_outlives_the_driver_and_the_clusters_record_of_it);
        $crate::backend_conformance_tests!(@case $harness, an_unknown_driver_was_never_launched);
    };
    (@case $harness:expr, $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let harness = $harness.await;
            $crate::conformance::cases::$case(&harness).await;
        }
    };
}
