//! Driver logs kept on the node, in `<logs_dir>/<cluster name>/`: `<driver>.submit.log` (what
//! the last `spark-submit` of the driver printed), `<driver>.log` (the driver's container logs, copied once it ended)
//! and `<driver>.end` (how it ended, one line).
//!
//! The driver's log is read over HTTP from its log link: the NodeManager's container-logs
//! page (`amContainerLogs`) while the application runs (and after, until YARN has aggregated
//! the logs, when the NodeManager redirects to the log server), or the log server's
//! aggregated page (`yarn.log.server.url`, the JobHistory server). Both pages are HTML with the
//! log text in `<pre>` elements; [`log_text`] takes it out.

use std::path::PathBuf;

/// The container log files a Spark driver writes: what the program prints, and Spark's own
/// log (log4j's console appender writes to stderr).
pub const LOG_FILES: [&str; 2] = ["stdout", "stderr"];

#[derive(Debug, Clone)]
pub struct LogStore {
    dir: PathBuf,
}

impl LogStore {
    pub fn new(dir: PathBuf) -> Self {
        LogStore { dir }
    }

    pub fn path(&self, driver: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{driver}.{ext}"))
    }

    /// Where one `spark-submit` run of a driver keeps its session properties while it runs
    /// (`run` tells two runs for the same driver apart).
    pub fn properties_path(&self, driver: &str, run: u64) -> PathBuf {
        self.dir
            .join("submit")
            .join(format!("{driver}.{run:016x}.properties"))
    }

    /// Where one `spark-submit` run of a driver writes its output; [`LogStore::keep_submit`]
    /// then makes it the driver's `<driver>.submit.log`.
    pub fn submit_run_path(&self, driver: &str, run: u64) -> PathBuf {
        self.dir
            .join("submit")
            .join(format!("{driver}.{run:016x}.log"))
    }

    /// Keeps a run's output as the driver's; returns where it is.
    pub fn keep_submit(&self, driver: &str, run: u64) -> PathBuf {
        let kept = self.path(driver, "submit.log");
        if let Err(e) = std::fs::rename(self.submit_run_path(driver, run), &kept) {
            tracing::warn!(driver, error = %e, "cannot keep the spark-submit output");
        }
        kept
    }

    fn existing(&self, driver: &str, ext: &str) -> Option<PathBuf> {
        let path = self.path(driver, ext);
        path.exists().then_some(path)
    }

    /// The kept copy of the driver's container logs, if there is one.
    pub fn kept(&self, driver: &str) -> Option<PathBuf> {
        self.existing(driver, "log")
    }

    pub fn has_copy(&self, driver: &str) -> bool {
        self.path(driver, "log").exists()
    }

    /// What `spark-submit` printed, if it ran on this node.
    pub fn kept_submit(&self, driver: &str) -> Option<PathBuf> {
        self.existing(driver, "submit.log")
    }

    /// Keeps the driver's log, whole or not at all (written aside, then renamed).
    pub fn write(&self, driver: &str, text: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.path(driver, "log.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, self.path(driver, "log"))
    }

    pub fn write_end(&self, driver: &str, line: &str) {
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|_| std::fs::write(self.path(driver, "end"), format!("{line}\n")));
        if let Err(e) = written {
            tracing::warn!(driver, error = %e, "cannot keep how the driver ended");
        }
    }

    pub fn read_end(&self, driver: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.path(driver, "end")).ok()?;
        Some(text.trim_end().to_string())
    }
}

/// The log text of a NodeManager or log-server page: the contents of its `<pre>` elements,
/// unescaped. `None` when the page has none (it then says why in a heading, e.g. `Logs not
/// available for container_… Aggregation may not be complete`), see [`page_message`]. A
/// plain-text answer is the log itself.
pub fn log_text(body: &str, content_type: Option<&str>) -> Option<String> {
    let html =
        content_type.is_some_and(|c| c.contains("html")) || body.trim_start().starts_with('<');
    if !html {
        return Some(body.to_string());
    }
    let lower = body.to_ascii_lowercase();
    let mut out = String::new();
    let mut found = false;
    let mut at = 0;
    while let Some(open) = lower[at..].find("<pre") {
        let open = at + open;
        let Some(gt) = lower[open..].find('>') else {
            break;
        };
        let start = open + gt + 1;
        let end = lower[start..]
            .find("</pre>")
            .map(|e| start + e)
            .unwrap_or(body.len());
        found = true;
        let text = unescape(&strip_tags(&body[start..end]));
        // The log server separates log types with a `<pre>` of two newlines.
        if !text.trim().is_empty() {
            out.push_str(&text);
        }
        at = end;
    }
    found.then_some(out)
}

