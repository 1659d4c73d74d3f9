//! What Kindling makes of a YARN application report: pending, running, or ended with an exit
//! code and a reason; and which applications are this Kindling cluster's. Pure functions of
//! the ResourceManager's answers; no I/O.

use super::rm::App;

/// Exit code reported when the driver failed and YARN keeps no better code.
pub const EXIT_FAILED: i32 = 1;
/// Exit code reported for an application killed (through YARN, by Kindling or anyone): the
/// NodeManager stops the containers with SIGTERM (128 + 15).
pub const EXIT_KILLED: i32 = 143;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppPhase {
    /// NEW, NEW_SAVING, SUBMITTED, ACCEPTED: not running yet (queued, or the
    /// ApplicationMaster, which is the driver, is starting).
    Pending,
    /// RUNNING: the ApplicationMaster (the driver) registered with the ResourceManager.
    Running,
    Ended(AppEnd),
}

/// How an application ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEnd {
    pub exit_code: Option<i32>,
    /// YARN's word for the end: `<state>/<finalStatus>`, e.g. `FINISHED/SUCCEEDED`,
    /// `FINISHED/FAILED`, `FAILED/FAILED`, `KILLED/KILLED`.
    pub reason: String,
    /// YARN's diagnostics, when it gave any.
    pub message: Option<String>,
}

/// How much of the diagnostics the one-line description keeps.
const DESCRIBE_CHARS: usize = 500;

impl AppEnd {
    /// One line: the reason, the exit code, and the diagnostics' first line.
    pub fn describe(&self) -> String {
        let mut s = self.reason.clone();
        if let Some(code) = self.exit_code {
            s.push_str(&format!(" (exit code {code})"));
        }
        let first = self
            .message
            .as_deref()
            .and_then(|m| m.lines().map(str::trim).find(|l| !l.is_empty()));
        if let Some(m) = first {
            s.push_str(": ");
            s.extend(m.chars().take(DESCRIBE_CHARS));
        }
        s
    }

    /// An application the ResourceManager no longer knows (it restarted without state
    /// recovery, or dropped the completed application from its memory).
    pub fn forgotten(app_id: &str) -> AppEnd {
        AppEnd {
            exit_code: None,
            reason: "UNKNOWN".into(),
            message: Some(format!(
                "the ResourceManager no longer knows application {app_id} (restarted without \
                 recovery, or it dropped the completed application)"
            )),
        }
    }
}

/// Whether a YARN application state is final.
pub fn is_final(state: &str) -> bool {
    matches!(state, "FINISHED" | "FAILED" | "KILLED")
}

/// Maps an application report to a phase and, once ended, an exit code:
/// - `FINISHED` + `SUCCEEDED` → 0;
/// - `FINISHED` + `FAILED` (the driver failed and Spark's ApplicationMaster said so): the
///   status in `User application exited with status N` (what Spark reports for a Python or
///   R application, and for `System.exit(N)`), else 1 (e.g. `User class threw exception`);
/// - `FINISHED` + `KILLED` → 143; `FINISHED` + `UNDEFINED` → unknown;
/// - `FAILED` (the ApplicationMaster container died on its last attempt without
///   unregistering): the container's `exitCode: N` from the diagnostics when N ≥ 0; YARN's
///   own negative codes (-104 physical memory exceeded, -100 node lost, ...) give no process
///   exit status, so unknown;
/// - `KILLED` → 143.
///
/// An unrecognised state counts as pending: only a state known to be final ends a driver.
pub fn app_phase(state: &str, final_status: &str, diagnostics: &str) -> AppPhase {
    let message = Some(diagnostics.trim().to_string()).filter(|d| !d.is_empty());
    let ended = |exit_code: Option<i32>| {
        AppPhase::Ended(AppEnd {
            exit_code,
            reason: format!(
                "{state}/{}",
                if final_status.is_empty() {
                    "UNDEFINED"
                } else {
                    final_status
                }
            ),
            message: message.clone(),
        })
    };
    match state {
        "RUNNING" => AppPhase::Running,
        "FINISHED" => match final_status {
            "SUCCEEDED" => ended(Some(0)),
            "FAILED" => ended(Some(user_exit_status(diagnostics).unwrap_or(EXIT_FAILED))),
            "KILLED" => ended(Some(EXIT_KILLED)),
            _ => ended(None),
        },
        "FAILED" => ended(container_exit_code(diagnostics).filter(|c| *c >= 0)),
        "KILLED" => ended(Some(EXIT_KILLED)),
        _ => AppPhase::Pending,
    }
}

