//! Spark properties files, for what must not be on a `spark-submit` command line (which every
//! user of the machine can read in the process table): credential-like conf and session
//! secrets go to a file readable by the node's user only, named by `--properties-file`.
//! Given one, `spark-submit` skips `spark-defaults.conf` (Spark 3 has no
//! `--load-spark-defaults`), so the file starts with that file's text and Kindling's entries
//! follow, winning as flags would.

use kindling_events::cluster::{is_secret_key, is_secret_reference_key};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether the value of Spark property `key` must stay off the command line: it looks like a
/// credential (Spark's own redaction rule) and is not a reference to a Kubernetes secret.
pub fn is_secret(key: &str) -> bool {
    is_secret_key(key) && !is_secret_reference_key(key)
}

/// The text of `spark-defaults.conf`, where `spark-submit` would read it: in
/// `$SPARK_CONF_DIR`, else in `conf/` of `spark_home`.
pub fn spark_defaults(spark_home: &Path) -> Option<String> {
    let dir = std::env::var_os("SPARK_CONF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| spark_home.join("conf"));
    std::fs::read_to_string(dir.join("spark-defaults.conf")).ok()
}

/// A properties file's text: `defaults` (the text of `spark-defaults.conf`), then `entries`.
pub fn text<'a>(
    defaults: Option<&str>,
    entries: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> String {
    let mut out = defaults.unwrap_or_default().to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("# Added by Kindling for this driver.\n");
    for (k, v) in entries {
        out.push_str(&escape(k, true));
        out.push('=');
        out.push_str(&escape(v, false));
        out.push('\n');
    }
    out
}

/// A key or value as `java.util.Properties.load` reads it back exactly.
pub fn escape(s: &str, key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0c' => out.push_str("\\f"),
            ' ' if key || i == 0 => out.push_str("\\ "),
            '=' | ':' | '#' | '!' if key => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Writes `text` to a new file at `path`, readable by this user only from its first byte
/// (its directory too, if it has to be made).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secrets_are_told_apart_from_references_to_them() {
        assert!(is_secret("spark.hadoop.fs.s3a.secret.key"));
        assert!(is_secret("spark.hadoop.fs.s3a.access.key"));
        assert!(is_secret("spark.ssl.keyPassword"));
        assert!(!is_secret("spark.kubernetes.driver.secretKeyRef.DB"));
        assert!(!is_secret("spark.executor.memory"));
    }

    #[test]
    fn entries_are_escaped_as_java_reads_them_after_the_defaults() {
        let entries: BTreeMap<String, String> = [
            ("spark.a.password".to_string(), " p=w:d\\x#!\n".to_string()),
            ("odd key".to_string(), "v".to_string()),
        ]
        .into();
        assert_eq!(
            text(Some("spark.master local[2]"), &entries),
            "spark.master local[2]\n# Added by Kindling for this driver.\n\
             odd\\ key=v\nspark.a.password=\\ p=w:d\\\\x#!\\n\n"
        );
        assert_eq!(
            text(None, &BTreeMap::new()),
            "# Added by Kindling for this driver.\n"
        );
    }

    #[test]
    fn the_file_is_private_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.properties");
        write_private(&path, "a=1\n").unwrap();
        write_private(&path, "a=2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a=2\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
