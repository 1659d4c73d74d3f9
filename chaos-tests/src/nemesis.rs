//! Carries out the schedule on a live cluster: resolves each fault's roles to nodes (who
//! leads right now), applies it, holds it, heals it, and starts a recovery probe that measures
//! how long the cluster takes to serve again. Each fault becomes a record in `faults.jsonl`.

use crate::cluster::Cluster;
use crate::proxy::LinkMode;
use crate::recorder::Recorder;
use crate::schedule::{Action, Fault, Target};
use crate::topology::{self, End};
use crate::workload::{self, Ctx};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use kindling_chaos_checker::records::FaultRecord;

/// Resolves a role to a node id among the members.
fn resolve(t: Target, members: &[u64], leader: Option<u64>) -> u64 {
    let followers: Vec<u64> = members
        .iter()
        .copied()
        .filter(|m| Some(*m) != leader)
        .collect();
    match t {
        Target::Leader => leader.unwrap_or(members[0]),
        Target::Follower(k) => followers[(k as usize) % followers.len()],
        Target::Any(k) => members[(k as usize) % members.len()],
    }
}

/// Resolves a group of roles to distinct nodes.
pub fn resolve_group(targets: &[Target], members: &[u64], leader: Option<u64>) -> Vec<u64> {
    let mut out: Vec<u64> = vec![];
    for t in targets {
        let mut id = resolve(*t, members, leader);
        // Consecutive follower picks may wrap onto a node already taken.
        let mut k = 0;
        while out.contains(&id) && k < members.len() {
            id = members[(members.iter().position(|m| *m == id).unwrap() + 1) % members.len()];
            k += 1;
        }
        out.push(id);
    }
    out.sort();
    out.dedup();
    out
}

async fn sleep_until(rec: &Recorder, at_ms: u64) {
    let now = rec.now_ms();
    if at_ms > now {
        tokio::time::sleep(Duration::from_millis(at_ms - now)).await;
    }
}

/// Runs every fault of the schedule, in order. Recovery probes run in the background; their
/// results are in the returned records once this returns.
pub async fn run(
    cluster: &mut Cluster,
    schedule: &[Fault],
    ctx: Arc<Ctx>,
    probe_limit: Duration,
    out: &Path,
) -> Vec<FaultRecord> {
    let http = workload::http_client(Duration::from_secs(3));
    let mut file = std::fs::File::create(out).ok();
    let mut probes = vec![];
    let mut records = vec![];
    for (index, f) in schedule.iter().enumerate() {
        sleep_until(&ctx.rec, f.at_ms).await;
        let leader = cluster.leader(&http).await;
        let members = cluster.members.clone();
        let mut rec = FaultRecord {
            index,
            fault: Some(f.clone()),
            leader_before: leader,
            started_ms: ctx.rec.now_ms(),
            ..Default::default()
        };
        match &f.action {
            Action::Kill { target } => {
                let id = resolve(*target, &members, leader);
                rec.nodes = vec![id];
                cluster.kill9(id);
            }
            Action::Pause { target } => {
                let id = resolve(*target, &members, leader);
                rec.nodes = vec![id];
                cluster.pause(id);
            }
            Action::Partition { targets, cut } => {
                rec.nodes = resolve_group(targets, &members, leader);
                let links = topology::partition(&cluster.links(), &rec.nodes);
                cluster.set_links(&links, LinkMode::from(*cut));
            }
            Action::CutBroker { target, cut } | Action::CutMongo { target, cut } => {
                let id = resolve(*target, &members, leader);
                rec.nodes = vec![id];
                let to = if matches!(f.action, Action::CutBroker { .. }) {
                    End::Broker
                } else {
                    End::Mongo
                };
                cluster.set_links(&[topology::dependency(id, to)], LinkMode::from(*cut));
            }
            Action::RestartBroker => cluster.kafka.kill9(),
            Action::RestartMongo => cluster.mongo.kill9(),
        }
        sleep_until(&ctx.rec, f.heal_ms()).await;
        let healed = match &f.action {
            Action::Kill { .. } => cluster.start_node(rec.nodes[0]),
            Action::Pause { .. } => {
                cluster.resume(rec.nodes[0]);
                Ok(())
            }
            Action::Partition { .. } | Action::CutBroker { .. } | Action::CutMongo { .. } => {
                cluster.set_links(&cluster.links(), LinkMode::Pass);
                Ok(())
            }
            Action::RestartBroker => tokio::task::block_in_place(|| cluster.kafka.start()),
            Action::RestartMongo => tokio::task::block_in_place(|| cluster.mongo.start()),
        };
        if let Err(e) = healed {
            rec.notes.push(format!("heal failed: {e:#}"));
        }
        rec.healed_ms = ctx.rec.now_ms();
        let ctx2 = ctx.clone();
        let from = rec.healed_ms;
        probes.push(tokio::spawn(async move {
            workload::probe_until_serving(&ctx2, from, probe_limit).await
        }));
        records.push(rec);
    }
    for (rec, p) in records.iter_mut().zip(probes) {
        rec.recovered_after_ms = p.await.ok().flatten();
        if let Some(f) = file.as_mut() {
            let _ = writeln!(f, "{}", serde_json::to_string(rec).unwrap_or_default());
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_resolve_to_members() {
        let m = [1, 2, 3];
        assert_eq!(resolve(Target::Leader, &m, Some(2)), 2);
        assert_eq!(resolve(Target::Follower(0), &m, Some(2)), 1);
        assert_eq!(resolve(Target::Follower(1), &m, Some(2)), 3);
        assert_eq!(resolve(Target::Follower(2), &m, Some(2)), 1);
        assert_eq!(resolve(Target::Any(4), &m, None), 2);
        // No leader known: the leader role falls on the first member.
        assert_eq!(resolve(Target::Leader, &m, None), 1);
    }

    #[test]
    fn groups_are_distinct_nodes() {
        let m = [1, 2, 3, 4, 5];
        let g = resolve_group(&[Target::Leader, Target::Follower(3)], &m, Some(5));
        assert_eq!(g, vec![4, 5]);
        let g = resolve_group(&[Target::Follower(3), Target::Follower(4)], &m, Some(1));
        assert_eq!(g.len(), 2);
        let g = resolve_group(&[Target::Leader, Target::Follower(0)], &m, None);
        assert_eq!(g, vec![1, 2]);
    }
}
