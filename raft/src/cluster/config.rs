//! A member's settings: who it is, where it listens and keeps its state, and the timings of
//! its Raft. Turns them into openraft's `Config`; owns no runtime state.

use crate::cluster::secret::ClusterSecret;
use crate::cluster::types::MemberAddrs;
use crate::error::{RaftError, Result};
use kindling_events::NodeId;
use openraft::SnapshotPolicy;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// The window of election timeouts. openraft 0.9 draws a member's election timeout `t`
    /// once, at start, and adds its leader lease (the member's max) to it: a follower calls
    /// an election `max + t` after the last heartbeat it got (checked every 1.5 heartbeats),
    /// and refuses to vote for anyone within its max of it.
    ///
    /// Drawn once, two members' timeouts can stay within a round trip of each other for as
    /// long as both run: after every leader loss both call an election at once, each votes for
    /// itself, neither wins, and the next round comes a whole timeout later (measured: 1.3 to
    /// 2.1 s failovers whenever the same two survived). So each member gets its own slot of
    /// the window by id (see [`ClusterConfig::election_slot`]) and draws only within the
    /// first half of it: members in different slots never tie, and the lower slot wins.
    /// Failover takes about `2 * t`, 0.4-0.8 s with the defaults (50 ms, 200-400 ms). The
    /// member's max is also how long a leader counts itself as leading after a quorum last
    /// acknowledged it (`LeaderState::is_leader`).
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
    /// The secret members prove to each other on every RPC; `None` trusts whoever reaches
    /// the Raft port (a loopback-only or private network).
    pub secret: Option<Arc<ClusterSecret>>,
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
            secret: None,
        }
    }

    pub(crate) fn openraft(&self) -> Result<openraft::Config> {
        let invalid = |m: String| RaftError::Config(m);
        if self.id_block_size == 0 {
            return Err(invalid("id_block_size must be at least 1".into()));
        }
        let ms = |d: Duration| d.as_millis() as u64;
        let (min, max) = self.election_slot();
        openraft::Config {
            cluster_name: "kindling".into(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(min),
            election_timeout_max: ms(max),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every.max(1)),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| invalid(e.to_string()))
    }

    /// This member's election timeouts: the window `[min, max)` cut into `SLOTS` slots, the
    /// member's by `(id - 1) % SLOTS`, and only the first half of that slot drawn from, so
    /// the draws of members in different slots stay half a slot apart (20 ms with the
    /// defaults, far more than a round trip on a LAN). Members `SLOTS` ids apart share a slot
    /// and draw at random within it as before. A window too narrow to cut is used whole.
    pub fn election_slot(&self) -> (Duration, Duration) {
        const SLOTS: u32 = 5;
        let (min, max) = (self.election_timeout_min, self.election_timeout_max);
        let width = max.saturating_sub(min) / SLOTS;
        if width < Duration::from_millis(2) {
            return (min, max);
        }
        let slot = (self.node_id.0.saturating_sub(1) % u64::from(SLOTS)) as u32;
        let low = min + width * slot;
        (low, low + width / 2)
    }
}

#[cfg(test)]
mod election_slots {
    use super::*;

    fn slot(id: u64) -> (u64, u64) {
        let addrs = MemberAddrs {
            raft_addr: "127.0.0.1:1".into(),
            http_addr: "127.0.0.1:2".into(),
            driver_addr: "127.0.0.1:3".into(),
        };
        let (min, max) = ClusterConfig::new(NodeId(id), addrs, "/x").election_slot();
        (min.as_millis() as u64, max.as_millis() as u64)
    }

    #[test]
    fn members_draw_from_disjoint_slots_half_a_slot_apart() {
        assert_eq!(slot(1), (200, 220));
        assert_eq!(slot(2), (240, 260));
        assert_eq!(slot(3), (280, 300));
        assert_eq!(slot(5), (360, 380));
        assert_eq!(slot(6), slot(1), "ids five apart share a slot");
        for a in 1..=5 {
            for b in (a + 1)..=5 {
                let (lo, hi) = (slot(a), slot(b));
                assert!(
                    lo.1 + 20 <= hi.0,
                    "slots of {a} and {b} overlap: {lo:?} {hi:?}"
                );
            }
        }
    }

    #[test]
    fn every_slot_is_a_window_openraft_accepts() {
        for id in 1..=7 {
            let addrs = MemberAddrs {
                raft_addr: "127.0.0.1:1".into(),
                http_addr: "127.0.0.1:2".into(),
                driver_addr: "127.0.0.1:3".into(),
            };
            let c = ClusterConfig::new(NodeId(id), addrs, "/x");
            let o = c.openraft().unwrap();
            assert!(o.election_timeout_min < o.election_timeout_max);
            assert!(o.heartbeat_interval < o.election_timeout_min);
        }
    }
}