pub fn phase_of(app: &App) -> AppPhase {
    app_phase(&app.state, &app.final_status, &app.diagnostics)
}

/// `N` in Spark's `User application exited with status N`.
fn user_exit_status(diagnostics: &str) -> Option<i32> {
    number_after(diagnostics, "User application exited with status ")
}

/// The last `exitCode: N` in YARN's diagnostics (the last attempt's AM container).
fn container_exit_code(diagnostics: &str) -> Option<i32> {
    number_after(diagnostics, "exitCode:")
}

/// The number after the last `marker` that has one.
fn number_after(text: &str, marker: &str) -> Option<i32> {
    text.match_indices(marker)
        .filter_map(|(i, m)| parse_int(&text[i + m.len()..]))
        .last()
}

fn parse_int(s: &str) -> Option<i32> {
    let s = s.trim_start();
    let end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    s[..end].parse().ok()
}

/// The tags of an application, as the ResourceManager lists them (comma-separated).
pub fn tags(app: &App) -> Vec<String> {
    app.application_tags
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether the application carries both tags: this Kindling cluster's and the driver's.
pub fn is_driver_app(app: &App, cluster_tag: &str, driver_tag: &str) -> bool {
    let t = tags(app);
    t.iter().any(|x| x == cluster_tag) && t.iter().any(|x| x == driver_tag)
}

/// `(cluster timestamp, sequence number)` of `application_<ts>_<seq>`: the order in which
/// the ResourceManager handed the ids out.
pub fn id_order(app_id: &str) -> (u64, u64) {
    let mut parts = app_id.trim_start_matches("application_").split('_');
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (next(), next())
}

/// Of several applications of one driver (two launches raced), the one that counts: the
/// first the ResourceManager accepted (`startedTime`, then the id). Not the lowest id alone:
/// ids are handed out before submission, so a launch can submit the lower id after another
/// launch already saw its own application alone and kept it. A launch that saw only its own
/// application looked after submitting it, so any application submitted later has a later
/// `startedTime`, and every launcher that sees both picks the same one.
pub fn first_submitted<'a>(apps: impl IntoIterator<Item = &'a App>) -> Option<&'a App> {
    apps.into_iter()
        .min_by_key(|a| (a.started_time, id_order(&a.id)))
}