/// What a page without log text says: its last heading (the first is the page's title in
/// the header of every Hadoop page).
pub fn page_message(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let open = lower.rfind("<h1")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</h1>")?;
    let text = unescape(&strip_tags(&body[start..end]));
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// HTML character references: the named ones Hadoop's pages use, and numeric ones.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let semi = rest
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .map(|(i, _)| i);
        let Some(semi) = semi else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `<link>/<file>?start=0`: the whole of one log file behind a container-logs link (the
/// NodeManager's, or the log server's aggregated one).
pub fn file_url(link: &str, file: &str) -> String {
    format!("{}/{file}?start=0", link.trim_end_matches('/'))
}

/// The log server's aggregated-logs link of a container: what the NodeManager redirects to,
/// `<yarn.log.server.url>/<node id>/<container>/<container>/<user>`.
pub fn aggregated_link(log_server: &str, node_id: &str, container: &str, user: &str) -> String {
    format!(
        "{}/{node_id}/{container}/{container}/{user}",
        log_server.trim_end_matches('/')
    )
}

/// The container id in a container-logs link (`…/containerlogs/<container>/<user>`).
pub fn container_of(link: &str) -> Option<&str> {
    link.split('/').find(|p| p.starts_with("container_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_log_out_of_nodemanager_and_log_server_pages() {
        let nm = "<html><head><title>Logs for container_1</title></head><body>\
            <p>Showing 4096 bytes. Click <a href=\"/x?start=0\">here</a> for full log</p>\
            <pre>24/11/14 INFO a &lt;b&gt; &amp; c\nline two\n</pre></body></html>";
        assert_eq!(
            log_text(nm, Some("text/html; charset=utf-8")).as_deref(),
            Some("24/11/14 INFO a <b> & c\nline two\n")
        );
        let jhs = "<p>Log Type: stdout</p><p>Log Upload Time: Thu Nov 14 10:05:01 +0000 2024</p>\
            <p>Log Length: 24</p><pre>Pi is roughly 3.14159\n</pre><pre>\n\n</pre>\
            <p>Log Type: stderr</p><pre>err &#39;x&#39; &#x41;\n</pre>";
        assert_eq!(
            log_text(jhs, None).as_deref(),
            Some("Pi is roughly 3.14159\nerr 'x' A\n")
        );
        let missing = "<html><body><div id=\"header\"><h1>Logs for container_1</h1></div>\
            <h1>Logs not available for container_1. Aggregation may \
            not be complete, Check back later or try the nodemanager at nm1:8042</h1></body></html>";
        assert_eq!(log_text(missing, Some("text/html")), None);
        assert_eq!(
            page_message(missing).as_deref(),
            Some(
                "Logs not available for container_1. Aggregation may not be complete, Check back \
                 later or try the nodemanager at nm1:8042"
            )
        );
        assert_eq!(
            log_text("plain log\n", Some("text/plain")).as_deref(),
            Some("plain log\n")
        );
    }

    #[test]
    fn unescapes_only_real_references() {
        assert_eq!(
            unescape("a &amp;&amp; b &unknown; & c"),
            "a && b &unknown; & c"
        );
        assert_eq!(unescape("&#8364;&#x20AC;"), "€€");
    }

    #[test]
    fn builds_log_links() {
        let nm = "http://nm1.example.com:8042/node/containerlogs/container_1700000000000_0001_01_000001/alice";
        assert_eq!(file_url(nm, "stderr"), format!("{nm}/stderr?start=0"));
        assert_eq!(
            container_of(nm),
            Some("container_1700000000000_0001_01_000001")
        );
        assert_eq!(
            aggregated_link(
                "http://jhs:19888/jobhistory/logs/",
                "nm1.example.com:45454",
                "container_1_1_01_000001",
                "alice"
            ),
            "http://jhs:19888/jobhistory/logs/nm1.example.com:45454/container_1_1_01_000001/container_1_1_01_000001/alice"
        );
    }

    #[test]
    fn the_store_keeps_the_log_whole_and_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().join("east"));
        assert_eq!(store.kept("d"), None);
        store.write("d", "one\ntwo\n").unwrap();
        let kept = store.kept("d").expect("kept");
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "one\ntwo\n");
        assert!(!store.path("d", "log.tmp").exists());
        store.write_end("d", "kindling: ended");
        assert_eq!(store.read_end("d").as_deref(), Some("kindling: ended"));
    }
}
