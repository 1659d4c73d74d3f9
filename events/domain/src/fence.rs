//! The rule every reader of the log applies against deposed leaders. Only the leader decides
//! commands on existing state, and each event it writes carries its Raft term
//! ([`Origin::leader_term`](crate::Origin::leader_term)). A new leader writes a marker of its
//! term before it decides anything, so once an event of term T is in the log, no leader of an
//! older term may still act: an event of an older term that comes after it is a deposed
//! leader's late write (a paused process, a partitioned one, an append delayed on a cut link
//! and delivered when it healed), and takes no effect.
//!
//! With Kafka's transactions the broker already keeps such writes out of what readers see.
//! Without them (`--kafka-transactions false`, or a broker whose transactions cannot be
//! trusted) this rule is the fence: every projection, the scheduler's own follower of the log
//! and the chaos checker apply it, in log order, so they agree on which events count; and a
//! leader that writes without the broker's fence asks, after each append, whether its events
//! came after a newer term (then they did not happen, and it steps down).
//!
//! Events that no leader wrote (new jobs, which any node accepts) are never fenced.

use crate::event::Envelope;
use crate::ids::Term;
use serde::{Deserialize, Serialize};

/// The newest leader term met so far in a pass over the log, in log order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderFence {
    newest: Term,
}

impl LeaderFence {
    /// A fence that has met events up to term `newest`.
    pub fn new(newest: Term) -> Self {
        LeaderFence { newest }
    }

    /// The newest leader term met.
    pub fn newest(&self) -> Term {
        self.newest
    }

    /// Whether `env`, the next event in log order, takes effect. A leader's event of a term at
    /// least the newest met does, and raises the fence to its term; one of an older term does
    /// not; an event no leader wrote always does.
    pub fn admit(&mut self, env: &Envelope) -> bool {
        match env.leader_term() {
            None => true,
            Some(term) if term < self.newest => false,
            Some(term) => {
                self.newest = term;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Aggregate, Event, NewEvent, Origin};
    use crate::ids::{JobId, LogPosition, NodeId};

    fn env(position: u64, aggregate: Aggregate, origin: Origin) -> Envelope {
        Envelope::new(
            LogPosition(position),
            NewEvent {
                aggregate,
                version: 1,
                origin,
                node: NodeId(1),
                actor: None,
                at_ms: 0,
                event: Event::SessionActivity,
            },
        )
    }

    #[test]
    fn a_term_met_on_any_aggregate_fences_older_leaders_everywhere() {
        let mut fence = LeaderFence::default();
        let job = Aggregate::Job(JobId(1));
        let other = Aggregate::Job(JobId(2));
        // The new leader's marker is about no job, yet it fences every job after it.
        assert!(fence.admit(&env(
            0,
            Aggregate::Cluster,
            Origin::Scheduler { term: Term(5) }
        )));
        assert_eq!(fence.newest(), Term(5));
        for origin in [
            Origin::Scheduler { term: Term(4) },
            Origin::ApiDecided { term: Term(4) },
            Origin::DriverDecided { term: Term(4) },
        ] {
            assert!(!fence.admit(&env(1, job, origin)), "{origin:?}");
            assert!(
                !fence.admit(&env(1, Aggregate::Registry, origin)),
                "{origin:?}"
            );
        }
        // The same term and newer ones take effect; a newer one raises the fence.
        assert!(fence.admit(&env(2, other, Origin::ApiDecided { term: Term(5) })));
        assert!(fence.admit(&env(3, job, Origin::DriverDecided { term: Term(6) })));
        assert!(!fence.admit(&env(4, other, Origin::Scheduler { term: Term(5) })));
        assert_eq!(fence.newest(), Term(6));
    }

    #[test]
    fn events_no_leader_wrote_are_never_fenced() {
        let mut fence = LeaderFence::new(Term(9));
        for origin in [Origin::Api, Origin::Driver] {
            assert!(fence.admit(&env(0, Aggregate::Job(JobId(3)), origin)));
        }
        assert_eq!(fence.newest(), Term(9));
    }

    #[test]
    fn origins_decided_by_a_leader_carry_its_term() {
        let t = Term(7);
        assert_eq!(Origin::Api.decided_in(t), Origin::ApiDecided { term: t });
        assert_eq!(
            Origin::Driver.decided_in(t),
            Origin::DriverDecided { term: t }
        );
        let own = Origin::Scheduler { term: Term(6) };
        assert_eq!(
            own.decided_in(t),
            own,
            "the scheduler's events keep their own term"
        );
        assert_eq!(Origin::ApiDecided { term: t }.source(), "api");
        assert_eq!(Origin::DriverDecided { term: t }.leader_term(), Some(t));
        assert_eq!(Origin::Api.leader_term(), None);
    }
}
