//! `--cgroup PATH`: the cgroup v2 directory it names, that cgroup's id and
//! depth as the programs compare them, and the processes in it and in the
//! cgroups below it now. The programs admit the later ones themselves.

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Component, Path, PathBuf},
};

use crate::error::{Result, UserError};

/// `statfs` type of a cgroup v2 filesystem, and of a v1 hierarchy.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;

/// A cgroup v2 directory, as the kernel identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// Its directory.
    pub dir: PathBuf,
    /// Its path inside the hierarchy (`/system.slice/nginx.service`), as
    /// /proc/PID/cgroup's `0::` line shows a process's.
    pub hierarchy_path: String,
    /// The id `bpf_get_current_cgroup_id` reports: the directory's inode.
    pub id: u64,
    /// Its depth below the root cgroup (the root's is 0).
    pub level: u32,
}

/// Finds the cgroup `arg` names: an absolute directory on a cgroup v2
/// filesystem, or a path below the cgroup v2 mount (`system.slice/x`, or
/// `/system.slice/x` as /proc/PID/cgroup shows it).
pub fn resolve(arg: &Path) -> Result<Cgroup> {
    let shown = arg.display();
    let mount = cgroup2_mount().ok_or_else(|| {
        UserError::usage(format!(
            "--cgroup {shown}: this machine has no cgroup v2 hierarchy mounted"
        ))
        .hint("mount one: mount -t cgroup2 none /sys/fs/cgroup")
    })?;
    let below_mount = fs::canonicalize(mount.join(arg.strip_prefix("/").unwrap_or(arg))).ok();
    // An absolute path on a cgroup filesystem is taken as it is; any other
    // is looked for below the mount.
    let as_given = match arg.is_absolute() {
        true => fs::canonicalize(arg).ok(),
        false => None,
    };
    let on_cgroupfs =
        |p: &PathBuf| matches!(fs_type(p), Some(CGROUP2_SUPER_MAGIC | CGROUP_SUPER_MAGIC));
    let Some(dir) = as_given
        .clone()
        .filter(on_cgroupfs)
        .or(below_mount)
        .or(as_given)
    else {
        return Err(UserError::usage(format!("no cgroup {shown}")).hint(format!(
            "cgroups are directories below {}; a process's is on the 0:: line of /proc/PID/cgroup",
            mount.display()
        )));
    };
    match fs_type(&dir) {
        Some(CGROUP2_SUPER_MAGIC) => {}
        Some(CGROUP_SUPER_MAGIC) => {
            return Err(UserError::usage(format!(
                "--cgroup {shown} is a cgroup v1 hierarchy's; muxtrace follows cgroup v2 only"
            ))
            .hint(format!(
                "give its cgroup v2 path, below {}",
                mount.display()
            )))
        }
        _ => {
            return Err(
                UserError::usage(format!("--cgroup {shown} is not a cgroup"))
                    .hint(format!("cgroups are directories below {}", mount.display())),
            )
        }
    }
    let meta = fs::metadata(&dir)
        .map_err(|e| UserError::usage(format!("cannot read cgroup {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(UserError::usage(format!(
            "--cgroup {shown} is a file of a cgroup, not a cgroup"
        ))
        .hint("give the cgroup's directory"));
    }
    let relative = dir.strip_prefix(&mount).map_err(|_| {
        UserError::usage(format!(
            "--cgroup {shown} is on a cgroup v2 filesystem mounted elsewhere than {}",
            mount.display()
        ))
        .hint(format!("give its path below {}", mount.display()))
    })?;
    let level = relative
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count() as u32;
    Ok(Cgroup {
        hierarchy_path: format!("/{}", relative.display()),
        dir,
        id: meta.ino(),
        level,
    })
}

/// Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or
/// /sys/fs/cgroup/unified on a hybrid machine), from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        // Fields: id parent dev root mount-point options … - fstype source …
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mount_point = before.split_whitespace().nth(4)?;
        fs::canonicalize(unescape_mountinfo(mount_point)).ok()
    })
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape_mountinfo(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn fs_type(path: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt as _;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs is plain integers: all zeroes is a value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid, writable statfs.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_type)
}

impl Cgroup {
    /// Every process in the cgroup and the cgroups below it now, but
    /// muxtrace itself, by pid.
    pub fn processes(&self) -> Vec<u32> {
        let own = std::process::id();
        let mut pids = Vec::new();
        let mut dirs = vec![self.dir.clone()];
        while let Some(dir) = dirs.pop() {
            // A cgroup removed while walked is simply not there.
            if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
            if let Ok(entries) = fs::read_dir(&dir) {
                dirs.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
        pids.retain(|&p| p != own);
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Whether process `pid` is in this cgroup or below it now (its
    /// /proc/PID/cgroup `0::` line).
    pub fn holds(&self, pid: u32) -> bool {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return false;
        };
        let Some(path) = text.lines().find_map(|l| l.strip_prefix("0::")) else {
            return false;
        };
        let base = self.hierarchy_path.trim_end_matches('/');
        path == self.hierarchy_path
            || path
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/a\\040b\\134c"), "/a b\\c");
    }

    /// The root cgroup: depth 0, and it holds this process.
    #[test]
    fn the_root_cgroup_holds_everyone() {
        let Some(mount) = cgroup2_mount() else {
            return;
        };
        let root = resolve(Path::new("/")).unwrap();
        assert_eq!(root.dir, mount);
        assert_eq!(root.level, 0);
        assert_eq!(root.hierarchy_path, "/");
        assert!(root.holds(std::process::id()));
        assert!(!root.processes().contains(&std::process::id()));
    }

    #[test]
    fn a_missing_cgroup_is_a_usage_error() {
        if cgroup2_mount().is_none() {
            return;
        }
        let e = resolve(Path::new("no-such-cgroup-muxtrace")).unwrap_err();
        assert_eq!(e.code, 2);
        assert_eq!(e.message, "no cgroup no-such-cgroup-muxtrace");
    }
}
