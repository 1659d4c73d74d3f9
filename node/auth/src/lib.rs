//! Who is calling and what they may do. A request's credentials ([`Credentials`]) are
//! checked by the [`Authenticator`] against the node's modes (the users file of
//! [`UsersFile`], a [`TrustedProxy`] in front of the node) and become a [`Principal`]: a
//! user name and a [`Role`]. What a principal may do is decided here too, once: each route
//! of the API declares an [`Access`], and [`JobRules`] say who may view or modify a job and
//! who may run jobs as another user, the way Livy's access control does. Nothing here does
//! I/O but reading the users file and asking an LDAP directory.

mod api_token;
mod authenticator;
mod credentials;
mod error;
mod ldap;
mod limiter;
mod oidc;
mod password;
mod principal;
mod rules;
mod trusted_proxy;
mod users_file;

pub use api_token::{ApiToken, API_TOKEN_PREFIX};
pub use authenticator::{AuthMode, Authenticator};
pub use credentials::Credentials;
pub use error::AuthError;
pub use ldap::{Ldap, LdapAnswer, LdapConfig, LdapUnavailable, UserLookup};
pub use limiter::FailureLimiter;
pub use oidc::{parse_algorithm, Oidc, OidcConfig};
pub use password::{hash_password, MIN_PASSWORD_LEN};
pub use principal::{Principal, Role, RoleMap};
pub use rules::{Access, Denied, JobRules};
pub use trusted_proxy::TrustedProxy;
pub use users_file::{UserEntry, UsersFile};
