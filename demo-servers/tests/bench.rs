//! server-bench end to end, tiny: every server, two idle counts.

use std::path::Path;
use std::process::Command;

#[test]
fn server_bench_writes_the_table_and_the_json() {
    let out_dir = std::env::temp_dir().join(format!("server-bench-test-{}", std::process::id()));
    let bench = env!("CARGO_BIN_EXE_server-bench");
    let bin_dir = Path::new(bench).parent().unwrap();
    let out = Command::new(bench)
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--out")
        .arg(&out_dir)
        .args([
            "--quick",
            "--duration",
            "200ms",
            "--idle",
            "0,5",
            "--conns",
            "4",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "server-bench failed: {stderr}");

    let md = std::fs::read_to_string(out_dir.join("servers.md")).unwrap();
    for needle in [
        "kernel:",
        "CPUs:",
        "| 0 idle | 5 idle |",
        "| select |",
        "| epoll --edge |",
        "| uring |",
        "| uring --sqpoll |",
    ] {
        assert!(md.contains(needle), "servers.md lacks {needle:?}:\n{md}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("servers.json")).unwrap())
            .unwrap();
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 2 * harness::ECHO_MODELS.len());
    for p in points {
        assert!(p["failure"].is_null(), "{p}");
        assert!(p["loadgen"]["messages"].as_u64().unwrap() > 0, "{p}");
        assert!(
            p["server_stopped"]
                .as_str()
                .unwrap()
                .starts_with("stopped:"),
            "{p}"
        );
    }
    let _ = std::fs::remove_dir_all(&out_dir);
}
