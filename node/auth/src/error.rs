//! Why a request was not authenticated. The messages say what to fix without telling whether
//! a user exists: a wrong password and an unknown user read the same.

/// A failed authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials where the node requires them.
    #[error("authentication required: send an Authorization header ({0})")]
    Missing(&'static str),
    /// An `Authorization` header the node cannot read.
    #[error("malformed Authorization header: {0}")]
    Malformed(String),
    /// A trusted proxy's user header that names no valid user.
    #[error("{0}")]
    ProxyHeader(String),
    /// Credentials that do not name a user with that secret.
    #[error("invalid user name or password")]
    Invalid,
    /// A bearer token that does not verify; the reason is safe to tell.
    #[error("invalid bearer token: {0}")]
    InvalidToken(String),
    /// The directory that would check the credentials cannot be reached: retry later.
    #[error("{0}; retry later")]
    Unavailable(String),
    /// Too many failures from this client or for this user name: refused without checking.
    #[error("too many failed authentications; retry after {retry_after_secs} s")]
    Limited { retry_after_secs: u64 },
}
