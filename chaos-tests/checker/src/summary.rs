//! The run's summary table: operations by type and result, faults by kind with their
//! recovery times, violations per invariant, and the closing `violations: N` line.

use crate::checker::{Invariant, Violation};
use crate::history::{Op, OpKind, OpResult};
use crate::records::FaultRecord;
use crate::schedule::Nemesis;
use std::collections::BTreeMap;
use std::fmt::Write;

fn secs(ms: u64) -> String {
    format!("{:.2} s", ms as f64 / 1000.0)
}

pub struct Summary<'a> {
    pub seed: u64,
    pub ops: &'a [Op],
    pub faults: &'a [FaultRecord],
    pub violations: &'a [Violation],
    pub final_recovery_ms: Option<u64>,
    pub recovery_bound_ms: u64,
}

impl Summary<'_> {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "seed {}", self.seed);
        let mut ops: BTreeMap<OpKind, [usize; 3]> = BTreeMap::new();
        for op in self.ops {
            let i = match op.result {
                OpResult::Ok => 0,
                OpResult::Fail => 1,
                OpResult::Unknown => 2,
            };
            ops.entry(op.kind).or_default()[i] += 1;
        }
        let _ = writeln!(
            s,
            "\n{:<18} {:>7} {:>7} {:>8}",
            "operation", "ok", "fail", "unknown"
        );
        let mut total = [0usize; 3];
        for (k, c) in &ops {
            let _ = writeln!(s, "{:<18} {:>7} {:>7} {:>8}", k.as_str(), c[0], c[1], c[2]);
            for i in 0..3 {
                total[i] += c[i];
            }
        }
        let _ = writeln!(
            s,
            "{:<18} {:>7} {:>7} {:>8}",
            "total", total[0], total[1], total[2]
        );

        let mut faults: BTreeMap<Nemesis, Vec<Option<u64>>> = BTreeMap::new();
        for f in self.faults {
            if let Some(fault) = &f.fault {
                faults
                    .entry(fault.action.nemesis())
                    .or_default()
                    .push(f.recovered_after_ms);
            }
        }
        let _ = writeln!(
            s,
            "\n{:<16} {:>6} {:>10} {:>13} {:>13}",
            "fault", "count", "recovered", "p50 recovery", "max recovery"
        );
        for (k, rs) in &faults {
            let mut ok: Vec<u64> = rs.iter().flatten().copied().collect();
            ok.sort();
            let p50 = ok.get(ok.len().saturating_sub(1) / 2).map(|m| secs(*m));
            let max = ok.last().map(|m| secs(*m));
            let _ = writeln!(
                s,
                "{:<16} {:>6} {:>10} {:>13} {:>13}",
                k.as_str(),
                rs.len(),
                ok.len(),
                p50.unwrap_or_else(|| "-".into()),
                max.unwrap_or_else(|| "-".into())
            );
        }
        let _ = writeln!(s, "{:<16} {:>6}", "total", self.faults.len());

        let _ = writeln!(s, "\n{:<48} {:>10}", "invariant", "violations");
        for inv in Invariant::ALL {
            let n = self
                .violations
                .iter()
                .filter(|v| v.invariant == inv)
                .count();
            let _ = writeln!(
                s,
                "{:<48} {:>10}",
                format!("{} {}", inv.number(), inv.title()),
                n
            );
        }
        let _ = writeln!(
            s,
            "\nrecovery after the final heal: {} (bound {})",
            self.final_recovery_ms
                .map(secs)
                .unwrap_or_else(|| "never".into()),
            secs(self.recovery_bound_ms)
        );
        if !self.violations.is_empty() {
            let _ = writeln!(s, "\nviolations (first 30):");
            for v in self.violations.iter().take(30) {
                let _ = writeln!(s, "  [{}] {}", v.invariant.number(), v.message);
            }
        }
        let _ = writeln!(s, "violations: {}", self.violations.len());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_with_the_violation_count() {
        let ops = vec![
            Op::new(0, OpKind::SubmitBatch, 0, 1, OpResult::Ok),
            Op::new(1, OpKind::SubmitBatch, 0, 1, OpResult::Unknown),
        ];
        let v = vec![Violation::new(
            Invariant::Launches,
            "job 1 attempt 1 was launched 2 times",
        )];
        let s = Summary {
            seed: 5,
            ops: &ops,
            faults: &[],
            violations: &v,
            final_recovery_ms: Some(120),
            recovery_bound_ms: 30_000,
        }
        .render();
        assert!(s.starts_with("seed 5\n"));
        assert!(
            s.contains("submit_batch             1       0        1"),
            "{s}"
        );
        assert!(s.contains("2 at most one launch per (job, attempt)"), "{s}");
        assert!(s.trim_end().ends_with("violations: 1"), "{s}");
    }
}
