//! The crate's metrics, declared in one place (names `kindling_raft_<name>_<unit>`): the
//! member's term, leader and log progress from openraft's metrics, leader changes and
//! elections, id blocks and requests sent to the leader.

use crate::cluster::types::RaftMetrics;
use kindling_events::NodeId;

/// Describes the crate's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_gauge!("kindling_raft_term", "The Raft term this member is in.");
    metrics::describe_gauge!(
        "kindling_raft_is_leader",
        "1 while this member leads, else 0."
    );
    metrics::describe_gauge!(
        "kindling_raft_leader_id",
        "The node id of the leader this member knows, 0 if it knows none."
    );
    metrics::describe_gauge!("kindling_raft_members", "Voters in the Raft membership.");
    metrics::describe_gauge!(
        "kindling_raft_last_log_index",
        "The last Raft log index this member holds."
    );
    metrics::describe_gauge!(
        "kindling_raft_applied_index",
        "The last Raft log index this member applied (committed entries only)."
    );
    metrics::describe_counter!(
        "kindling_raft_elections_total",
        "Terms this member has seen begin: each is an election."
    );
    metrics::describe_counter!(
        "kindling_raft_leader_changes_total",
        "Times the leader this member knows changed (including to none)."
    );
    metrics::describe_counter!(
        "kindling_raft_id_blocks_leased_total",
        "Blocks of job ids this member leased from the leader."
    );
    metrics::describe_counter!(
        "kindling_raft_leader_requests_total",
        "Requests this member sent to the leader, by outcome (ok, rejected, no_leader)."
    );
}

/// The member's term and log progress, from openraft's metrics.
pub(crate) fn raft_progress(m: &RaftMetrics) {
    metrics::gauge!("kindling_raft_term").set(m.current_term as f64);
    metrics::gauge!("kindling_raft_last_log_index").set(m.last_log_index.unwrap_or(0) as f64);
    metrics::gauge!("kindling_raft_applied_index")
        .set(m.last_applied.map_or(0, |l| l.index) as f64);
    let voters = m.membership_config.membership().voter_ids().count();
    metrics::gauge!("kindling_raft_members").set(voters as f64);
}

pub(crate) fn election() {
    metrics::counter!("kindling_raft_elections_total").increment(1);
}

pub(crate) fn set_leader_id(leader: Option<NodeId>) {
    metrics::gauge!("kindling_raft_leader_id").set(leader.map_or(0.0, |l| l.0 as f64));
}

pub(crate) fn leader_changed() {
    metrics::counter!("kindling_raft_leader_changes_total").increment(1);
}

pub(crate) fn set_is_leader(is_leader: bool) {
    metrics::gauge!("kindling_raft_is_leader").set(if is_leader { 1.0 } else { 0.0 });
}

pub(crate) fn id_block_leased() {
    metrics::counter!("kindling_raft_id_blocks_leased_total").increment(1);
}

/// `outcome`: `ok`, `rejected` or `no_leader`.
pub(crate) fn leader_request(outcome: &'static str) {
    metrics::counter!("kindling_raft_leader_requests_total", "outcome" => outcome).increment(1);
}
