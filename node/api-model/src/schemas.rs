//! The JSON schemas of request fields whose rules a type alone does not say: texts without a
//! NUL byte, texts that must not be blank, memory sizes and durations within bounds, Spark
//! conf maps, kinds. Each is built from the domain's rules (`kindling_events::patterns`,
//! `spec_check`, `units`), tested there against the checks they describe, so the OpenAPI
//! document accepts what the server accepts.

use kindling_events::patterns;
use kindling_events::spec_check::{MAX_LIST, MAX_MEMORY_MB, MAX_TIMEOUT_MS};
use kindling_events::units::{duration_pattern, memory_pattern};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::RefOr;

const MIB: u64 = 1024 * 1024;

use crate::json::CONF_NUMBER_LIMIT;

fn kind(nullable: bool, t: Type) -> SchemaType {
    match nullable {
        true => SchemaType::Array(vec![t, Type::Null]),
        false => SchemaType::Type(t),
    }
}

fn string(pattern: String, nullable: bool) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(kind(nullable, Type::String))
        .pattern(Some(pattern))
}

/// Any text without a NUL byte.
pub fn text() -> Schema {
    string(patterns::TEXT.into(), false).into()
}

pub fn optional_text() -> Schema {
    string(patterns::TEXT.into(), true).into()
}

/// A text with something besides whitespace in it.
pub fn not_blank() -> Schema {
    string(patterns::not_blank(), false).into()
}

pub fn optional_not_blank() -> Schema {
    string(patterns::not_blank(), true).into()
}

/// An API token's name: not blank, at most 100 characters.
pub fn token_name() -> Schema {
    string(patterns::not_blank(), false)
        .max_length(Some(crate::model::MAX_TOKEN_NAME))
        .into()
}

/// A role: `admin`, `user` or `viewer`.
pub fn role() -> Schema {
    ObjectBuilder::new()
        .schema_type(kind(true, Type::String))
        .enum_values(Some(["admin", "user", "viewer"]))
        .into()
}

/// A job's name: a text of at most 256 characters.
pub fn job_name() -> Schema {
    string(patterns::TEXT.into(), true)
        .max_length(Some(kindling_events::spec_check::MAX_NAME))
        .into()
}

/// A driver's or executor's memory: 1m to 4t, in Spark's units (`512m`, `4g`; a bare number
/// is MiB).
pub fn memory_size() -> Schema {
    let (lo, hi) = (MIB, (MAX_MEMORY_MB + 1) * MIB - 1);
    string(memory_pattern(lo, hi), true).into()
}

/// A session's timeout: 1ms to 365d (`30s`, `10m`; a bare number is milliseconds).
pub fn timeout() -> Schema {
    string(duration_pattern(1, MAX_TIMEOUT_MS, true), true).into()
}

/// How long a long poll waits: 0 to 60s.
pub fn wait() -> Schema {
    string(duration_pattern(0, 60_000, true), false).into()
}

/// A list of files: at most 1000, none blank.
pub fn files() -> Schema {
    ArrayBuilder::new()
        .items(RefOr::T(not_blank()))
        .max_items(Some(MAX_LIST))
        .into()
}

/// A batch's arguments: at most 1000 texts.
pub fn args() -> Schema {
    ArrayBuilder::new()
        .items(RefOr::T(text()))
        .max_items(Some(MAX_LIST))
        .into()
}

/// A Spark conf value: a text, a number or a boolean (numbers and booleans are taken as the
/// text they are written as).
fn conf_value() -> Schema {
    OneOfBuilder::new()
        .item(text())
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(-CONF_NUMBER_LIMIT))
                .maximum(Some(CONF_NUMBER_LIMIT)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .into()
}

/// Spark conf: keys not blank, values texts, numbers or booleans.
pub fn conf() -> Schema {
    conf_with_keys(patterns::not_blank())
}

fn conf_with_keys(keys: String) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(string(keys, false)))
        .additional_properties(Some(AdditionalProperties::RefOr(conf_value().into())))
        .into()
}

/// A session's (or a statement's) kind: `pyspark` (also `python`, `shared`) or `sql`.
pub fn session_kind() -> Schema {
    ObjectBuilder::new()
        .schema_type(kind(true, Type::String))
        .enum_values(Some(["pyspark", "python", "shared", "sql"]))
        .into()
}
