//! The headless demo, quick: the report states every claim with numbers,
//! its table is the data it wrote (data.json), each claim's verdict is the
//! one that data decides — recomputed here from the rules the report states,
//! not taken from the code that wrote it — and the charts exist and parse.
//! Needs root (muxtrace loads eBPF programs); `cargo xtask test` runs it
//! after building the binaries into target/debug.
use std::{path::Path, process::Command};

use serde_json::Value;

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn headless_quick_report_holds_every_claim_with_numbers() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build-and-demo", "--headless", "--quick"])
        .arg("--bin-dir")
        .arg(harness::target_bin_dir().unwrap())
        .arg("--out")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("data.json")).unwrap())
            .unwrap();
    for n in 1..=6 {
        let claim = claim(&report, n);
        assert!(
            claim.chars().filter(char::is_ascii_digit).count() >= 4,
            "claim {n} has no figures: {claim}"
        );
    }
    the_table_is_the_data(&report, &data);
    the_loop_section_is_the_data(&report, &data);
    every_verdict_follows_from_the_data(&report, &data);
    charts_parse(out.path());
    // Claim 2 in the data: select and poll pay more per ready event with
    // idle connections; epoll stays within a small factor.
    let d = Data(&data);
    for model in ["select", "poll"] {
        assert!(
            d.at(model, 1000, "on_cpu_ns_per_ready") > 2.0 * d.at(model, 0, "on_cpu_ns_per_ready"),
            "{model} did not rise: {data}"
        );
    }
    assert!(
        d.at("epoll", 1000, "on_cpu_ns_per_ready") < 3.0 * d.at("epoll", 0, "on_cpu_ns_per_ready"),
        "epoll rose: {data}"
    );
}

/// Claim `n`'s line: `n. **claim** — **verdict**. figures…`.
fn claim(report: &str, n: usize) -> &str {
    report
        .lines()
        .find(|l| l.starts_with(&format!("{n}. **")))
        .unwrap_or_else(|| panic!("claim {n} missing:\n{report}"))
}

/// The verdict a claim line states.
fn verdict(line: &str) -> &str {
    line.split_once("** — **")
        .and_then(|(_, rest)| rest.split_once("**"))
        .map(|(verdict, _)| verdict)
        .unwrap_or_else(|| panic!("no verdict in: {line}"))
}

/// data.json, read by field name.
struct Data<'a>(&'a Value);

impl Data<'_> {
    fn points(&self) -> &Vec<Value> {
        self.0["points"].as_array().expect("points")
    }

    /// A figure of one model at one idle count.
    fn at(&self, model: &str, idle: u64, field: &str) -> f64 {
        self.points()
            .iter()
            .find(|p| p["model"] == model && p["idle_requested"] == idle)
            .and_then(|p| p[field].as_f64())
            .unwrap_or_else(|| panic!("no {field} of {model} at {idle} idle in {}", self.0))
    }

    /// The median of the closed-loop runs of one server.
    fn few(&self, model: &str) -> f64 {
        let runs: Vec<f64> = self.0["few_connections"][model]
            .as_array()
            .unwrap_or_else(|| panic!("no few_connections runs of {model}"))
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        harness::median(&runs).unwrap()
    }
}

/// The cells of the rows of the first table headed `header` after the
/// first line starting with `section`.
fn table_rows<'r>(report: &'r str, section: &str, header: &str) -> Vec<Vec<&'r str>> {
    report
        .lines()
        .skip_while(|l| !l.starts_with(section))
        .skip_while(|l| !l.starts_with(header))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}

/// Each row of the report's table shows its data point, in order, with the
/// precision the table uses.
fn the_table_is_the_data(report: &str, data: &Value) {
    let rows = table_rows(report, "# ", "| model | idle |");
    let points = Data(data).points().clone();
    assert_eq!(rows.len(), points.len(), "{report}");
    for (row, p) in rows.iter().zip(&points) {
        let f = |field: &str| p[field].as_f64().unwrap();
        let expected = [
            p["model"].as_str().unwrap().to_owned(),
            p["idle_open"].to_string(),
            format!("{:.0}", f("watched_per_wait")),
            format!("{:.0} B", f("bookkeeping_in_per_wait")),
            format!("{:.0}", f("on_cpu_ns_per_ready")),
            format!("{:.0}", f("bookkeeping_bytes_per_ready")),
            format!("{:.2}", f("syscalls_per_message")),
            format!("{:.2}", f("waits_per_message")),
            format!("{:.0}", f("messages_per_sec")),
            format!("{:.0}", f("p99_us")),
        ];
        assert_eq!(row, &expected, "a table row is not its data point: {p}");
    }
}

