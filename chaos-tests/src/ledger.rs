//! The launch ledger: a Spark home whose `bin/spark-submit` appends one line per launch to a
//! ledger file, then runs a short real program. The ledger, not the cluster's own account,
//! is the source of truth for "at most one launch per (job, attempt)".
//!
//! One line per launch, tab-separated, written with a single `write(2)` on a file opened with
//! `O_APPEND` (the shell's `>>`), which Linux makes atomic for regular files: concurrent
//! launches from any node never interleave within a line.
//!
//! ```text
//! launch <epoch ms> <pid> <KINDLING_DRIVER> <KINDLING_JOB_ID> <KINDLING_ATTEMPT> <batch|session>
//! ```
//!
//! A batch sleeps for its `sleep_ms=N` argument (the workload draws it from the seed, 0.3 to
//! 3 s) and exits with its `exit=K` argument, after an `exit` line in the ledger. A session launch is handed to a real Spark
//! (`exec $REAL/bin/spark-submit`) when one is configured, because only Kindling's Python
//! runner inside Spark can answer statements; without one it fails at once. So is a batch
//! with the argument `spark=real` (a few per run): it runs [`SPARK_APP`], a real pyspark
//! program, on a local SparkSession, and exits with its `exit=K` argument only if Spark
//! computed the right answer.
//!
//! Statements record their own execution the same way: the code the workload sends appends
//! a unique token to the statement ledger when it runs.

pub use kindling_chaos_checker::ledger::{
    exits, parse, parse_statement_ledger, Exit, Launch, LedgerError,
};
use std::path::{Path, PathBuf};

const SCRIPT: &str = r#"#!/bin/sh
# kindling-chaos: the launch ledger's spark-submit. Appends one line per launch to the
# ledger (one write on an O_APPEND file: atomic), then runs a short real program.
ledger='@LEDGER@'
real='@REAL@'
kind=batch
if [ -n "${KINDLING_SESSION_KIND:-}" ]; then kind=session; fi
printf 'launch\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date +%s%3N)" "$$" "${KINDLING_DRIVER:-}" \
  "${KINDLING_JOB_ID:-}" "${KINDLING_ATTEMPT:-}" "$kind" >> "$ledger"
if [ "$kind" = session ]; then
  if [ -n "$real" ]; then
    SPARK_HOME="$real"; export SPARK_HOME
    exec "$real/bin/spark-submit" "$@"
  fi
  echo "kindling-chaos: this run has no real Spark for sessions" >&2
  exit 1
fi
sleep_ms=1000
code=0
for a in "$@"; do
  case "$a" in
    sleep_ms=*) sleep_ms="${a#sleep_ms=}" ;;
    exit=*) code="${a#exit=}" ;;
    spark=real)
      if [ -z "$real" ]; then
        echo "kindling-chaos: this run has no real Spark for Spark batches" >&2
        exit 1
      fi
      SPARK_HOME="$real"; export SPARK_HOME
      exec "$real/bin/spark-submit" "$@" ;;
  esac
done
echo "chaos batch: application local-$(date +%s%3N), sleeping ${sleep_ms} ms, then exit $code"
sleep "$((sleep_ms / 1000)).$(printf '%03d' $((sleep_ms % 1000)))"
printf 'exit\t%s\t%s\t%s\t%s\t%s\n' "$(date +%s%3N)" "$$" "${KINDLING_JOB_ID:-}" \
  "${KINDLING_ATTEMPT:-}" "$code" >> "$ledger"
exit "$code"
"#;

/// The real pyspark program of a `spark=real` batch: sums 1..=1000 on Spark in two tasks and
/// exits with its `exit=K` argument when the sum is right, with 3 when it is not (the checker
/// then sees the batch end other than its program should have).
pub const SPARK_APP: &str = r#"# A chaos Spark batch: a real job on a local SparkSession.
import sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("kindling-chaos").getOrCreate()
total = spark.sparkContext.parallelize(range(1, 1001), 2).sum()
print(f"chaos spark batch: sum = {total}")
spark.stop()
code = next((int(a[5:]) for a in sys.argv[1:] if a.startswith("exit=")), 0)
sys.exit(code if total == 500500 else 3)
"#;

/// The ledger's Spark home under `dir`: `dir/spark/bin/spark-submit`, writing to `ledger`.
/// Sessions and `spark=real` batches go to `real_spark` when given. Also writes the batch
/// programs that batches name as their file (the node checks that a local file exists):
/// `dir/app.py`, which the ledger never runs, and `dir/spark_app.py` ([`SPARK_APP`]).
pub fn create_spark_home(
    dir: &Path,
    ledger: &Path,
    real_spark: Option<&Path>,
) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    for p in [Some(ledger), real_spark].into_iter().flatten() {
        if p.to_string_lossy().contains('\'') {
            return Err(std::io::Error::other(format!(
                "{} contains a quote",
                p.display()
            )));
        }
    }
    let home = dir.join("spark");
    std::fs::create_dir_all(home.join("bin"))?;
    let script = SCRIPT
        .replace("@LEDGER@", &ledger.display().to_string())
        .replace(
            "@REAL@",
            &real_spark
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
    let path = home.join("bin/spark-submit");
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(
        dir.join("app.py"),
        "# A chaos batch: the ledger's spark-submit never runs this file.\n",
    )?;
    std::fs::write(spark_app_path(dir), SPARK_APP)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ledger)?;
    Ok(home)
}

/// The batch program's path for a ledger Spark home made in `dir`.
pub fn app_path(dir: &Path) -> PathBuf {
    dir.join("app.py")
}

/// The real Spark program's path for a ledger Spark home made in `dir`.
pub fn spark_app_path(dir: &Path) -> PathBuf {
    dir.join("spark_app.py")
}

