//! The one error of this crate: a request that is wrong, with a message that names the
//! field and says what to fix. The API answers it with 400.

/// A request that is wrong; the message names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(msg: impl Into<String>) -> Self {
        Invalid(msg.into())
    }
}
