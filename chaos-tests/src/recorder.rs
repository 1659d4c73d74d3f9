//! The history file of a run: every client operation appended as one JSON object per line
//! as it completes ([`Recorder`]), and read back ([`read`]) for checking a run afterwards.

use kindling_chaos_checker::history::Op;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Appends operations to the history file as they complete, and keeps them for the checker.
pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    next_id: u64,
    file: std::io::BufWriter<std::fs::File>,
    ops: Vec<Op>,
}

impl Recorder {
    pub fn create(path: &Path, start: Instant) -> std::io::Result<Recorder> {
        Ok(Recorder {
            start,
            inner: Mutex::new(Inner {
                next_id: 0,
                file: std::io::BufWriter::new(std::fs::File::create(path)?),
                ops: vec![],
            }),
        })
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Records a completed operation, giving it the next id.
    pub fn record(&self, mut op: Op) {
        let mut g = self.inner.lock().unwrap();
        op.id = g.next_id;
        g.next_id += 1;
        if let Ok(line) = serde_json::to_string(&op) {
            let _ = writeln!(g.file, "{line}");
        }
        g.ops.push(op);
    }

    pub fn flush(&self) {
        let _ = self.inner.lock().unwrap().file.flush();
    }

    pub fn ops(&self) -> Vec<Op> {
        self.inner.lock().unwrap().ops.clone()
    }
}

/// Reads a history file back.
pub fn read(path: &Path) -> anyhow::Result<Vec<Op>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_chaos_checker::history::{OpKind, OpResult};

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let r = Recorder::create(&path, Instant::now()).unwrap();
        let mut op = Op::new(99, OpKind::SubmitBatch, 1, 5, OpResult::Ok);
        op.job = Some(3);
        op.exit_code = Some(0);
        r.record(op.clone());
        r.record(Op::new(99, OpKind::ReadJob, 6, 9, OpResult::Unknown));
        r.flush();
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].id, back[1].id), (0, 1));
        assert_eq!(back[0].job, Some(3));
        assert_eq!(back[1].result, OpResult::Unknown);
    }
}
