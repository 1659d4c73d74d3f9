//! Running `spark-submit` in YARN cluster mode ([`super::command`] builds it): in cluster mode
//! the driver runs inside YARN's ApplicationMaster container, and with
//! `spark.yarn.submit.waitAppCompletion=false` the submitting JVM exits once YARN accepted the
//! application, so nothing of the driver runs on the Kindling node. The application id is read
//! from the submission's output, Hadoop's `YarnClientImpl: Submitted application
//! application_<ts>_<seq>` line.

use super::command::Submission;
use kindling_backend::is_app_id;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The application id in `spark-submit`'s output, once YARN accepted it
/// (`… YarnClientImpl: Submitted application application_1700000000000_0001`).
/// Spark's earlier `Submitting application … to ResourceManager` proves nothing.
pub fn submitted_app(output: &str) -> Option<String> {
    output.lines().find_map(|l| {
        let rest = l.split_once("Submitted application ")?.1;
        let id = rest.split_whitespace().next()?;
        is_app_id(id).then(|| id.to_string())
    })
}

/// The line of a failed `spark-submit`'s output that says why: the exception that ended it,
/// else the last error line, else the last lines.
pub fn failure_summary(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let pick = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("Exception in thread"))
        .or_else(|| lines.iter().rev().find(|l| l.contains(" ERROR ")))
        .or_else(|| {
            lines
                .iter()
                .rev()
                .find(|l| l.contains("Exception:") || l.starts_with("Error:"))
        })
        .map(|l| l.to_string())
        .unwrap_or_else(|| {
            let tail = lines.len().saturating_sub(3);
            lines[tail..].join(" | ")
        });
    let cut: String = pick.chars().take(1000).collect();
    if cut.is_empty() {
        "it printed nothing".into()
    } else {
        cut
    }
}

/// How one run of `spark-submit` went.
#[derive(Debug)]
pub struct Outcome {
    /// `None` when it was stopped (timeout) or killed by a signal.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub output: String,
}

/// Runs `spark-submit` with its output in `log`, for at most `timeout`; the properties file
/// (mode 0600) exists only while it runs.
pub async fn run(
    spark_home: &Path,
    sub: &Submission,
    properties_file: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<Outcome, String> {
    let spark_submit = spark_home.join("bin/spark-submit");
    if let Some(text) = &sub.properties {
        kindling_backend::spark_properties::write_private(properties_file, text)
            .map_err(|e| format!("cannot write {}: {e}", properties_file.display()))?;
    }
    let result = run_child(&spark_submit, sub, log, timeout).await;
    if sub.properties.is_some() {
        let _ = std::fs::remove_file(properties_file);
    }
    result
}

async fn run_child(
    spark_submit: &Path,
    sub: &Submission,
    log: &Path,
    timeout: Duration,
) -> Result<Outcome, String> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let out =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(spark_submit)
        .args(&sub.args)
        .envs(&sub.env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", spark_submit.display()))?;
    let pid = child.id().map(|p| p as i32);
    let (exit_code, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => (status.code(), false),
        Ok(Err(e)) => return Err(format!("cannot wait for spark-submit: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: signals spark-submit's own process group (it was started as its
                // leader), which holds nothing but that submission.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = child.wait().await;
            (None, true)
        }
    };
    let output = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ok(Outcome {
        exit_code,
        timed_out,
        output,
    })
}

/// Creates (or replaces) a file only its owner can read.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_application_id_only_once_yarn_accepted_it() {
        let out = "24/11/14 10:00:02 INFO Client: Submitting application application_1700000000000_0001 to ResourceManager\n\
                   24/11/14 10:00:02 INFO YarnClientImpl: Submitted application application_1700000000000_0001\n";
        assert_eq!(
            submitted_app(out).as_deref(),
            Some("application_1700000000000_0001")
        );
        assert_eq!(
            submitted_app("INFO Client: Submitted application application_1_2").as_deref(),
            Some("application_1_2")
        );
        assert_eq!(
            submitted_app(
                "INFO Client: Submitting application application_1700000000000_0001 to ResourceManager"
            ),
            None
        );
    }

    #[test]
    fn a_failure_is_summed_up_by_the_exception_that_ended_it() {
        let out = "24/11/14 10:00:02 INFO Client: Submitting application application_1_3 to ResourceManager\n\
            Exception in thread \"main\" org.apache.hadoop.yarn.exceptions.YarnException: Failed to submit application_1_3 to YARN : Application application_1_3 submitted by user alice to unknown queue: nosuchqueue\n\
            \tat org.apache.hadoop.yarn.client.api.impl.YarnClientImpl.submitApplication(YarnClientImpl.java:336)\n";
        assert!(failure_summary(out).ends_with("to unknown queue: nosuchqueue"));
        assert_eq!(failure_summary(""), "it printed nothing");
        assert_eq!(failure_summary("a\nb\nc\nd\n"), "b | c | d");
    }
}
