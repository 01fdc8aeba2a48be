//! Before loading anything: may this process load eBPF programs, does the
//! kernel have every tracepoint muxtrace attaches to. A missing piece is one
//! sentence naming it, not a load or attach error.

use crate::{
    btf::KernelBtf,
    error::{Result, UserError},
    tracepoints::{AttachPoint, ATTACH_POINTS, CGROUP_POINTS},
};

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
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|(cap, _)| !has(*cap))
        .map(|(_, name)| name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(UserError::usage(format!(
        "loading the eBPF programs needs root, or CAP_BPF and CAP_PERFMON; this process lacks {}",
        missing.join(" and ")
    ))
    .hint("run it with sudo (sudo -E muxtrace ...), or grant the capabilities: setcap cap_bpf,cap_perfmon+ep muxtrace"))
}

/// Fails with the first missing tracepoint, named, with why muxtrace needs it.
/// `cgroup`: the `--cgroup` tracepoint too.
pub fn check_tracepoints(btf: &KernelBtf, cgroup: bool) -> Result<()> {
    let cgroup_points: &[AttachPoint] = if cgroup { &CGROUP_POINTS } else { &[] };
    for point in ATTACH_POINTS.iter().chain(cgroup_points) {
        if !btf.has_tracepoint(point.tracepoint) {
            return Err(UserError::runtime(format!(
                "the kernel has no tracepoint {} (no btf_trace_{} in {}); muxtrace needs it {}",
                point.tracepoint,
                point.tracepoint,
                btf.path.display(),
                point.why
            ))
            .hint("muxtrace needs Linux 5.5 or later with CONFIG_DEBUG_INFO_BTF=y and tracing enabled"));
        }
    }
    Ok(())
}