/// Whether YARN is done aggregating the application's logs (or never will), so the
/// aggregated copy is as complete as it gets.
pub fn aggregation_settled(status: Option<&str>) -> bool {
    !matches!(
        status,
        Some("NOT_START") | Some("RUNNING") | Some("RUNNING_WITH_FAILURE")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(exit_code: Option<i32>, reason: &str) -> AppEnd {
        AppEnd {
            exit_code,
            reason: reason.into(),
            message: None,
        }
    }

    #[test]
    fn states_map_to_phases_and_exit_codes() {
        let cases = [
            ("NEW", "UNDEFINED", "", AppPhase::Pending),
            ("NEW_SAVING", "UNDEFINED", "", AppPhase::Pending),
            ("SUBMITTED", "UNDEFINED", "", AppPhase::Pending),
            ("ACCEPTED", "UNDEFINED", "", AppPhase::Pending),
            ("RUNNING", "UNDEFINED", "", AppPhase::Running),
            (
                "FINISHED",
                "SUCCEEDED",
                "",
                AppPhase::Ended(end(Some(0), "FINISHED/SUCCEEDED")),
            ),
            (
                "FINISHED",
                "UNDEFINED",
                "",
                AppPhase::Ended(end(None, "FINISHED/UNDEFINED")),
            ),
            (
                "FINISHED",
                "KILLED",
                "",
                AppPhase::Ended(end(Some(EXIT_KILLED), "FINISHED/KILLED")),
            ),
            (
                "KILLED",
                "KILLED",
                "",
                AppPhase::Ended(end(Some(EXIT_KILLED), "KILLED/KILLED")),
            ),
            (
                "FAILED",
                "FAILED",
                "",
                AppPhase::Ended(end(None, "FAILED/FAILED")),
            ),
            ("SOMETHING_NEW", "UNDEFINED", "", AppPhase::Pending),
        ];
        for (state, fin, diag, want) in cases {
            assert_eq!(app_phase(state, fin, diag), want, "{state}/{fin}");
        }
    }

    #[test]
    fn exit_codes_come_from_sparks_and_yarns_diagnostics() {
        let exit = |state, fin, diag| match app_phase(state, fin, diag) {
            AppPhase::Ended(e) => e.exit_code,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            exit(
                "FINISHED",
                "FAILED",
                "User application exited with status 3"
            ),
            Some(3)
        );
        assert_eq!(
            exit(
                "FINISHED",
                "FAILED",
                "User class threw exception: java.lang.IllegalStateException: boom\n\tat Main.main"
            ),
            Some(EXIT_FAILED)
        );
        let am_died = "Application application_1700000000000_0004 failed 1 times (global limit =2; \
            local limit is =1) due to AM Container for appattempt_1700000000000_0004_000001 exited \
            with  exitCode: 13\nFailing this attempt.Diagnostics: [2024-11-14 10:02:11.123]Exception \
            from container-launch.\nContainer id: container_1700000000000_0004_01_000001\nExit code: 13";
        assert_eq!(exit("FAILED", "FAILED", am_died), Some(13));
        let oom = "Application application_1700000000000_0005 failed 2 times due to AM Container for \
            appattempt_1700000000000_0005_000002 exited with  exitCode: -104\nFailing this attempt.";
        assert_eq!(exit("FAILED", "FAILED", oom), None);
    }

    #[test]
    fn the_description_is_one_line_with_the_first_line_of_the_diagnostics() {
        let AppPhase::Ended(e) = app_phase(
            "FINISHED",
            "FAILED",
            "\nUser application exited with status 3\nmore detail",
        ) else {
            panic!()
        };
        assert_eq!(
            e.describe(),
            "FINISHED/FAILED (exit code 3): User application exited with status 3"
        );
        assert_eq!(
            e.message.as_deref(),
            Some("User application exited with status 3\nmore detail")
        );
        assert!(AppEnd::forgotten("application_1_2").describe().starts_with(
            "UNKNOWN: the ResourceManager no longer knows application application_1_2"
        ));
    }

    fn app(id: &str, tags: &str) -> App {
        started(id, tags, 0)
    }

    fn started(id: &str, tags: &str, started_time: u64) -> App {
        serde_json::from_value(serde_json::json!({
            "id": id, "state": "RUNNING", "applicationTags": tags, "startedTime": started_time
        }))
        .unwrap()
    }

    #[test]
    fn an_application_is_the_drivers_only_with_both_tags() {
        let a = app(
            "application_1700000000000_0001",
            "kindling-cluster-c1,kindling-driver-kindling-7-1",
        );
        assert!(is_driver_app(
            &a,
            "kindling-cluster-c1",
            "kindling-driver-kindling-7-1"
        ));
        assert!(!is_driver_app(
            &a,
            "kindling-cluster-c2",
            "kindling-driver-kindling-7-1"
        ));
        assert!(!is_driver_app(
            &a,
            "kindling-cluster-c1",
            "kindling-driver-kindling-7-2"
        ));
        let untagged = app("application_1700000000000_0002", "");
        assert!(tags(&untagged).is_empty());
    }

    #[test]
    fn the_first_accepted_application_wins() {
        let apps = [
            app("application_1700000000000_0010", ""),
            app("application_1700000000000_0009", ""),
            app("application_1800000000000_0001", ""),
        ];
        assert_eq!(
            first_submitted(&apps).map(|a| a.id.as_str()),
            Some("application_1700000000000_0009")
        );
        // The lower id was submitted later: the earlier submission wins.
        let apps = [
            started("application_1700000000000_0001", "", 1731578402900),
            started("application_1700000000000_0002", "", 1731578402817),
        ];
        assert_eq!(
            first_submitted(&apps).map(|a| a.id.as_str()),
            Some("application_1700000000000_0002")
        );
        assert!(aggregation_settled(Some("SUCCEEDED")));
        assert!(aggregation_settled(Some("DISABLED")));
        assert!(aggregation_settled(None));
        assert!(!aggregation_settled(Some("RUNNING")));
    }
}
