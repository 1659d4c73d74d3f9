//! Errors of the storage adapters.

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed; the operation may or may not have happened.
    #[error("storage failed: {0}")]
    Backend(String),
    /// An event is larger than the log takes in one record; nothing of the append was
    /// written. The request's fault, not the store's.
    #[error(
        "an event of {bytes} bytes is over the event log's record limit of {limit} bytes; \
         nothing was written"
    )]
    TooLarge { bytes: usize, limit: usize },
    /// Stored bytes could not be decoded.
    #[error("corrupt record at {at}: {reason}")]
    Corrupt { at: String, reason: String },
    /// The log's writer is gone (the node is shutting down).
    #[error("the event log is closed")]
    Closed,
    /// A newer writer with the same id was opened: this one may never write again (open a new
    /// one to write). Whatever this append did not get acknowledged stays invisible, except
    /// that an append whose commit was under way when the fence went up may have been
    /// committed just before it (the message says when that can be).
    #[error("fenced: {0}")]
    Fenced(String),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}
