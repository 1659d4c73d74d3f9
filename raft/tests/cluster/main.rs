//! The HA cluster with real members: each test starts in-process members that talk over real
//! loopback gRPC sockets (bound to port 0), keep their state in real sled directories, and are
//! stopped and restarted like processes would be. Waits watch observable state (leadership
//! watches, openraft metrics) against deadlines; nothing sleeps to synchronise.

mod harness;
mod secret;

use harness::{
    agreed_leader, init_tracing, insert_all_distinct, lease_concurrently, Cluster, DEADLINE,
};
use kindling_events::{JobId, NodeId, Term};
use kindling_raft::{ClusterConfig, LeaderState, Leadership};
use openraft::storage::RaftLogStorage;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

fn fast(_: &mut ClusterConfig) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_elect_one_leader_and_every_watch_agrees() {
    init_tracing();
    let c = Cluster::form(fast, 3).await;
    let st = c.agreed_leader().await;
    assert!(st.term >= Term(1));
    let leaders: Vec<_> = c
        .live
        .values()
        .filter(|m| m.watch().borrow().is_leader)
        .map(|m| m.node_id())
        .collect();
    assert_eq!(
        leaders,
        vec![st.leader.unwrap()],
        "exactly one member leads"
    );

    for m in c.live.values() {
        let view = m.cluster_view();
        assert_eq!(view.leader, st.leader);
        let ids: Vec<_> = view
            .members
            .iter()
            .filter(|v| v.voter)
            .map(|v| v.id.0)
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
        for v in &view.members {
            assert_eq!(v.raft_addr, c.addrs[&v.id.0].to_string());
            assert_eq!(v.http_addr, format!("127.0.0.1:{}", 8990 + v.id.0));
        }
    }
    println!("leader {} in term {}", st.leader.unwrap(), st.term);

    // A floor raised through a follower (forwarded to the leader) binds every member.
    let follower = (1..=3).find(|id| Some(NodeId(*id)) != st.leader).unwrap();
    c.member(follower)
        .ensure_id_floor(JobId(10_000))
        .await
        .unwrap();
    let all: Vec<_> = c.live.values().cloned().collect();
    let ids = lease_concurrently(&all, 5).await;
    assert!(
        ids.iter().all(|id| *id >= 10_000),
        "ids below the floor: {ids:?}"
    );
    for id in [1, 2, 3] {
        c.member(id).shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_leased_concurrently_never_repeat_across_members_and_failover() {
    init_tracing();
    let mut c = Cluster::form(fast, 3).await;
    let before = c.agreed_leader().await;
    let old = before.leader.unwrap();
    let mut seen = BTreeSet::new();

    let all: Vec<_> = c.live.values().cloned().collect();
    let ids = lease_concurrently(&all, 500).await;
    assert_eq!(ids.len(), 1500);
    insert_all_distinct(&mut seen, &ids);

    // Stop the leader like a crashed process: its Raft and its server go away.
    let stopping = Instant::now();
    c.stop(old.0).await;
    let stopped_in = stopping.elapsed();
    let survivors: Vec<_> = c.live.values().cloned().collect();
    let new = agreed_leader(&survivors, before.term).await;
    let failover = stopping.elapsed();
    assert_ne!(new.leader, Some(old), "a stopped member cannot lead");
    println!(
        "failover: member {} stopped in {stopped_in:?}; member {} leads term {} {failover:?} after the stop began",
        old,
        new.leader.unwrap(),
        new.term
    );

    let ids = lease_concurrently(&survivors, 300).await;
    insert_all_distinct(&mut seen, &ids);
    assert_eq!(seen.len(), 2100);

    // The old leader comes back. openraft restores it as leader of its old term at once, but
    // no quorum acknowledges that term any more: its watch must never say it leads, and it
    // ends up following the new leader.
    let back = c.start(old.0).await;
    let mut rx = back.watch();
    let mut states = vec![*rx.borrow_and_update()];
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !(rx.borrow().leader == new.leader && rx.borrow().term >= new.term) {
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .expect("the old leader did not follow the new one in time")
            .unwrap();
        states.push(*rx.borrow_and_update());
    }
    assert!(
        states.iter().all(|s| !s.is_leader),
        "the restarted old leader claimed leadership: {states:?}"
    );
    insert_all_distinct(&mut seen, &lease_concurrently(&[back], 200).await);
    for id in c.live.keys().copied().collect::<Vec<_>>() {
        c.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_never_elected_again() {
    init_tracing();
    let mut c = Cluster::form(fast, 4).await;
    let before = c.agreed_leader().await;
    let leader = before.leader.unwrap().0;
    // The member to remove, and a follower to ask (it forwards the removal to the leader).
    let removed = if leader == 4 { 3 } else { 4 };
    let asker = (1..=4).find(|id| *id != leader && *id != removed).unwrap();
    c.member(asker)
        .remove_member(NodeId(removed))
        .await
        .unwrap();
    let rest: BTreeSet<u64> = (1..=4).filter(|id| *id != removed).collect();
    for id in &rest {
        c.member(*id)
            .raft()
            .wait(Some(DEADLINE))
            .voter_ids(rest.clone(), "removal committed everywhere")
            .await
            .unwrap();
    }

    // Every leadership change any member observes from now on, the removed one included.
    let history = Arc::new(Mutex::new(Vec::<(u64, LeaderState)>::new()));
    let mut recorders = Vec::new();
    for (id, m) in &c.live {
        let (id, mut rx, history) = (*id, m.watch(), history.clone());
        recorders.push(tokio::spawn(async move {
            loop {
                history.lock().unwrap().push((id, *rx.borrow_and_update()));
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }));
    }

    // Kill the leader. While no one leads (no leader lease protects the survivors' votes),
    // the removed member's election timer fires like everyone's, and we make it campaign too.
    let term_at_removal = c.member(removed).raft().metrics().borrow().current_term;
    c.stop(leader).await;
    let _ = c.member(removed).raft().trigger().elect().await;
    let survivors: Vec<_> = rest
        .iter()
        .filter(|id| **id != leader)
        .map(|id| c.member(*id).clone())
        .collect();
    let new = agreed_leader(&survivors, before.term).await;
    let new_leader = new.leader.unwrap().0;
    assert_ne!(new_leader, removed);
    assert_ne!(new_leader, leader);
    // The new leader can still commit (so it still leads) after the removed member campaigned.
    let _ = c.member(removed).raft().trigger().elect().await;
    lease_concurrently(&survivors, 10).await;
    assert_eq!(agreed_leader(&survivors, Term(0)).await.leader, new.leader);

    for r in &recorders {
        r.abort();
    }
    for (who, st) in history.lock().unwrap().iter() {
        assert_ne!(
            st.leader,
            Some(NodeId(removed)),
            "member {who} saw the removed member lead: {st:?}"
        );
        if *who == removed {
            assert!(!st.is_leader, "the removed member believed it led: {st:?}");
        }
    }
    let m = c.member(removed).raft().metrics().borrow().clone();
    println!(
        "removed member {removed}: term {} at removal, term {} now, state {:?}; member {new_leader} leads term {}",
        term_at_removal, m.current_term, m.state, new.term
    );
    for id in c.live.keys().copied().collect::<Vec<_>>() {
        c.stop(id).await;
    }
}

/// Snapshots after every few entries and keeps no log behind them, so a member that was down
/// while the others moved on can only catch up from a snapshot sent over the link.
fn snapshot_often(c: &mut ClusterConfig) {
    c.snapshot_every = 5;
    c.logs_kept_after_snapshot = 0;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_rejoins_with_its_log_and_ids_survive_restarts() {
    init_tracing();
    let mut c = Cluster::form(snapshot_often, 3).await;
    let leader = c.agreed_leader().await.leader.unwrap().0;
    let mut seen = BTreeSet::new();
    let all: Vec<_> = c.live.values().cloned().collect();
    insert_all_distinct(&mut seen, &lease_concurrently(&all, 150).await);

    // Stop a follower (holding part of an id block), move the others on without it.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    c.stop(follower).await;
    // What it has on disk, read offline: nothing else holds the directory now.
    let had = {
        let (mut log, _) = kindling_raft::open_storage(&c.dirs[&follower]).unwrap();
        let state = log.get_log_state().await.unwrap();
        state
            .last_log_id
            .expect("the stopped member has a log")
            .index
    };
    let others: Vec<_> = c.live.values().cloned().collect();
    insert_all_distinct(&mut seen, &lease_concurrently(&others, 1000).await);
    let m = c
        .member(leader)
        .raft()
        .wait(Some(DEADLINE))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index > had),
            "leader purged past the stopped member's log",
        )
        .await
        .unwrap();
    let target = m.last_log_index.unwrap();

    // Restart it on its own directory and port: it starts from its own log, is still a voter
    // (so a node's `join` on every start is a no-op), and catches up from a snapshot.
    let back = c.start(follower).await;
    let first = back
        .raft()
        .wait(Some(DEADLINE))
        .metrics(
            |m| m.last_log_index.is_some(),
            "restarted member loaded its state",
        )
        .await
        .unwrap();
    assert!(
        first.last_log_index.unwrap() >= had,
        "restarted member lost its log"
    );
    back.join(&c.seeds()).await.unwrap();
    let caught_up = back
        .raft()
        .wait(Some(DEADLINE))
        .metrics(
            |m| m.last_applied.is_some_and(|a| a.index >= target),
            "restarted member caught up",
        )
        .await
        .unwrap();
    println!(
        "member {follower} restarted with its log up to {had}, caught up to {target} (snapshot: {:?})",
        caught_up.snapshot
    );
    assert!(
        caught_up.snapshot.is_some_and(|s| s.index > had),
        "it caught up through a snapshot"
    );
    c.agreed_leader().await;
    insert_all_distinct(&mut seen, &lease_concurrently(&[back], 300).await);

    // The whole cluster stops and starts again from its directories: the ids go on above
    // every id handed out before.
    for id in [1, 2, 3] {
        c.stop(id).await;
    }
    for id in [1, 2, 3] {
        c.start(id).await;
    }
    let st = c.agreed_leader().await;
    println!(
        "after a full restart member {} leads term {}",
        st.leader.unwrap(),
        st.term
    );
    let all: Vec<_> = c.live.values().cloned().collect();
    let ids = lease_concurrently(&all, 100).await;
    let max_before = *seen.iter().max().unwrap();
    assert!(
        ids.iter().all(|id| *id > max_before),
        "ids after a restart go on above {max_before}"
    );
    insert_all_distinct(&mut seen, &ids);
    for id in [1, 2, 3] {
        c.stop(id).await;
    }
}
