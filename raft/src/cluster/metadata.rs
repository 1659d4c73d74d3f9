//! The replicated metadata itself, as a pure value: the job-id space. Applying a [`Command`] is
//! a deterministic function of the state and the command, so every member that applies the
//! same log reaches the same state and a leader's answer is the one every member would give.
//! No I/O here: the sled state machine persists this value, Raft orders the commands.

use crate::cluster::types::{ClusterIdentity, Command, CommandResponse};
use serde::{Deserialize, Serialize};

/// What the state machine holds besides openraft's membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The first job id not yet leased to anyone. Only ever grows.
    next_id: u64,
    /// Set by the first `ProposeIdentity`, never changed after.
    identity: Option<ClusterIdentity>,
}

impl Metadata {
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    #[cfg(test)]
    pub fn identity(&self) -> Option<&ClusterIdentity> {
        self.identity.as_ref()
    }

    pub fn apply(&mut self, cmd: &Command) -> CommandResponse {
        match *cmd {
            Command::ProposeIdentity(ref proposed) => {
                let identity = self.identity.get_or_insert_with(|| proposed.clone());
                CommandResponse::Identity(identity.clone())
            }
            Command::LeaseIdBlock { size, .. } => {
                let start = self.next_id;
                // Saturating: an exhausted space answers an empty block instead of wrapping
                // around to ids already handed out.
                let end = start.saturating_add(size);
                self.next_id = end;
                CommandResponse::IdBlock { start, end }
            }
            Command::EnsureFloor(floor) => {
                self.next_id = self.next_id.max(floor);
                CommandResponse::NextId(self.next_id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(m: &mut Metadata, size: u64) -> (u64, u64) {
        match m.apply(&Command::LeaseIdBlock { node: 1, size }) {
            CommandResponse::IdBlock { start, end } => (start, end),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn blocks_are_disjoint_and_increasing_whatever_the_interleaving_of_floors() {
        // A fixed pseudo-random sequence of leases and floors (the domain takes no RNG).
        let mut m = Metadata::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut last_end = 0;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(5) {
                let floor = x % 2_000_000;
                let before = m.next_id();
                m.apply(&Command::EnsureFloor(floor));
                assert_eq!(m.next_id(), before.max(floor), "floor only raises");
            } else {
                let (start, end) = lease(&mut m, 1 + x % 300);
                assert!(
                    start >= last_end,
                    "block [{start},{end}) overlaps one before it"
                );
                assert!(end > start);
                last_end = end;
            }
        }
    }

    #[test]
    fn floor_below_next_id_changes_nothing() {
        let mut m = Metadata::default();
        lease(&mut m, 100);
        assert_eq!(
            m.apply(&Command::EnsureFloor(50)),
            CommandResponse::NextId(100)
        );
        assert_eq!(lease(&mut m, 10), (100, 110));
        assert_eq!(
            m.apply(&Command::EnsureFloor(5000)),
            CommandResponse::NextId(5000)
        );
        assert_eq!(lease(&mut m, 10), (5000, 5010));
    }

    #[test]
    fn the_first_identity_proposed_wins() {
        let mut m = Metadata::default();
        let a = ClusterIdentity {
            cluster_id: "a".into(),
            key: vec![1; 32],
            term_base: 3,
        };
        let b = ClusterIdentity {
            cluster_id: "b".into(),
            key: vec![2; 32],
            term_base: 0,
        };
        assert_eq!(
            m.apply(&Command::ProposeIdentity(a.clone())),
            CommandResponse::Identity(a.clone())
        );
        assert_eq!(
            m.apply(&Command::ProposeIdentity(b)),
            CommandResponse::Identity(a.clone())
        );
        assert_eq!(m.identity(), Some(&a));
    }

    #[test]
    fn exhausted_space_answers_empty_blocks_instead_of_wrapping() {
        let mut m = Metadata::default();
        m.apply(&Command::EnsureFloor(u64::MAX - 5));
        assert_eq!(lease(&mut m, 100), (u64::MAX - 5, u64::MAX));
        assert_eq!(lease(&mut m, 100), (u64::MAX, u64::MAX));
    }
}
