//! The node's authentication: which modes it runs, and the check of one request's
//! credentials. Slow hashes make a password check cost tens of milliseconds, on purpose; a
//! check that succeeded is remembered for a few minutes under a keyed digest of the
//! credentials (never the password itself), so a client that sends the same credentials on
//! every request pays that once. A change of the users file forgets every remembered check.

use crate::credentials::Credentials;
use crate::error::AuthError;
use crate::ldap::{Ldap, LdapAnswer};
use crate::limiter::FailureLimiter;
use crate::oidc::Oidc;
use crate::password;
use crate::principal::{Principal, RoleMap};
use crate::trusted_proxy::TrustedProxy;
use crate::users_file::UsersFile;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a successful check is remembered.
const REMEMBERED: Duration = Duration::from_secs(300);
/// Checks remembered at most; past this, all are forgotten.
const MAX_REMEMBERED: usize = 10_000;
/// Failed checks allowed per client and per user name in each window.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// How the node authenticates callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Nobody: every caller is anonymous and may do everything (loopback only by default).
    None,
    /// HTTP Basic against the users file.
    Basic,
}

struct Remembered {
    principal: Principal,
    generation: u64,
    at: Instant,
}

pub struct Authenticator {
    mode: AuthMode,
    users: Option<UsersFile>,
    ldap: Option<Ldap>,
    oidc: Option<Oidc>,
    roles: RoleMap,
    limiter: FailureLimiter,
    /// A random key of this process: the digests of remembered credentials mean nothing
    /// elsewhere.
    key: [u8; 32],
    remembered: Mutex<HashMap<[u8; 32], Remembered>>,
    /// The credentials being checked now, one gate each.
    checking: Mutex<HashMap<[u8; 32], Arc<Mutex<()>>>>,
    /// Slow password checks done so far.
    password_checks: AtomicU64,
    proxy: Option<TrustedProxy>,
}

impl Authenticator {
    /// A node without authentication (`roles` give a trusted proxy's users their role).
    pub fn none(roles: RoleMap) -> Authenticator {
        Authenticator::new(AuthMode::None, None, roles)
    }

    /// HTTP Basic against `users`, roles from the users' groups by `roles`.
    pub fn basic(users: UsersFile, roles: RoleMap) -> Authenticator {
        Authenticator::new(AuthMode::Basic, Some(users), roles)
    }

    /// Also checks HTTP Basic credentials against `ldap`, for users not in the users file
    /// (a node without one authenticates against the directory alone).
    pub fn with_ldap(mut self, ldap: Ldap) -> Authenticator {
        self.mode = AuthMode::Basic;
        self.ldap = Some(ldap);
        self
    }

    /// Also takes Bearer tokens of `oidc`'s issuer.
    pub fn with_oidc(mut self, oidc: Oidc) -> Authenticator {
        self.mode = AuthMode::Basic;
        self.oidc = Some(oidc);
        self
    }

    fn new(mode: AuthMode, users: Option<UsersFile>, roles: RoleMap) -> Authenticator {
        Authenticator {
            mode,
            users,
            ldap: None,
            oidc: None,
            roles,
            limiter: FailureLimiter::new(MAX_FAILURES, FAILURE_WINDOW),
            key: rand::random(),
            remembered: Mutex::new(HashMap::new()),
            checking: Mutex::new(HashMap::new()),
            password_checks: AtomicU64::new(0),
            proxy: None,
        }
    }

    /// Also believes `proxy`'s headers, from its addresses.
    pub fn with_trusted_proxy(mut self, proxy: TrustedProxy) -> Authenticator {
        self.proxy = Some(proxy);
        self
    }

    /// The trusted proxy in front of the node, if any.
    pub fn trusted_proxy(&self) -> Option<&TrustedProxy> {
        self.proxy.as_ref()
    }

    /// The caller a trusted proxy names: `None` unless `client` is one of its addresses and
    /// sent `user` (its user header's value), whatever the node's mode; the user is then
    /// who the proxy says.
    pub fn proxied(
        &self,
        client: Option<IpAddr>,
        user: Option<&[u8]>,
        groups: Option<&[u8]>,
    ) -> Option<Result<Principal, AuthError>> {
        let proxy = self.proxy.as_ref().filter(|p| p.trusts(client))?;
        Some(proxy.principal(user?, groups, &self.roles))
    }

    /// How many slow password checks this node has done (the rest were remembered).
    pub fn password_checks(&self) -> u64 {
        self.password_checks.load(Ordering::Relaxed)
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The `WWW-Authenticate` challenge of a 401: Basic when passwords are taken, and
    /// Bearer (API tokens, OIDC) whenever the node authenticates at all. A page's script
    /// (`from_script`) is offered Bearer only: a Basic challenge makes the browser open its
    /// own login dialog over the page, and the request waits on it.
    pub fn challenge(&self, from_script: bool) -> &'static str {
        let passwords = self.users.is_some() || self.ldap.is_some();
        if passwords && !from_script {
            "Basic realm=\"kindling\", charset=\"UTF-8\", Bearer realm=\"kindling\""
        } else {
            "Bearer realm=\"kindling\""
        }
    }

    /// Whether `client` may present credentials now: refused, with when to come back, while
    /// its failures are over the limit.
    pub fn admit_client(&self, client: Option<IpAddr>) -> Result<(), AuthError> {
        let Some(ip) = client else { return Ok(()) };
        self.limiter
            .check(&format!("ip:{ip}"), Instant::now())
            .map_err(|retry_after_secs| AuthError::Limited { retry_after_secs })
    }

