//! The headless demo, quick: the report states every claim with numbers and
//! a verdict, the charts exist and parse, and claim 2's ordering is in the
//! data. Needs root (muxtrace loads eBPF programs); `cargo xtask test` runs
//! it after building the binaries into target/debug.
use std::{path::PathBuf, process::Command};

fn bin_dir() -> PathBuf {
    // target/debug/deps/<test> → target/debug
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf()
}

#[test]
fn headless_quick_report_holds_every_claim_with_numbers() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build-and-demo", "--headless", "--quick"])
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    for n in 1..=5 {
        let claim = report
            .lines()
            .find(|l| l.starts_with(&format!("{n}. **")))
            .unwrap_or_else(|| panic!("claim {n} missing:\n{report}"));
        let verdict = [
            "**holds**",
            "**does not hold here**",
            "**holds only above",
            "**holds for the syscall count",
        ]
        .iter()
        .any(|v| claim.contains(v));
        assert!(verdict, "claim {n} has no verdict: {claim}");
        assert!(
            claim.chars().filter(char::is_ascii_digit).count() >= 4,
            "claim {n} has no figures: {claim}"
        );
    }
    let mut charts = 0;
    for entry in std::fs::read_dir(out.path()).unwrap() {
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
    // Claim 2 in the data: select and poll pay more per ready event with
    // idle connections; epoll stays within a small factor.
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("data.json")).unwrap())
            .unwrap();
    let cost = |model: &str, idle: u64| {
        data["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["model"] == model && p["idle_requested"] == idle)
            .and_then(|p| p["on_cpu_ns_per_ready"].as_f64())
            .unwrap()
    };
    for model in ["select", "poll"] {
        assert!(
            cost(model, 1000) > 2.0 * cost(model, 0),
            "{model} did not rise: {data}"
        );
    }
    assert!(
        cost("epoll", 1000) < 3.0 * cost("epoll", 0),
        "epoll rose: {data}"
    );
}
