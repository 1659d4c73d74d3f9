//! Request extraction with errors a client can act on: a JSON body parsed with the path of
//! the offending field in the message, a size limit answered with 413, and query and path
//! parameters checked by hand instead of failing with a bare rejection.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use kindling_core::ErrorCode;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// The limit on request bodies, set by the router as a request extension.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(1024 * 1024);
        let body = req.into_body();
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the request body is larger than the limit of {limit} bytes"),
            )
        })?;
        let _ = state;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = if inner.is_syntax() || inner.is_eof() {
            format!("the request body is not valid JSON: {inner}")
        } else if path == "." {
            format!("invalid request: {inner}")
        } else {
            format!("invalid field {path}: {inner}")
        };
        ApiError::bad_request(what)
    })
}

/// Query parameters, checked one by one.
pub struct Params(pub HashMap<String, String>);

impl Params {
    pub fn from_query(q: Option<&str>) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k);
            let v = percent_decode(v);
            if v.contains('\0') {
                return Err(ApiError::bad_request(format!(
                    "query parameter {k} must not contain a NUL byte"
                )));
            }
            map.insert(k, v);
        }
        Ok(Params(map))
    }

    /// A text parameter; given empty (`doAs=`), it is absent, as Livy reads it.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A parameter as given, empty or not: for one whose values are a fixed set or a format,
    /// where `state=` is not a value.
    pub fn given(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A `true`/`false` parameter, or `default`; anything else is a 400 naming it.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.given(name) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "{name} must be true or false, got {v:?}"
            ))),
        }
    }

    /// `order`: `asc` (the default, oldest first, as Livy lists) or `desc` (newest first);
    /// true for `desc`. Anything else is a 400 naming it.
    pub fn newest_first(&self) -> Result<bool, ApiError> {
        match self.given("order") {
            None | Some("asc") => Ok(false),
            Some("desc") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "order must be asc or desc, got {v:?}"
            ))),
        }
    }

    /// An integer parameter within `lo..=hi` (`hi = i64::MAX`: no upper bound), or `default`.
    pub fn bounded(&self, name: &str, default: i64, lo: i64, hi: i64) -> Result<i64, ApiError> {
        let v = self.int(name)?.unwrap_or(default);
        if (lo..=hi).contains(&v) {
            return Ok(v);
        }
        Err(ApiError::bad_request(if hi == i64::MAX {
            format!("{name} must be {lo} or more, got {v}")
        } else {
            format!("{name} must be between {lo} and {hi}, got {v}")
        }))
    }

    /// An integer parameter; given empty (`from=`), it is not an integer.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.0
            .get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "query parameter {name} must be an integer, got {v:?}"
                    ))
                })
            })
            .transpose()
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a job id from a path segment; anything else is an unknown session.
pub fn job_id(raw: &str, what: &str) -> Result<kindling_events::JobId, ApiError> {
    raw.parse::<u64>()
        .map(kindling_events::JobId)
        .map_err(|_| ApiError::not_found(what, raw))
}

pub fn statement_id(raw: &str) -> Result<kindling_events::StatementId, ApiError> {
    raw.parse::<u64>()
        .map(kindling_events::StatementId)
        .map_err(|_| ApiError::not_found("Statement", raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        let p = Params::from_query(Some("from=2&owner=a%20b&x=1+2")).unwrap();
        assert_eq!(p.str("owner"), Some("a b"));
        assert_eq!(p.str("x"), Some("1 2"));
        assert_eq!(p.int("from").unwrap(), Some(2));
        assert!(p.int("owner").is_err());
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            a: Inner,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            n: u32,
        }
        let e = parse_json::<T>(&Bytes::from_static(br#"{"a":{"n":"x"}}"#)).unwrap_err();
        assert!(e.msg.contains("a.n"), "{}", e.msg);
        let e = parse_json::<T>(&Bytes::from_static(b"{")).unwrap_err();
        assert!(e.msg.contains("not valid JSON"), "{}", e.msg);
    }
}