/// The loop section's table shows each point's loop figures; the blocking
/// server has none, the others — io_uring's waits are io_uring_enter calls —
/// a utilisation between 0 and 1 and iterations at the load's pace.
fn the_loop_section_is_the_data(report: &str, data: &Value) {
    let rows = table_rows(report, "## The event loop", "| model | idle | busy |");
    let points = Data(data).points().clone();
    assert_eq!(rows.len(), points.len(), "{report}");
    for (row, p) in rows.iter().zip(&points) {
        let model = p["model"].as_str().unwrap();
        assert_eq!(
            (row[0], row[1]),
            (model, p["idle_open"].to_string().as_str())
        );
        let busy = p["loop_busy"].as_f64();
        if model == "blocking" {
            assert_eq!(busy, None, "{p}");
            assert_eq!(row[2..8], ["—"; 6], "{row:?}");
            continue;
        }
        let busy = busy.unwrap_or_else(|| panic!("no loop_busy: {p}"));
        assert!((0.0..1.0).contains(&busy), "{p}");
        assert_eq!(row[2], format!("{:.1} %", busy * 100.0), "{row:?}");
        // Every wakeup is an iteration: at 4,000 messages/s, at least a few
        // hundred per second (several messages may share one).
        let per_sec = p["iterations_per_sec"].as_f64().unwrap();
        assert!(per_sec > 200.0, "{p}");
        assert_eq!(row[3], format!("{per_sec:.0}"), "{row:?}");
    }
}

