//! The node and its cluster: health, the Raft membership (and removing a member),
//! Prometheus metrics.

use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::State;
use axum::extract::{Path, RawQuery};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::model::*;
use kindling_core::{Error, ErrorCode};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: String,
    pub node: u64,
    /// Next log position to be written.
    pub log_end: u64,
    /// Next log position the projections will apply.
    pub projected: u64,
    pub drivers_connected: usize,
}

#[utoipa::path(get, path = "/api/v1/health", tag = "native", responses((status = 200, body = Health)))]
pub async fn health(axum::extract::State(s): State) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        node: s.core.node.0,
        log_end: s.core.reads().log_end().0,
        projected: s.core.projected().borrow().0,
        drivers_connected: s.gateway.connected(),
    })
}

/// Whether this node should be sent traffic: its projections have caught up with the log
/// and it knows a leader.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ready {
    pub ready: bool,
    pub node: u64,
    /// The leader this node knows, if any.
    pub leader: Option<u64>,
    /// Next log position the projections will apply.
    pub projected: u64,
    /// Next log position to be written, as this node knows it.
    pub log_end: u64,
    /// Why the node is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How long readiness waits for the projections to reach the log's end.
const READY_CATCH_UP: Duration = Duration::from_secs(2);

/// For load balancers and Kubernetes: 200 once the projections reach the log's end (within
/// 2 s of asking) and a leader is known, else 503 saying why. Unauthenticated, like health.
#[utoipa::path(get, path = "/api/v1/ready", tag = "native", responses(
    (status = 200, body = Ready, description = "Caught up and a leader is known"),
    (status = 503, body = Ready, description = "Not ready; `reason` says why")))]
pub async fn ready(axum::extract::State(s): State) -> axum::response::Response {
    let end = s.core.reads().log_end();
    let caught_up = s.core.await_projected(end, READY_CATCH_UP).await;
    let leader = s.cluster.cluster_view().leader_member().map(|m| m.id.0);
    let reason = match (caught_up, leader) {
        (false, _) => Some(format!(
            "the projections have not reached the log's end ({}) within {} s",
            end.0,
            READY_CATCH_UP.as_secs()
        )),
        (true, None) => Some("no leader is known: the cluster is electing one".to_string()),
        (true, Some(_)) => None,
    };
    let status = if reason.is_none() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Ready {
        ready: reason.is_none(),
        node: s.core.node.0,
        leader,
        projected: s.core.projected().borrow().0,
        log_end: end.0,
        reason,
    };
    (status, Json(body)).into_response()
}

/// A member of the cluster, from the Raft membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub id: u64,
    /// The member's REST address (`host:port`).
    pub http_addr: String,
    /// The member's Raft address, as its peers dial it.
    pub raft_addr: String,
    /// The member's driver gateway, as session drivers dial it.
    pub driver_addr: String,
    /// Voters elect and commit; a joining member is a learner until it has caught up.
    pub voter: bool,
    pub leader: bool,
    /// The last Raft log index known to be on the member (the leader knows it for all).
    pub matched_index: Option<u64>,
    /// The member's own health, asked of it (with `?health=true` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<MemberHealth>,
}

/// A member's answer to `GET /api/v1/health`, or why there was none.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberHealth {
    pub reachable: bool,
    /// Next event log position, as the member knows it.
    pub log_end: Option<u64>,
    /// Next log position the member's projections will apply.
    pub projected: Option<u64>,
    /// Why the member did not answer.
    pub error: Option<String>,
}

/// How long the answering node waits for each member's health.
const MEMBER_HEALTH_WAIT: Duration = Duration::from_secs(2);

impl MemberHealth {
    fn of(answer: Result<serde_json::Value, String>) -> MemberHealth {
        match answer {
            Ok(h) => MemberHealth {
                reachable: true,
                log_end: h["logEnd"].as_u64(),
                projected: h["projected"].as_u64(),
                error: None,
            },
            Err(e) => MemberHealth {
                reachable: false,
                log_end: None,
                projected: None,
                error: Some(e),
            },
        }
    }
}

