//! The librdkafka properties an operator adds to every client of the log (`security.protocol`,
//! `sasl.mechanism`, `ssl.ca.location`, ...): checked before anything connects, by librdkafka
//! itself, so a misspelt key or a value it does not take stops the node at start with
//! librdkafka's own words. Secret values (passwords, keys) come from files, never a command
//! line, and never appear in a message.

use rdkafka::ClientConfig;
use std::collections::BTreeMap;

/// Properties Kindling sets itself: the brokers have their own flag, and the rest decide
/// durability, fencing or how the log reads.
const SET_BY_KINDLING: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "group.id",
    "transactional.id",
    "enable.idempotence",
    "acks",
    "isolation.level",
    "enable.auto.commit",
    "max.in.flight.requests.per.connection",
];

/// Whether the value of `key` is a secret (it must come from a file).
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key == "ssl.key.pem"
        || key == "sasl.jaas.config"
        || key == "sasl.oauthbearer.config"
}

/// Checks `properties` as the log's clients would take them.
pub fn check_properties(properties: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(key) = properties
        .keys()
        .find(|k| SET_BY_KINDLING.contains(&k.as_str()))
    {
        return Err(format!(
            "Kafka property {key} is set by Kindling (brokers: --kafka-brokers) and cannot be \
             given"
        ));
    }
    let mut c = ClientConfig::new();
    for (k, v) in properties {
        c.set(k, v);
    }
    c.create_native_config().map(|_| ()).map_err(|e| {
        let mut message = e.to_string();
        for (k, v) in properties {
            if is_secret_property(k) && !v.is_empty() {
                message = message.replace(v.as_str(), "<redacted>");
            }
        }
        format!("a Kafka property is refused by librdkafka: {message}")
    })
}

/// `properties` for a log: secret values shown as `<redacted>`.
pub fn shown(properties: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    properties
        .iter()
        .map(|(k, v)| {
            let v = if is_secret_property(k) {
                "<redacted>"
            } else {
                v.as_str()
            };
            (k.as_str(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn librdkafka_judges_the_properties_and_secrets_stay_out_of_its_words() {
        let sasl = props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "kindling"),
            ("sasl.password", "hunter2-secret"),
        ]);
        assert_eq!(check_properties(&sasl), Ok(()));
        let typo = props(&[("sasl.mechanisms.typo", "PLAIN")]);
        let e = check_properties(&typo).unwrap_err();
        assert!(e.contains("sasl.mechanisms.typo"), "{e}");
        let bad = props(&[("security.protocol", "carrier-pigeon")]);
        let e = check_properties(&bad).unwrap_err();
        assert!(e.contains("security.protocol"), "{e}");
        // This build's librdkafka has no OpenSSL: TLS is refused at start, saying so.
        let tls = props(&[("security.protocol", "SSL")]);
        let e = check_properties(&tls).unwrap_err();
        assert!(e.contains("OpenSSL"), "{e}");
        let ours = props(&[("acks", "1")]);
        assert!(check_properties(&ours)
            .unwrap_err()
            .contains("set by Kindling"));
        let shown = shown(&sasl);
        assert_eq!(shown["sasl.password"], "<redacted>");
        assert_eq!(shown["sasl.username"], "kindling");
        assert!(is_secret_property("ssl.key.password"));
        assert!(is_secret_property("sasl.oauthbearer.client.secret"));
        assert!(!is_secret_property("ssl.ca.location"));
    }
}
