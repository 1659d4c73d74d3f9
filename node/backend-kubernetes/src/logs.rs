//! Driver logs kept on the node: each driver's log is copied from the pod's `log` subresource
//! into `<logs_dir>/<cluster>/<driver>.log` as it streams, so it outlives the pod. Lines are
//! stored as the kubelet timestamps them (`timestamps=true`), which is how a copy interrupted
//! by a disconnect or a node restart resumes (`sinceTime`) without losing or repeating lines.
//! How a driver ended is kept beside it in `<driver>.end`, one line, and its exit code in
//! `<driver>.exit`.

use k8s_openapi::jiff::Timestamp;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// How much of the end of a copy is read to find where to resume.
const TAIL_BYTES: u64 = 256 * 1024;

#[derive(Debug, Clone)]
pub struct LogStore {
    dir: PathBuf,
}

/// Where a resumed copy starts: lines stamped before `since` are already kept, and so are
/// the first `skip` lines stamped exactly `since`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    pub since: Option<Timestamp>,
    pub skip: usize,
}

/// A kept line as the driver wrote it: its timestamp removed.
pub fn text_of(line: &str) -> &str {
    match split_stamp(line) {
        Some((_, text)) => text,
        None => line,
    }
}

/// Splits a kubelet line into its timestamp and text.
pub fn split_stamp(line: &str) -> Option<(Timestamp, &str)> {
    let (stamp, text) = line.split_once(' ').unwrap_or((line, ""));
    Some((stamp.parse().ok()?, text))
}

impl LogStore {
    pub fn new(dir: PathBuf) -> Self {
        LogStore { dir }
    }

    fn path(&self, driver: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{driver}.{ext}"))
    }

    /// The copy's path, creating the directory.
    pub fn log_path(&self, driver: &str) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        Ok(self.path(driver, "log"))
    }

    /// Where to resume copying the driver's log.
    pub fn resume(&self, driver: &str) -> Resume {
        let Ok(mut file) = std::fs::File::open(self.path(driver, "log")) else {
            return Resume::default();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(TAIL_BYTES);
        let mut tail = String::new();
        if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_string(&mut tail).is_err() {
            return Resume::default();
        }
        let mut lines: Vec<&str> = tail.lines().collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // cut in the middle
        }
        resume_after(&lines)
    }

    /// The kept log's path; `None` when nothing was kept for the driver. Its lines carry
    /// the kubelet's timestamps ([`text_of`] shows a line without).
    pub fn kept(&self, driver: &str) -> Option<PathBuf> {
        let path = self.path(driver, "log");
        path.exists().then_some(path)
    }

    /// Keeps how the driver ended: the line that closes its log, and its exit code (`-`
    /// when unknown), which `find` answers once the pod is gone.
    pub fn write_end(&self, driver: &str, line: &str, exit_code: Option<i32>) {
        let code = exit_code.map_or_else(|| "-".to_string(), |c| c.to_string());
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|_| std::fs::write(self.path(driver, "exit"), format!("{code}\n")))
            .and_then(|_| std::fs::write(self.path(driver, "end"), format!("{line}\n")));
        if let Err(e) = written {
            tracing::warn!(driver, error = %e, "cannot keep how the driver ended");
        }
    }

    /// The kept exit code of a driver whose end this node kept (`Some(None)`: unknown).
    pub fn read_exit(&self, driver: &str) -> Option<Option<i32>> {
        let text = std::fs::read_to_string(self.path(driver, "exit")).ok()?;
        Some(text.trim().parse().ok())
    }

    pub fn read_end(&self, driver: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.path(driver, "end")).ok()?;
        Some(text.trim_end().to_string())
    }
}

/// The resume point after these kept lines.
pub fn resume_after(lines: &[&str]) -> Resume {
    let stamps: Vec<Timestamp> = lines
        .iter()
        .filter_map(|l| split_stamp(l).map(|(t, _)| t))
        .collect();
    let Some(last) = stamps.last().copied() else {
        return Resume::default();
    };
    Resume {
        since: Some(last),
        skip: stamps.iter().rev().take_while(|t| **t == last).count(),
    }
}

