//! What the backend knows about the cluster's driver pods and which of them the scheduler
//! waits on: the watch's cache, the drivers launched or found, and what their changes mean
//! (application identified, ended, log copy to start, pod to expire). Reports go out only
//! from here, so each is sent once.

use super::state::{self, DriverPhase, PodExit};
use super::{pod, Inner, KubernetesConfig, PodRetention};
use k8s_openapi::api::core::v1::Pod;
use kindling_backend::BackendEvent;
use kindling_events::{Attempt, JobId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many deleted pods the cache remembers (for a driver registered just after its pod
/// went away).
const TOMBSTONES: usize = 1024;
/// How long an exit report waits for the driver's log copy to finish.
const LOG_DRAIN: Duration = Duration::from_secs(10);

/// A driver the scheduler wants to hear about.
struct Watched {
    job: JobId,
    attempt: Attempt,
    /// The pod launched or found; another pod of the same name is another incarnation.
    uid: Option<String>,
    app_reported: bool,
}

#[derive(Default)]
pub(super) struct State {
    /// The latest version of each of the cluster's driver pods, by name.
    pods: HashMap<String, Pod>,
    /// Pods the API deleted, by name, the oldest first.
    gone: HashMap<String, Pod>,
    gone_order: VecDeque<String>,
    watched: HashMap<String, Watched>,
    /// Drivers stopped on request.
    killed: HashSet<String>,
    /// Log copies under way, each with the token cancelled when it finishes.
    pub(super) copying: HashMap<String, CancellationToken>,
    /// Pods whose deletion (retention) is scheduled.
    expiring: HashSet<String>,
}

/// What to do after the state changed, outside its lock.
enum Action {
    App {
        job: JobId,
        attempt: Attempt,
        name: String,
        spark_ui_url: Option<String>,
    },
    /// A log copy claimed in the state ([`State::claim_copy`]), to start.
    Copy(String, CancellationToken),
    End {
        job: JobId,
        attempt: Attempt,
        name: String,
        exit: PodExit,
    },
}

impl Inner {
    /// Takes in a pod the API delivered (`deleted`: the API no longer has it).
    pub(super) fn observe(self: &Arc<Self>, pod: Pod, deleted: bool) {
        let Some(name) = pod.metadata.name.clone() else {
            return;
        };
        let actions = {
            let mut st = self.lock();
            if deleted {
                st.pods.remove(&name);
                if st.gone.insert(name.clone(), pod).is_none() {
                    st.gone_order.push_back(name.clone());
                }
                while st.gone_order.len() > TOMBSTONES {
                    if let Some(old) = st.gone_order.pop_front() {
                        st.gone.remove(&old);
                    }
                }
            } else {
                st.gone.remove(&name);
                st.pods.insert(name.clone(), pod);
            }
            evaluate(&self.cfg, &mut st, &name)
        };
        self.act(actions);
    }

    /// After a relist: the pods the API has now. Watched drivers missing from it were deleted
    /// while nobody watched.
    pub(super) fn replace_all(self: &Arc<Self>, pods: Vec<Pod>) {
        let missing: Vec<Pod> = {
            let mut st = self.lock();
            let listed: HashSet<String> = pods
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            let missing = st
                .pods
                .iter()
                .filter(|(n, _)| !listed.contains(*n))
                .map(|(_, p)| p.clone())
                .collect();
            st.pods.clear();
            missing
        };
        for pod in pods {
            self.observe(pod, false);
        }
        for pod in missing {
            self.observe(pod, true);
        }
    }

    pub(super) fn watch_driver(
        self: &Arc<Self>,
        job: JobId,
        attempt: Attempt,
        name: &str,
        pod: Pod,
    ) {
        let actions = {
            let mut st = self.lock();
            st.watched.insert(
                name.to_string(),
                Watched {
                    job,
                    attempt,
                    uid: pod.metadata.uid.clone(),
                    app_reported: false,
                },
            );
            // The cache may already know more (or that the pod is gone). Resource versions
            // are opaque, so "more" is judged by the pod's progress, which only goes forward.
            let progress = |p: &Pod| match state::driver_phase(p) {
                DriverPhase::Pending => u8::from(state::has_run(p)),
                DriverPhase::Running => 1,
                DriverPhase::Ended(_) => 2,
            };
            let same = |p: &Pod| p.metadata.uid == pod.metadata.uid;
            let known = st.gone.get(name).is_some_and(same)
                || st
                    .pods
                    .get(name)
                    .is_some_and(|p| same(p) && progress(p) >= progress(&pod));
            if !known {
                st.pods.insert(name.to_string(), pod);
            }
            evaluate(&self.cfg, &mut st, name)
        };
        self.act(actions);
    }

    fn act(self: &Arc<Self>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::App {
                    job,
                    attempt,
                    name,
                    spark_ui_url,
                } => {
                    let app_id = pod::app_id(&self.cfg.cluster_id, &name);
                    tracing::info!(cluster = %self.name(), driver = %name, %app_id, "driver running");
                    let _ = self.events.send(BackendEvent::AppIdentified {
                        job,
                        attempt,
                        app_id,
                        spark_ui_url,
                    });
                }
                Action::Copy(name, done) => self.spawn_copy(&name, done),
                Action::End {
                    job,
                    attempt,
                    name,
                    exit,
                } => {
                    let inner = self.clone();
                    tokio::spawn(async move { inner.report_end(job, attempt, &name, exit).await });
                }
            }
        }
    }

    /// Reports an end once the log copy has drained, then applies the retention.
    async fn report_end(self: Arc<Self>, job: JobId, attempt: Attempt, name: &str, exit: PodExit) {
        let copying = self.lock().copying.get(name).cloned();
        if let Some(done) = copying {
            let _ = tokio::time::timeout(LOG_DRAIN, done.cancelled()).await;
        }
        self.record_end(name, &exit);
        tracing::info!(cluster = %self.name(), driver = %name, exit_code = ?exit.exit_code,
            reason = %exit.reason, "driver ended");
        let _ = self.events.send(BackendEvent::Exited {
            job,
            attempt,
            exit_code: exit.exit_code,
            reason: Some(exit.reason.clone()).filter(|r| !r.is_empty()),
        });
        self.lock().killed.remove(name);
        self.expire(name);
    }

    /// Whether the scheduler waits on this driver's end.
    pub(super) fn is_watched(&self, name: &str) -> bool {
        self.lock().watched.contains_key(name)
    }

    /// Marks a driver as stopped on request: its end is reported as `Killed`.
    pub(super) fn mark_killed(&self, name: &str) {
        self.lock().killed.insert(name.to_string());
    }

    pub(super) fn record_end(&self, name: &str, exit: &PodExit) {
        self.logs.write_end(
            name,
            &format!(
                "kindling: driver pod {} ended: {}",
                self.driver_id(name),
                exit.describe()
            ),
            exit.exit_code,
        );
    }

    /// Deletes an ended driver's pod, service and secret after the retention period.
    pub(super) fn expire(self: &Arc<Self>, name: &str) {
        let PodRetention::DeleteAfter(after) = self.cfg.retention else {
            return;
        };
        if !self.lock().expiring.insert(name.to_string()) {
            return;
        }
        let inner = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            tokio::select! {
                _ = inner.shutdown.cancelled() => return,
                _ = tokio::time::sleep(after) => {}
            }
            let copying = inner.lock().copying.get(&name).cloned();
            if let Some(done) = copying {
                let _ = tokio::time::timeout(LOG_DRAIN, done.cancelled()).await;
            }
            if let Err(e) = inner.delete_driver(&name).await {
                tracing::warn!(cluster = %inner.name(), driver = %name, error = %e, "cannot delete an expired driver pod");
            }
            inner.lock().expiring.remove(&name);
        });
    }
}

