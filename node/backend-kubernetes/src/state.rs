//! What Kindling makes of a driver pod's status: pending, running, or ended with an exit
//! code and a reason. Pure functions of the pod object; no I/O.

use super::pod::DRIVER_CONTAINER;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Exit code reported for a driver stopped on request whose container recorded none: the
/// kubelet stops a deleted pod's containers with SIGTERM (128 + 15).
pub const EXIT_KILLED: i32 = 143;

/// Waiting reasons after which the driver container will not run without someone changing
/// the pod: the image cannot be pulled, or (never with Kindling's `restartPolicy: Never`,
/// but mapped all the same) the container keeps crashing. `CreateContainerConfigError` is
/// missing: it is what the kubelet reports while a session's secret is being created.
const FATAL_WAITING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CrashLoopBackOff",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverPhase {
    /// Not running yet: unscheduled, pulling its image, starting, or on a node that stopped
    /// answering (phase `Unknown`).
    Pending,
    Running,
    Ended(PodExit),
}

/// How a driver pod ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodExit {
    /// The driver container's exit code, when it ran and the kubelet recorded one.
    pub exit_code: Option<i32>,
    /// Kubernetes' word for the end: `Completed`, `Error`, `OOMKilled`, `Evicted`,
    /// `ImagePullBackOff`, `ErrImagePull`, `CrashLoopBackOff`, `Deleted`, `Killed`, ...
    pub reason: String,
    /// Kubernetes' explanation, when it gave one.
    pub message: Option<String>,
}

impl PodExit {
    /// One line for the driver's log.
    pub fn describe(&self) -> String {
        let mut s = self.reason.clone();
        if let Some(code) = self.exit_code {
            s.push_str(&format!(" (exit code {code})"));
        }
        if let Some(m) = self.message.as_deref().filter(|m| !m.is_empty()) {
            s.push_str(": ");
            s.push_str(m.trim());
        }
        s
    }
}

fn driver_status(pod: &Pod) -> Option<&ContainerStatus> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses
        .iter()
        .find(|c| c.name == DRIVER_CONTAINER)
        .or_else(|| statuses.first())
}

/// Maps a driver pod to a phase, looking in this order at:
/// 1. the driver container terminated (with `restartPolicy: Never` that is final, whatever
///    the pod's phase says yet): its exit code, and its reason (`Completed`, `Error`,
///    `OOMKilled`, ...), unless the pod's own reason is `Evicted`, which then wins;
/// 2. phase `Succeeded` → exit 0, `Completed`;
/// 3. phase `Failed` without a terminated container (evicted before it ran, node lost,
///    deadline exceeded) → no exit code, the pod's reason (or `Failed`);
/// 4. the container waiting for a reason in [`FATAL_WAITING`] → no exit code (the last
///    crash's for `CrashLoopBackOff`), that reason and its message;
/// 5. phase `Running` with the container running → running; anything else → pending.
pub fn driver_phase(pod: &Pod) -> DriverPhase {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    let pod_reason = status.and_then(|s| s.reason.clone());
    let pod_message = status.and_then(|s| s.message.clone());
    let container = driver_status(pod);
    let state = container.and_then(|c| c.state.as_ref());
    let evicted = pod_reason.as_deref() == Some("Evicted");

    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        let (reason, message) = if evicted {
            ("Evicted".to_string(), pod_message.or(t.message.clone()))
        } else {
            let fallback = if t.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            };
            (
                t.reason.clone().unwrap_or_else(|| fallback.into()),
                t.message.clone(),
            )
        };
        return DriverPhase::Ended(PodExit {
            exit_code: Some(t.exit_code),
            reason,
            message,
        });
    }
    match phase {
        "Succeeded" => {
            return DriverPhase::Ended(PodExit {
                exit_code: Some(0),
                reason: "Completed".into(),
                message: None,
            })
        }
        "Failed" => {
            return DriverPhase::Ended(PodExit {
                exit_code: None,
                reason: pod_reason.unwrap_or_else(|| "Failed".into()),
                message: pod_message,
            })
        }
        _ => {}
    }
    if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        if let Some(reason) = w.reason.as_deref().filter(|r| FATAL_WAITING.contains(r)) {
            let last_exit = container
                .and_then(|c| c.last_state.as_ref())
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code);
            return DriverPhase::Ended(PodExit {
                exit_code: last_exit,
                reason: reason.to_string(),
                message: w.message.clone(),
            });
        }
    }
    if phase == "Running" && state.is_some_and(|s| s.running.is_some()) {
        return DriverPhase::Running;
    }
    DriverPhase::Pending
}

/// Whether the driver container has started (it may have ended since): only then has the
/// application run, and only then has the pod a log.
pub fn has_run(pod: &Pod) -> bool {
    driver_status(pod)
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
}