/// Who leads, in which term, and the members.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterInfo {
    /// The member that answered.
    pub node_id: u64,
    /// The Raft term, as it fences scheduler events.
    pub term: u64,
    pub leader_id: Option<u64>,
    /// Whether the answering member schedules now (it leads and has caught up).
    pub scheduling: bool,
    pub members: Vec<Member>,
    /// Next event log position, as this node knows it.
    pub log_end: u64,
    /// Next log position this node's projections will apply.
    pub projected: u64,
}

#[utoipa::path(get, path = "/api/v1/cluster", tag = "native",
    params(("health" = Option<bool>, Query, description = "also ask every member for its health (log end, projections), in parallel, waiting at most 2 s each")),
    responses((status = 200, body = ClusterInfo), (status = 400, body = ErrorBody)))]
pub async fn cluster(
    axum::extract::State(s): State,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<ClusterInfo>> {
    let p = Params::from_query(q.as_deref())?;
    let with_health = p.flag("health", false)?;
    let view = s.cluster.cluster_view();
    let leader = *s.core.leadership().borrow();
    let (log_end, projected) = (s.core.reads().log_end().0, s.core.projected().borrow().0);
    let healths = view.members.iter().map(|m| {
        let s = s.clone();
        let (me, addr) = (m.id == view.node_id, m.http_addr.clone());
        async move {
            match (with_health, me) {
                (false, _) => None,
                (true, true) => Some(MemberHealth {
                    reachable: true,
                    log_end: Some(log_end),
                    projected: Some(projected),
                    error: None,
                }),
                (true, false) => Some(MemberHealth::of(
                    s.forwarder
                        .peer_get(&addr, "/api/v1/health", MEMBER_HEALTH_WAIT)
                        .await,
                )),
            }
        }
    });
    let healths = futures::future::join_all(healths).await;
    Ok(Json(ClusterInfo {
        node_id: view.node_id.0,
        term: leader.term.0,
        leader_id: view.leader.map(|l| l.0),
        scheduling: s.core.leading_term().is_some(),
        members: view
            .members
            .iter()
            .zip(healths)
            .map(|(m, health)| Member {
                id: m.id.0,
                http_addr: m.http_addr.clone(),
                raft_addr: m.raft_addr.clone(),
                driver_addr: m.driver_addr.clone(),
                voter: m.voter,
                leader: m.leader,
                matched_index: m.matched_index,
                health,
            })
            .collect(),
        log_end,
        projected,
    }))
}

#[utoipa::path(delete, path = "/api/v1/cluster/members/{id}", tag = "native",
    params(("id" = u64, Path, description = "the member's node id")),
    responses((status = 200, body = Msg)))]
pub async fn remove_member(
    axum::extract::State(s): State,
    Path(raw): Path<String>,
) -> ApiResult<Json<Msg>> {
    let Ok(id) = raw.parse::<u64>() else {
        return Err(ApiError::not_found("Member", &raw));
    };
    let view = s.cluster.cluster_view();
    if !view.members.iter().any(|m| m.id.0 == id) {
        return Err(ApiError::not_found("Member", &raw));
    }
    if view.members.len() == 1 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "cannot remove the only member of the cluster",
        ));
    }
    s.cluster
        .remove_member(kindling_events::NodeId(id))
        .await
        .map_err(|e| {
            if e.is_retryable() {
                ApiError::from(Error::Unavailable(format!(
                    "cannot remove member {id} now: {e}; retry"
                )))
            } else {
                ApiError::new(
                    ErrorCode::Conflict,
                    format!("cannot remove member {id}: {e}"),
                )
            }
        })?;
    Ok(Json(Msg {
        msg: format!("member {id} removed; stop its process"),
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "native",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(axum::extract::State(s): State) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}
