//! The JSON shapes of API tokens (`/api/v1/tokens`): the request that issues one, a token as
//! listed (never its secret), and the answer to an issue, the only one that holds the text.

use kindling_events::Token;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Days a token lives unless the request says otherwise.
pub const DEFAULT_TOKEN_DAYS: i64 = 90;
/// Most days a token may live.
pub const MAX_TOKEN_DAYS: i64 = 365;
/// Longest token name.
pub const MAX_TOKEN_NAME: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewToken {
    /// What the token is for ("airflow-prod"): at most 100 characters, not blank.
    #[schema(schema_with = crate::schemas::token_name)]
    pub name: String,
    /// Days until it expires: 1 to 365, default 90.
    #[schema(minimum = 1, maximum = 365)]
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    pub expires_in_days: Option<i64>,
    /// `admin`, `user` or `viewer`, at most the caller's own role; default the caller's.
    #[schema(schema_with = crate::schemas::role)]
    pub role: Option<String>,
}

/// A token as listed: everything but its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenDoc {
    pub id: String,
    pub name: String,
    pub user: String,
    pub role: String,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds; from then on the token is refused.
    pub expires_at: i64,
}

impl From<&Token> for TokenDoc {
    fn from(t: &Token) -> Self {
        TokenDoc {
            id: t.issued.id.clone(),
            name: t.issued.name.clone(),
            user: t.issued.user.clone(),
            role: t.issued.role.clone(),
            created_at: t.issued_at_ms,
            expires_at: t.issued.expires_at_ms,
        }
    }
}

/// A token just issued: the only answer that holds its text.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedTokenDoc {
    #[serde(flatten)]
    pub doc: TokenDoc,
    /// Send it as `Authorization: Bearer <token>`. Shown this once; Kindling keeps only a
    /// digest of it.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenDoc>,
}