/// The arguments a batch passes to the ledger's spark-submit.
pub fn batch_args(sleep_ms: u64, exit_code: i32) -> Vec<String> {
    vec![format!("sleep_ms={sleep_ms}"), format!("exit={exit_code}")]
}

/// The arguments of a batch that runs [`SPARK_APP`] on the real Spark.
pub fn spark_batch_args(exit_code: i32) -> Vec<String> {
    vec!["spark=real".into(), format!("exit={exit_code}")]
}

/// Python code for a statement that appends `token` to the statement ledger when it runs,
/// then evaluates to `6 * 7`.
pub fn statement_code(statement_ledger: &Path, token: &str) -> String {
    format!(
        "with open({:?}, 'a') as _kc:\n    _kc.write({:?} + '\\n')\n6 * 7",
        statement_ledger.display().to_string(),
        token
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_ledger_round_trip() {
        let code = statement_code(Path::new("/tmp/x"), "tok-1");
        assert!(code.contains("'a'") && code.contains("tok-1") && code.ends_with("6 * 7"));
    }

    /// The real script, run concurrently: every launch is one whole line, and each batch
    /// exits with the code it was given.
    #[test]
    fn concurrent_launches_never_tear_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.tsv");
        let home = create_spark_home(dir.path(), &ledger, None).unwrap();
        let submit = home.join("bin/spark-submit");
        let children: Vec<_> = (0..40u64)
            .map(|i| {
                let mut cmd = std::process::Command::new(&submit);
                cmd.args(["--master", "local[1]", "app.py"])
                    .args(batch_args(0, (i % 3) as i32))
                    .env("KINDLING_DRIVER", format!("c0ffee:kindling-{i}-1"))
                    .env("KINDLING_JOB_ID", i.to_string())
                    .env("KINDLING_ATTEMPT", "1")
                    .stdout(std::process::Stdio::null());
                spawn(&mut cmd)
            })
            .collect();
        for (i, mut c) in children.into_iter().enumerate() {
            assert_eq!(c.wait().unwrap().code(), Some((i % 3) as i32));
        }
        let (launches, errors) = parse(&std::fs::read_to_string(&ledger).unwrap());
        assert!(errors.is_empty(), "{errors:?}");
        let mut jobs: Vec<u64> = launches.iter().map(|l| l.job).collect();
        jobs.sort();
        assert_eq!(jobs, (0..40).collect::<Vec<_>>());
    }

    /// Spawns, retrying while another test thread's fork still holds the just-written
    /// script open for writing (ETXTBSY).
    fn spawn(cmd: &mut std::process::Command) -> std::process::Child {
        for _ in 0..100 {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => std::thread::yield_now(),
                r => return r.unwrap(),
            }
        }
        panic!("the script stayed busy")
    }

    /// Runs the ledger's spark-submit of a Spark home with no real Spark, as `configure` sets
    /// the command up; returns its exit code and the launches it recorded.
    fn without_real_spark(
        configure: impl FnOnce(&Path, &mut std::process::Command),
    ) -> (Option<i32>, Vec<Launch>) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.tsv");
        let home = create_spark_home(dir.path(), &ledger, None).unwrap();
        let mut cmd = std::process::Command::new(home.join("bin/spark-submit"));
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        configure(dir.path(), &mut cmd);
        let code = spawn(&mut cmd).wait().unwrap().code();
        let (launches, errors) = parse(&std::fs::read_to_string(&ledger).unwrap());
        assert!(errors.is_empty(), "{errors:?}");
        (code, launches)
    }

    #[test]
    fn a_spark_batch_without_real_spark_fails_after_recording() {
        let (code, l) = without_real_spark(|dir, cmd| {
            cmd.arg(spark_app_path(dir))
                .args(spark_batch_args(0))
                .env("KINDLING_DRIVER", "c0ffee:kindling-4-1");
        });
        assert_eq!(code, Some(1));
        assert_eq!((l[0].job, l[0].kind.as_str()), (4, "batch"));
    }

    /// A `spark=real` batch runs the program on the project's real pyspark
    /// (`ops/dev/install-spark`, which this installs if needed): Spark's sum is printed and
    /// the batch exits with the code it was given.
    #[test]
    fn a_spark_batch_runs_a_real_spark_job_and_exits_with_its_code() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let st = std::process::Command::new(root.join("ops/dev/install-spark"))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "ops/dev/install-spark failed");
        let real = kindling_testkit::spark::real_spark_home();
        let python = kindling_testkit::spark::venv().join("bin/python");
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.tsv");
        let home = create_spark_home(dir.path(), &ledger, Some(&real)).unwrap();
        let out = std::process::Command::new(home.join("bin/spark-submit"))
            .args(["--master", "local[2]", "--conf", "spark.ui.enabled=false"])
            .arg(spark_app_path(dir.path()))
            .args(spark_batch_args(5))
            .env("KINDLING_DRIVER", "c0ffee:kindling-9-1")
            .env("PYSPARK_PYTHON", &python)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(5),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("chaos spark batch: sum = 500500"),
            "{stdout}"
        );
        let (l, e) = parse(&std::fs::read_to_string(&ledger).unwrap());
        assert!(e.is_empty());
        assert_eq!((l.len(), l[0].job, l[0].kind.as_str()), (1, 9, "batch"));
    }

    #[test]
    fn a_session_without_real_spark_fails_after_recording() {
        let (code, l) = without_real_spark(|_, cmd| {
            cmd.env("KINDLING_DRIVER", "c0ffee:kindling-3-1")
                .env("KINDLING_SESSION_KIND", "pyspark");
        });
        assert_eq!(code, Some(1));
        assert_eq!((l[0].job, l[0].kind.as_str()), (3, "session"));
    }
}
