//! A CFS bandwidth cap for the server at saturation. On a 2-core machine the
//! single loadgen core is otherwise the bottleneck (the untraced server ran
//! at 84–86 % of its core), and a closed-loop ratio then mixes client and
//! server cost. Capped at half a core, the server's budget is what runs out:
//! every nanosecond a tracer adds to its syscalls costs messages.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// The server's share of one core at saturation.
pub const SHARE_PERCENT: u32 = 50;
/// Short periods keep the throttling fine-grained (5 ms of each 10 ms).
const PERIOD_US: u32 = 10_000;

/// A cgroup holding one process, removed when dropped.
pub struct CpuCap {
    dir: PathBuf,
}

impl CpuCap {
    /// Caps `pid` at [`SHARE_PERCENT`] of one core, with the cgroup v2 `cpu`
    /// controller or the v1 `cpu` hierarchy, whichever this machine has.
    pub fn apply(pid: u32) -> Result<CpuCap> {
        let quota = PERIOD_US / 100 * SHARE_PERCENT;
        let name = format!("muxtrace-bench-{}", std::process::id());
        for (root, v2) in [
            ("/sys/fs/cgroup/cpu", false),
            ("/sys/fs/cgroup/unified", true),
            ("/sys/fs/cgroup", true),
        ] {
            let root = Path::new(root);
            let usable = match v2 {
                false => root.join("cpu.cfs_quota_us").exists(),
                true => std::fs::read_to_string(root.join("cgroup.controllers"))
                    .is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu")),
            };
            if !usable {
                continue;
            }
            let dir = root.join(&name);
            if v2 {
                // The controller must be on for the parent's children.
                let _ = std::fs::write(root.join("cgroup.subtree_control"), "+cpu");
            }
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let cap = CpuCap { dir };
            match v2 {
                false => {
                    cap.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
                    cap.write("cpu.cfs_quota_us", &quota.to_string())?;
                }
                true => cap.write("cpu.max", &format!("{quota} {PERIOD_US}"))?,
            }
            cap.write("cgroup.procs", &pid.to_string())?;
            return Ok(cap);
        }
        bail!("no cgroup cpu controller to cap the server with")
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).with_context(|| format!("cannot write {}", path.display()))
    }
}

impl Drop for CpuCap {
    fn drop(&mut self) {
        // The server is stopped first; an emptied cgroup can be removed.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
