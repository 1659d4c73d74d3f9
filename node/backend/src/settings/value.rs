//! What a connection setting's value must look like, by kind of value: its check, and the
//! pattern that says the same to the API's document (tested against each other). A value
//! naming a file or a directory also has a second check, of this node as it is now: the file
//! must be there ([`SettingValue::present`]); its absence is the registry's state, not a
//! malformed request.

use kindling_events::patterns::{self, not_blank, range, WHITESPACE};
use kindling_events::units::{duration_pattern, has_unit, parse_duration};
use std::path::Path;
use std::time::Duration;

/// The longest duration a setting takes (a poll interval, a pod retention).
pub const MAX_SETTING_DURATION: Duration = Duration::from_secs(365 * 86_400);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingValue {
    /// `local`, `local[N]` or `local[*]`.
    LocalMaster,
    /// An `http://` or `https://` URL with a host, without credentials or whitespace.
    HttpUrl,
    /// Such URLs, comma-separated.
    HttpUrls,
    /// Anything but blank.
    NotBlank,
    /// A Kubernetes name (a DNS label).
    DnsLabel,
    /// A Kubernetes name that may have dots (a DNS subdomain).
    DnsSubdomain,
    /// `Always`, `IfNotPresent` or `Never`.
    PullPolicy,
    /// The absolute path of a file every node can read.
    File,
    /// The absolute path of a directory every node has.
    Directory,
    /// A positive duration that names its unit (`500ms`, `2s`, `10m`), up to a year.
    Duration,
    /// `keep`, or a duration.
    Retention,
}

/// The characters a value must not hold anywhere (and a URL anywhere after its scheme).
const NUL: &str = r"\u0000";

impl SettingValue {
    /// Whether `v` is well formed.
    pub fn check(self, v: &str) -> Result<(), String> {
        match self {
            SettingValue::LocalMaster => local_master(v),
            SettingValue::HttpUrl => http_url(v),
            SettingValue::HttpUrls => v.split(',').map(str::trim).try_for_each(http_url),
            SettingValue::NotBlank if v.trim().is_empty() => Err("must not be empty".into()),
            SettingValue::NotBlank => Ok(()),
            SettingValue::DnsLabel => kindling_events::cluster::check_name(v)
                .map_err(|e| format!("must be a Kubernetes name (a DNS label): {e}")),
            SettingValue::DnsSubdomain => dns_subdomain(v),
            SettingValue::PullPolicy => match v {
                "Always" | "IfNotPresent" | "Never" => Ok(()),
                _ => Err(format!("must be Always, IfNotPresent or Never, not {v:?}")),
            },
            SettingValue::File | SettingValue::Directory => match Path::new(v).is_absolute() {
                true => Ok(()),
                false => Err(format!("{v:?} must be an absolute path")),
            },
            SettingValue::Duration => duration(v),
            SettingValue::Retention if v == "keep" => Ok(()),
            SettingValue::Retention => {
                duration(v).map_err(|_| format!("must be keep or a duration like 10m, not {v:?}"))
            }
        }
    }

    /// Whether what a well-formed `v` names is on this node now (files and directories).
    pub fn present(self, v: &str) -> Result<(), String> {
        match self {
            SettingValue::File => readable_file(v),
            SettingValue::Directory if Path::new(v).is_dir() => Ok(()),
            SettingValue::Directory => Err(format!("{v} is not a directory on this node")),
            _ => Ok(()),
        }
    }

    /// The values [`SettingValue::check`] takes, as an anchored pattern.
    pub fn pattern(self) -> String {
        let ws = WHITESPACE;
        let url =
            |extra: &str| format!(r"https?://[^/@{NUL}{ws}{extra}]+(?:/[^{NUL}{ws}{extra}]*)?");
        match self {
            SettingValue::LocalMaster => {
                format!(r"^local(?:\[(?:\*|0*{})\])?$", range(1, u32::MAX as u64))
            }
            SettingValue::HttpUrl => format!("^{}$", url("")),
            SettingValue::HttpUrls => {
                let one = url(",");
                format!("^[{ws}]*{one}(?:[{ws}]*,[{ws}]*{one})*[{ws}]*$")
            }
            SettingValue::NotBlank => not_blank(),
            SettingValue::DnsLabel => patterns::NAME.to_string(),
            SettingValue::DnsSubdomain => {
                let label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
                format!(r"^{label}(?:\.{label})*$")
            }
            SettingValue::PullPolicy => "^(?:Always|IfNotPresent|Never)$".into(),
            SettingValue::File | SettingValue::Directory => format!("^/[^{NUL}]*$"),
            SettingValue::Duration => max_duration_pattern(),
            SettingValue::Retention => {
                let d = max_duration_pattern();
                format!("^(?:keep|{})$", &d[1..d.len() - 1])
            }
        }
    }

