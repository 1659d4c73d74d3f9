//! The caller as the node knows it once authenticated: a user name and a role. Roles come
//! from the user's groups through the [`RoleMap`] the operator configures.

/// What a caller may do across the node, before any one job's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads every job, the clusters and the node; changes nothing.
    Viewer,
    /// Submits jobs and reads and changes its own (and those the job rules give it).
    User,
    /// Everything: every job, the cluster registry, members, the raw event log.
    Admin,
}

impl Role {
    /// The role [`Role::as_str`] names.
    pub fn parse(name: &str) -> Option<Role> {
        [Role::Viewer, Role::User, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name jobs record as their owner. `None` when the node runs without
    /// authentication: the caller is anonymous and may do everything, as before there was
    /// authentication (the node then listens on loopback only, unless told otherwise).
    pub user: Option<String>,
    pub role: Role,
    /// The id of the API token the caller authenticated with, if it did with one.
    pub token: Option<String>,
}

impl Principal {
    /// The caller of a node that runs without authentication.
    pub fn anonymous() -> Principal {
        Principal {
            user: None,
            role: Role::Admin,
            token: None,
        }
    }

    pub fn user(name: impl Into<String>, role: Role) -> Principal {
        Principal {
            user: Some(name.into()),
            role,
            token: None,
        }
    }

    /// `user` with `role`, authenticated by the API token `token`.
    pub fn by_token(name: impl Into<String>, role: Role, token: impl Into<String>) -> Principal {
        Principal {
            token: Some(token.into()),
            ..Principal::user(name, role)
        }
    }

    /// The name for logs and errors.
    pub fn name(&self) -> &str {
        self.user.as_deref().unwrap_or("anonymous")
    }
}

/// Which groups make a user an admin or a viewer; everyone else authenticated is a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMap {
    pub admin_groups: Vec<String>,
    pub viewer_groups: Vec<String>,
}

impl Default for RoleMap {
    fn default() -> Self {
        RoleMap {
            admin_groups: vec!["admins".into()],
            viewer_groups: vec!["viewers".into()],
        }
    }
}

impl RoleMap {
    /// The role of a member of `groups`: an admin group makes an admin, else a viewer group
    /// a viewer, else the user is a user.
    pub fn role<S: AsRef<str>>(&self, groups: &[S]) -> Role {
        let in_any =
            |names: &[String]| groups.iter().any(|g| names.iter().any(|n| n == g.as_ref()));
        if in_any(&self.admin_groups) {
            Role::Admin
        } else if in_any(&self.viewer_groups) {
            Role::Viewer
        } else {
            Role::User
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_map_to_roles() {
        let map = RoleMap::default();
        assert_eq!(map.role(&["admins", "team"]), Role::Admin);
        assert_eq!(map.role(&["viewers"]), Role::Viewer);
        assert_eq!(map.role(&["viewers", "team"]), Role::Viewer);
        assert_eq!(map.role::<&str>(&[]), Role::User);
        assert_eq!(map.role(&["team"]), Role::User);
    }
}
