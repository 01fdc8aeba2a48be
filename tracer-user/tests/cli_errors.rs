//! Bad input gets one sentence, a hint and the documented exit code — never
//! a panic. Each case runs the real binary.
mod common;

use std::{path::Path, process::Command, time::Duration};

use common::*;

/// muxtrace's exit code, stdout and stderr; it must exit within a minute.
fn run(args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = Command::new(MUXTRACE);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (code, stdout, stderr) = finish(spawn(&mut cmd), Duration::from_secs(60));
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {stderr}"
    );
    (code.expect("exit code"), stdout, stderr)
}

/// A pid that existed a moment ago and is gone now.
fn vanished_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn missing_pid_is_a_usage_error() {
    let pid = vanished_pid().to_string();
    let (code, _, stderr) = run(&["--pid", &pid, "--summary"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("no process with pid {pid}")),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn pid_zero_is_a_usage_error() {
    let (code, _, stderr) = run(&["--pid", "0"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--pid 0 is not a process id"), "{stderr}");
}

#[test]
fn pid_given_twice_is_a_usage_error() {
    let me = std::process::id().to_string();
    let (code, _, stderr) = run(&["--pid", &me, "--pid", &me], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("given twice"), "{stderr}");
}

#[test]
fn bad_flag_is_a_usage_error() {
    let (code, _, stderr) = run(&["--frobnicate"], &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run(&["--pid", "1", "--interval", "soon"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a duration"), "{stderr}");
}

#[test]
fn nothing_to_trace_is_a_usage_error() {
    let (code, _, stderr) = run(&[], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nothing to trace"), "{stderr}");
}

#[test]
fn too_long_comm_is_a_usage_error() {
    let (code, _, stderr) = run(&["--comm", "a-name-longer-than-fifteen"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("15 bytes"), "{stderr}");
}

#[test]
#[ignore = "needs root: muxtrace checks privileges before it starts the command"]
fn command_not_found_is_a_usage_error() {
    let (code, _, stderr) = run(&["--", "/nonexistent/program"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("command not found"), "{stderr}");
}

#[test]
#[ignore = "needs root: switches to another user to lack it"]
fn no_privileges_is_a_usage_error_with_a_sudo_hint() {
    // Run as nobody, from a copy nobody can execute.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("muxtrace");
    std::fs::copy(MUXTRACE, &exe).unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let target = burst(&[]);
    let (code, _, stderr) = finish(
        spawn(
            Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--inh-caps=-all",
                ])
                .arg(&exe)
                .args(["--pid", &target.pid().to_string()]),
        ),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("needs root, or CAP_BPF and CAP_PERFMON"),
        "{stderr}"
    );
    assert!(stderr.contains("sudo"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A tracefs copy with the format files muxtrace reads, minus `missing`.
fn fake_tracefs(missing: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let real = Path::new("/sys/kernel/tracing/events");
    let (cats, names): (Vec<_>, Vec<_>) = tracer_user::tracepoints::attach_points()
        .into_iter()
        .map(|p| (p.category, p.tracepoint))
        .unzip();
    for (cat, name) in cats.iter().zip(&names) {
        if name == missing {
            continue;
        }
        let to = dir.path().join("events").join(cat).join(name);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(real.join(cat).join(name).join("format"), to.join("format")).unwrap();
    }
    dir
}

#[test]
#[ignore = "needs root: muxtrace checks privileges before tracefs, and tracefs is root's"]
fn missing_tracepoint_is_named_with_why() {
    let fake = fake_tracefs("sys_enter_epoll_pwait2");
    let me = std::process::id().to_string();
    let (code, _, stderr) = run(
        &["--pid", &me, "--summary"],
        &[("MUXTRACE_TRACEFS", fake.path())],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("the kernel has no tracepoint syscalls:sys_enter_epoll_pwait2"),
        "{stderr}"
    );
    assert!(stderr.contains("to measure epoll_pwait2 calls"), "{stderr}");
    assert!(stderr.contains("CONFIG_FTRACE_SYSCALLS"), "{stderr}");
}

#[test]
#[ignore = "needs root: muxtrace checks privileges before tracefs"]
fn unmounted_tracefs_says_how_to_mount_it() {
    let empty = tempfile::tempdir().unwrap();
    let me = std::process::id().to_string();
    let (code, _, stderr) = run(&["--pid", &me], &[("MUXTRACE_TRACEFS", empty.path())]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("tracefs is not mounted"), "{stderr}");
    assert!(stderr.contains("mount -t tracefs tracefs"), "{stderr}");
}

#[test]
fn help_documents_exit_codes() {
    let (code, stdout, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Exit codes: 0 done"), "{stdout}");
}
