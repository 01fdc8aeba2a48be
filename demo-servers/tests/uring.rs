//! What only the io_uring server must show: where io_uring is refused, it
//! says so in one sentence and exits 1 before listening (no panic).

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::*;

/// `AUDIT_ARCH_X86_64` from <linux/audit.h>: the filter checks the
/// architecture before trusting the syscall number.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;

/// Installs, in the child about to exec, a seccomp filter under which
/// `io_uring_setup` fails with EPERM — what Docker's default profile and
/// many sandboxes do. Only async-signal-safe calls: it runs after fork.
#[cfg(target_arch = "x86_64")]
fn forbid_io_uring_setup() -> std::io::Result<()> {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut filter = [
        stmt(load, 4), // seccomp_data.arch
        jeq(AUDIT_ARCH, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(load, 0), // seccomp_data.nr
        jeq(libc::SYS_io_uring_setup as u32, 0, 1),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl with a live filter program; no_new_privs first, so the
    // filter needs no privilege.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[test]
#[cfg(target_arch = "x86_64")]
fn a_refused_io_uring_is_one_sentence_and_exit_1() {
    for model in ECHO_MODELS.into_iter().filter(|m| m.bin == "echo-uring") {
        let mut cmd = Command::new(bin(&model));
        cmd.args(model.args).args(["--listen", "127.0.0.1:0"]);
        // SAFETY: the hook only builds a filter on the stack and calls prctl.
        unsafe { cmd.pre_exec(forbid_io_uring_setup) };
        let out = cmd.output().unwrap();
        let label = model.label;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{label}: {stderr}");
        assert!(
            stderr.starts_with("echo-uring: io_uring is not available")
                && stderr.contains("Operation not permitted"),
            "{label}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{label}: {stderr}");
        assert!(out.stdout.is_empty(), "{label}: it listened anyway");
    }
}
