//! How the node's clients of its stores authenticate and encrypt: extra librdkafka
//! properties for the Kafka log (SASL, SSL), with secret values read from files, and the
//! MongoDB user's password from a file (TLS and x.509 go in the connection string's options,
//! which the driver takes as they are). Nothing secret is taken from a flag, since flags show
//! in the process table; the files are read when the stores are opened.

use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The Kafka clients' extra properties: plain ones, and secret ones by the file holding each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaSecurity {
    pub properties: BTreeMap<String, String>,
    pub secret_files: BTreeMap<String, PathBuf>,
}

impl KafkaSecurity {
    /// From `--kafka-property KEY=VALUE` and `--kafka-secret-property KEY=FILE` (the flags
    /// win over the file's tables), checked by librdkafka with placeholders for the secrets.
    pub fn resolve(
        flags: &[String],
        secret_flags: &[String],
        file: Option<BTreeMap<String, String>>,
        secret_file: Option<BTreeMap<String, PathBuf>>,
    ) -> anyhow::Result<KafkaSecurity> {
        let mut properties = file.unwrap_or_default();
        for pair in flags {
            let (k, v) = split(pair, "--kafka-property", "KEY=VALUE")?;
            properties.insert(k.into(), v.into());
        }
        let mut secret_files = secret_file.unwrap_or_default();
        for pair in secret_flags {
            let (k, v) = split(pair, "--kafka-secret-property", "KEY=FILE")?;
            secret_files.insert(k.into(), v.into());
        }
        if let Some(key) = properties
            .keys()
            .find(|k| kindling_store_kafka::is_secret_property(k))
        {
            bail!(
                "Kafka property {key} holds a secret: give it as --kafka-secret-property \
                 {key}=FILE (a value on the command line shows in the process table)"
            );
        }
        let mut checked = properties.clone();
        for key in secret_files.keys() {
            if properties.contains_key(key) {
                bail!("Kafka property {key} is given both as a value and as a file");
            }
            checked.insert(key.clone(), "placeholder".into());
        }
        kindling_store_kafka::check_properties(&checked).map_err(anyhow::Error::msg)?;
        Ok(KafkaSecurity {
            properties,
            secret_files,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.properties.is_empty() && self.secret_files.is_empty()
    }

    /// Every property, the secrets read from their files.
    pub fn read(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut out = self.properties.clone();
        for (key, path) in &self.secret_files {
            out.insert(
                key.clone(),
                read_secret(path, &format!("Kafka property {key}"))?,
            );
        }
        Ok(out)
    }
}

fn split<'a>(pair: &'a str, flag: &str, shape: &str) -> anyhow::Result<(&'a str, &'a str)> {
    match pair.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v)),
        _ => bail!("{flag} takes {shape}; got an argument without a key"),
    }
}

/// Refuses a MongoDB connection string that holds a password: it belongs in
/// `--mongo-password-file`. The message never repeats the string.
pub fn check_mongo_uri(uri: &str) -> anyhow::Result<()> {
    let rest = uri
        .strip_prefix("mongodb://")
        .or_else(|| uri.strip_prefix("mongodb+srv://"));
    let Some(rest) = rest else {
        bail!("--mongo-uri must start with mongodb:// or mongodb+srv://");
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if userinfo.contains(':') {
            bail!(
                "--mongo-uri holds a password, which would show in the process table: keep \
                 the user name there (mongodb://user@host/...) and put the password in \
                 --mongo-password-file"
            );
        }
    }
    Ok(())
}

/// A secret file's content without its trailing newline; errors name the file, never what
/// it holds.
pub fn read_secret(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} from {}", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    if secret.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    Ok(secret)
}
