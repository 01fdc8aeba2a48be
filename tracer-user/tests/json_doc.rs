//! docs/json.md lists every field `--json` writes, and only those: this runs
//! muxtrace on a real process and compares.
mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

/// Objects whose keys are data (fd numbers, class names, counter names).
const MAPS: [&str; 4] = [
    "losses",
    "processes[].epoll_interest",
    "processes[].fd_classes",
    "processes[].blocked_in",
];
const WINDOWS: [&str; 4] = [
    "processes[].syscalls[].total",
    "processes[].syscalls[].interval",
    "processes[].total",
    "processes[].interval",
];
/// The io_uring windows, documented once as `<uring_window>.<field>`.
const URING_WINDOWS: [&str; 4] = [
    "processes[].uring.total",
    "processes[].uring.interval",
    "processes[].uring.ops[].total",
    "processes[].uring.ops[].interval",
];

fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) if MAPS.contains(&prefix) => {
            if !map.is_empty() {
                let placeholder = match prefix {
                    "losses" => "<name>",
                    "processes[].epoll_interest" => "<epfd>",
                    "processes[].blocked_in" => "<syscall>",
                    _ => "<class>",
                };
                out.insert(format!("{prefix}.{placeholder}"));
            }
        }
        Value::Object(map) => {
            if WINDOWS.contains(&prefix) {
                out.insert(prefix.to_owned());
                for key in map.keys() {
                    out.insert(format!("<window>.{key}"));
                }
                return;
            }
            if URING_WINDOWS.contains(&prefix) {
                out.insert(prefix.to_owned());
                for key in map.keys() {
                    out.insert(format!("<uring_window>.{key}"));
                }
                return;
            }
            if prefix == "cost" {
                out.insert(prefix.to_owned());
            }
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                paths(value, &path, out);
            }
        }
        // A list of pids, empty or not, is one field.
        Value::Array(_) if prefix.ends_with("_pids") => {
            out.insert(prefix.to_owned());
        }
        Value::Array(items) => {
            let path = format!("{prefix}[]");
            if prefix.ends_with("syscalls")
                || prefix.ends_with("threads")
                || prefix.ends_with("ops")
            {
                out.insert(path.clone());
            }
            for item in items {
                paths(item, &path, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

fn documented() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/json.md"))
        .expect("docs/json.md");
    doc.lines()
        .filter_map(|l| {
            let l = l.strip_prefix("| `")?;
            let (path, rest) = l.split_once('`')?;
            Some((path.to_owned(), rest.to_owned()))
        })
        .collect()
}

#[test]
#[ignore = "needs root: loads eBPF programs"]
fn json_fields_match_the_document() {
    // An epoll process that stays alive (threads, interest sets, fd classes
    // are shown only for live processes).
    let lab = ready(
        "waitlab",
        &["epoll", "10", "2", "3", "50", "--linger", "1500"],
    );
    // And one that submits io_uring requests, for its `uring` figures.
    let uring = ready("uringlab", &["recvs", "20", "100", "--linger", "1500"]);
    // And one whose threads come and go, for `exited_threads`.
    let churn = ready("hardship", &["churn", "5", "--linger", "1500"]);
    let pid = lab.pid().to_string();
    let uring_pid = uring.pid().to_string();
    let churn_pid = churn.pid().to_string();
    let mt = muxtrace(&[
        "--pid",
        &pid,
        "--pid",
        &uring_pid,
        "--pid",
        &churn_pid,
        "--json",
        "--interval",
        "300ms",
    ]);
    lab.signal(libc::SIGUSR1);
    uring.signal(libc::SIGUSR1);
    churn.signal(libc::SIGUSR1);
    let (stdout, _) = finish_ok(mt);
    // Every line also reads back into the model's types, as xtask reads it.
    harness::muxtrace::json_lines(&stdout).unwrap_or_else(|e| panic!("{e:#}"));
    let mut seen = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("every line is valid JSON");
        kinds.insert(v["type"].as_str().expect("type").to_owned());
        paths(&v, "", &mut seen);
    }
    assert!(
        kinds.contains("interval") && kinds.contains("final"),
        "{kinds:?}"
    );
    let documented = documented();
    let names: BTreeSet<String> = documented.iter().map(|(p, _)| p.clone()).collect();
    let undocumented: Vec<_> = seen.difference(&names).collect();
    assert!(
        undocumented.is_empty(),
        "written but not in docs/json.md: {undocumented:?}"
    );
    let missing: Vec<_> = documented
        .iter()
        .filter(|(p, meaning)| !seen.contains(p) && !meaning.contains("only when"))
        .map(|(p, _)| p)
        .collect();
    assert!(
        missing.is_empty(),
        "in docs/json.md but never written: {missing:?}"
    );
}
