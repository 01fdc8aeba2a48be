//! The one table of what muxtrace attaches to: every tracepoint, the program
//! attached there, and why muxtrace needs it. Attaching and the preflight
//! check both read it, so they cannot disagree.

use tracer_common::SyscallKind;

/// Prefix of every program name: how our programs are recognised in the
/// kernel's program list (names are cut to 15 characters there).
pub const PROGRAM_PREFIX: &str = "mux_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachPoint {
    /// tracefs category: `syscalls` or `sched`.
    pub category: &'static str,
    pub tracepoint: String,
    /// The program's name in the eBPF object.
    pub program: String,
    /// Why muxtrace needs it, for the error when the kernel lacks it.
    pub why: String,
}

/// Every attach point, syscall pairs first.
pub fn attach_points() -> Vec<AttachPoint> {
    let mut points = Vec::new();
    for kind in SyscallKind::ALL {
        let name = kind.name();
        for (side, short) in [("enter", "in"), ("exit", "out")] {
            points.push(AttachPoint {
                category: "syscalls",
                tracepoint: format!("sys_{side}_{name}"),
                program: format!("{PROGRAM_PREFIX}{short}_{name}"),
                why: format!("to measure {name} calls"),
            });
        }
    }
    let fixed: [(&str, &str, &str, &str); 6] = [
        (
            "syscalls",
            "sys_enter_close",
            "in_close",
            "to forget closed epoll fds and sockets",
        ),
        (
            "sched",
            "sched_switch",
            "sched_switch",
            "to split wait time into on- and off-CPU",
        ),
        (
            "sched",
            "sched_wakeup",
            "sched_wakeup",
            "to count wakeups of blocked threads",
        ),
        (
            "sched",
            "sched_process_fork",
            "sched_fork",
            "to follow children (--follow, --comm)",
        ),
        (
            "sched",
            "sched_process_exec",
            "sched_exec",
            "to pick up processes by name (--comm)",
        ),
        (
            "sched",
            "sched_process_exit",
            "sched_exit",
            "to notice when traced threads exit",
        ),
    ];
    for (category, tracepoint, program, why) in fixed {
        points.push(AttachPoint {
            category,
            tracepoint: tracepoint.to_owned(),
            program: format!("{PROGRAM_PREFIX}{program}"),
            why: why.to_owned(),
        });
    }
    points
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_syscall_has_both_tracepoints() {
        let all = attach_points();
        assert_eq!(all.len(), 2 * SyscallKind::ALL.len() + 6);
        assert!(all.iter().any(|p| p.tracepoint == "sys_exit_epoll_pwait2"));
    }

    /// The table and the eBPF object name the same programs: one the table
    /// forgets would never be attached, one it invents fails at attach.
    #[test]
    fn the_table_names_exactly_the_programs_in_the_object() {
        let object = aya_obj::Object::parse(crate::probes::EBPF_OBJECT).expect("the eBPF object");
        let in_object: BTreeSet<String> = object.programs.keys().cloned().collect();
        let in_table: BTreeSet<String> = attach_points().into_iter().map(|p| p.program).collect();
        assert_eq!(in_object, in_table);
        assert!(in_table.iter().all(|p| p.starts_with(PROGRAM_PREFIX)));
    }
}