impl Resume {
    /// The filter for one stream requested from [`Resume::since_second`].
    pub fn filter(&self) -> Filter {
        Filter {
            since: self.since,
            skip: self.skip,
            passed: false,
        }
    }

    /// Records a line as kept: the next stream resumes after it.
    pub fn kept(&mut self, line: &str) {
        if let Some((stamp, _)) = split_stamp(line) {
            if self.since == Some(stamp) {
                self.skip += 1;
            } else {
                self.since = Some(stamp);
                self.skip = 1;
            }
        }
    }

    /// `sinceTime` for the API: whole seconds, rounded down, so no line is skipped (the API
    /// takes seconds only; the lines before the resume point are dropped by [`Filter`]).
    pub fn since_second(&self) -> Option<Timestamp> {
        self.since
            .and_then(|t| Timestamp::from_second(t.as_second()).ok())
    }
}

/// Drops the lines of a resumed stream that were kept already.
#[derive(Debug)]
pub struct Filter {
    since: Option<Timestamp>,
    skip: usize,
    /// A stream is in order: after the first new line, every line is new.
    passed: bool,
}

impl Filter {
    pub fn is_new(&mut self, line: &str) -> bool {
        if self.passed {
            return true;
        }
        let (Some(since), Some((stamp, _))) = (self.since, split_stamp(line)) else {
            self.passed = true;
            return true;
        };
        if stamp < since {
            return false;
        }
        if stamp == since && self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        self.passed = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "2026-01-02T03:04:05.100000000Z";
    const B: &str = "2026-01-02T03:04:05.200000000Z";

    #[test]
    fn resumes_after_the_last_kept_line_even_with_equal_stamps() {
        let kept = [format!("{A} one"), format!("{B} two"), format!("{B} three")];
        let kept: Vec<&str> = kept.iter().map(String::as_str).collect();
        let r = resume_after(&kept);
        assert_eq!(r.skip, 2);
        assert_eq!(
            r.since_second().unwrap().to_string(),
            "2026-01-02T03:04:05Z"
        );
        // What the API sends again from that second on.
        let again = [
            format!("{A} one"),
            format!("{B} two"),
            format!("{B} three"),
            format!("{B} four"),
            format!("{B} five"),
            "2026-01-02T03:04:06Z six".to_string(),
        ];
        let mut filter = r.filter();
        let new: Vec<&String> = again.iter().filter(|l| filter.is_new(l)).collect();
        assert_eq!(new, [&again[3], &again[4], &again[5]]);
    }

    #[test]
    fn kept_lines_advance_the_resume_point() {
        let mut r = Resume::default();
        let mut stream = r.filter();
        for l in [format!("{A} one"), format!("{B} two"), format!("{B} three")] {
            assert!(stream.is_new(&l));
            r.kept(&l);
        }
        assert_eq!(
            r,
            resume_after(&[
                &format!("{A} one"),
                &format!("{B} two"),
                &format!("{B} three")
            ])
        );
        let mut f = r.filter();
        assert!(!f.is_new(&format!("{B} two")));
        assert!(!f.is_new(&format!("{B} three")));
        assert!(f.is_new(&format!("{B} four")));
    }

    #[test]
    fn the_store_strips_stamps_and_keeps_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().join("east"));
        assert_eq!(store.kept("d"), None);
        let path = store.log_path("d").unwrap();
        std::fs::write(&path, format!("{A} hello\n{B} world\n")).unwrap();
        assert_eq!(store.kept("d"), Some(path.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        let shown: Vec<&str> = text.lines().map(text_of).collect();
        assert_eq!(shown, ["hello", "world"]);
        assert_eq!(store.resume("d").skip, 1);
        assert_eq!(store.read_exit("d"), None);
        store.write_end("d", "kindling: ended", Some(143));
        assert_eq!(store.read_end("d").as_deref(), Some("kindling: ended"));
        assert_eq!(store.read_exit("d"), Some(Some(143)));
        store.write_end("d", "kindling: ended", None);
        assert_eq!(store.read_exit("d"), Some(None));
    }
}
