//! A driver's processes on this machine: whether its process group still runs, the exit code
//! its wrapper left in the driver's directory, and finding the group again through `/proc` by
//! the tag in its environment.

use std::path::Path;

pub(crate) fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    if r != 0 {
        return false;
    }
    // A zombie (exited, not yet reaped by its parent) counts as ended.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                != Some('Z')
        })
        .unwrap_or(false)
}

/// Whether any process of the group led by `pgid` still runs.
pub(crate) fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 to a process group only checks that a member exists.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

pub(crate) fn read_exit_code(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("exit-code"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The process-group leader whose environment carries this driver's tag, if one runs.
pub(crate) fn find_process(tag: &str) -> Option<i32> {
    let needle = format!("KINDLING_DRIVER={tag}");
    let mut found = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            // SAFETY: getpgid has no memory effects.
            let pgid = unsafe { libc::getpgid(pid) };
            if pgid == pid && alive(pid) {
                return Some(pid);
            }
            found.get_or_insert(pgid);
        }
    }
    found.filter(|p| *p > 0 && alive(*p))
}
