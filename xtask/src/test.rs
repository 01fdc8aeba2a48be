//! `cargo xtask test`: bootstrap, lint, build, then every test. The kernel
//! tests load eBPF programs, so this runs as root or refuses — a kernel test
//! is never silently skipped: the ones a plain `cargo test` leaves out (they
//! are `#[ignore]`d as needing root) run here too. Tests run one at a time:
//! they share the kernel.
use anyhow::{bail, Result};

use crate::{
    bootstrap,
    exec::{cargo, exec, is_root},
};

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    no_lint: bool,
    /// Passed to `cargo test` after `--` (a test name filter, say).
    #[arg(trailing_var_arg = true)]
    rest: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    if !is_root() {
        bail!(
            "cargo xtask test must run as root: its kernel tests load eBPF programs (sudo -E cargo xtask test)"
        );
    }
    bootstrap::run(&bootstrap::Args::default())?;
    bootstrap::test_tools()?;
    bootstrap::real_server_tools()?;
    bootstrap::demo_tools()?;
    if !args.no_lint {
        exec(cargo().args(["fmt", "--all", "--", "--check"]))?;
        exec(one_shot(cargo()).args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
        // The eBPF crate is not a default member: it builds for the bpf
        // target only, with nightly's build-std, as tracer-user's build does.
        exec(
            std::process::Command::new("cargo")
                .current_dir("tracer-ebpf")
                // The outer cargo's toolchain must not leak into nightly's.
                .env_remove("RUSTC")
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("CARGO")
                .args([
                    "+nightly",
                    "clippy",
                    "--target",
                    "bpfel-unknown-none",
                    "-Z",
                    "build-std=core",
                    "--release",
                    "--",
                    "-D",
                    "warnings",
                ]),
        )?;
    }
    // Tests start these binaries (muxtrace, the echo servers, the test programs).
    // Only the default members: the eBPF crate builds for the bpf target alone,
    // through tracer-user's build script.
    exec(one_shot(cargo()).args(["build", "--bins"]))?;
    // The tests that need root are #[ignore]d so that a plain `cargo test`
    // passes without it; here, as root, every one of them runs.
    exec(
        one_shot(cargo())
            .args(["test", "--", "--include-ignored", "--test-threads=1"])
            .args(&args.rest),
    )
}

/// A test run builds once and is gone: incremental caches (1.4 GB of a fresh
/// clone's target/) would only speed up a rebuild that never comes.
fn one_shot(mut cargo: std::process::Command) -> std::process::Command {
    cargo.env("CARGO_INCREMENTAL", "0");
    cargo
}
