//! A member's settings: who it is, where it listens and keeps its state, and the timings of
//! its Raft. Turns them into openraft's `Config`; owns no runtime state.

use crate::cluster::types::MemberAddrs;
use crate::error::{RaftError, Result};
use kindling_events::NodeId;
use openraft::SnapshotPolicy;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub node_id: NodeId,
    /// Where peers and clients reach this member (advertised, not necessarily where it binds).
    pub addrs: MemberAddrs,
    /// The member's sled directory for the Raft log and state machine; nothing else may open it.
    pub dir: PathBuf,
    /// How often the leader reaches every follower.
    pub heartbeat_interval: Duration,
    /// Each member draws its election timeout `t` from `[min, max)` once, at start. openraft
    /// 0.9 adds its leader lease (`max`) to it: a follower calls an election `max + t` after
    /// the last heartbeat it got (checked every 1.5 heartbeats), and refuses to vote for anyone
    /// within `max` of it. So failover takes about `max + min ..= max + max + 1.5 heartbeats`;
    /// the defaults (50 ms, 200-400 ms) give 0.6-0.9 s. `max` is also how long a leader counts
    /// itself as leading after a quorum last acknowledged it (`LeaderState::is_leader`).
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Job ids leased per Raft write. Larger blocks mean fewer writes and more ids skipped
    /// when a member stops with part of its block unused.
    pub id_block_size: u64,
    /// How long a request that needs the leader (lease, floor, membership change) looks for
    /// one before it fails with a retryable error.
    pub leader_request_timeout: Duration,
    /// How long a joining member may take to receive the log before it is promoted.
    pub catch_up_timeout: Duration,
    /// Dialing a peer gives up after this.
    pub connect_timeout: Duration,
    /// A snapshot is taken once this many entries were applied since the last one; the log
    /// before it is then purged, except the last `logs_kept_after_snapshot` entries (a
    /// follower that lags less than that catches up from the log, not from a snapshot).
    pub snapshot_every: u64,
    pub logs_kept_after_snapshot: u64,
}

impl ClusterConfig {
    /// Defaults tuned for sub-second failover on a LAN.
    pub fn new(node_id: NodeId, addrs: MemberAddrs, dir: impl Into<PathBuf>) -> Self {
        ClusterConfig {
            node_id,
            addrs,
            dir: dir.into(),
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(200),
            election_timeout_max: Duration::from_millis(400),
            id_block_size: 100,
            leader_request_timeout: Duration::from_secs(5),
            catch_up_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(1),
            snapshot_every: 1000,
            logs_kept_after_snapshot: 100,
        }
    }

    pub(crate) fn openraft(&self) -> Result<openraft::Config> {
        let invalid = |m: String| RaftError::Config(m);
        if self.id_block_size == 0 {
            return Err(invalid("id_block_size must be at least 1".into()));
        }
        let ms = |d: Duration| d.as_millis() as u64;
        openraft::Config {
            cluster_name: "kindling".into(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every.max(1)),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| invalid(e.to_string()))
    }
}
