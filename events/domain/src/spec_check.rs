//! What a job spec may hold, checked before a job is accepted: every rule whose breach would
//! otherwise fail the job at launch (or never), with a message that names the field as the
//! user wrote it (`driverMemory`, `conf.spark.x`) and says what to fix. Strings with a NUL
//! byte are refused everywhere: no process can take them as an argument or an environment
//! value.

use crate::restart::{self, RestartPolicy};
use crate::spec::{DurationSpec, JobKind, JobSpec, SparkResources};
use crate::units::MemorySize;
use std::fmt;

/// Most driver or executor cores one job may ask for.
pub const MAX_CORES: u32 = 1024;
/// Most executors one job may ask for.
pub const MAX_EXECUTORS: u32 = 100_000;
/// Most memory one driver or executor may ask for, in MiB (4 TiB).
pub const MAX_MEMORY_MB: u64 = 4 * 1024 * 1024;
/// Most entries in one list of files, and most arguments.
pub const MAX_LIST: usize = 1000;
/// Longest job name, in characters.
pub const MAX_NAME: usize = 256;
/// Longest session timeout (`ttl`, `idleTimeout`), in milliseconds: a year.
pub const MAX_TIMEOUT_MS: u64 = 365 * 86_400_000;

/// A spec that breaks a rule; the message names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSpec(pub String);

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidSpec {}

type Check = Result<(), InvalidSpec>;

fn fail(msg: String) -> Check {
    Err(InvalidSpec(msg))
}

/// No NUL byte in `value`.
pub fn no_nul(field: &str, value: &str) -> Check {
    if value.contains('\0') {
        return fail(format!("{field} contains a NUL byte; remove it"));
    }
    Ok(())
}

fn count(field: &str, v: Option<u32>, max: u32) -> Check {
    match v {
        Some(n) if !(1..=max).contains(&n) => {
            fail(format!("{field} must be between 1 and {max}, got {n}"))
        }
        _ => Ok(()),
    }
}

fn memory(field: &str, v: &Option<String>) -> Check {
    let Some(s) = v else { return Ok(()) };
    no_nul(field, s)?;
    let size = MemorySize::parse(s).map_err(|e| {
        InvalidSpec(format!(
            "{field} must be a Spark memory size like 512m or 4g: {e}"
        ))
    })?;
    if !(1..=MAX_MEMORY_MB).contains(&size.mib()) {
        return fail(format!("{field} must be between 1m and 4t, got {s:?}"));
    }
    Ok(())
}

fn list(field: &str, v: &[String]) -> Check {
    if v.len() > MAX_LIST {
        return fail(format!(
            "{field} lists {} entries; at most {MAX_LIST} are accepted",
            v.len()
        ));
    }
    for (i, s) in v.iter().enumerate() {
        if s.trim().is_empty() {
            return fail(format!("{field} has an empty entry"));
        }
        no_nul(&format!("{field}[{i}]"), s)?;
    }
    Ok(())
}

fn timeout(field: &str, v: &Option<DurationSpec>) -> Check {
    match v {
        Some(d) if d.millis == 0 || d.millis > MAX_TIMEOUT_MS => fail(format!(
            "{field} must be between 1ms and 365d, got {:?}",
            d.text
        )),
        _ => Ok(()),
    }
}

fn resources(r: &SparkResources) -> Check {
    memory("driverMemory", &r.driver_memory)?;
    memory("executorMemory", &r.executor_memory)?;
    count("driverCores", r.driver_cores, MAX_CORES)?;
    count("executorCores", r.executor_cores, MAX_CORES)?;
    count("numExecutors", r.num_executors, MAX_EXECUTORS)?;
    if let Some(q) = &r.queue {
        no_nul("queue", q)?;
    }
    list("jars", &r.jars)?;
    list("pyFiles", &r.py_files)?;
    list("files", &r.files)?;
    list("archives", &r.archives)?;
    for (k, v) in &r.conf {
        if k.trim().is_empty() {
            return fail("conf has an empty key".into());
        }
        no_nul("a conf key", k)?;
        no_nul(&format!("conf.{k}"), v)?;
    }
    Ok(())
}

