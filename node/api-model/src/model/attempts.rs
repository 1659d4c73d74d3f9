//! A job's driver attempts in the native API: the restart policy it runs under, and how each
//! retried attempt ended.

use kindling_events::job::AttemptEnd;
use kindling_events::{Outcome, RestartPolicy};
use serde::Serialize;
use utoipa::ToSchema;

/// The restart policy a batch runs under (from its `conf["kindling.restart.*"]`, or its
/// cluster's when it sets none).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestartPolicyDoc {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each later one.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Only these exit codes (or `onReasons`) count as failures to retry; both empty: any.
    pub on_exit_codes: Vec<i32>,
    pub on_reasons: Vec<String>,
}

impl From<RestartPolicy> for RestartPolicyDoc {
    fn from(p: RestartPolicy) -> Self {
        RestartPolicyDoc {
            max_attempts: p.max_attempts,
            backoff_ms: p.backoff_ms,
            max_backoff_ms: p.max_backoff_ms,
            on_exit_codes: p.exit_codes,
            on_reasons: p.reasons,
        }
    }
}

/// How one attempt that was retried ended.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptDoc {
    pub attempt: u32,
    pub driver_name: Option<String>,
    pub app_id: Option<String>,
    pub started_at: Option<i64>,
    pub ended_at: i64,
    /// `failed` (the driver ended badly) or `error` (it never came up).
    pub outcome: String,
    pub reason: String,
    pub exit_code: Option<i32>,
}

impl From<&AttemptEnd> for AttemptDoc {
    fn from(a: &AttemptEnd) -> Self {
        let (outcome, reason) = match &a.outcome {
            Outcome::Succeeded => ("succeeded", String::new()),
            Outcome::Failed { reason } => ("failed", reason.clone()),
            Outcome::Killed { reason } => ("killed", reason.clone()),
            Outcome::Error { reason } => ("error", reason.clone()),
        };
        AttemptDoc {
            attempt: a.attempt.0,
            driver_name: a.driver_name.clone(),
            app_id: a.app_id.clone(),
            started_at: a.started_at_ms,
            ended_at: a.ended_at_ms,
            outcome: outcome.into(),
            reason,
            exit_code: a.exit_code,
        }
    }
}
