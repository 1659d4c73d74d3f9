//! The one reading of Spark's memory sizes and of durations, for every field that holds one:
//! a job's driver and executor memory, a cluster's memory capacity, Livy's `ttl` and
//! `idleTimeout`, a long poll's wait, a cluster's poll interval and pod retention.
//!
//! - A memory size is a whole number with an optional unit, as Spark reads it: `b`, `k`/`kb`,
//!   `m`/`mb`, `g`/`gb`, `t`/`tb`, `p`/`pb` (any case, powers of 1024); a bare number is MiB,
//!   as Spark reads `spark.driver.memory`. In MiB it is rounded down, as Spark does.
//! - A duration is a whole number with an optional unit: `us`, `ms`, `s`, `m`/`min`, `h`, `d`;
//!   a bare number is milliseconds, as Livy reads its time strings.

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
    let t = s.trim().to_ascii_lowercase();
    let at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(at);
    Some((number.parse().ok()?, unit.trim().to_string()))
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
            ("3 gb", 3072),
        ] {
            assert_eq!(mib(text), Ok(want), "{text}");
        }
        assert_eq!(MemorySize::parse("512b").unwrap().bytes(), 512);
        assert_eq!(mib("512b"), Ok(0), "bytes are bytes, not MiB");
        for bad in ["lots", "-1g", "1x", "", "g", "1.5g", "99999999999999p"] {
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
        for bad in ["ten", "5y", "-1s", "s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(has_unit("2s") && has_unit("500 ms") && !has_unit("2") && !has_unit("x"));
    }
}
