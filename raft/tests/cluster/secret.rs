//! Members that hold the cluster secret against processes that do not: a member with
//! another secret or none cannot join, and a raw call without a valid token is refused
//! before anything in it is read.

use crate::harness::{init_tracing, Cluster, Tweak};
use kindling_proto::raft::v1::raft_peer_client::RaftPeerClient;
use kindling_proto::raft::v1::RaftRequest;
use kindling_raft::{ClusterConfig, ClusterSecret, IdAllocator, Leadership};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const SECRET_A: &[u8] = b"the secret of cluster a, 32 bytes or more";

fn quick(c: &mut ClusterConfig, secret: Option<&[u8]>) {
    c.secret = secret.map(|s| Arc::new(ClusterSecret::from_bytes(s)));
    c.leader_request_timeout = Duration::from_secs(1);
    c.catch_up_timeout = Duration::from_secs(2);
}

fn holds_a(c: &mut ClusterConfig) {
    quick(c, Some(SECRET_A));
}

fn holds_b(c: &mut ClusterConfig) {
    quick(c, Some(b"the secret of another cluster, also long"));
}

fn holds_none(c: &mut ClusterConfig) {
    quick(c, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_processes_holding_the_cluster_secret_join_vote_or_append() {
    init_tracing();
    let mut c = Cluster::form(holds_a, 2).await;
    let before = c.agreed_leader().await;
    let seeds = c.seeds();

    for (id, tweak) in [(3, holds_b as Tweak), (4, holds_none)] {
        c.set_tweak(tweak);
        let outsider = c.start(id).await;
        let e = outsider.join(&seeds).await.unwrap_err();
        println!("member {id} could not join: {e}");
        assert!(e.to_string().contains("secret"), "{e}");
        c.stop(id).await;
    }

    // Raw calls: without a token, or with one of another secret, the member refuses before
    // it decodes anything (the payload here is not even a Raft message).
    let addr = format!("http://{}", c.addrs[&1]);
    let mut client = RaftPeerClient::connect(addr).await.unwrap();
    let request = |token: Option<String>| {
        let mut r = tonic::Request::new(RaftRequest {
            codec: 1,
            payload: b"not a raft message".to_vec(),
        });
        if let Some(t) = token {
            r.metadata_mut()
                .insert("x-kindling-cluster-token", t.parse().unwrap());
        }
        r
    };
    let other = ClusterSecret::from_bytes(b"the secret of another cluster, also long");
    let attempts = [
        ("vote", None),
        ("vote", Some(other.sign("vote", b"not a raft message"))),
        ("append_entries", Some("1.2.3".to_string())),
    ];
    for (rpc, token) in attempts {
        let status = match rpc {
            "vote" => client.vote(request(token)).await,
            _ => client.append_entries(request(token)).await,
        }
        .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{rpc}: {status}"
        );
    }
    // A well-signed call of the right secret gets past the check (and fails only on the
    // payload), so the refusals above were the secret's.
    let ours = ClusterSecret::from_bytes(SECRET_A);
    let status = client
        .vote(request(Some(ours.sign("vote", b"not a raft message"))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");

    // The cluster never noticed: same members, same term, and it still leases ids.
    let voters: BTreeSet<u64> = [1, 2].into();
    for id in [1, 2] {
        let m = c.member(id);
        m.raft()
            .wait(Some(Duration::from_secs(5)))
            .voter_ids(voters.clone(), "the voters are the two holders")
            .await
            .unwrap();
        assert_eq!(m.watch().borrow().term, before.term);
    }
    c.member(2).next_job_id().await.unwrap();
    for id in [1, 2] {
        c.member(id).shutdown().await.unwrap();
    }
}
