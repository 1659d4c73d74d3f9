//! Errors of the storage adapters.

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed; the operation may or may not have happened.
    #[error("storage failed: {0}")]
    Backend(String),
    /// Stored bytes could not be decoded.
    #[error("corrupt record at {at}: {reason}")]
    Corrupt { at: String, reason: String },
    /// The log's writer is gone (the node is shutting down).
    #[error("the event log is closed")]
    Closed,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}
