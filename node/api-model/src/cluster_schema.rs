//! The JSON schemas of the cluster requests, built from the tables the server checks them
//! with (`kindling_backend::settings`): one alternative per kind of cluster, whose
//! `connection` lists exactly that kind's settings with the pattern of each value, and whose
//! `credentials` are the kinds that apply. Where a setting is required only without some
//! credentials (a kubernetes `apiServer` unless a kubeconfig names it, a yarn `user` unless
//! a keytab), the kind has two alternatives. What a schema cannot say is left to the server:
//! a Spark conf key that looks like a credential, and whether the files named are on the
//! node (409).

use kindling_backend::settings::{credential_kinds, settings, SettingValue};
use kindling_events::patterns;
use kindling_events::units::memory_pattern;
use kindling_events::ClusterKind;
use std::borrow::Cow;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

const MIB: u64 = 1024 * 1024;

/// `POST /api/v1/clusters`: a cluster to register.
pub struct NewCluster;

/// `PUT /api/v1/clusters/{name}`: a cluster's new configuration. It replaces the old one
/// whole, except that omitted `credentials` keep the current ones; `name`, if given, is the
/// path's.
pub struct ClusterChange;

impl PartialSchema for NewCluster {
    fn schema() -> RefOr<Schema> {
        request(true).into()
    }
}

impl ToSchema for NewCluster {
    fn name() -> Cow<'static, str> {
        "NewCluster".into()
    }
}

impl PartialSchema for ClusterChange {
    fn schema() -> RefOr<Schema> {
        request(false).into()
    }
}

impl ToSchema for ClusterChange {
    fn name() -> Cow<'static, str> {
        "ClusterChange".into()
    }
}

/// One alternative of a request: a kind, the connection key it requires besides the table's,
/// the credentials it takes and whether they are required.
struct Alternative {
    kind: ClusterKind,
    also_required: Option<&'static str>,
    credentials: &'static [&'static str],
    credentials_required: bool,
}

fn alternatives() -> Vec<Alternative> {
    let plain = |kind| Alternative {
        kind,
        also_required: None,
        credentials: credential_kinds(kind),
        credentials_required: false,
    };
    let with = |kind, key, credentials| Alternative {
        kind,
        also_required: Some(key),
        credentials,
        credentials_required: false,
    };
    let by = |kind, credentials| Alternative {
        kind,
        also_required: None,
        credentials,
        credentials_required: true,
    };
    vec![
        plain(ClusterKind::Local),
        plain(ClusterKind::Standalone),
        with(
            ClusterKind::Kubernetes,
            "apiServer",
            credential_kinds(ClusterKind::Kubernetes),
        ),
        by(ClusterKind::Kubernetes, &["kubeconfig"]),
        with(
            ClusterKind::Yarn,
            "user",
            credential_kinds(ClusterKind::Yarn),
        ),
        by(ClusterKind::Yarn, &["keytab"]),
    ]
}

fn request(name_required: bool) -> Schema {
    let mut any = AnyOfBuilder::new().description(Some(
        "A cluster: its type decides the connection settings and credentials it takes.",
    ));
    for a in alternatives() {
        any = any.item(alternative(&a, name_required));
    }
    any.into()
}

fn alternative(a: &Alternative, name_required: bool) -> Schema {
    let name = match name_required {
        true => string(patterns::NAME),
        false => nullable_string(patterns::NAME),
    }
    .description(Some(
        "1 to 63 lowercase letters, digits and `-`, starting with a letter",
    ));
    let mut o = strict_object()
        .title(Some(title(a)))
        .property("name", name)
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([a.kind.as_str()])),
        )
        .property("connection", connection(a))
        .property("credentials", credentials(a))
        .property("sparkConf", spark_conf())
        .property("capacity", capacity())
        .required("type");
    if name_required {
        o = o.required("name");
    }
    if a.credentials_required {
        o = o.required("credentials");
    }
    if a.also_required.is_some() || settings(a.kind).iter().any(|s| s.required) {
        o = o.required("connection");
    }
    o.into()
}

