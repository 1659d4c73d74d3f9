//! The crate's metrics, declared in one place (names `kindling_raft_<name>_<unit>`).

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
