//! Two members sharing a cluster secret, on the real broker, with `--auth basic`: a request
//! that must run on the leader is forwarded with the principal the follower authenticated,
//! signed with the request; the leader acts as that user, and refuses a forwarded principal
//! whose token is missing, forged, from another secret or for another request. An API token
//! issued through one member works on both, and its revocation holds on both at once; so
//! does a browser's login and its logout.

use crate::auth::{add_user, PASSWORD};
use crate::common::cluster::Cluster;
use crate::common::{fake_spark_home, Node};
use kindling_raft::ClusterSecret;
use kindling_testkit::services;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn as_user(http: &Client, method: &str, node: &Node, path: &str, who: &str) -> RequestBuilder {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    http.request(method, node.url(path))
        .basic_auth(who, Some(format!("{who}-{PASSWORD}")))
}

fn send(req: RequestBuilder) -> (u16, Value) {
    let r = req.send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

#[test]
fn members_forward_the_caller_they_authenticated_and_nobody_else_can() {
    let kafka = services::local_kafka();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    for (name, groups) in [("root", "admins"), ("alice", ""), ("bob", "")] {
        add_user(&users, name, groups);
    }
    let secret_file = dir.path().join("cluster.secret");
    std::fs::write(
        &secret_file,
        "a cluster secret of at least thirty-two bytes\n",
    )
    .unwrap();
    let cluster = Cluster {
        dir: dir.path().to_path_buf(),
        spark_home: fake_spark_home(dir.path()),
        flags: [
            "--event-log",
            "kafka",
            "--kafka-brokers",
            &kafka.addr.to_string(),
            "--kafka-topic",
            "kindling.auth-cluster.events",
            "--auth",
            "basic",
            "--users-file",
            users.to_str().unwrap(),
            "--cluster-secret-file",
            secret_file.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec(),
    };
    let (n1, raft1) = cluster.start(1, None);
    let (n2, _) = cluster.start(2, Some(&raft1));
    let http = Client::builder().timeout(T).build().unwrap();

    // Wait for one leader both agree on, then talk to the other one.
    let deadline = Instant::now() + T;
    let leader = loop {
        let views: Vec<Value> = [&n1, &n2]
            .iter()
            .map(|n| send(as_user(&http, "GET", n, "/api/v1/cluster", "root")).1)
            .collect();
        let leader = views[0]["leader_id"].as_u64();
        let voters = |v: &Value| {
            v["members"]
                .as_array()
                .map_or(0, |m| m.iter().filter(|m| m["voter"] == true).count())
        };
        let agreed = views
            .iter()
            .all(|v| v["leader_id"].as_u64() == leader && voters(v) == 2);
        if let (Some(leader), true) = (leader, agreed) {
            break leader;
        }
        assert!(Instant::now() < deadline, "no agreed leader: {views:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (lead, follower) = if leader == 1 { (&n1, &n2) } else { (&n2, &n1) };

    let app = crate::common::program(dir.path(), "app.py", "print(1)\n");
    let submit = |who: &str| {
        let body = json!({"file": app, "args": ["sleep=60"]});
        let (status, job) = send(as_user(&http, "POST", follower, "/batches", who).json(&body));
        assert_eq!(status, 201, "{job}");
        job["id"].as_u64().unwrap()
    };

    // Through the follower, bob's kill of alice's job reaches the leader as bob's: hidden.
    let job = submit("alice");
    let kill = format!("/api/v1/jobs/{job}/kill");
    let (status, reply) = send(as_user(&http, "POST", follower, &kill, "bob"));
    assert_eq!(status, 404, "{reply}");
    // Alice's own kill, through the follower, is carried out by the leader as hers.
    let (status, reply) = send(as_user(&http, "POST", follower, &kill, "alice"));
    assert_eq!(status, 200, "{reply}");

    // Straight to the leader, a forwarded principal needs the cluster's token over exactly
    // this request.
    let job = submit("alice");
    let kill = format!("/api/v1/jobs/{job}/kill");
    let ours = ClusterSecret::from_bytes(b"a cluster secret of at least thirty-two bytes");
    let theirs = ClusterSecret::from_bytes(b"some other cluster's secret, long enough");
    let payload = |path: &str| {
        let mut p = b"POST\0".to_vec();
        p.extend_from_slice(path.as_bytes());
        p.extend_from_slice(b"\0admin::root\0");
        p
    };
    let forged = |token: Option<String>| {
        let mut req = http
            .post(lead.url(&kill))
            .header("x-kindling-forwarded-by", "7")
            .header("x-kindling-forwarded-principal", "admin::root");
        if let Some(t) = token {
            req = req.header("x-kindling-forwarded-token", t);
        }
        send(req)
    };
    // The cluster's own token, but over another request.
    let other_kill = format!("/api/v1/jobs/{}/kill", job + 1);
    let refusals = [
        (Some("1.2.3".to_string()), "malformed"),
        (
            Some(theirs.sign("forwarded-request", &payload(&kill))),
            "does not match",
        ),
        (
            Some(ours.sign("forwarded-request", &payload(&other_kill))),
            "does not match",
        ),
    ];
    for (token, needle) in refusals {
        let (status, reply) = forged(token);
        assert_eq!(status, 401, "{reply}");
        let msg = reply["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains("forwarded request refused") && msg.contains(needle),
            "{msg}"
        );
    }
    // Without a token the principal header means nothing: no credentials, no entry.
    assert_eq!(forged(None).0, 401);
    // The token of the cluster's secret over this very request is taken, once.
    let token = ours.sign("forwarded-request", &payload(&kill));
    let (status, reply) = forged(Some(token.clone()));
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = forged(Some(token));
    assert_eq!(status, 401, "{reply}");
    assert!(
        reply["msg"].as_str().unwrap_or_default().contains("replay"),
        "{reply}"
    );

    // An API token issued through the follower (decided by the leader) is honoured by both;
    // revoked through the leader, the follower refuses it on the very next request.
    let (status, issued) = send(
        as_user(&http, "POST", follower, "/api/v1/tokens", "alice").json(&json!({"name": "ci"})),
    );
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().unwrap().to_string();
    let with_token = |node: &Node| {
        let r = http.get(node.url("/api/v1/jobs")).bearer_auth(&token);
        send(r)
    };
    for node in [lead, follower] {
        let (status, jobs) = with_token(node);
        assert_eq!(status, 200, "{jobs}");
    }
    let revoke = format!("/api/v1/tokens/{}", issued["id"].as_str().unwrap());
    let (status, reply) = send(as_user(&http, "DELETE", lead, &revoke, "alice"));
    assert_eq!(status, 200, "{reply}");
    for node in [follower, lead] {
        let (status, reply) = with_token(node);
        assert_eq!(status, 401, "{reply}");
        assert!(
            reply["msg"].as_str().unwrap().contains("revoked"),
            "{reply}"
        );
    }

    // A browser's login through the follower (a token the leader issues, its cookie relayed
    // back) works on both members; its logout, forwarded again, ends it on both.
    let r = as_user(&http, "POST", follower, "/api/v1/login", "bob")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("kindling_session=kdl_"), "{set_cookie}");
    let whoami = |node: &Node| {
        send(
            http.get(node.url("/api/v1/whoami"))
                .header("cookie", &cookie),
        )
    };
    for node in [lead, follower] {
        let (status, me) = whoami(node);
        assert_eq!((status, me["user"].as_str()), (200, Some("bob")), "{me}");
    }
    let logout = http
        .post(follower.url("/api/v1/logout"))
        .header("cookie", &cookie)
        .header("x-requested-by", "kindling-test");
    let (status, reply) = send(logout);
    assert_eq!(status, 200, "{reply}");
    for node in [lead, follower] {
        let (status, reply) = whoami(node);
        assert_eq!(status, 401, "{reply}");
    }
}
