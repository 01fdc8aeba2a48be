//! uringlab does what its doc comment says: each scenario's report adds up,
//! and where strace is installed, its count of `io_uring_enter` calls is the
//! program's own. The kernel tests compare muxtrace with these reports, so
//! the reports must be right first.

use std::process::Command;
use std::time::Duration;

use harness::Proc;

const URINGLAB: &str = env!("CARGO_BIN_EXE_uringlab");
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a scenario to the end (stopped by pid if it hangs) and returns its
/// report (stderr) after checking it exited 0.
fn run(cmd: &mut Command) -> String {
    let proc = Proc::spawn(cmd).unwrap();
    let line = proc.wait_line("ready ", TIMEOUT).unwrap();
    let pid: i32 = line.trim()["ready ".len()..].parse().unwrap();
    // SAFETY: signalling our own child, which waits for exactly this.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    let done = proc.finish(TIMEOUT).unwrap();
    assert_eq!(done.code(), Some(0), "{}", done.stderr);
    done.stderr
}

fn uringlab(args: &[&str]) -> String {
    run(Command::new(URINGLAB).args(args))
}

/// The `total` line's figures: enters, sqes, cqes, bytes, errors.
fn totals(report: &str) -> [u64; 5] {
    let line = report
        .lines()
        .find(|l| l.starts_with("total "))
        .unwrap_or_else(|| panic!("no total line:\n{report}"));
    let mut v = line
        .split_whitespace()
        .skip(1)
        .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap());
    [(); 5].map(|()| v.next().unwrap())
}

fn count(report: &str, prefix: &str) -> usize {
    report.lines().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn every_scenario_reports_what_it_was_asked_to_do() {
    // (args, enters, sqes, cqes, bytes, errors)
    let cases: [(&[&str], [u64; 5]); 6] = [
        (&["nops", "10", "4"], [3, 10, 10, 0, 0]),
        (&["recvs", "5", "1000"], [5, 5, 5, 5000, 0]),
        (&["recvpoll", "4", "100"], [8, 4, 4, 400, 0]),
        (&["fail"], [2, 2, 2, 0, 2]),
        (&["async", "16"], [1, 16, 16, 16 * 4096, 0]),
        (&["sqpoll", "20"], [1, 20, 20, 0, 0]),
    ];
    for (args, expected) in cases {
        let report = uringlab(args);
        assert_eq!(totals(&report), expected, "{args:?}:\n{report}");
        assert_eq!(count(&report, "enter "), expected[0] as usize, "{report}");
        assert_eq!(count(&report, "cqe "), expected[2] as usize, "{report}");
    }
    let fail = uringlab(&["fail"]);
    assert!(fail.contains("cqe op=read res=-9 errno=EBADF"), "{fail}");
    assert!(
        fail.contains("cqe op=recv res=-88 errno=ENOTSOCK"),
        "{fail}"
    );
    let sqpoll = uringlab(&["sqpoll", "3"]);
    assert!(
        sqpoll.contains("enter submit=0 wait=0 flags=SQ_WAKEUP ret=0"),
        "{sqpoll}"
    );
}

#[test]
fn strace_counts_the_enters_the_program_reports() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("strace is not installed; skipped (apt-get install strace)");
        return;
    }
    let out = std::env::temp_dir().join(format!("uringlab-strace-{}", std::process::id()));
    for args in [
        &["nops", "30", "7"][..],
        &["recvpoll", "3", "10"],
        &["sqpoll", "9"],
    ] {
        let report = run(Command::new("strace")
            .args(["-f", "-c", "-e", "trace=io_uring_enter", "-o"])
            .arg(&out)
            .arg(URINGLAB)
            .args(args));
        let table = std::fs::read_to_string(&out).unwrap();
        let calls: u64 = table
            .lines()
            .find(|l| l.trim_end().ends_with("io_uring_enter"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no io_uring_enter row:\n{table}"));
        assert_eq!(calls, totals(&report)[0], "{args:?}:\n{table}\n{report}");
    }
    let _ = std::fs::remove_file(&out);
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &[][..],
        &["nops", "10"],
        &["nops", "0", "1"],
        &["async", "99999"],
        &["teleport"],
    ] {
        let out = Command::new(URINGLAB).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