/// Recomputes each verdict from data.json by the rule the claim states,
/// and checks the report says that verdict and quotes the figures behind it.
fn every_verdict_follows_from_the_data(report: &str, data: &Value) {
    let d = Data(data);
    let check = |n: usize, expected: &str, figures: &[String]| {
        let line = claim(report, n);
        assert_eq!(
            verdict(line),
            expected,
            "claim {n}'s verdict does not follow from data.json: {line}"
        );
        for figure in figures {
            assert!(
                line.contains(figure.as_str()),
                "claim {n} does not quote {figure:?}: {line}"
            );
        }
    };

    // 1. Bytes copied in per wait grow with the fds watched for select and
    // (more than 4×) for poll; epoll_wait copies none of its set.
    let (s0, s1) = (
        d.at("select", 0, "bookkeeping_in_per_wait"),
        d.at("select", 1000, "bookkeeping_in_per_wait"),
    );
    let (p0, p1) = (
        d.at("poll", 0, "bookkeeping_in_per_wait"),
        d.at("poll", 1000, "bookkeeping_in_per_wait"),
    );
    let e1 = d.at("epoll", 1000, "bookkeeping_in_per_wait");
    let holds = s1 > s0 && p1 > 4.0 * p0.max(1.0) && e1 < 32.0;
    check(
        1,
        if holds { "holds" } else { "does not hold here" },
        &[
            format!("select {s0:.0} B → {s1:.0} B"),
            format!("poll {p0:.0} B → {p1:.0} B"),
            format!("copies {e1:.0} B in per call"),
        ],
    );

    // 2. select's and poll's cost per ready event more than doubles with
    // idle connections (already at 100, or only at 1,000); epoll's stays
    // within 2×.
    let cost = |m: &str| [0, 100, 1000].map(|idle| d.at(m, idle, "on_cpu_ns_per_ready"));
    let doubles_at = |m: &str| {
        let [a, b, c] = cost(m);
        if b > 2.0 * a {
            Some(100)
        } else if c > 2.0 * a {
            Some(1000)
        } else {
            None
        }
    };
    let scanning = [doubles_at("select"), doubles_at("poll")];
    let [ea, _, ec] = cost("epoll");
    let epoll_flat = ec <= 2.0 * ea.max(1.0);
    let expected = if scanning.iter().all(Option::is_some) && epoll_flat {
        if scanning.iter().all(|s| *s == Some(100)) {
            "holds"
        } else {
            "holds only above 100 idle connections"
        }
    } else {
        "does not hold here"
    };
    let quoted = |m: &str| {
        let [a, b, c] = cost(m);
        format!("{m} {a:.0} → {b:.0} → {c:.0} ns")
    };
    check(
        2,
        expected,
        &["select", "poll", "epoll", "epoll-et"].map(quoted),
    );

    // 3. echo-select keeps fewer idle connections than asked past FD_SETSIZE.
    let beyond = &data["select_beyond_limit"];
    let asked = beyond["idle_requested"].as_f64().unwrap();
    let open = beyond["idle_open"].as_f64().unwrap();
    check(
        3,
        if open < asked {
            "holds"
        } else {
            "does not hold here"
        },
        &[format!(
            "Asked for {asked:.0} idle connections, echo-select kept {open:.0}"
        )],
    );

    // 4. epoll makes more event-loop syscalls per message than blocking I/O,
    // and with four connections is not more than 5 % faster.
    let (bc, ec) = (
        d.at("blocking", 0, "syscalls_per_message"),
        d.at("epoll", 0, "syscalls_per_message"),
    );
    let (b, e) = (d.few("blocking"), d.few("epoll"));
    let expected = match (ec > bc, e <= 1.05 * b) {
        (true, true) => "holds",
        (true, false) => "holds for the syscall count; epoll was faster here",
        (false, _) => "does not hold here",
    };
    check(
        4,
        expected,
        &[
            format!("blocking {bc:.2}, epoll {ec:.2}"),
            format!("blocking {b:.0} msgs/s, epoll {e:.0} msgs/s"),
        ],
    );

    // 5. Edge-triggered epoll makes fewer epoll_wait calls per message.
    let lt = d.at("epoll", 0, "waits_per_message");
    let et = d.at("epoll-et", 0, "waits_per_message");
    check(
        5,
        // Fewer by at least 5 %; within 5 % either way is no difference.
        if et < 0.95 * lt {
            "holds"
        } else if et <= 1.05 * lt {
            "no measurable difference at this load"
        } else {
            "does not hold here"
        },
        &[format!("level-triggered {lt:.3}, edge-triggered {et:.3}")],
    );

    // 6. At every idle count io_uring (with and without SQPOLL) makes fewer
    // event-loop syscalls per message than epoll, and copies 0 bookkeeping
    // bytes per wait.
    let idle = [0, 100, 1000];
    let series = |m: &str, field: &str| idle.map(|i| d.at(m, i, field));
    let mut fewer = true;
    let mut no_copies = true;
    for m in ["uring", "uring-sqpoll"] {
        for (u, e) in series(m, "syscalls_per_message")
            .iter()
            .zip(series("epoll", "syscalls_per_message"))
        {
            fewer &= *u > 0.0 && *u < e;
        }
        no_copies &= series(m, "bookkeeping_per_wait").iter().all(|b| *b == 0.0);
    }
    let expected = match (fewer, no_copies) {
        (true, true) => "holds",
        (true, false) => "holds for the syscall count; io_uring copied bookkeeping here",
        (false, true) => "holds for the bookkeeping; not for the syscall count here",
        (false, false) => "does not hold here",
    };
    let arrow = |v: [f64; 3], digits: usize| v.map(|x| format!("{x:.digits$}")).join(" → ");
    check(
        6,
        expected,
        &[
            format!(
                "epoll {}",
                arrow(series("epoll", "syscalls_per_message"), 2)
            ),
            format!(
                "io_uring {}",
                arrow(series("uring", "syscalls_per_message"), 2)
            ),
            format!(
                "io_uring with SQPOLL {}",
                arrow(series("uring-sqpoll", "syscalls_per_message"), 2)
            ),
            format!(
                "io_uring {} B",
                arrow(series("uring", "bookkeeping_per_wait"), 0)
            ),
        ],
    );
    // Its figures are muxtrace's io_uring figures of the point.
    for m in ["uring", "uring-sqpoll"] {
        for i in idle {
            assert!(
                d.at(m, i, "sqes_per_enter") > 0.0 || m == "uring-sqpoll",
                "{m} {i}"
            );
            assert!(d.at(m, i, "cqes_per_wait") > 0.0, "{m} {i}");
        }
    }
}

/// At least five charts, each an SVG that parses with a PNG beside it.
fn charts_parse(dir: &Path) {
    let mut charts = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("svg") => {
                let text = std::fs::read_to_string(&path).unwrap();
                roxmltree::Document::parse(&text)
                    .unwrap_or_else(|e| panic!("{} is not valid SVG: {e}", path.display()));
                assert!(
                    path.with_extension("png").exists(),
                    "no PNG for {}",
                    path.display()
                );
                charts += 1;
            }
            Some("png") => {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
                    "{} is not a PNG",
                    path.display()
                );
            }
            _ => {}
        }
    }
    assert!(charts >= 5, "{charts} charts");
}
