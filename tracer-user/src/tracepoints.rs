//! The one table of what muxtrace attaches to: every tracepoint, the program
//! attached there, and why muxtrace needs it. Attaching and the preflight
//! check both read it, so they cannot disagree.
//!
//! All are BTF-typed tracepoints (`tp_btf`): the two raw syscall tracepoints
//! see every syscall and dispatch on its number, so one pair of programs
//! measures every call, and detaching takes milliseconds.

/// Prefix of every program name: how our programs are recognised in the
/// kernel's program list (names are cut to 15 characters there).
pub const PROGRAM_PREFIX: &str = "mux_";

/// The object's empty programs and their tracepoints: the bench's floor
/// ([`crate::EmptyPrograms`]), never attached by muxtrace itself. The
/// syscall pair first: alone, the floor of the per-call bench.
pub const FLOOR_PROGRAMS: [(&str, &str); 8] = [
    ("floor_sys_enter", "sys_enter"),
    ("floor_sys_exit", "sys_exit"),
    ("floor_sched_switch", "sched_switch"),
    ("floor_sched_wakeup", "sched_wakeup"),
    ("floor_sched_fork", "sched_process_fork"),
    ("floor_sched_exec", "sched_process_exec"),
    ("floor_sched_exit", "sched_process_exit"),
    ("floor_signal_deliver", "signal_deliver"),
];

/// The object's empty program muxtrace loads but never attaches: run while
/// the kernel's run-time accounting is on, its accounted time is the
/// accounting's own per run, which the own-cost figure takes out.
pub const ACCOUNTING_PROGRAM: &str = "mux_accounting";

/// How many of [`FLOOR_PROGRAMS`] sit on the raw syscall tracepoints.
pub const FLOOR_SYSCALL_PROGRAMS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachPoint {
    /// The tracepoint, as the kernel's BTF names it (`btf_trace_<name>`).
    pub tracepoint: &'static str,
    /// The program's name in the eBPF object.
    pub program: &'static str,
    /// Why muxtrace needs it, for the error when the kernel lacks it.
    pub why: &'static str,
    /// The program attached instead when muxtrace runs in a pid namespace,
    /// if it differs (one that translates pids; the host's stays lean).
    pub in_pidns: Option<&'static str>,
}

impl AttachPoint {
    /// The program to attach here, in a pid namespace or not.
    pub fn program(&self, in_pidns: bool) -> &'static str {
        match (in_pidns, self.in_pidns) {
            (true, Some(program)) => program,
            _ => self.program,
        }
    }
}

pub const ATTACH_POINTS: [AttachPoint; 8] = [
    AttachPoint {
        tracepoint: "sys_enter",
        program: "mux_sys_enter",
        why: "to see each measured syscall start, with its arguments",
        in_pidns: Some("mux_sys_enter_ns"),
    },
    AttachPoint {
        tracepoint: "sys_exit",
        program: "mux_sys_exit",
        why: "to see each measured syscall return, with its result",
        in_pidns: None,
    },
    AttachPoint {
        tracepoint: "sched_switch",
        program: "mux_sched_switch",
        why: "to split wait time into on- and off-CPU",
        in_pidns: None,
    },
    AttachPoint {
        tracepoint: "sched_wakeup",
        program: "mux_sched_wakeup",
        why: "to count wakeups of blocked threads",
        in_pidns: None,
    },
    AttachPoint {
        tracepoint: "sched_process_fork",
        program: "mux_sched_fork",
        why: "to follow children (--follow, --comm)",
        in_pidns: None,
    },
    AttachPoint {
        tracepoint: "sched_process_exec",
        program: "mux_sched_exec",
        why: "to pick up processes by name (--comm)",
        in_pidns: None,
    },
    AttachPoint {
        tracepoint: "sched_process_exit",
        program: "mux_sched_exit",
        why: "to notice when traced threads exit",
        in_pidns: None,
    },
    AttachPoint {
        tracepoint: "signal_deliver",
        program: "mux_signal_deliver",
        why: "to tell a call a signal interrupted (EINTR) from one the kernel restarted",
        in_pidns: None,
    },
];

/// The io_uring tracepoints: attached where the kernel has them (a kernel
/// built without io_uring has none, and nothing to trace there).
pub const URING_POINTS: [AttachPoint; 4] = [
    AttachPoint {
        tracepoint: "io_uring_submit_req",
        program: "mux_uring_submit",
        why: "to see each io_uring request submitted",
        in_pidns: None,
    },
    AttachPoint {
        tracepoint: "io_uring_poll_arm",
        program: "mux_uring_poll",
        why: "to see io_uring requests wait in an internal poll",
        in_pidns: None,
    },
    AttachPoint {
        tracepoint: "io_uring_queue_async_work",
        program: "mux_uring_async",
        why: "to see io_uring requests punted to io-wq workers",
        in_pidns: None,
    },
    AttachPoint {
        tracepoint: "io_uring_complete",
        program: "mux_uring_complete",
        why: "to see each io_uring completion, with its result",
        in_pidns: None,
    },
];

/// Attached with `--cgroup` only: processes moved into a cgroup.
pub const CGROUP_POINTS: [AttachPoint; 1] = [AttachPoint {
    tracepoint: "cgroup_attach_task",
    program: "mux_cgroup_attach",
    why: "to see processes moved into the cgroup (--cgroup)",
    in_pidns: None,
}];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The table and the eBPF object name the same programs: one the table
    /// forgets would never be attached, one it invents fails at attach.
    #[test]
    fn the_table_names_exactly_the_programs_in_the_object() {
        let object = aya_obj::Object::parse(crate::probes::EBPF_OBJECT).expect("the eBPF object");
        let in_object: BTreeSet<&str> = object
            .programs
            .keys()
            .map(String::as_str)
            .filter(|p| !FLOOR_PROGRAMS.iter().any(|(floor, _)| p == floor))
            .filter(|p| *p != ACCOUNTING_PROGRAM)
            .collect();
        let in_table: BTreeSet<&str> = ATTACH_POINTS
            .iter()
            .chain(&URING_POINTS)
            .chain(&CGROUP_POINTS)
            .flat_map(|p| [Some(p.program), p.in_pidns])
            .flatten()
            .collect();
        assert_eq!(in_object, in_table);
        assert!(in_table.iter().all(|p| p.starts_with(PROGRAM_PREFIX)));
    }

    /// Every empty program sits where muxtrace's own do, and every one of
    /// [`ATTACH_POINTS`] has one: the floor is where muxtrace pays.
    #[test]
    fn the_floor_covers_exactly_the_attach_points() {
        let object = aya_obj::Object::parse(crate::probes::EBPF_OBJECT).expect("the eBPF object");
        let floor: BTreeSet<&str> = FLOOR_PROGRAMS.iter().map(|(_, t)| *t).collect();
        let points: BTreeSet<&str> = ATTACH_POINTS.iter().map(|p| p.tracepoint).collect();
        assert_eq!(floor, points);
        assert!(FLOOR_PROGRAMS
            .iter()
            .all(|(program, _)| object.programs.contains_key(*program)));
        assert!(FLOOR_PROGRAMS[..FLOOR_SYSCALL_PROGRAMS]
            .iter()
            .all(|(_, t)| t.starts_with("sys_")));
    }
}
