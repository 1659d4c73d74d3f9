//! The local backend against the real `spark-submit` of the project venv's pyspark
//! (`ops/dev/install-spark`): drivers are child processes of the test, in process groups of
//! their own. Tests that start Spark run one at a time (the `spark` test group of
//! `.config/nextest.toml`). Waits are on observable state with deadlines.

mod conformance;
