//! gRPC statuses of the driver link, from the core's [`ErrorCode`]: the same table the REST
//! API's HTTP statuses come from.

use kindling_core::{Error, ErrorCode};
use tonic::{Code, Status};

/// A status of `code` with `message`.
pub fn status(code: ErrorCode, message: impl Into<String>) -> Status {
    Status::new(Code::from_i32(code.grpc_code()), message)
}

/// What a failed registration tells the driver: a refusal (unknown session, a state that no
/// longer wants it) ends it (the runner exits), anything else makes it try again.
pub fn refusal(e: Error) -> Status {
    status(e.code(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_events::{DomainError, JobId, JobState};

    #[test]
    fn statuses_follow_the_error_codes() {
        let illegal = Error::Domain(DomainError::IllegalTransition {
            job: JobId(1),
            from: JobState::Dead,
            to: JobState::Idle,
        });
        assert_eq!(refusal(illegal).code(), Code::FailedPrecondition);
        assert_eq!(refusal(Error::NotFound(JobId(1))).code(), Code::NotFound);
        assert_eq!(
            refusal(Error::Unavailable("election".into())).code(),
            Code::Unavailable
        );
        assert_eq!(
            status(ErrorCode::Unauthenticated, "bad secret").code(),
            Code::Unauthenticated
        );
    }
}
