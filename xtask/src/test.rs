//! `cargo xtask test`: bootstrap, lint, build, then every test. The kernel
//! tests load eBPF programs, so this runs as root or refuses — a kernel test
//! is never silently skipped: the ones a plain `cargo test` leaves out (they
//! are `#[ignore]`d as needing root) run here too. Tests run one at a time:
//! they share the kernel.
use anyhow::{bail, Result};

use crate::{
    bootstrap,
    exec::{cargo, exec, is_root, workspace_root},
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
    warn_if_short_of_disk();
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

/// What a fresh clone's test run leaves in target/ (measured: 2.2 GB), and
/// the free space below which that is said first, with room for the tests'
/// own temporary files.
const TEST_RUN_GB: f64 = 2.2;
const TEST_RUN_ROOM_BYTES: u64 = 3_000_000_000;

/// A build that runs out of space fails deep in the compiler ("LLVM ERROR:
/// IO failure on output stream: No space"), which names neither the cause
/// nor the remedy: say both first, and go on, since a partly built
/// target/ needs less.
fn warn_if_short_of_disk() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    // target/ need not exist yet; its nearest existing parent is on the
    // same filesystem.
    let Some(existing) = target.ancestors().find(|dir| dir.exists()) else {
        return;
    };
    let Some(free) = free_bytes(existing) else {
        return;
    };
    if free < TEST_RUN_ROOM_BYTES {
        eprintln!(
            "xtask: warning: {:.1} GB free on the filesystem of {}, where a full test run writes about {TEST_RUN_GB} GB: a build that runs short fails with \"No space\"",
            free as f64 / 1e9,
            target.display(),
        );
    }
}

/// Bytes still free on `dir`'s filesystem, less root's reserve.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct it is given; the path is a
    // NUL-terminated string that outlives the call.
    let stat = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(path.as_ptr(), &mut stat) == 0).then_some(stat)
    }?;
    Some(stat.f_bavail * stat.f_frsize)
}
