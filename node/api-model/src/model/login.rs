//! The JSON shapes of a browser's login (`/api/v1/login`, `/api/v1/logout`) and of the caller
//! as the node sees it (`/api/v1/whoami`). A login is an API token of its own kind: the
//! session cookie carries its text, every node honours it, and logging out revokes it.

use serde::Serialize;
use utoipa::ToSchema;

/// The name of the tokens logins issue; no other token may take it.
pub const LOGIN_TOKEN_NAME: &str = "web login";
/// Hours a login lasts.
pub const LOGIN_HOURS: i64 = 12;
/// Logins one user may hold at once; a new one past this ends the oldest.
pub const MAX_LOGINS_PER_USER: usize = 20;

/// The caller: who, with which role, and how long the login lasts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    /// `null` on a node without authentication, whose callers are all anonymous admins.
    pub user: Option<String>,
    /// `admin`, `user` or `viewer`.
    pub role: String,
    /// Whether the node authenticates its callers at all.
    pub authentication: bool,
    /// Epoch milliseconds when the caller's session cookie or API token expires; `null` for
    /// other credentials.
    pub expires_at: Option<i64>,
}
