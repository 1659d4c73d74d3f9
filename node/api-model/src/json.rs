//! How request JSON is read where serde's defaults would disagree with the schema the API
//! publishes: a whole number written with a fraction of zero (`4.0`) is an integer, as JSON
//! Schema says; a Spark conf value is a text, a number or a boolean, taken as the text it is
//! written as, and a number must be of a size its text can be read back from.

use crate::Invalid;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The largest magnitude of a numeric conf value; beyond it JSON readers overflow to
/// infinity (1e309) or lose the digits a client wrote.
pub const CONF_NUMBER_LIMIT: f64 = 1e300;

/// An optional integer field that also takes `4.0` for 4.
pub fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = Option::<serde_json::Number>::deserialize(d)?;
    let Some(n) = n else { return Ok(None) };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
            Ok(Some(f as i64))
        }
        _ => Err(serde::de::Error::custom(format!(
            "invalid type: {n} is not a whole number within 64 bits"
        ))),
    }
}

/// A Spark conf value (`field.key`) as the text it is written as.
pub fn conf_text(field: &str, key: &str, v: Value) -> Result<String, Invalid> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.abs() <= CONF_NUMBER_LIMIT) => {
            Ok(n.to_string())
        }
        Value::Number(n) => Err(Invalid::new(format!(
            "{field}.{key} is {n}: a number in conf must be at most 1e300 either way (write a \
             larger one as a string)"
        ))),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(Invalid::new(format!(
            "{field}.{key} must be a string, number or boolean, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Cores {
        #[serde(default, deserialize_with = "whole_number")]
        n: Option<i64>,
    }

    fn cores(json: &str) -> Result<Option<i64>, String> {
        serde_json::from_str::<Cores>(json)
            .map(|c| c.n)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_may_have_a_zero_fraction() {
        assert_eq!(cores(r#"{"n": 4}"#), Ok(Some(4)));
        assert_eq!(cores(r#"{"n": 4.0}"#), Ok(Some(4)));
        assert_eq!(cores(r#"{"n": -2e3}"#), Ok(Some(-2000)));
        assert_eq!(cores(r#"{"n": null}"#), Ok(None));
        assert_eq!(cores(r#"{}"#), Ok(None));
        assert!(cores(r#"{"n": 4.5}"#)
            .unwrap_err()
            .contains("not a whole number"));
        assert!(cores(r#"{"n": 1e30}"#).is_err());
        assert!(cores(r#"{"n": "4"}"#).is_err());
    }

    #[test]
    fn conf_values_are_their_text() {
        let text = |v: Value| conf_text("conf", "k", v);
        assert_eq!(text(Value::from("x")), Ok("x".into()));
        assert_eq!(text(Value::from(2)), Ok("2".into()));
        assert_eq!(text(Value::from(true)), Ok("true".into()));
        assert_eq!(text(Value::from(-1e300)), Ok("-1e+300".into()));
        assert!(text(Value::from(-1.0000000000000002e300)).is_err());
        assert!(text(serde_json::json!({"a": 1})).is_err());
    }
}
