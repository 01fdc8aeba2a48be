//! The real binary's dashboard in tmux, against a real echo server under
//! load: live figures, view switching, quitting, and what is left after.
mod common;

use std::{
    collections::BTreeMap,
    process::Command,
    time::{Duration, Instant},
};

use common::*;

/// A tmux session killed on drop, whatever the test's outcome.
struct Tmux(String);

impl Tmux {
    fn start(name: &str, width: u16, height: u16, command: &str) -> Tmux {
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg(command)
            .status()
            .expect("tmux")
            .success();
        assert!(ok, "tmux new-session failed");
        Tmux(name.to_owned())
    }

    fn pane(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.0, keys])
            .status()
            .expect("send-keys");
    }

    /// A format variable of the pane (`alternate_on`, `pane_pid`).
    fn display(&self, variable: &str) -> String {
        let out = Command::new("tmux")
            .args(["display", "-p", "-t", &self.0, &format!("#{{{variable}}}")])
            .output()
            .expect("display");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn alternate_on(&self) -> String {
        self.display("alternate_on")
    }

    /// Whether the muxtrace this pane's shell started still runs (only
    /// ours: other muxtraces on the machine do not count).
    fn muxtrace_running(&self) -> bool {
        Command::new("pgrep")
            .args(["-x", "muxtrace", "-P", &self.display("pane_pid")])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// `q`, then what a clean exit leaves: status 0, the terminal off the
    /// alternate screen, no muxtrace, no program loaded.
    fn quit_cleanly(&self) {
        self.keys("q");
        let pane = self.wait_for("muxtrace's exit", |p| p.contains("exit="));
        assert!(pane.contains("exit=0"), "{pane}");
        assert_eq!(self.alternate_on(), "0", "still on the alternate screen");
        assert!(!self.muxtrace_running());
        assert_detached();
    }

    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pane = self.pane();
            if ok(&pane) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "{what} never appeared; pane:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

/// The calls/s cell of a syscall's row in the main view (not the verdict
/// line above the table, which may start with the same word: `poll scans`).
fn calls_per_sec(pane: &str, syscall: &str) -> Option<f64> {
    pane.lines()
        .filter(|l| l.starts_with(&format!("{syscall} ")))
        .find_map(|row| rate(row.split_whitespace().nth(1)?))
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn dashboard_shows_live_rates_switches_views_and_quits_cleanly() {
    let server = echo_server();
    let _load = background_load(&server.addr().to_string(), 8, 3000);
    let session = format!("muxtrace-test-{}", std::process::id());
    // `sleep` keeps the pane open after muxtrace exits, to read what is left.
    let tmux = Tmux::start(
        &session,
        80,
        24,
        &format!(
            "{MUXTRACE} --pid {} --interval 500ms; echo exit=$?; sleep 60",
            server.pid()
        ),
    );
    let pane = tmux.wait_for("a non-zero epoll_wait rate", |p| {
        calls_per_sec(p, "epoll_wait").is_some_and(|r| r > 0.0)
    });
    assert!(pane.contains("echo-epoll (epoll)"), "{pane}");
    assert!(pane.contains("epoll returns"), "the verdict: {pane}");
    assert_eq!(tmux.alternate_on(), "1");
    assert!(tmux.muxtrace_running(), "the pane's muxtrace is not found");

    tmux.keys("2");
    tmux.wait_for("the threads view", |p| {
        p.contains("tid") && p.contains("off-CPU")
    });
    tmux.keys("3");
    tmux.wait_for("the fd view", |p| {
        p.contains("fd class") && p.contains("socket")
    });
    tmux.keys("4");
    // Its figures say which span they cover: the 500 ms interval.
    tmux.wait_for("the compare view", |p| {
        p.contains("on-CPU/ready") && p.contains("last 500 ms")
    });
    tmux.keys("?");
    tmux.wait_for("the help overlay", |p| p.contains("cycle the sort column"));
    // Esc alone: a key sent right behind it would read as Alt-key.
    tmux.keys("Escape");
    tmux.wait_for("the help overlay closed", |p| {
        !p.contains("cycle the sort column")
    });
    tmux.keys("Tab");
    tmux.wait_for("the top view", |p| p.contains("ranked by wait/s"));
    tmux.keys("Tab");
    tmux.wait_for("the main view again", |p| {
        p.contains("syscall") && p.contains("calls/s")
    });

    tmux.quit_cleanly();
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_panic_restores_the_terminal_and_detaches() {
    let target = burst(&[]);
    let session = format!("muxtrace-panic-{}", std::process::id());
    let tmux = Tmux::start(
        &session,
        80,
        24,
        &format!("RUST_BACKTRACE=0 MUXTRACE_TEST_PANIC=1 {MUXTRACE} --pid {} --interval 300ms; echo exit=$?; sleep 60", target.pid()),
    );
    let pane = tmux.wait_for("muxtrace's exit", |p| p.contains("exit="));
    assert!(
        pane.contains("forced panic"),
        "the panic message is readable: {pane}"
    );
    assert!(!pane.contains("exit=0"), "{pane}");
    assert_eq!(tmux.alternate_on(), "0", "still on the alternate screen");
    assert_detached();
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn the_dashboard_freezes_when_the_target_exits() {
    let target = burst(&["--all", "0", "--count", "poll=5"]);
    let session = format!("muxtrace-exit-{}", std::process::id());
    let tmux = Tmux::start(
        &session,
        80,
        24,
        &format!(
            "{MUXTRACE} --pid {} --interval 300ms; echo exit=$?; sleep 60",
            target.pid()
        ),
    );
    tmux.wait_for("the dashboard", |p| p.contains("1 Syscalls"));
    target.signal(libc::SIGUSR1);
    let pane = tmux.wait_for("the exit banner", |p| {
        p.contains("every traced process has exited")
    });
    assert!(pane.contains("poll"), "the figures stay: {pane}");
    assert!(pane.contains("figures over the whole run"), "{pane}");
    tmux.keys("q");
    let pane = tmux.wait_for("muxtrace's exit", |p| p.contains("exit="));
    assert!(pane.contains("exit=0"), "{pane}");
}

/// The lines of the syscall table's body: after the `syscall` header line,
/// up to the first line that is not a row (the hidden-columns note).
fn table_rows(pane: &str) -> (Vec<&str>, Vec<Vec<&str>>) {
    let mut lines = pane.lines().skip_while(|l| !l.starts_with("syscall "));
    let header = lines
        .next()
        .map_or(Vec::new(), |l| l.split_whitespace().collect::<Vec<_>>());
    let rows = lines
        .take_while(|l| !l.starts_with("hidden below"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    (header, rows)
}

/// 60×20, against a real echo server under load: the syscall table keeps
/// 7 of its 11 columns, every row has exactly a figure per column (none cut
/// or run together), and a line names the 4 hidden; the threads view does
/// the same with its own; quitting still restores the terminal. At this
/// width the old table cut its figures (`.5µs` for 45.5µs) and headers.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn sixty_columns_hide_columns_and_say_which() {
    let server = echo_server();
    let _load = background_load(&server.addr().to_string(), 8, 3000);
    let session = format!("muxtrace-narrow-{}", std::process::id());
    let tmux = Tmux::start(
        &session,
        60,
        20,
        &format!(
            "{MUXTRACE} --pid {} --interval 500ms; echo exit=$?; sleep 60",
            server.pid()
        ),
    );
    let pane = tmux.wait_for("a non-zero epoll_wait rate", |p| {
        calls_per_sec(p, "epoll_wait").is_some_and(|r| r > 0.0)
    });
    assert!(
        pane.contains("hidden below 80 columns: fds p99, tmo, wall p50, bkkp\n"),
        "{pane}"
    );
    let (header, rows) = table_rows(&pane);
    assert_eq!(
        header,
        ["syscall", "/s", "avg", "avg", "%", "p99", "/call", "B/s"],
        "{pane}"
    );
    assert!(!rows.is_empty(), "{pane}");
    for row in &rows {
        assert_eq!(
            row.len(),
            header.len(),
            "a cell cut or merged: {row:?}\n{pane}"
        );
    }
    assert!(pane.lines().all(|l| l.chars().count() <= 60), "{pane}");

    tmux.keys("2");
    let pane = tmux.wait_for("the threads view", |p| {
        p.contains("hidden below 80 columns: stalls, watched, off-CPU")
    });
    let header = pane
        .lines()
        .find(|l| l.trim_start().starts_with("tid "))
        .unwrap_or_else(|| panic!("{pane}"));
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["tid", "name", "calls", "calls/s", "busy", "on-CPU"],
        "{pane}"
    );
    let server_row = pane
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("tid "))
        .nth(1)
        .unwrap_or_else(|| panic!("{pane}"));
    assert!(
        server_row
            .trim_start()
            .starts_with(&server.pid().to_string()),
        "{pane}"
    );
    assert_eq!(server_row.split_whitespace().count(), 6, "{pane}");

    tmux.keys("q");
    let pane = tmux.wait_for("muxtrace's exit", |p| p.contains("exit="));
    assert!(pane.contains("exit=0"), "{pane}");
    assert_eq!(tmux.alternate_on(), "0", "still on the alternate screen");
    assert_detached();
}

/// The top view's rows: pid → the cells after it (comm, model, figures…,
/// verdict), from the lines under its `pid` header.
fn top_rows(pane: &str) -> BTreeMap<u32, Vec<String>> {
    pane.lines()
        .skip_while(|l| !l.trim_start().starts_with("pid "))
        .skip(1)
        .map_while(|l| {
            let mut cells = l.split_whitespace();
            let pid = cells.next()?.parse().ok()?;
            Some((pid, cells.map(str::to_owned).collect()))
        })
        .collect()
}

/// A rate cell (`950`, `9.6k`, `1.2M`) as a number.
fn rate(cell: &str) -> Option<f64> {
    let (number, scale) = match cell.chars().last()? {
        'k' => (&cell[..cell.len() - 1], 1e3),
        'M' => (&cell[..cell.len() - 1], 1e6),
        _ => (cell, 1.0),
    };
    number.parse::<f64>().ok().map(|v| v * scale)
}

/// The pid in view 1's title, `pid 4242 echo-poll · poll model`.
fn title_pid(pane: &str) -> Option<u32> {
    pane.lines()
        .find_map(|l| l.strip_prefix("pid "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `--comm` at 80×24 against two poll servers of the same name under load:
/// muxtrace opens on the top view with a row per server and live figures;
/// Enter opens the selected one's syscall view, Esc comes back to the top
/// view, ↓ Enter opens the other; q quits and leaves nothing loaded.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn the_top_view_lists_the_processes_and_opens_one() {
    let bin = workspace_bin("echo-poll");
    let servers: Vec<EchoServer> = (0..2)
        .map(|_| EchoServer::start(&bin, &[], None).unwrap_or_else(|e| panic!("{e:#}")))
        .collect();
    let _load: Vec<Proc> = servers
        .iter()
        .map(|s| background_load(&s.addr().to_string(), 4, 1000))
        .collect();
    let ours: Vec<u32> = servers.iter().map(EchoServer::pid).collect();
    let session = format!("muxtrace-top-{}", std::process::id());
    let tmux = Tmux::start(
        &session,
        80,
        24,
        &format!("{MUXTRACE} --comm echo-poll --interval 500ms; echo exit=$?; sleep 60"),
    );
    let pane = tmux.wait_for("both servers waiting, in the top view", |p| {
        let rows = top_rows(p);
        ours.iter().all(|pid| {
            rows.get(pid)
                .and_then(|r| r.get(2))
                .and_then(|c| rate(c))
                .is_some_and(|r| r > 0.0)
        })
    });
    assert!(pane.contains(" 0 Top "), "the tab: {pane}");
    assert!(pane.contains("ranked by wait/s"), "{pane}");
    let rows = top_rows(&pane);
    for pid in &ours {
        let row = &rows[pid];
        assert_eq!(row[..2], ["echo-poll", "poll"], "{pane}");
        // A poll server with idle connections scans fds that are not ready.
        assert!(rate(&row[3]).is_some_and(|r| r > 0.0), "unready/s: {pane}");
        assert!(row[4].ends_with('%'), "on-CPU: {pane}");
        let word = row.last().unwrap();
        assert!(
            ["ok", "scanning", "saturated", "stalling"].contains(&word.as_str()),
            "verdict {word:?}: {pane}"
        );
    }
    assert!(pane.lines().all(|l| l.chars().count() <= 80), "{pane}");

    tmux.keys("Enter");
    let pane = tmux.wait_for("the syscall view", |p| {
        calls_per_sec(p, "poll").is_some_and(|r| r > 0.0) && title_pid(p).is_some()
    });
    let first = title_pid(&pane).unwrap();
    assert!(rows.contains_key(&first), "a row of the top view: {pane}");
    assert!(pane.contains("echo-poll · poll model"), "{pane}");

    // Another row: ↓, or ↑ when the first was the last row. The ranking is
    // live: two near-equal servers can trade places between the key and
    // Enter, so a few tries, alternating.
    let mut second = None;
    for key in ["Down", "Up", "Down", "Up", "Down", "Up"] {
        tmux.keys("Escape");
        tmux.wait_for("the top view again", |p| p.contains("ranked by wait/s"));
        tmux.keys(key);
        // The key and Enter apart: the row must move before it is opened.
        std::thread::sleep(Duration::from_millis(300));
        tmux.keys("Enter");
        let pane = tmux.wait_for("a syscall view", |p| {
            title_pid(p).is_some() && calls_per_sec(p, "poll").is_some()
        });
        let pid = title_pid(&pane).unwrap();
        if pid != first {
            assert!(rows.contains_key(&pid), "{pane}");
            second = Some(pid);
            break;
        }
    }
    assert!(
        second.is_some(),
        "↓ and ↑, three times each, all opened pid {first} again"
    );

    tmux.keys("Escape");
    tmux.wait_for("the top view once more", |p| p.contains("ranked by wait/s"));
    tmux.quit_cleanly();
}

/// `-- CMD` under the dashboard: what the command prints goes to a file,
/// not over the screen, and its stdin is not the dashboard's keys; after
/// `q` muxtrace says where the output is, and the file holds all of it.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn a_launched_command_s_output_stays_off_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("chatty.sh");
    // A line on each stream every 100 ms, then a wait on stdin.
    std::fs::write(
        &script,
        "for i in $(seq 1 20); do echo out-$i; echo err-$i >&2; sleep 0.1; done\n\
         read -r line; echo read=$line\n",
    )
    .unwrap();
    let session = format!("muxtrace-cmd-{}", std::process::id());
    let tmux = Tmux::start(
        &session,
        80,
        24,
        &format!(
            "TMPDIR={} {MUXTRACE} --interval 300ms -- sh {}; echo exit=$?; sleep 60",
            dir.path().display(),
            script.display()
        ),
    );
    tmux.wait_for("the dashboard", |p| p.contains("1 Syscalls"));
    std::thread::sleep(Duration::from_millis(2500));
    let pane = tmux.pane();
    assert!(
        !pane.contains("out-") && !pane.contains("err-"),
        "the command wrote over the dashboard:\n{pane}"
    );
    // Its stdin is /dev/null: `read` ends at once, and the script with it.
    let pane = tmux.wait_for("the exit banner", |p| {
        p.contains("every traced process has exited")
    });
    tmux.keys("q");
    let pane_after = tmux.wait_for("muxtrace's exit", |p| p.contains("exit="));
    assert!(pane_after.contains("exit=0"), "{pane_after}");
    // The command's log and nothing else: muxtrace's own log file is made
    // only when something is logged. It is named after the command's pid,
    // the one the dashboard shows.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let log = files[0].clone();
    let name = log.file_name().unwrap().to_string_lossy().into_owned();
    let pid = name
        .strip_prefix("muxtrace-")
        .and_then(|rest| rest.strip_suffix("-sh.log"))
        .unwrap_or_else(|| panic!("{name}"));
    // As a whole number: a short pid is in many a figure.
    assert!(
        pane.split(|c: char| !c.is_ascii_digit()).any(|n| n == pid),
        "pid {pid} is not on the dashboard: {pane}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("out-1\n") && text.contains("err-20\n") && text.contains("read=\n"),
        "{text}"
    );
    assert!(
        pane_after
            .replace('\n', "")
            .contains(&log.display().to_string()),
        "muxtrace names the file: {pane_after}"
    );
}

/// Lines logged under the dashboard (here `-v`'s) go to a file, named on
/// stderr once the terminal is back. A link planted as muxtrace.log in the
/// shared temporary directory is not written through, though muxtrace runs
/// as root: the lines go to a file of the run's own.
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn the_dashboard_s_log_is_named_at_exit_and_a_planted_link_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("muxtrace.log")).unwrap();
    let session = format!("muxtrace-log-{}", std::process::id());
    let tmux = Tmux::start(
        &session,
        80,
        24,
        &format!(
            "TMPDIR={} {MUXTRACE} -v --interval 300ms -- sleep 60; echo exit=$?; sleep 60",
            dir.path().display()
        ),
    );
    tmux.wait_for("the dashboard", |p| p.contains("1 Syscalls"));
    let pane = tmux.pane();
    assert!(
        !pane.contains("muxtrace info"),
        "a log line on the dashboard:\n{pane}"
    );
    tmux.keys("q");
    let pane = tmux.wait_for("muxtrace's exit", |p| p.contains("exit="));
    assert!(pane.contains("exit=0"), "{pane}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let own: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.strip_prefix("muxtrace-")
                .and_then(|rest| rest.strip_suffix(".log"))
                .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    assert_eq!(own.len(), 1, "{own:?}");
    let text = std::fs::read_to_string(&own[0]).unwrap();
    let lines = text.lines().count();
    assert!(
        lines > 0 && text.lines().all(|l| l.starts_with("muxtrace")),
        "{text}"
    );
    let said = format!(
        "muxtrace: {lines} {} logged while the dashboard ran {} in {}",
        if lines == 1 { "line" } else { "lines" },
        if lines == 1 { "is" } else { "are" },
        own[0].display()
    );
    assert!(
        pane.replace('\n', "").contains(&said),
        "{said} not in:\n{pane}"
    );
}

/// The terminal closed under the dashboard (its window shut, an ssh link
/// lost): muxtrace ends on the hangup, ends the command it started,
/// detaches, and says nothing about a cursor it can no longer show (it
/// printed "Failed to show the cursor: Input/output error").
#[test]
#[ignore = "needs root: loads eBPF programs"]
fn closing_the_terminal_ends_muxtrace_quietly_and_detaches() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("stderr");
    let session = format!("muxtrace-hup-{}", std::process::id());
    let tmux = Tmux::start(
        &session,
        80,
        24,
        &format!(
            "exec {MUXTRACE} --interval 300ms -- sleep 60 2> {}",
            stderr.display()
        ),
    );
    tmux.wait_for("the dashboard", |p| p.contains("1 Syscalls"));
    let muxtrace: i32 = tmux.display("pane_pid").parse().unwrap();
    let children = Command::new("pgrep")
        .args(["-P", &muxtrace.to_string(), "-x", "sleep"])
        .output()
        .unwrap();
    let command: i32 = String::from_utf8_lossy(&children.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no sleep under muxtrace {muxtrace}"));
    drop(tmux);
    // Gone, or a zombie its parent has yet to reap.
    let gone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z'))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(gone(muxtrace) && gone(command)) {
        assert!(
            Instant::now() < deadline,
            "muxtrace or its command still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        !said.contains("cursor") && !said.contains("panicked"),
        "{said}"
    );
    assert_detached();
}
