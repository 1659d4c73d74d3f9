//! Where in the log each newer leader term first appeared, as this node's projector has read
//! it. A leader that writes without the broker's fence (`--kafka-transactions false`) asks it,
//! once its projector has read past its own append, whether an event of a newer term came
//! before: then every reader ignores the append ([`LeaderFence`]), it did not happen, and the
//! node is no longer the leader whatever Raft has told it so far.
//!
//! Fed by the projector only; read by `Core`. It holds positions and terms, never events.

use kindling_events::{Envelope, LeaderFence, LogPosition, Term};
use parking_lot::Mutex;
use std::collections::VecDeque;

/// Rises kept. Terms change a few times a minute at worst (the chaos runs: about 1,000 an
/// hour), and a question is only ever about the last moments of the log.
const KEPT: usize = 1024;

#[derive(Default)]
pub struct LeaderTerms {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    fence: LeaderFence,
    /// The next position not yet observed.
    next: LogPosition,
    /// Where the fence rose, in log order: (position, the term it rose to).
    rises: VecDeque<(LogPosition, Term)>,
}

impl LeaderTerms {
    /// Starts from the fence the projections reached, for the log before `next`: a replay
    /// applies events without showing them one by one.
    pub fn seed(&self, fence: LeaderFence, next: LogPosition) {
        let mut inner = self.inner.lock();
        if next <= inner.next {
            return;
        }
        inner.next = next;
        if fence.newest() > inner.fence.newest() {
            inner.fence = fence;
            // Somewhere before `next`: the position of the first event is as early as any.
            inner.rises.push_back((LogPosition(0), fence.newest()));
            trim(&mut inner.rises);
        }
    }

    /// Notes the terms of `batch`, consecutive events in log order; events already observed
    /// are skipped.
    pub fn observe(&self, batch: &[Envelope]) {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        for env in batch {
            if env.position < inner.next {
                continue;
            }
            let before = inner.fence.newest();
            inner.fence.admit(env);
            let now = inner.fence.newest();
            if now > before {
                inner.rises.push_back((env.position, now));
            }
            inner.next = env.position.next();
        }
        trim(&mut inner.rises);
    }

    /// The first event of a newer term than `term` before `position`, if one was observed:
    /// its term and position.
    pub fn newer_before(&self, term: Term, position: LogPosition) -> Option<(Term, LogPosition)> {
        let inner = self.inner.lock();
        inner
            .rises
            .iter()
            .find(|(_, t)| *t > term)
            .filter(|(at, _)| *at < position)
            .map(|(at, t)| (*t, *at))
    }
}

fn trim(rises: &mut VecDeque<(LogPosition, Term)>) {
    while rises.len() > KEPT {
        // The oldest rise goes, but its term lives on in the next one (terms only rise), so
        // a question about an older term still finds a newer term before any recent position.
        rises.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_events::{Aggregate, Event, JobId, NewEvent, NodeId, Origin};

    fn env(position: u64, origin: Origin) -> Envelope {
        Envelope::new(
            LogPosition(position),
            NewEvent {
                aggregate: Aggregate::Job(JobId(1)),
                version: 1,
                origin,
                node: NodeId(1),
                actor: None,
                at_ms: 0,
                event: Event::SessionActivity,
            },
        )
    }

    fn sched(term: u64) -> Origin {
        Origin::Scheduler { term: Term(term) }
    }

    #[test]
    fn a_newer_term_before_a_write_is_found_and_one_after_it_is_not() {
        let terms = LeaderTerms::default();
        terms.observe(&[env(0, Origin::Api), env(1, sched(3)), env(2, sched(3))]);
        // Leader 4's marker at 5; leader 3's late write at 6; leader 3's good write at 2.
        terms.observe(&[env(4, Origin::Api), env(5, sched(4)), env(6, sched(3))]);
        assert_eq!(
            terms.newer_before(Term(3), LogPosition(6)),
            Some((Term(4), LogPosition(5)))
        );
        assert_eq!(terms.newer_before(Term(3), LogPosition(2)), None);
        assert_eq!(terms.newer_before(Term(3), LogPosition(5)), None);
        assert_eq!(terms.newer_before(Term(4), LogPosition(7)), None);
        // A late write does not lower anything, and observing again changes nothing.
        terms.observe(&[env(5, sched(9)), env(6, sched(9))]);
        assert_eq!(terms.newer_before(Term(4), LogPosition(100)), None);
    }

    #[test]
    fn a_seed_covers_what_the_replay_applied() {
        let terms = LeaderTerms::default();
        terms.seed(LeaderFence::new(Term(7)), LogPosition(50));
        assert_eq!(
            terms.newer_before(Term(6), LogPosition(50)),
            Some((Term(7), LogPosition(0)))
        );
        assert_eq!(terms.newer_before(Term(7), LogPosition(60)), None);
        // Events before the seed's end were applied already: not observed twice.
        terms.observe(&[env(49, sched(9))]);
        assert_eq!(terms.newer_before(Term(7), LogPosition(60)), None);
        terms.observe(&[env(50, sched(8))]);
        assert_eq!(
            terms.newer_before(Term(7), LogPosition(60)),
            Some((Term(8), LogPosition(50)))
        );
    }

    #[test]
    fn old_rises_give_way_but_an_old_term_still_meets_a_newer_one() {
        let terms = LeaderTerms::default();
        let batch: Vec<Envelope> = (0..KEPT as u64 + 10)
            .map(|i| env(i, sched(i + 1)))
            .collect();
        terms.observe(&batch);
        assert_eq!(
            terms.newer_before(Term(1), LogPosition(KEPT as u64 + 10)),
            Some((Term(11), LogPosition(10))),
            "the oldest rise kept"
        );
    }
}
