//! A driver's log as a backend serves it: which lines are asked for ([`LogWindow`]), the lines
//! and how many there are in all ([`LogSlice`]), and [`DriverLog`], the parts a backend
//! assembles a log from (lines it holds, files it kept) read in bounded memory: whatever the
//! size of the files, only the window's lines are held, never the whole log.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

/// The most lines one read returns: a client pages through a longer log.
pub const MAX_LOG_LINES: usize = 100_000;

/// Which lines of a log to read; a window is never more than [`MAX_LOG_LINES`] lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWindow {
    /// The last `n` lines.
    Tail(usize),
    /// `size` lines from line `from` (the first is 0).
    Range { from: usize, size: usize },
}

impl LogWindow {
    /// The lines `[start, end)` this window covers in a log of `total` lines.
    pub fn bounds(self, total: usize) -> (usize, usize) {
        match self {
            LogWindow::Tail(n) => (total.saturating_sub(n.min(MAX_LOG_LINES)), total),
            LogWindow::Range { from, size } => {
                let start = from.min(total);
                (
                    start,
                    start.saturating_add(size.min(MAX_LOG_LINES)).min(total),
                )
            }
        }
    }
}

/// Lines of a log: `lines` start at line `from`, of `total` in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSlice {
    pub from: usize,
    pub total: usize,
    pub lines: Vec<String>,
}

enum Part {
    Lines(Vec<String>),
    /// A kept file; each line is shown as `show` makes it (e.g. without a timestamp).
    File {
        path: PathBuf,
        show: fn(&str) -> &str,
    },
}

/// A log put together from parts, in order; read only where a window asks.
#[derive(Default)]
pub struct DriverLog {
    parts: Vec<Part>,
}

impl DriverLog {
    pub fn new() -> Self {
        DriverLog::default()
    }

    /// Lines held in memory (notes, a short answer of the cluster's API).
    pub fn lines(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.parts.push(Part::Lines(lines.into_iter().collect()));
        self
    }

    pub fn line(self, line: impl Into<String>) -> Self {
        self.lines([line.into()])
    }

    /// A file, read a line at a time; a missing file counts as empty.
    pub fn file(self, path: PathBuf) -> Self {
        self.file_shown(path, |l| l)
    }

    /// A file whose lines are shown as `show` makes them.
    pub fn file_shown(mut self, path: PathBuf, show: fn(&str) -> &str) -> Self {
        self.parts.push(Part::File { path, show });
        self
    }

    /// The lines of `window`, reading the files twice at most (counting, then collecting),
    /// each a buffer at a time. Blocking: call it off the async runtime
    /// ([`DriverLog::read_async`]).
    pub fn read(&self, window: LogWindow) -> std::io::Result<LogSlice> {
        let counts = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Lines(l) => Ok(l.len()),
                Part::File { path, .. } => count_lines(path),
            })
            .collect::<std::io::Result<Vec<usize>>>()?;
        let total = counts.iter().sum();
        let (start, end) = window.bounds(total);
        let mut lines = Vec::with_capacity(end - start);
        let mut offset = 0;
        for (part, count) in self.parts.iter().zip(counts) {
            let (from, to) = (start.max(offset), end.min(offset + count));
            if from < to {
                let (skip, take) = (from - offset, to - from);
                match part {
                    Part::Lines(l) => lines.extend(l[skip..skip + take].iter().cloned()),
                    Part::File { path, show } => {
                        read_lines(path, skip, take, *show, &mut lines)?;
                    }
                }
            }
            offset += count;
        }
        Ok(LogSlice {
            from: start,
            total,
            lines,
        })
    }

    /// [`DriverLog::read`] on a blocking thread.
    pub async fn read_async(self, window: LogWindow) -> std::io::Result<LogSlice> {
        tokio::task::spawn_blocking(move || self.read(window))
            .await
            .map_err(std::io::Error::other)?
    }
}

const BUFFER: usize = 64 * 1024;

fn open(path: &PathBuf) -> std::io::Result<Option<std::fs::File>> {
    match std::fs::File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Lines as `str::lines` counts them: a last line without a newline counts.
fn count_lines(path: &PathBuf) -> std::io::Result<usize> {
    let Some(mut file) = open(path)? else {
        return Ok(0);
    };
    let mut buf = vec![0u8; BUFFER];
    let (mut lines, mut last) = (0, b'\n');
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
        last = buf[n - 1];
    }
    Ok(lines + usize::from(last != b'\n'))
}

fn read_lines(
    path: &PathBuf,
    skip: usize,
    take: usize,
    show: fn(&str) -> &str,
    out: &mut Vec<String>,
) -> std::io::Result<()> {
    let Some(file) = open(path)? else {
        return Ok(());
    };
    let mut reader = BufReader::with_capacity(BUFFER, file);
    let mut line = Vec::new();
    let mut index = 0;
    while index < skip + take {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if index >= skip {
            let text = String::from_utf8_lossy(&line);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            out.push(show(text).to_string());
        }
        index += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_file(dir: &std::path::Path, lines: usize, trailing_newline: bool) -> PathBuf {
        let mut text: String = (0..lines).map(|i| format!("line {i}\n")).collect();
        if !trailing_newline {
            text.pop();
        }
        let path = dir.join(format!("{lines}-{trailing_newline}.log"));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn windows_read_the_lines_they_name_across_parts() {
        let dir = tempfile::tempdir().unwrap();
        let log = DriverLog::new()
            .line("head")
            .file(log_file(dir.path(), 5, true))
            .file(dir.path().join("missing.log"))
            .line("end");
        let all = log.read(LogWindow::Range { from: 0, size: 100 }).unwrap();
        assert_eq!(all.total, 7);
        assert_eq!(all.lines.first().unwrap(), "head");
        assert_eq!(all.lines[1], "line 0");
        assert_eq!(all.lines.last().unwrap(), "end");
        let tail = log.read(LogWindow::Tail(2)).unwrap();
        assert_eq!(
            (tail.from, tail.lines.clone()),
            (5, vec!["line 4".into(), "end".into()])
        );
        let mid = log.read(LogWindow::Range { from: 2, size: 2 }).unwrap();
        assert_eq!(mid.lines, ["line 1", "line 2"]);
        let past = log.read(LogWindow::Range { from: 50, size: 2 }).unwrap();
        assert_eq!((past.from, past.lines.len()), (7, 0));
    }

    #[test]
    fn a_last_line_without_a_newline_counts_and_shows_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_file(dir.path(), 3, false);
        let log = DriverLog::new().file_shown(path, |l| l.strip_prefix("line ").unwrap_or(l));
        let s = log.read(LogWindow::Tail(10)).unwrap();
        assert_eq!(
            (s.total, s.lines),
            (3, vec!["0".into(), "1".into(), "2".into()])
        );
    }

    #[test]
    fn a_window_is_capped() {
        assert_eq!(LogWindow::Tail(usize::MAX).bounds(10), (0, 10));
        let (start, end) = LogWindow::Range {
            from: 1,
            size: usize::MAX,
        }
        .bounds(usize::MAX);
        assert_eq!((start, end - start), (1, MAX_LOG_LINES));
    }
}