    /// The longest value taken, where there is one besides the pattern.
    pub fn max_length(self) -> Option<usize> {
        (self == SettingValue::DnsSubdomain).then_some(253)
    }
}

fn max_duration_pattern() -> String {
    duration_pattern(1, MAX_SETTING_DURATION.as_millis() as u64, false)
}

fn local_master(v: &str) -> Result<(), String> {
    let ok = v == "local"
        || v.strip_prefix("local[")
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|n| {
                n == "*"
                    || (n.bytes().all(|b| b.is_ascii_digit())
                        && n.parse::<u32>().is_ok_and(|n| n > 0))
            });
    if !ok {
        return Err(format!("must be local, local[N] or local[*], not {v:?}"));
    }
    Ok(())
}

fn http_url(v: &str) -> Result<(), String> {
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"));
    match rest {
        Some(r) if r.split('/').next().is_some_and(|a| a.contains('@')) => Err(
            "must not carry credentials (user:password@): give them as the cluster's credentials"
                .into(),
        ),
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(format!(
            "must be an http:// or https:// URL with a host, not {v:?}"
        )),
    }
}

fn dns_subdomain(v: &str) -> Result<(), String> {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = !v.is_empty() && v.len() <= 253 && v.split('.').all(label);
    if !ok {
        return Err(format!("{v:?} is not a Kubernetes name"));
    }
    Ok(())
}

/// A readable file on this node (the nodes of a cluster must all have it).
pub fn readable_file(v: &str) -> Result<(), String> {
    match std::fs::File::open(v) {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => Ok(()),
        Ok(_) => Err(format!("{v} is not a file")),
        Err(e) => Err(format!("cannot read {v} on this node: {e}")),
    }
}

/// A duration setting: a positive duration that names its unit, up to a year, read as every
/// duration is ([`kindling_events::units::parse_duration`]); a bare number, which some would
/// read as seconds and others as milliseconds, is refused.
pub fn parse_setting_duration(v: &str) -> Option<Duration> {
    if !has_unit(v) {
        return None;
    }
    parse_duration(v)
        .ok()
        .filter(|d| d.as_millis() >= 1 && d.as_millis() <= MAX_SETTING_DURATION.as_millis())
}

fn duration(v: &str) -> Result<(), String> {
    parse_setting_duration(v).map(|_| ()).ok_or_else(|| {
        format!("must be a duration with its unit, like 500ms, 2s or 10m (at most 365d), not {v:?}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SettingValue; 11] = [
        SettingValue::LocalMaster,
        SettingValue::HttpUrl,
        SettingValue::HttpUrls,
        SettingValue::NotBlank,
        SettingValue::DnsLabel,
        SettingValue::DnsSubdomain,
        SettingValue::PullPolicy,
        SettingValue::File,
        SettingValue::Directory,
        SettingValue::Duration,
        SettingValue::Retention,
    ];

    const SAMPLES: &[&str] = &[
        "",
        " ",
        "local",
        "local[2]",
        "local[*]",
        "local[0]",
        "local[+2]",
        "local[02]",
        "local[4294967295]",
        "local[4294967296]",
        "yarn",
        "http://m:6066",
        "https://m",
        "http://",
        "http:///x",
        "http://u:p@m",
        "http://m/a@b",
        "http://m x",
        "ftp://m",
        "http://a, http://b",
        "http://a,,http://b",
        " http://a ",
        "http://a,",
        "k8s-east",
        "K8s",
        "a-",
        "spark.sa",
        "a..b",
        "Always",
        "never",
        "/etc/hosts",
        "etc/hosts",
        "/no/such/file",
        "2s",
        "500ms",
        "2",
        "0s",
        "10m",
        "366d",
        "365d",
        "keep",
        "a\u{0}b",
        "http://m\u{3000}",
        "\u{3000}x",
    ];

    #[test]
    fn patterns_take_what_the_checks_take() {
        for value in ALL {
            let re = regex::Regex::new(&value.pattern()).unwrap();
            for s in SAMPLES {
                // The pattern says nothing of a NUL byte's place: the API refuses it in every
                // value before the checks see it.
                if s.contains('\0') {
                    assert!(!re.is_match(s), "{value:?}: {s:?}");
                    continue;
                }
                let fits = value.max_length().is_none_or(|n| s.len() <= n);
                assert_eq!(
                    re.is_match(s) && fits,
                    value.check(s).is_ok(),
                    "{value:?}: {s:?}"
                );
            }
        }
    }

    #[test]
    fn files_must_be_on_the_node_to_be_present() {
        assert_eq!(SettingValue::File.check("/no/such/file"), Ok(()));
        assert!(SettingValue::File.present("/no/such/file").is_err());
        assert_eq!(SettingValue::File.present("/etc/hostname"), Ok(()));
        assert!(SettingValue::Directory.present("/etc/hostname").is_err());
        assert_eq!(SettingValue::Directory.present("/etc"), Ok(()));
    }
}