/// How a pod that disappeared from the API ended: as its last state said, else stopped on
/// request (`killed`) or deleted by someone else.
pub fn exit_of_deleted(last: Option<&Pod>, killed: bool) -> PodExit {
    if let Some(DriverPhase::Ended(exit)) = last.map(driver_phase) {
        return exit;
    }
    if killed {
        PodExit {
            exit_code: Some(EXIT_KILLED),
            reason: "Killed".into(),
            message: Some("the driver pod was deleted on request".into()),
        }
    } else {
        PodExit {
            exit_code: None,
            reason: "Deleted".into(),
            message: Some("the driver pod was deleted before it ended".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({ "metadata": { "name": "kindling-1-1" }, "status": status }))
            .unwrap()
    }

    fn container(state: serde_json::Value) -> serde_json::Value {
        json!([{ "name": DRIVER_CONTAINER, "image": "spark", "imageID": "", "ready": false,
                 "restartCount": 0, "state": state }])
    }

    fn ended(exit_code: Option<i32>, reason: &str) -> DriverPhase {
        DriverPhase::Ended(PodExit {
            exit_code,
            reason: reason.into(),
            message: None,
        })
    }

    #[test]
    fn phases_and_reasons_map_to_exits() {
        let cases = [
            (json!({ "phase": "Pending" }), DriverPhase::Pending),
            (
                json!({ "phase": "Pending", "containerStatuses": container(json!({ "waiting": { "reason": "ContainerCreating" } })) }),
                DriverPhase::Pending,
            ),
            (
                json!({ "phase": "Pending", "containerStatuses": container(json!({ "waiting": { "reason": "CreateContainerConfigError" } })) }),
                DriverPhase::Pending,
            ),
            (
                json!({ "phase": "Running", "containerStatuses": container(json!({ "running": {} })) }),
                DriverPhase::Running,
            ),
            (json!({ "phase": "Unknown" }), DriverPhase::Pending),
            (
                json!({ "phase": "Succeeded", "containerStatuses": container(json!({ "terminated": { "exitCode": 0, "reason": "Completed" } })) }),
                ended(Some(0), "Completed"),
            ),
            (json!({ "phase": "Succeeded" }), ended(Some(0), "Completed")),
            (
                json!({ "phase": "Failed", "containerStatuses": container(json!({ "terminated": { "exitCode": 3, "reason": "Error" } })) }),
                ended(Some(3), "Error"),
            ),
            (
                json!({ "phase": "Failed", "containerStatuses": container(json!({ "terminated": { "exitCode": 137, "reason": "OOMKilled" } })) }),
                ended(Some(137), "OOMKilled"),
            ),
            // The container's end is final before the pod's phase catches up.
            (
                json!({ "phase": "Running", "containerStatuses": container(json!({ "terminated": { "exitCode": 1 } })) }),
                ended(Some(1), "Error"),
            ),
            (json!({ "phase": "Failed" }), ended(None, "Failed")),
        ];
        for (status, want) in cases {
            assert_eq!(driver_phase(&pod(status.clone())), want, "{status}");
        }
    }

    #[test]
    fn eviction_wins_over_the_containers_reason() {
        let p = pod(json!({ "phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory.",
            "containerStatuses": container(json!({ "terminated": { "exitCode": 137, "reason": "Error" } })) }));
        let DriverPhase::Ended(exit) = driver_phase(&p) else {
            panic!("not ended")
        };
        assert_eq!(exit.exit_code, Some(137));
        assert_eq!(exit.reason, "Evicted");
        assert_eq!(
            exit.describe(),
            "Evicted (exit code 137): The node was low on resource: memory."
        );
        let p = pod(json!({ "phase": "Failed", "reason": "Evicted", "message": "m" }));
        assert_eq!(
            driver_phase(&p),
            DriverPhase::Ended(PodExit {
                exit_code: None,
                reason: "Evicted".into(),
                message: Some("m".into())
            })
        );
    }

    #[test]
    fn image_pull_failures_and_crash_loops_end_the_driver() {
        for reason in ["ImagePullBackOff", "ErrImagePull", "InvalidImageName"] {
            let p = pod(json!({ "phase": "Pending",
                "containerStatuses": container(json!({ "waiting": { "reason": reason, "message": "Back-off pulling image \"nope\"" } })) }));
            let DriverPhase::Ended(exit) = driver_phase(&p) else {
                panic!("{reason} not ended")
            };
            assert_eq!((exit.exit_code, exit.reason.as_str()), (None, reason));
            assert!(exit.describe().contains("nope"), "{}", exit.describe());
            assert!(!has_run(&p));
        }
        let mut c = container(json!({ "waiting": { "reason": "CrashLoopBackOff" } }));
        c[0]["lastState"] = json!({ "terminated": { "exitCode": 2, "reason": "Error" } });
        let p = pod(json!({ "phase": "Running", "containerStatuses": c }));
        assert_eq!(driver_phase(&p), ended(Some(2), "CrashLoopBackOff"));
    }

    #[test]
    fn a_deleted_pod_ends_as_its_last_state_or_as_killed_or_deleted() {
        let running = pod(
            json!({ "phase": "Running", "containerStatuses": container(json!({ "running": {} })) }),
        );
        assert!(has_run(&running));
        let killed = exit_of_deleted(Some(&running), true);
        assert_eq!(
            (killed.exit_code, killed.reason.as_str()),
            (Some(EXIT_KILLED), "Killed")
        );
        let deleted = exit_of_deleted(None, false);
        assert_eq!(
            (deleted.exit_code, deleted.reason.as_str()),
            (None, "Deleted")
        );
        let done = pod(
            json!({ "phase": "Failed", "containerStatuses": container(json!({ "terminated": { "exitCode": 143, "reason": "Error" } })) }),
        );
        assert_eq!(exit_of_deleted(Some(&done), true).exit_code, Some(143));
        assert_eq!(exit_of_deleted(Some(&done), true).reason, "Error");
    }
}