/// What the cached state of `name` means for the scheduler, if it watches that driver.
fn evaluate(cfg: &KubernetesConfig, st: &mut State, name: &str) -> Vec<Action> {
    let killed = st.killed.contains(name);
    let (pod, deleted) = match (st.pods.get(name), st.gone.get(name)) {
        (Some(p), _) => (p.clone(), false),
        (None, Some(p)) => (p.clone(), true),
        (None, None) => return vec![],
    };
    let Some(w) = st.watched.get_mut(name) else {
        return vec![];
    };
    if w.uid.is_some() && pod.metadata.uid != w.uid {
        return vec![];
    }
    let (job, attempt) = (w.job, w.attempt);
    let mut actions = vec![];
    if state::has_run(&pod) && !w.app_reported {
        w.app_reported = true;
        actions.push(Action::App {
            job,
            attempt,
            name: name.to_string(),
            spark_ui_url: pod::spark_ui_url(cfg, &pod, name),
        });
        if !deleted {
            if let Some(done) = st.claim_copy(name) {
                actions.push(Action::Copy(name.to_string(), done));
            }
        }
    }
    let phase = if deleted {
        DriverPhase::Ended(state::exit_of_deleted(Some(&pod), killed))
    } else {
        state::driver_phase(&pod)
    };
    if let DriverPhase::Ended(mut exit) = phase {
        // A driver that completed before the kill reached it stays completed.
        if killed && exit.reason != "Killed" && exit.exit_code != Some(0) {
            exit.message = Some(format!("stopped on request ({})", exit.describe()));
            exit.reason = "Killed".into();
        }
        st.watched.remove(name);
        actions.push(Action::End {
            job,
            attempt,
            name: name.to_string(),
            exit,
        });
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KubeAuth;
    use serde_json::json;

    fn pod(state: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "kindling-4-1", "uid": "u1" },
            "status": { "phase": "Running", "containerStatuses": [{
                "name": pod::DRIVER_CONTAINER, "image": "spark", "imageID": "", "ready": false,
                "restartCount": 0, "state": state }] }
        }))
        .unwrap()
    }

    /// The end of a driver may be seen by another task right after its start (the watch and
    /// the launch both evaluate); the copy must be claimed before either lets go of the
    /// state, or the end is reported without waiting for the log.
    #[test]
    fn the_log_copy_is_claimed_when_it_is_decided() {
        let cfg = KubernetesConfig::example(KubeAuth::BearerToken(String::new()));
        let name = "kindling-4-1";
        let mut st = State::default();
        st.watched.insert(
            name.into(),
            Watched {
                job: JobId(4),
                attempt: Attempt(1),
                uid: Some("u1".into()),
                app_reported: false,
            },
        );
        st.pods.insert(name.into(), pod(json!({ "running": {} })));
        let started = evaluate(&cfg, &mut st, name);
        let Some(Action::Copy(_, claimed)) = started.iter().find(|a| matches!(a, Action::Copy(..)))
        else {
            panic!("a running driver's log is copied");
        };
        assert!(st.copying.contains_key(name), "claimed with the decision");

        st.pods.insert(
            name.into(),
            pod(json!({ "terminated": { "exitCode": 4, "reason": "Error" } })),
        );
        let ended = evaluate(&cfg, &mut st, name);
        assert!(matches!(ended.as_slice(), [Action::End { .. }]));
        // What the end's report waits on is the copy that was started.
        claimed.cancel();
        assert!(st.copying[name].is_cancelled());
        assert!(st.claim_copy(name).is_none(), "one copy per driver");
    }
}
