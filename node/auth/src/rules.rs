//! What a principal may do: the [`Access`] each route declares, and the per-job rules of
//! Livy's access control ([`JobRules`]): a job is viewed and modified by its owner, by the
//! user it runs as, by the configured view and modify lists, and by admins; only superusers
//! run jobs as someone else.

use crate::principal::{Principal, Role};

/// Who may call a route, declared beside it in the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials: the node's version, health and API document.
    Public,
    /// Any authenticated caller: listings (which show only what the caller may view), the
    /// clusters, the node's members and metrics.
    Authenticated,
    /// A caller that may run jobs: users and admins.
    Submit,
    /// A caller that may view the job the path names; others are told it does not exist.
    ViewJob,
    /// A caller that may modify the job the path names; one that may only view it is refused.
    ModifyJob,
    /// Admins only: the cluster registry's changes, members, the raw event log.
    Admin,
}

/// Why a principal may not do what it asked; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

/// Livy's access control over jobs, with the node's configured lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRules {
    /// Users who may run jobs as any other user (`proxyUser`, `doAs`).
    pub superusers: Vec<String>,
    /// Users who may view every job.
    pub view_users: Vec<String>,
    /// Users who may view and modify every job.
    pub modify_users: Vec<String>,
}

impl JobRules {
    /// Whether `who` may read a job owned by `owner` that runs as `proxy_user`.
    pub fn may_view(&self, who: &Principal, owner: Option<&str>, proxy_user: Option<&str>) -> bool {
        who.role != Role::User
            || self.may_modify(who, owner, proxy_user)
            || listed(&self.view_users, who)
    }

    /// Whether `who` may change (kill, delete, run statements in) such a job.
    pub fn may_modify(
        &self,
        who: &Principal,
        owner: Option<&str>,
        proxy_user: Option<&str>,
    ) -> bool {
        if who.role == Role::Admin {
            return true;
        }
        if who.role == Role::Viewer {
            return false;
        }
        let Some(name) = who.user.as_deref() else {
            return false;
        };
        owner == Some(name) || proxy_user == Some(name) || listed(&self.modify_users, who)
    }

    /// Whether `who` may see every job (so a listing needs no filter by user).
    pub fn views_all(&self, who: &Principal) -> bool {
        who.role != Role::User || listed(&self.view_users, who) || listed(&self.modify_users, who)
    }

    /// Checks that `who` may run a job as `proxy_user` (Livy's `proxyUser` or `doAs`): the
    /// caller itself, or anyone for a superuser.
    pub fn may_impersonate(&self, who: &Principal, proxy_user: &str) -> Result<(), Denied> {
        match who.user.as_deref() {
            // Without authentication there is no one to impersonate.
            None => Ok(()),
            Some(name) if name == proxy_user || self.superusers.iter().any(|s| s == name) => Ok(()),
            Some(name) => Err(Denied(format!(
                "user '{name}' may not run jobs as '{proxy_user}': only superusers \
                 (--superusers) run jobs as another user"
            ))),
        }
    }
}

fn listed(list: &[String], who: &Principal) -> bool {
    who.user
        .as_deref()
        .is_some_and(|name| list.iter().any(|u| u == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> JobRules {
        JobRules {
            superusers: vec!["svc".into()],
            view_users: vec!["auditor".into()],
            modify_users: vec!["ops".into()],
        }
    }

    #[test]
    fn owners_proxy_users_lists_and_admins_view_and_modify() {
        let r = rules();
        let owner = Some("alice");
        let proxy = Some("etl");
        let user = |n: &str| Principal::user(n, Role::User);
        for (who, view, modify) in [
            (user("alice"), true, true),
            (user("etl"), true, true),
            (user("ops"), true, true),
            (user("auditor"), true, false),
            (user("bob"), false, false),
            (Principal::user("carol", Role::Viewer), true, false),
            (Principal::user("root", Role::Admin), true, true),
            (Principal::anonymous(), true, true),
        ] {
            assert_eq!(r.may_view(&who, owner, proxy), view, "{who:?} view");
            assert_eq!(r.may_modify(&who, owner, proxy), modify, "{who:?} modify");
            assert_eq!(
                r.views_all(&who),
                !matches!(who.name(), "alice" | "etl" | "bob")
            );
        }
        // A job with no owner (submitted before authentication) is an admin's.
        assert!(!r.may_view(&user("alice"), None, None));
    }

    #[test]
    fn only_superusers_impersonate() {
        let r = rules();
        assert!(r
            .may_impersonate(&Principal::user("alice", Role::User), "alice")
            .is_ok());
        let e = r
            .may_impersonate(&Principal::user("alice", Role::User), "bob")
            .unwrap_err();
        assert!(e.0.contains("superusers"), "{}", e.0);
        // Admins are not superusers unless listed, as in Livy.
        assert!(r
            .may_impersonate(&Principal::user("root", Role::Admin), "bob")
            .is_err());
        assert!(r
            .may_impersonate(&Principal::user("svc", Role::User), "bob")
            .is_ok());
    }
}
