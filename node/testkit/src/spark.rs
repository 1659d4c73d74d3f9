//! Spark homes for tests: the project venv's real pyspark (`ops/dev/install-spark` makes it),
//! and a stand-in whose `spark-submit` is a short shell program, for tests of Kindling's own
//! bookkeeping where Spark itself is not what is checked; and the small Python driver the
//! backends' conformance suite runs on real Spark.

use std::path::{Path, PathBuf};

/// The project's venv (ops/dev/install-spark creates it).
pub fn venv() -> PathBuf {
    std::env::var_os("KINDLING_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/kindling/venv")
        })
}

/// The real Spark home: pyspark in the project venv.
pub fn real_spark_home() -> PathBuf {
    let lib = venv().join("lib");
    std::fs::read_dir(&lib)
        .expect("the project venv exists (run ops/dev/install-spark)")
        .flatten()
        .map(|e| e.path().join("site-packages/pyspark"))
        .find(|p| p.join("bin/spark-submit").exists())
        .expect("pyspark is installed in the project venv")
}

/// A stand-in Spark home whose `spark-submit` is a short shell program: it prints its
/// arguments and a line, then exits with the code named by the last argument
/// (`exit=N`), after `sleep=S` seconds if given. For tests of the node's bookkeeping
/// (replay, restart, queueing), where Spark itself is not what is checked.
pub fn fake_spark_home(dir: &Path) -> PathBuf {
    let home = dir.join("fake-spark");
    std::fs::create_dir_all(home.join("bin")).unwrap();
    let script = r#"#!/bin/sh
echo "fake spark-submit $*"
code=0
for a in "$@"; do
  case "$a" in
    exit=*) code="${a#exit=}" ;;
    sleep=*) sleep "${a#sleep=}" ;;
  esac
done
echo "application finished with $code"
exit "$code"
"#;
    let path = home.join("bin/spark-submit");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    home
}

/// Writes a program (PySpark or plain Python) to `dir/name` and returns its path.
pub fn program(dir: &Path, name: &str, code: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, code).unwrap();
    p.display().to_string()
}

/// The driver of the backends' conformance suite, for clusters that run real Spark: a Python
/// program (no SparkSession, so it costs one driver JVM and nothing more) that prints its
/// first argument on a line, waits for the file its third argument names (`-`: none) to
/// exist, then exits with its second. It gives up waiting, and exits, once the file's
/// directory is gone: a test that failed leaves no driver behind when its directory goes.
pub fn conformance_driver(dir: &Path) -> PathBuf {
    let path = dir.join("conformance_driver.py");
    std::fs::write(
        &path,
        r#"import os
import sys
import time

line, code, release = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print(line, flush=True)
while release != "-" and not os.path.exists(release):
    if not os.path.isdir(os.path.dirname(release)):
        break
    time.sleep(0.1)
sys.exit(code)
"#,
    )
    .unwrap();
    path
}

/// The arguments of [`conformance_driver`]: print `line`, then exit with `code`, once `release`
/// exists if one is given.
pub fn conformance_args(line: &str, code: i32, release: Option<&Path>) -> Vec<String> {
    vec![
        line.to_string(),
        code.to_string(),
        release.map_or_else(|| "-".to_string(), |p| p.display().to_string()),
    ]
}
