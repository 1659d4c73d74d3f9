//! The one reading of Spark's memory sizes and of durations, for every field that holds one:
//! a job's driver and executor memory, a cluster's memory capacity, Livy's `ttl` and
//! `idleTimeout`, a long poll's wait, a cluster's poll interval and pod retention.
//!
//! - A memory size is a whole number with an optional unit, as Spark reads it: `b`, `k`/`kb`,
//!   `m`/`mb`, `g`/`gb`, `t`/`tb`, `p`/`pb` (any case, powers of 1024); a bare number is MiB,
//!   as Spark reads `spark.driver.memory`. In MiB it is rounded down, as Spark does.
//! - A duration is a whole number with an optional unit: `us`, `ms`, `s`, `m`/`min`, `h`, `d`;
//!   a bare number is milliseconds, as Livy reads its time strings.
//!
//! No whitespace is read, around or inside. [`memory_pattern`] and [`duration_pattern`] are
//! the regular expressions of what these accept within bounds, for the API's document.

use std::fmt;
use std::time::Duration;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Why a size or a duration cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError(String);

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnitError {}

/// The number and the unit of `s`, lowercased: `"512M"` is `(512, "m")`.
fn split(s: &str) -> Option<(u64, String)> {
    let t = s.to_ascii_lowercase();
    let at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(at);
    if number.is_empty() || !unit.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some((number.parse().ok()?, unit.to_string()))
}

const BYTE_UNITS: [(&str, u64); 6] = [
    ("b", 1),
    ("k", KIB),
    ("m", MIB),
    ("g", 1024 * MIB),
    ("t", 1024 * 1024 * MIB),
    ("p", 1024 * 1024 * 1024 * MIB),
];

/// The texts [`MemorySize::parse`] reads as a size of `lo..=hi` bytes, as an anchored pattern.
pub fn memory_pattern(lo: u64, hi: u64) -> String {
    use crate::patterns::{alternatives, either_case, number};
    let parts = BYTE_UNITS
        .iter()
        .filter_map(|&(unit, factor)| {
            let (n_lo, n_hi) = (lo.div_ceil(factor), hi / factor);
            if n_lo > n_hi {
                return None;
            }
            // A bare number is MiB; every unit but bytes also reads with a trailing `b`.
            let suffix = match unit {
                "b" => either_case("b"),
                "m" => format!("(?:{}[bB]?)?", either_case("m")),
                u => format!("{}[bB]?", either_case(u)),
            };
            Some(format!("{}{suffix}", number(n_lo, n_hi)))
        })
        .collect();
    format!("^{}$", alternatives(parts))
}

/// The texts [`parse_duration`] reads as `lo..=hi` milliseconds (microseconds are rounded
/// down), as an anchored pattern; `unit` says whether a bare number is allowed.
pub fn duration_pattern(lo_ms: u64, hi_ms: u64, bare: bool) -> String {
    use crate::patterns::{alternatives, either_case, number};
    let mut parts = vec![];
    let mut unit = |suffix: String, n_lo: u64, n_hi: u64| {
        if n_lo <= n_hi {
            parts.push(format!("{}{suffix}", number(n_lo, n_hi)));
        }
    };
    unit(
        either_case("us"),
        lo_ms.saturating_mul(1000),
        hi_ms.saturating_mul(1000) + 999,
    );
    let ms = either_case("ms");
    unit(if bare { format!("(?:{ms})?") } else { ms }, lo_ms, hi_ms);
    for (names, factor) in [
        (vec!["s"], 1_000),
        (vec!["m", "min"], 60_000),
        (vec!["h"], 3_600_000),
        (vec!["d"], 86_400_000u64),
    ] {
        for name in names {
            unit(either_case(name), lo_ms.div_ceil(factor), hi_ms / factor);
        }
    }
    format!("^{}$", alternatives(parts))
}

/// A memory size, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemorySize {
    bytes: u64,
}

impl MemorySize {
    pub fn parse(s: &str) -> Result<MemorySize, UnitError> {
        let bad = || UnitError(format!("{s:?} is not a memory size like 512m or 4g"));
        let (n, unit) = split(s).ok_or_else(bad)?;
        let scale: u64 = match unit.as_str() {
            "b" => 1,
            "k" | "kb" => KIB,
            "m" | "mb" | "" => MIB,
            "g" | "gb" => 1024 * MIB,
            "t" | "tb" => 1024 * 1024 * MIB,
            "p" | "pb" => 1024 * 1024 * 1024 * MIB,
            _ => return Err(bad()),
        };
        let bytes = n
            .checked_mul(scale)
            .ok_or_else(|| UnitError(format!("{s:?} is too large a memory size")))?;
        Ok(MemorySize { bytes })
    }

    pub fn from_mib(mib: u64) -> MemorySize {
        MemorySize {
            bytes: mib.saturating_mul(MIB),
        }
    }

    pub fn bytes(self) -> u64 {
        self.bytes
    }

    /// Whole MiB, rounded down.
    pub fn mib(self) -> u64 {
        self.bytes / MIB
    }
}