    /// Counts a credential of `client` that did not verify against its limit.
    pub fn client_failed(&self, client: Option<IpAddr>) {
        if let Some(ip) = client {
            self.limiter.fail(&format!("ip:{ip}"), Instant::now());
        }
    }

    /// The caller, if it can be told without a slow check: always without authentication,
    /// and for credentials checked a moment ago. `None`: call [`Authenticator::authenticate`]
    /// (away from the async runtime's threads: it may hash).
    pub fn remembered(&self, header: Option<&[u8]>) -> Option<Principal> {
        if self.mode == AuthMode::None {
            return Some(Principal::anonymous());
        }
        let Ok(Credentials::Basic { user, password }) = Credentials::parse(header?) else {
            return None;
        };
        self.lookup(&self.digest(&user, &password), self.generation())
    }

    /// The users file's generation (0 without one): a remembered check is good for one.
    fn generation(&self) -> u64 {
        self.users.as_ref().map_or(0, |f| f.current().1)
    }

    /// The principal remembered under `digest`, if checked against users file `generation`
    /// lately.
    fn lookup(&self, digest: &[u8; 32], generation: u64) -> Option<Principal> {
        let remembered = self.remembered.lock();
        let r = remembered.get(digest)?;
        (r.generation == generation && r.at.elapsed() < REMEMBERED).then(|| r.principal.clone())
    }

    /// Checks the credentials of a request from `client` (its `Authorization` header).
    pub fn authenticate(
        &self,
        header: Option<&[u8]>,
        client: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        if self.mode == AuthMode::None {
            return Ok(Principal::anonymous());
        }
        let Some(header) = header else {
            return Err(AuthError::Missing("Basic"));
        };
        let (user, password) = match Credentials::parse(header)? {
            Credentials::Basic { user, password } => (user, password),
            Credentials::Bearer(token) => return self.bearer(&token, client),
        };
        let now = Instant::now();
        let client_key = client.map(|ip| format!("ip:{ip}"));
        let user_key = format!("user:{user}");
        for key in client_key.iter().chain([&user_key]) {
            if let Err(retry_after_secs) = self.limiter.check(key, now) {
                return Err(AuthError::Limited { retry_after_secs });
            }
        }
        let generation = self.generation();
        // One check of the same credentials at a time: a burst of requests carrying new
        // credentials waits for the first check instead of each paying the slow hash.
        let digest = self.digest(&user, &password);
        let gate = self.checking.lock().entry(digest).or_default().clone();
        let turn = gate.lock();
        let done = |this: &Self| {
            let mut checking = this.checking.lock();
            if Arc::strong_count(&gate) <= 2 {
                checking.remove(&digest);
            }
        };
        if let Some(who) = self.lookup(&digest, generation) {
            drop(turn);
            done(self);
            return Ok(who);
        }
        self.password_checks.fetch_add(1, Ordering::Relaxed);
        let matched = match self.check_password(&user, &password) {
            Ok(m) => m,
            Err(e) => {
                drop(turn);
                done(self);
                return Err(e);
            }
        };
        let Some((name, groups)) = matched else {
            drop(turn);
            done(self);
            for key in client_key.iter().chain([&user_key]) {
                self.limiter.fail(key, now);
            }
            tracing::info!(user = %user, client = ?client, "authentication failed");
            return Err(AuthError::Invalid);
        };
        self.limiter.forgive(&user_key);
        let principal = Principal::user(name, self.roles.role(&groups));
        let mut remembered = self.remembered.lock();
        if remembered.len() >= MAX_REMEMBERED {
            remembered.clear();
        }
        remembered.insert(
            digest,
            Remembered {
                principal: principal.clone(),
                generation,
                at: now,
            },
        );
        drop(remembered);
        drop(turn);
        done(self);
        Ok(principal)
    }

    /// The caller a Bearer token names, if the node takes tokens and this one verifies.
    /// Failures count against the client's limit.
    fn bearer(&self, token: &str, client: Option<IpAddr>) -> Result<Principal, AuthError> {
        let Some(oidc) = &self.oidc else {
            return Err(AuthError::Malformed(
                "this node takes Basic credentials and Kindling API tokens (kdl_...), not other \
                 Bearer tokens"
                    .into(),
            ));
        };
        self.admit_client(client)?;
        match oidc.verify(token) {
            Ok((user, groups)) => Ok(Principal::user(user, self.roles.role(&groups))),
            Err(e) => {
                if matches!(e, AuthError::InvalidToken(_)) {
                    self.client_failed(client);
                }
                tracing::info!(client = ?client, error = %e, "authentication failed");
                Err(e)
            }
        }
    }

    /// The user's name and groups if `password` is theirs: by the users file when it has
    /// the user, else by the directory. An unknown user costs a hash like a known one.
    fn check_password(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<(String, Vec<String>)>, AuthError> {
        let users = self.users.as_ref().map(|f| f.current().0);
        if let Some(entry) = users.as_ref().and_then(|u| u.get(user)) {
            let ok = password::verify(password, &entry.hash);
            return Ok(ok.then(|| (entry.name.clone(), entry.groups.clone())));
        }
        let Some(ldap) = &self.ldap else {
            password::verify_nobody(password);
            return Ok(None);
        };
        match ldap.check(user, password) {
            Ok(LdapAnswer::Valid(groups)) => Ok(Some((user.to_string(), groups))),
            Ok(LdapAnswer::Invalid) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "authentication against LDAP failed");
                Err(AuthError::Unavailable(e.to_string()))
            }
        }
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests;
