//! Finding tracefs, checking that every tracepoint muxtrace attaches to
//! exists, and reading record layouts from the format files.
//!
//! All of this happens before anything is loaded, so a missing piece is
//! reported as one sentence naming it instead of a load or attach error.

use std::{
    ffi::CString,
    fs,
    path::{Path, PathBuf},
};

use tracer_common::SyscallKind;

use crate::error::{Result, UserError};

/// Overrides where tracefs is looked for. For unusual mounts, and for tests
/// that need a tracefs with a tracepoint missing.
pub const TRACEFS_ENV: &str = "MUXTRACE_TRACEFS";

const DEFAULT_MOUNT: &str = "/sys/kernel/tracing";
const DEBUGFS_MOUNT: &str = "/sys/kernel/debug/tracing";

/// Every tracepoint muxtrace attaches to, as (category, name, why).
pub fn required_tracepoints() -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for kind in SyscallKind::ALL {
        let name = kind.name();
        for dir in ["enter", "exit"] {
            all.push((
                "syscalls".to_owned(),
                format!("sys_{dir}_{name}"),
                format!("to measure {name} calls"),
            ));
        }
    }
    all.push((
        "syscalls".to_owned(),
        "sys_enter_close".to_owned(),
        "to forget closed epoll fds".to_owned(),
    ));
    for (name, why) in [
        ("sched_switch", "to split wait time into on- and off-CPU"),
        ("sched_wakeup", "to count wakeups of blocked threads"),
        (
            "sched_process_fork",
            "to follow children (--follow, --comm)",
        ),
        (
            "sched_process_exec",
            "to pick up processes by name (--comm)",
        ),
        ("sched_process_exit", "to notice when traced threads exit"),
    ] {
        all.push(("sched".to_owned(), name.to_owned(), why.to_owned()));
    }
    all
}

/// The tracefs root (the directory holding `events/`).
pub fn locate() -> Result<PathBuf> {
    if let Some(root) = std::env::var_os(TRACEFS_ENV) {
        let root = PathBuf::from(root);
        if root.join("events").is_dir() {
            return Ok(root);
        }
        return Err(UserError::runtime(format!(
            "tracefs is not mounted at {} ({TRACEFS_ENV})",
            root.display()
        ))
        .hint(format!(
            "mount it with: mount -t tracefs tracefs {}",
            root.display()
        )));
    }
    for root in [DEFAULT_MOUNT, DEBUGFS_MOUNT] {
        if Path::new(root).join("events").is_dir() {
            return Ok(PathBuf::from(root));
        }
    }
    // Root can mount it; that is what a user would do by hand anyway.
    if mount_tracefs(DEFAULT_MOUNT) && Path::new(DEFAULT_MOUNT).join("events").is_dir() {
        log::info!("mounted tracefs at {DEFAULT_MOUNT}");
        return Ok(PathBuf::from(DEFAULT_MOUNT));
    }
    Err(
        UserError::runtime(format!("tracefs is not mounted at {DEFAULT_MOUNT}")).hint(format!(
            "mount it with: sudo mount -t tracefs tracefs {DEFAULT_MOUNT}"
        )),
    )
}

fn mount_tracefs(target: &str) -> bool {
    let (Ok(src), Ok(dst), Ok(fstype)) = (
        CString::new("tracefs"),
        CString::new(target),
        CString::new("tracefs"),
    ) else {
        return false;
    };
    // SAFETY: all pointers are valid NUL-terminated strings; data is NULL.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    rc == 0
}

/// Fails with the first missing tracepoint, named, with why muxtrace needs it.
pub fn check_tracepoints(root: &Path) -> Result<()> {
    for (category, name, why) in required_tracepoints() {
        let dir = root.join("events").join(&category).join(&name);
        if !dir.join("format").is_file() {
            let hint = if category == "syscalls" {
                "syscall tracepoints need a kernel built with CONFIG_FTRACE_SYSCALLS"
            } else {
                "scheduler tracepoints are part of every kernel with CONFIG_TRACING"
            };
            return Err(UserError::runtime(format!(
                "the kernel has no tracepoint {category}:{name} ({}); muxtrace needs it {why}",
                dir.display()
            ))
            .hint(hint));
        }
    }
    Ok(())
}

/// Byte offset of `field` in a tracepoint record, from its format file.
pub fn field_offset(root: &Path, category: &str, name: &str, field: &str) -> Result<Option<u32>> {
    let path = root.join("events").join(category).join(name).join("format");
    let text = fs::read_to_string(&path)
        .map_err(|e| UserError::runtime(format!("cannot read {}: {e}", path.display())))?;
    Ok(parse_field_offset(&text, field))
}

/// Parses lines like `field:pid_t prev_pid; offset:24; size:4; signed:1;`
/// (tab-separated in the file).
pub fn parse_field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let line = line.trim();
        let decl = line.strip_prefix("field:")?.split(';').next()?;
        let name = decl.split_whitespace().last()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        let offset = line.split("offset:").nth(1)?.split(';').next()?;
        offset.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = "name: sched_switch
ID: 372
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:char prev_comm[16];	offset:8;	size:16;	signed:0;
	field:pid_t prev_pid;	offset:24;	size:4;	signed:1;
	field:char next_comm[16];	offset:40;	size:16;	signed:0;
	field:pid_t next_pid;	offset:56;	size:4;	signed:1;
";

    #[test]
    fn offsets_from_format() {
        assert_eq!(parse_field_offset(SWITCH, "prev_pid"), Some(24));
        assert_eq!(parse_field_offset(SWITCH, "next_pid"), Some(56));
        assert_eq!(parse_field_offset(SWITCH, "next_comm"), Some(40));
        assert_eq!(parse_field_offset(SWITCH, "group_dead"), None);
    }

    #[test]
    fn every_syscall_has_both_tracepoints() {
        let all = required_tracepoints();
        assert_eq!(all.len(), 2 * SyscallKind::ALL.len() + 1 + 5);
        assert!(all.iter().any(|(_, n, _)| n == "sys_exit_epoll_pwait2"));
    }
}
