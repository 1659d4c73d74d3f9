//! Kindling's Python runner, shipped inside the binary and written next to the data at
//! start, with the driver-link `.proto` it loads at run time.

use std::path::{Path, PathBuf};

const RUNNER: &str = include_str!("../../runner/kindling_runner.py");

/// Writes the runner and its proto under `dir`; returns the runner's path.
pub fn install(dir: &Path) -> std::io::Result<PathBuf> {
    let proto_dir = dir.join("kindling/driver/v1");
    std::fs::create_dir_all(&proto_dir)?;
    std::fs::write(proto_dir.join("driver.proto"), kindling_proto::DRIVER_PROTO)?;
    let runner = dir.join("kindling_runner.py");
    std::fs::write(&runner, RUNNER)?;
    Ok(runner)
}