/// A duration: a whole number and a unit, a bare number being milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let bad = || UnitError(format!("{s:?} is not a duration like 30s, 10m or 2h"));
    let (n, unit) = split(s).ok_or_else(bad)?;
    let millis = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_millis)
            .ok_or_else(|| UnitError(format!("{s:?} is too long a duration")))
    };
    match unit.as_str() {
        "us" => Ok(Duration::from_micros(n)),
        "ms" | "" => millis(1),
        "s" => millis(1_000),
        "m" | "min" => millis(60_000),
        "h" => millis(3_600_000),
        "d" => millis(86_400_000),
        u => Err(UnitError(format!(
            "{s:?} has an unknown unit {u:?}; use us, ms, s, m, min, h or d"
        ))),
    }
}

/// Whether `s` names its unit (a duration written for an operator, where a bare number would
/// be read one way by some and another way by others).
pub fn has_unit(s: &str) -> bool {
    split(s).is_some_and(|(_, unit)| !unit.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_read_as_spark_reads_them() {
        let mib = |s: &str| MemorySize::parse(s).map(MemorySize::mib);
        for (text, want) in [
            ("512m", 512),
            ("512M", 512),
            ("2g", 2048),
            ("2GB", 2048),
            ("1024", 1024),
            ("2048k", 2),
            ("1536k", 1),
            ("1t", 1024 * 1024),
            ("0003g", 3072),
        ] {
            assert_eq!(mib(text), Ok(want), "{text}");
        }
        assert_eq!(MemorySize::parse("512b").unwrap().bytes(), 512);
        assert_eq!(mib("512b"), Ok(0), "bytes are bytes, not MiB");
        for bad in [
            "lots",
            "-1g",
            "1x",
            "",
            "g",
            "1.5g",
            "99999999999999p",
            "3 gb",
            " 1g",
            "1g ",
        ] {
            assert!(MemorySize::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_read_as_livy_reads_them() {
        let ms = |s: &str| parse_duration(s).map(|d| d.as_millis() as u64);
        for (text, want) in [
            ("1500", 1500),
            ("1500ms", 1500),
            ("30s", 30_000),
            ("10m", 600_000),
            ("10min", 600_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("2000us", 2),
        ] {
            assert_eq!(ms(text), Ok(want), "{text}");
        }
        for bad in ["ten", "5y", "-1s", "s", "1.5s", "1 s", " 1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(has_unit("2s") && has_unit("500ms") && !has_unit("2") && !has_unit("x"));
    }

    /// Texts near the edges of what a pattern takes: every unit, numbers around its bounds,
    /// leading zeros, other cases, junk.
    fn probes(units: &[&str], bounds: &[u64]) -> Vec<String> {
        let mut numbers: Vec<u64> = vec![0, 1, 2, 999, 1000, 1023, 1024, 1025, 60, 61];
        for &b in bounds {
            numbers.extend([b.saturating_sub(1), b, b.saturating_add(1)]);
        }
        let mut out = vec![];
        for n in &numbers {
            for u in units {
                out.push(format!("{n}{u}"));
                out.push(format!("0{n}{}", u.to_uppercase()));
            }
        }
        out.extend(["", "x", "1 m", "1.5g", "-1", "1gx"].map(str::to_string));
        out
    }

    #[test]
    fn the_memory_pattern_is_what_the_parser_takes_within_bounds() {
        let (lo, hi) = (MIB, 4 * 1024 * 1024 * MIB + MIB - 1);
        let re = regex::Regex::new(&memory_pattern(lo, hi)).unwrap();
        let units = [
            "", "b", "k", "kb", "m", "mb", "g", "gb", "t", "tb", "p", "pb",
        ];
        let bounds: Vec<u64> = BYTE_UNITS
            .iter()
            .flat_map(|&(_, f)| [lo.div_ceil(f), hi / f])
            .collect();
        for text in probes(&units, &bounds) {
            let takes = MemorySize::parse(&text).is_ok_and(|m| (lo..=hi).contains(&m.bytes()));
            assert_eq!(re.is_match(&text), takes, "{text:?}");
        }
    }

    #[test]
    fn the_duration_pattern_is_what_the_parser_takes_within_bounds() {
        for (lo, hi, bare) in [
            (1, 365 * 86_400_000, true),
            (0, 60_000, true),
            (1, 86_400_000, false),
        ] {
            let re = regex::Regex::new(&duration_pattern(lo, hi, bare)).unwrap();
            let units = ["", "us", "ms", "s", "m", "min", "h", "d"];
            let bounds = [
                lo,
                hi,
                lo * 1000,
                hi * 1000 + 999,
                hi / 1000,
                hi / 60_000,
                hi / 3_600_000,
                hi / 86_400_000,
            ];
            for text in probes(&units, &bounds) {
                let takes = (bare || has_unit(&text))
                    && parse_duration(&text)
                        .is_ok_and(|d| (lo..=hi).contains(&(d.as_millis() as u64)));
                assert_eq!(re.is_match(&text), takes, "{lo}..={hi} ms: {text:?}");
            }
        }
    }
}
