//! Before loading anything: may this process load eBPF programs, is tracefs
//! there, does the kernel have every tracepoint muxtrace attaches to. A
//! missing piece is one sentence naming it, not a load or attach error.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use crate::{
    error::{Result, UserError},
    tracepoints::attach_points,
};

/// Overrides where tracefs is looked for. For unusual mounts, and for tests
/// that need a tracefs with a tracepoint missing.
pub const TRACEFS_ENV: &str = "MUXTRACE_TRACEFS";

const DEFAULT_MOUNT: &str = "/sys/kernel/tracing";
const DEBUGFS_MOUNT: &str = "/sys/kernel/debug/tracing";

pub fn check_privileges() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    if has(CAP_BPF) && has(CAP_PERFMON) {
        return Ok(());
    }
    Err(UserError::usage(
        "muxtrace needs root, or CAP_BPF and CAP_PERFMON, to load its eBPF programs",
    )
    .hint("run it with sudo: sudo -E muxtrace ..."))
}

/// The tracefs root (the directory holding `events/`).
pub fn locate_tracefs() -> Result<PathBuf> {
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
    for point in attach_points() {
        let dir = root
            .join("events")
            .join(point.category)
            .join(&point.tracepoint);
        if !dir.join("format").is_file() {
            let hint = if point.category == "syscalls" {
                "syscall tracepoints need a kernel built with CONFIG_FTRACE_SYSCALLS"
            } else {
                "scheduler tracepoints are part of every kernel with CONFIG_TRACING"
            };
            return Err(UserError::runtime(format!(
                "the kernel has no tracepoint {}:{} ({}); muxtrace needs it {}",
                point.category,
                point.tracepoint,
                dir.display(),
                point.why
            ))
            .hint(hint));
        }
    }
    Ok(())
}