impl JobSpec {
    /// Every rule a spec must keep to be accepted.
    pub fn check(&self) -> Check {
        if let Some(name) = &self.name {
            if name.chars().count() > MAX_NAME {
                return fail(format!("name is longer than {MAX_NAME} characters"));
            }
            no_nul("name", name)?;
        }
        if let Some(p) = &self.proxy_user {
            no_nul("proxyUser", p)?;
        }
        if let Some(o) = &self.owner {
            no_nul("owner", o)?;
        }
        match &self.kind {
            JobKind::Batch(b) => {
                if b.file.trim().is_empty() {
                    return fail(
                        "file is required: the path or URL of the application to run".into(),
                    );
                }
                no_nul("file", &b.file)?;
                if let Some(c) = &b.class_name {
                    no_nul("className", c)?;
                }
                if b.args.len() > MAX_LIST {
                    return fail(format!(
                        "args lists {} arguments; at most {MAX_LIST} are accepted",
                        b.args.len()
                    ));
                }
                for (i, a) in b.args.iter().enumerate() {
                    no_nul(&format!("args[{i}]"), a)?;
                }
                RestartPolicy::of(&self.resources.conf).map_err(|e| InvalidSpec(e.0))?;
            }
            JobKind::Session(s) => {
                timeout("ttl", &s.ttl)?;
                timeout("idleTimeout", &s.idle_timeout)?;
                if let Some(key) = restart::KEYS
                    .iter()
                    .find(|k| self.resources.conf.contains_key(**k))
                {
                    return fail(format!(
                        "conf.{key}: sessions are never restarted (a new driver would not hold \
                         the session's state); restart policies are for batches"
                    ));
                }
            }
        }
        crate::queues::priority_of(&self.resources.conf).map_err(InvalidSpec)?;
        resources(&self.resources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BatchSpec, SessionKind, SessionSpec};

    fn batch() -> JobSpec {
        JobSpec {
            kind: JobKind::Batch(BatchSpec {
                file: "/tmp/pi.py".into(),
                class_name: None,
                args: vec!["10".into()],
            }),
            name: Some("pi".into()),
            owner: None,
            proxy_user: None,
            resources: SparkResources::default(),
        }
    }

    /// A change to a valid spec that breaks one rule.
    type Breaks = Box<dyn Fn(&mut JobSpec)>;

    /// Each case breaks one rule; the message names the field.
    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(&str, Breaks)> = vec![
            (
                "driverMemory",
                Box::new(|s| s.resources.driver_memory = Some("lots".into())),
            ),
            (
                "driverMemory",
                Box::new(|s| s.resources.driver_memory = Some("512k".into())),
            ),
            (
                "executorMemory",
                Box::new(|s| s.resources.executor_memory = Some("99999t".into())),
            ),
            (
                "driverCores",
                Box::new(|s| s.resources.driver_cores = Some(0)),
            ),
            (
                "numExecutors",
                Box::new(|s| s.resources.num_executors = Some(MAX_EXECUTORS + 1)),
            ),
            ("jars", Box::new(|s| s.resources.jars = vec![" ".into()])),
            (
                "pyFiles",
                Box::new(|s| s.resources.py_files = vec!["a".into(); MAX_LIST + 1]),
            ),
            (
                "name",
                Box::new(|s| s.name = Some("x".repeat(MAX_NAME + 1))),
            ),
            ("name", Box::new(|s| s.name = Some("a\0b".into()))),
            (
                "args[1]",
                Box::new(|s| {
                    if let JobKind::Batch(b) = &mut s.kind {
                        b.args.push("\0".into());
                    }
                }),
            ),
            (
                "conf.spark.x",
                Box::new(|s| {
                    s.resources.conf.insert("spark.x".into(), "v\0".into());
                }),
            ),
            (
                "conf key",
                Box::new(|s| {
                    s.resources.conf.insert("a\0".into(), "v".into());
                }),
            ),
            (
                "conf has an empty key",
                Box::new(|s| {
                    s.resources.conf.insert(" ".into(), "v".into());
                }),
            ),
            (
                "proxyUser",
                Box::new(|s| s.proxy_user = Some("bo\0b".into())),
            ),
            (
                "file",
                Box::new(|s| {
                    if let JobKind::Batch(b) = &mut s.kind {
                        b.file = "/tmp/a\0.py".into();
                    }
                }),
            ),
        ];
        assert_eq!(batch().check(), Ok(()));
        for (field, break_it) in cases {
            let mut s = batch();
            break_it(&mut s);
            let e = s.check().unwrap_err();
            assert!(e.0.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn session_timeouts_are_bounded() {
        let session = |ttl: u64| JobSpec {
            kind: JobKind::Session(SessionSpec {
                kind: SessionKind::Pyspark,
                heartbeat_timeout_secs: 0,
                ttl: Some(DurationSpec {
                    text: "t".into(),
                    millis: ttl,
                }),
                idle_timeout: None,
            }),
            ..batch()
        };
        assert_eq!(session(60_000).check(), Ok(()));
        assert!(session(0).check().unwrap_err().0.contains("ttl"));
        assert!(session(MAX_TIMEOUT_MS + 1).check().is_err());
    }
}
