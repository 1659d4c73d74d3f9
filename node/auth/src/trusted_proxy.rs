//! Callers a proxy in front of the node has authenticated: the proxy names the user (and
//! optionally the groups) in headers the operator configures. The headers are believed only
//! from the proxies' addresses; from anyone else they are ignored, so a client cannot
//! name itself.

use crate::error::AuthError;
use crate::principal::{Principal, RoleMap};
use crate::users_file::UsersFile;
use ipnet::IpNet;
use std::net::IpAddr;

/// The proxies a node trusts, and the headers they set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxy {
    /// The header naming the authenticated user, e.g. `X-Remote-User`.
    pub user_header: String,
    /// The header listing the user's groups, comma-separated, if the proxy sends them.
    pub groups_header: Option<String>,
    /// The proxies' addresses.
    pub from: Vec<IpNet>,
}

impl TrustedProxy {
    /// Parses proxy addresses: CIDRs (`10.0.0.0/8`) or single addresses (`10.1.2.3`).
    pub fn parse_addresses(values: &[String]) -> Result<Vec<IpNet>, String> {
        values
            .iter()
            .map(|v| {
                let v = v.trim();
                v.parse::<IpNet>()
                    .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{v:?} is not an address or a CIDR like 10.0.0.0/8"))
            })
            .collect()
    }

    /// Whether a request from `client` comes from a trusted proxy.
    pub fn trusts(&self, client: Option<IpAddr>) -> bool {
        client.is_some_and(|ip| self.from.iter().any(|net| net.contains(&ip)))
    }

    /// The caller a trusted proxy names with `user` and `groups` (the values of its
    /// headers), with its role from `roles`.
    pub fn principal(
        &self,
        user: &[u8],
        groups: Option<&[u8]>,
        roles: &RoleMap,
    ) -> Result<Principal, AuthError> {
        let user = std::str::from_utf8(user)
            .ok()
            .map(str::trim)
            .filter(|u| UsersFile::valid_name(u))
            .ok_or_else(|| {
                AuthError::ProxyHeader(format!(
                    "the {} header of the proxy is not a user name (1-128 letters, digits, \
                     '.', '_', '-' or '@')",
                    self.user_header
                ))
            })?;
        let groups: Vec<String> = groups
            .and_then(|g| std::str::from_utf8(g).ok())
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Principal::user(user, roles.role(&groups)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Role;

    fn proxy() -> TrustedProxy {
        TrustedProxy {
            user_header: "X-Remote-User".into(),
            groups_header: Some("X-Remote-Groups".into()),
            from: TrustedProxy::parse_addresses(&["10.0.0.0/8".into(), "::1".into()]).unwrap(),
        }
    }

    #[test]
    fn only_the_proxies_addresses_are_trusted() {
        let p = proxy();
        assert!(p.trusts(Some("10.20.30.40".parse().unwrap())));
        assert!(p.trusts(Some("::1".parse().unwrap())));
        assert!(!p.trusts(Some("11.0.0.1".parse().unwrap())));
        assert!(!p.trusts(Some("127.0.0.1".parse().unwrap())));
        assert!(!p.trusts(None));
        let e = TrustedProxy::parse_addresses(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
    }

    #[test]
    fn the_proxy_names_the_user_and_groups_give_the_role() {
        let p = proxy();
        let roles = RoleMap::default();
        let who = p.principal(b"ann", Some(b"staff, admins"), &roles).unwrap();
        assert_eq!(who, Principal::user("ann", Role::Admin));
        let who = p.principal(b" bob ", None, &roles).unwrap();
        assert_eq!(who, Principal::user("bob", Role::User));
        for bad in [&b""[..], b"a b", b"\xff", b"x:y"] {
            let e = p.principal(bad, None, &roles).unwrap_err();
            assert!(e.to_string().contains("X-Remote-User"), "{e}");
        }
    }
}
