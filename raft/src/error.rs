//! Errors of leadership and metadata storage.

pub type Result<T, E = RaftError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("metadata storage failed: {0}")]
    Storage(String),
}

impl From<sled::Error> for RaftError {
    fn from(e: sled::Error) -> Self {
        RaftError::Storage(e.to_string())
    }
}