fn title(a: &Alternative) -> String {
    match (a.also_required, a.credentials_required) {
        (Some(key), _) => format!("{} cluster with {key}", a.kind),
        (None, true) => format!("{} cluster with {}", a.kind, a.credentials.join(" ")),
        (None, false) => format!("{} cluster", a.kind),
    }
}

fn connection(a: &Alternative) -> Schema {
    let mut o = strict_object().description(Some("Where the cluster is."));
    for s in settings(a.kind) {
        o = o.property(s.key, setting(s.value).description(Some(s.doc)));
        if s.required || a.also_required == Some(s.key) {
            o = o.required(s.key);
        }
    }
    o.into()
}

fn setting(value: SettingValue) -> ObjectBuilder {
    string(&value.pattern()).max_length(value.max_length())
}

fn credentials(a: &Alternative) -> Schema {
    let mut one = OneOfBuilder::new().description(Some(
        "Credentials by reference: files in every node's credentials directory (--credentials-dir). Secrets themselves are refused.",
    ));
    for kind in a.credentials {
        one = one.item(credential(kind));
    }
    if !a.credentials_required {
        one = one.item(ObjectBuilder::new().schema_type(Type::Null));
    }
    one.into()
}

fn credential(kind: &str) -> Schema {
    let file = || string(&SettingValue::File.pattern());
    let fields: Vec<(&str, ObjectBuilder, bool)> = match kind {
        "tokenFile" => vec![("path", file(), true)],
        "kubeconfig" => vec![
            ("path", file(), true),
            ("context", nullable_string(&patterns::not_blank()), false),
        ],
        "clientCertificate" => vec![("cert", file(), true), ("key", file(), true)],
        "keytab" => vec![
            ("principal", string(&patterns::not_blank()), true),
            ("keytab", file(), true),
        ],
        _ => vec![],
    };
    let mut o = strict_object()
        .title(Some(kind))
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind])),
        )
        .required("type");
    for (field, schema, required) in fields {
        o = o.property(field, schema);
        if required {
            o = o.required(field);
        }
    }
    o.into()
}

/// Spark conf for every job on the cluster. A key that looks like a credential (secret,
/// password, token, access.key) is refused by the server, which a pattern without
/// lookarounds cannot say.
fn spark_conf() -> Schema {
    let mut conf = crate::schemas::conf();
    if let Schema::Object(o) = &mut conf {
        o.description = Some(
            "Spark conf applied to every job on the cluster before the job's own. Keys that \
             look like credentials (secret, password, token, access.key) are refused."
                .into(),
        );
    }
    conf
}

fn capacity() -> Schema {
    capacity_object().into()
}

/// `PUT /api/v1/clusters/{name}/queues`'s `queues`: each queue's weight and limits, by name.
pub fn queues() -> Schema {
    let queue = capacity_object().property(
        "weight",
        ObjectBuilder::new()
            .schema_type(SchemaType::Array(vec![Type::Integer, Type::Null]))
            .minimum(Some(1))
            .maximum(Some(i64::from(kindling_events::queues::MAX_WEIGHT)))
            .description(Some(
                "Its share against the cluster's other busy queues (default 1).",
            )),
    );
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(
            string(&kindling_events::patterns::not_blank()).max_length(Some(128)),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(
            Schema::from(queue).into(),
        )))
        .max_properties(Some(kindling_events::queues::MAX_QUEUES))
        .into()
}

fn capacity_object() -> ObjectBuilder {
    let limit = |doc: &str| {
        ObjectBuilder::new()
            .schema_type(SchemaType::Array(vec![Type::Integer, Type::Null]))
            .minimum(Some(1))
            .maximum(Some(1_000_000))
            .description(Some(doc))
    };
    let memory = memory_pattern(MIB, ((1 << 40) + 1) * MIB - 1);
    strict_object()
        .property(
            "maxDrivers",
            limit("Most drivers running at once (no limit when absent)."),
        )
        .property(
            "maxDriverCores",
            limit("Most driver cores in use at once, summed over running drivers."),
        )
        .property(
            "maxDriverMemory",
            nullable_string(&memory)
                .description(Some("Most driver memory in use at once, e.g. `64g`.")),
        )
}

fn strict_object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

fn string(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
}

fn nullable_string(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![Type::String, Type::Null]))
        .pattern(Some(pattern))
}
