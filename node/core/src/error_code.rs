//! What kind of failure an error is, as every transport tells its client. This is the one
//! table from a failure to an HTTP status (the REST API) and to a gRPC status code (the
//! driver gateway): both transports ask it, neither decides on its own.

/// The kinds of failure a client can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is wrong; the message says what to fix.
    BadRequest,
    /// The caller is not who it says (a driver's secret, a user's credentials).
    Unauthenticated,
    /// The caller is known but may not do this (its role, a job's access rules).
    Forbidden,
    /// What the request names does not exist.
    NotFound,
    /// The endpoint exists, but not with this method.
    MethodNotAllowed,
    /// The request did not arrive in full in time.
    Timeout,
    /// The request is right but the state of what it names does not allow it now.
    Conflict,
    /// The request (or a part of it) is larger than what the server or the path to the driver
    /// carries.
    PayloadTooLarge,
    /// Too many failed authentications from this client or for this user: refused without
    /// checking until the window ends.
    TooManyRequests,
    /// Not now: an election, a store that is away, a driver not connected. Retrying later may
    /// work; clients are told after how long.
    Unavailable,
    /// The node itself failed.
    Internal,
}

/// Seconds a client is asked to wait before retrying an [`ErrorCode::Unavailable`] request:
/// an election takes about a second.
pub const RETRY_AFTER_SECS: u32 = 1;

// gRPC's canonical status codes (grpc/grpc doc/statuscodes.md), which tonic's `Code` numbers.
const GRPC_INVALID_ARGUMENT: i32 = 3;
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_NOT_FOUND: i32 = 5;
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_RESOURCE_EXHAUSTED: i32 = 8;
const GRPC_FAILED_PRECONDITION: i32 = 9;
const GRPC_UNIMPLEMENTED: i32 = 12;
const GRPC_INTERNAL: i32 = 13;
const GRPC_UNAVAILABLE: i32 = 14;
const GRPC_UNAUTHENTICATED: i32 = 16;

impl ErrorCode {
    /// The HTTP status of a response with this failure.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Timeout => 408,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The gRPC status code of a call that ends with this failure.
    pub const fn grpc_code(self) -> i32 {
        match self {
            ErrorCode::BadRequest => GRPC_INVALID_ARGUMENT,
            ErrorCode::Unauthenticated => GRPC_UNAUTHENTICATED,
            ErrorCode::Forbidden => GRPC_PERMISSION_DENIED,
            ErrorCode::NotFound => GRPC_NOT_FOUND,
            ErrorCode::MethodNotAllowed => GRPC_UNIMPLEMENTED,
            ErrorCode::Timeout => GRPC_DEADLINE_EXCEEDED,
            ErrorCode::Conflict => GRPC_FAILED_PRECONDITION,
            ErrorCode::PayloadTooLarge => GRPC_RESOURCE_EXHAUSTED,
            ErrorCode::TooManyRequests => GRPC_RESOURCE_EXHAUSTED,
            ErrorCode::Unavailable => GRPC_UNAVAILABLE,
            ErrorCode::Internal => GRPC_INTERNAL,
        }
    }

    /// How long a client should wait before it retries, when retrying may work (a 429 says
    /// its own wait, which the limit that refused knows).
    pub const fn retry_after_secs(self) -> Option<u32> {
        match self {
            ErrorCode::Unavailable => Some(RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_distinct_http_status_and_only_unavailable_says_retry() {
        let all = [
            ErrorCode::BadRequest,
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Timeout,
            ErrorCode::Conflict,
            ErrorCode::PayloadTooLarge,
            ErrorCode::TooManyRequests,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ];
        let statuses: std::collections::BTreeSet<u16> =
            all.iter().map(|c| c.http_status()).collect();
        assert_eq!(statuses.len(), all.len());
        for c in all {
            let client = (400..500).contains(&c.http_status());
            assert_eq!(
                client,
                !matches!(c, ErrorCode::Unavailable | ErrorCode::Internal),
                "{c:?}"
            );
            assert_eq!(c.retry_after_secs().is_some(), c == ErrorCode::Unavailable);
        }
    }
}
