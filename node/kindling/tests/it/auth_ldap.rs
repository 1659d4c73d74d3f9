//! `--auth ldap` against a real OpenLDAP `slapd` the test starts: users bind with their own
//! passwords (the DN by template, or found by a service account's search), groups give
//! roles, the users file comes first with `basic,ldap`, names that would change a DN or a
//! filter find nobody, and a directory that is away is a 503, never a wrong password.

use crate::auth::{add_user, PASSWORD};
use crate::common::{fake_spark_home, Node};
use kindling_testkit::ldap::{self, BASE};
use reqwest::blocking::Client;
use std::path::Path;

fn entries() -> String {
    let person = |uid: &str| {
        format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n\
             sn: {uid}\nuserPassword: {uid}-ldap-password\n\n"
        )
    };
    let group = |cn: &str, members: &[&str]| {
        let mut g = format!("dn: cn={cn},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {cn}\n");
        for m in members {
            g.push_str(&format!("member: uid={m},ou=people,{BASE}\n"));
        }
        g + "\n"
    };
    format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: kindling\ndc: kindling\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n{}{}{}{}",
        person("ann"),
        person("ben"),
        group("spark-admins", &["ann"]),
        group("analysts", &["ben"]),
    )
}

/// `GET path` on `node` as `user` with `password`: the status.
fn status(http: &Client, node: &Node, path: &str, user: &str, password: &str) -> u16 {
    http.get(node.url(path))
        .basic_auth(user, Some(password))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn start(dir: &Path, name: &str, flags: &[&str]) -> Node {
    Node::start(&dir.join(name), &fake_spark_home(dir), flags)
}

#[test]
fn ldap_users_bind_with_their_passwords_and_groups_give_roles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut directory = ldap::start(d, &entries()).unwrap();
    let users = d.join("users");
    add_user(&users, "local", "");
    let group_base = format!("ou=groups,{BASE}");
    let template = format!("uid={{user}},ou=people,{BASE}");
    let node = start(
        d,
        "by-template",
        &[
            "--auth",
            "basic,ldap",
            "--users-file",
            users.to_str().unwrap(),
            "--ldap-url",
            &directory.url,
            "--ldap-user-dn",
            &template,
            "--ldap-group-base",
            &group_base,
            "--admin-groups",
            "spark-admins",
        ],
    );
    let http = Client::new();
    let get = |path: &str, user: &str, password: &str| status(&http, &node, path, user, password);

    // Ann binds; her group makes her an admin (the raw event log is admins' only).
    assert_eq!(get("/batches", "ann", "ann-ldap-password"), 200);
    assert_eq!(get("/api/v1/events", "ann", "ann-ldap-password"), 200);
    // Ben is an analyst: a user, not an admin.
    assert_eq!(get("/batches", "ben", "ben-ldap-password"), 200);
    assert_eq!(get("/api/v1/events", "ben", "ben-ldap-password"), 403);
    // The users file comes first.
    assert_eq!(get("/batches", "local", &format!("local-{PASSWORD}")), 200);
    // Wrong, empty, unknown, and names that would change the DN: nobody.
    for (user, password) in [
        ("ann", "wrong"),
        ("ann", ""),
        ("nobody", "nobody-ldap-password"),
        ("ann,ou=people", "ann-ldap-password"),
        ("*", "ann-ldap-password"),
    ] {
        assert_eq!(
            get("/batches", user, password),
            401,
            "{user:?} {password:?}"
        );
    }

    // A service account's search finds the user's DN; a filter-breaking name finds nobody.
    let secret = d.join("bind.password");
    std::fs::write(&secret, "admin-secret\n").unwrap();
    let admin_dn = format!("cn=admin,{BASE}");
    let people = format!("ou=people,{BASE}");
    let searching = start(
        d,
        "by-search",
        &[
            "--auth",
            "ldap",
            "--ldap-url",
            &directory.url,
            "--ldap-bind-dn",
            &admin_dn,
            "--ldap-bind-password-file",
            secret.to_str().unwrap(),
            "--ldap-user-base",
            &people,
        ],
    );
    let sget =
        |path: &str, user: &str, password: &str| status(&http, &searching, path, user, password);
    assert_eq!(sget("/batches", "ben", "ben-ldap-password"), 200);
    assert_eq!(sget("/batches", "ben", "ann-ldap-password"), 401);
    assert_eq!(sget("/batches", "*)(uid=ann", "ann-ldap-password"), 401);
    assert_eq!(
        sget("/batches", "local", &format!("local-{PASSWORD}")),
        401,
        "no users file"
    );

    // Over TLS, verified against the test's CA: LDAPS, and StartTLS on the plain port. A
    // directory whose certificate the node does not trust is away (503), not a wrong password.
    let certs = d.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    crate::tls::make_ca(&certs);
    crate::tls::issue(&certs, "slapd");
    let other = tempfile::tempdir().unwrap();
    crate::tls::make_ca(other.path());
    let tls_dir = d.join("with-tls");
    let (cert, key) = (certs.join("slapd.pem"), certs.join("slapd.key"));
    let secure = ldap::start_with(
        &tls_dir,
        &entries(),
        Some(ldap::Tls {
            cert: &cert,
            key: &key,
        }),
    )
    .unwrap();
    let ca = certs.join("ca.pem");
    let foreign = other.path().join("ca.pem");
    let ldaps = secure.ldaps_url.clone().unwrap();
    for (name, url, extra) in [
        ("ldaps", ldaps.as_str(), None),
        ("starttls", secure.url.as_str(), Some("--ldap-starttls")),
    ] {
        for (ca, want) in [(&ca, 200), (&foreign, 503)] {
            let mut flags = vec![
                "--auth",
                "ldap",
                "--ldap-url",
                url,
                "--ldap-user-dn",
                &template,
                "--ldap-ca-file",
                ca.to_str().unwrap(),
            ];
            flags.extend(extra);
            let tls_node = start(d, &format!("{name}-{want}"), &flags);
            assert_eq!(
                status(&http, &tls_node, "/batches", "ann", "ann-ldap-password"),
                want,
                "{name}"
            );
        }
    }

    // The directory goes away: credentials checked a moment ago still work, new ones get a
    // 503 to retry (not a 401 that would tell the user their password is wrong).
    directory.service.kill9();
    assert_eq!(get("/batches", "ann", "ann-ldap-password"), 200);
    let away = http
        .get(searching.url("/batches"))
        .basic_auth("ann", Some("ann-ldap-password"))
        .send()
        .unwrap();
    assert_eq!(away.status().as_u16(), 503);
    assert!(away.headers().contains_key("retry-after"));
    directory.service.start().unwrap();
    assert_eq!(sget("/batches", "ann", "ann-ldap-password"), 200);
}
