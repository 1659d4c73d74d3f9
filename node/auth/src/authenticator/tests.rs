//! The authenticator's modes, remembered checks and limits, on a users file of its own.

use super::*;
use crate::principal::Role;
use crate::users_file::UserEntry;
use base64::Engine;

fn basic(user: &str, password: &str) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}").into_bytes()
}

fn authenticator(dir: &std::path::Path) -> Authenticator {
    let path = dir.join("users");
    for (name, groups) in [("alice", vec!["admins".to_string()]), ("bob", vec![])] {
        let entry = UserEntry {
            name: name.into(),
            hash: password::hash_password(&format!("{name}-password")),
            groups,
        };
        UsersFile::put(&path, entry).unwrap();
    }
    let file = UsersFile::open(&path)
        .unwrap()
        .recheck_every(Duration::ZERO);
    Authenticator::basic(file, RoleMap::default())
}

#[test]
fn users_get_their_roles_and_a_check_is_remembered_until_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path());
    let alice = basic("alice", "alice-password");
    assert_eq!(auth.remembered(Some(&alice)), None);
    let p = auth.authenticate(Some(&alice), None).unwrap();
    assert_eq!(p, Principal::user("alice", Role::Admin));
    assert_eq!(auth.remembered(Some(&alice)), Some(p));
    let bob = auth.authenticate(Some(&basic("bob", "bob-password")), None);
    assert_eq!(bob.unwrap().role, Role::User);
    // A new version of the file: alice's password changed.
    let entry = UserEntry {
        name: "alice".into(),
        hash: password::hash_password("new-password"),
        groups: vec![],
    };
    UsersFile::put(&dir.path().join("users"), entry).unwrap();
    assert_eq!(auth.remembered(Some(&alice)), None);
    assert_eq!(
        auth.authenticate(Some(&alice), None),
        Err(AuthError::Invalid)
    );
}

#[test]
fn unknown_users_and_wrong_passwords_read_the_same_and_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path());
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let wrong = auth.authenticate(Some(&basic("bob", "guess")), Some(ip));
    let unknown = auth.authenticate(Some(&basic("mallory", "guess")), Some(ip));
    assert_eq!(wrong, Err(AuthError::Invalid));
    assert_eq!(unknown, Err(AuthError::Invalid));
    for _ in 2..MAX_FAILURES {
        let _ = auth.authenticate(Some(&basic("mallory", "guess")), Some(ip));
    }
    // This client is refused now, even with the right password...
    let right = basic("bob", "bob-password");
    assert!(matches!(
        auth.authenticate(Some(&right), Some(ip)),
        Err(AuthError::Limited { .. })
    ));
    // ...and another client is not.
    let other: IpAddr = "10.9.9.9".parse().unwrap();
    assert!(auth.authenticate(Some(&right), Some(other)).is_ok());
    assert_eq!(
        auth.authenticate(None, None),
        Err(AuthError::Missing("Basic"))
    );
    assert!(matches!(
        auth.authenticate(Some(b"Bearer abc"), None),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn a_burst_of_the_same_new_credentials_is_checked_once() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Arc::new(authenticator(dir.path()));
    let header = basic("bob", "bob-password");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (auth, header) = (auth.clone(), header.clone());
            std::thread::spawn(move || auth.authenticate(Some(&header), None).unwrap())
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().user.as_deref(), Some("bob"));
    }
    assert_eq!(auth.password_checks(), 1);
}
