//! The toolchain bootstrap: nightly with rust-src, LLVM 22, bpf-linker 0.13.0
//! (see ../shared/TOOLCHAIN.md for why these). Each step checks first and
//! prints one line; a second run only checks and takes seconds.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Result};

use crate::exec::{cargo, cargo_build_release, exec, is_root, stdout_of, workspace_root};

#[derive(clap::Args, Default)]
pub struct Args {
    /// Only check; install nothing.
    #[arg(long)]
    pub check: bool,
}

const LLVM_MAJOR: &str = "22";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const LLVM_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libclang-22-dev",
    "libpolly-22-dev",
    "zlib1g-dev",
    "libzstd-dev",
];
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    step("nightly toolchain", args, nightly_present, install_nightly)?;
    step("rust-src on nightly", args, rust_src_present, || {
        exec(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))
    })?;
    check_nightly_llvm()?;
    step(
        "LLVM 22 (library and headers)",
        args,
        llvm_present,
        install_llvm,
    )?;
    step(
        "bpf-linker 0.13.0",
        args,
        bpf_linker_present,
        install_bpf_linker,
    )?;
    eprintln!(
        "bootstrap: toolchain ready ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn step(
    what: &str,
    args: &Args,
    present: impl Fn() -> bool,
    install: impl Fn() -> Result<()>,
) -> Result<()> {
    if present() {
        eprintln!("bootstrap: {what}: present");
        return Ok(());
    }
    if args.check {
        bail!("{what} is missing (run cargo xtask bootstrap)");
    }
    eprintln!("bootstrap: {what}: installing");
    install()?;
    if !present() {
        bail!("{what} is still missing after installing it");
    }
    eprintln!("bootstrap: {what}: installed");
    Ok(())
}

fn nightly_present() -> bool {
    stdout_of(Command::new("rustup").args(["toolchain", "list"]))
        .is_some_and(|s| s.lines().any(|l| l.starts_with("nightly")))
}

fn install_nightly() -> Result<()> {
    if stdout_of(Command::new("rustup").arg("--version")).is_none() {
        bail!("rustup is not installed; install it from rustup.rs, then rerun");
    }
    exec(Command::new("rustup").args([
        "toolchain",
        "install",
        "nightly",
        "--profile",
        "minimal",
        "--component",
        "rust-src",
    ]))
}

fn rust_src_present() -> bool {
    stdout_of(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .is_some_and(|s| s.lines().any(|l| l.starts_with("rust-src")))
}

/// bpf-linker links the bitcode rustc emits, so their LLVM majors must match.
fn check_nightly_llvm() -> Result<()> {
    let Some(version) = stdout_of(Command::new("rustc").args(["+nightly", "-vV"])) else {
        bail!("cannot run rustc +nightly -vV");
    };
    let major = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .unwrap_or("?")
        .to_owned();
    if major != LLVM_MAJOR {
        bail!(
            "nightly rustc uses LLVM {major}, but this project's bpf-linker is built for LLVM {LLVM_MAJOR}; install a nightly with LLVM {LLVM_MAJOR} (see ../shared/TOOLCHAIN.md)"
        );
    }
    eprintln!("bootstrap: nightly rustc's LLVM is {LLVM_MAJOR}: ok");
    Ok(())
}

fn llvm_present() -> bool {
    let lib = Path::new(LLVM_PREFIX).join("lib");
    let has_lib = std::fs::read_dir(&lib).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with("libLLVM"))
    });
    has_lib && Path::new(LLVM_PREFIX).join("include/llvm").is_dir()
}

fn install_llvm() -> Result<()> {
    apt_install(LLVM_PACKAGES)
}

fn bpf_linker_present() -> bool {
    stdout_of(Command::new("bpf-linker").arg("--version"))
        .is_some_and(|v| v.contains(BPF_LINKER_VERSION))
}

fn install_bpf_linker() -> Result<()> {
    exec(
        cargo()
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            // Without it the build looks in /usr and fails with `-lLLVM`.
            .env("LLVM_PREFIX", LLVM_PREFIX),
    )
}

/// Programs the tests run besides ours: a real Prometheus server (the
/// exporter test), tmux (the dashboard test) and util-linux's setpriv (the
/// no-privileges test). Installed from Debian's packages when missing.
pub fn test_tools() -> Result<()> {
    let args = Args::default();
    for (what, program, version_flag, package) in [
        (
            "prometheus (for the exporter test)",
            "prometheus",
            "--version",
            "prometheus",
        ),
        ("tmux (for the dashboard test)", "tmux", "-V", "tmux"),
        (
            "setpriv (for the privileges test)",
            "setpriv",
            "--version",
            "util-linux",
        ),
        (
            "setcap (for the file capabilities test)",
            "setcap",
            "-h",
            "libcap2-bin",
        ),
    ] {
        step(
            what,
            &args,
            || stdout_of(Command::new(program).arg(version_flag)).is_some(),
            || apt_install(&[package]),
        )?;
    }
    Ok(())
}

/// The real servers the real-server tier and the redis bench run, their
/// load generators and the second opinion: nginx, redis, redis-benchmark
/// (with redis-cli), ab, strace, Python (its http.server), Node.js,
/// lighttpd and memcached, from Debian's packages.
pub fn real_server_tools() -> Result<()> {
    let args = Args::default();
    for (what, program, version_flag, package) in [
        ("nginx (nginx-light)", "nginx", "-v", "nginx-light"),
        ("redis-server", "redis-server", "--version", "redis-server"),
        (
            "redis-benchmark and redis-cli (redis-tools)",
            "redis-benchmark",
            "--version",
            "redis-tools",
        ),
        ("ab (apache2-utils)", "ab", "-V", "apache2-utils"),
        ("strace", "strace", "-V", "strace"),
        (
            "python3 (its http.server)",
            "python3",
            "--version",
            "python3",
        ),
        ("node (nodejs)", "node", "--version", "nodejs"),
        ("lighttpd", "lighttpd", "-v", "lighttpd"),
        ("memcached", "memcached", "-V", "memcached"),
    ] {
        step(
            what,
            &args,
            || stdout_of(Command::new(program).arg(version_flag)).is_some(),
            || install_without_services(package),
        )?;
    }
    Ok(())
}

/// Where Debian's nginx, redis-server, lighttpd and memcached services
/// write their pid, and the name the process has. memcached has two: its
/// own `-P` from /etc/memcached.conf (the systemd unit's PIDFile), and the
/// one the init script's start-memcached writes before it execs memcached.
const SERVICE_PID_FILES: [(&str, &str); 5] = [
    ("/run/nginx.pid", "nginx"),
    ("/run/redis/redis-server.pid", "redis-server"),
    ("/run/lighttpd.pid", "lighttpd"),
    ("/run/memcached/memcached.pid", "memcached"),
    ("/run/memcached.pid", "memcached"),
];

/// Installs `package` without leaving a system service running: invoke-rc.d
/// is told not to start any (a policy-rc.d that exits 101, Debian's way,
/// unless the machine has one already), and a service that started all the
/// same — its pid file new since the install began — is stopped by that pid.
fn install_without_services(package: &str) -> Result<()> {
    const POLICY: &str = "/usr/sbin/policy-rc.d";
    let ours = !Path::new(POLICY).exists();
    if ours && is_root() {
        std::fs::write(
            POLICY,
            "#!/bin/sh\n# cargo xtask bootstrap: no service starts during its install\nexit 101\n",
        )?;
        std::fs::set_permissions(POLICY, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let before: Vec<Option<String>> = SERVICE_PID_FILES
        .iter()
        .map(|(file, _)| std::fs::read_to_string(file).ok())
        .collect();
    let installed = apt_install(&[package]);
    if ours && is_root() {
        let _ = std::fs::remove_file(POLICY);
    }
    for ((file, name), before) in SERVICE_PID_FILES.iter().zip(before) {
        let now = std::fs::read_to_string(file).ok();
        if now.is_some() && now != before {
            stop_service(file, name, now.as_deref().unwrap_or_default());
        }
    }
    installed
}

/// Stops the `name` process whose pid `pid_text` holds (SIGTERM, then
/// SIGKILL after 10 s), if that pid is such a process.
fn stop_service(file: &str, name: &str, pid_text: &str) {
    let Ok(pid) = pid_text.trim().parse::<i32>() else {
        return;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !comm.trim().starts_with(name) {
        return;
    }
    eprintln!("bootstrap: {name}'s package started a service (pid {pid}, {file}): stopping it");
    // SAFETY: a signal to the one process the install just started, by pid.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

fn apt_install(packages: &[&str]) -> Result<()> {
    if !is_root() || !Path::new("/usr/bin/apt-get").exists() {
        bail!(
            "missing packages; install them as root with: apt-get install -y {}",
            packages.join(" ")
        );
    }
    // A fresh machine's package lists may be empty or old.
    exec(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// What the demo's report needs besides the toolchain: a font for the PNG
/// charts' text.
pub fn demo_tools() -> Result<()> {
    step(
        "DejaVu fonts (for the report's PNG charts)",
        &Args::default(),
        || Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists(),
        || apt_install(&["fonts-dejavu-core"]),
    )
}

/// The tracers the overhead bench compares muxtrace with, and redis for its
/// redis part, from Debian's packages. One that cannot be installed is
/// reported as not measured.
pub fn bench_tools() -> Result<()> {
    for (what, program, arg, package) in [
        ("strace", "strace", "-V", "strace"),
        ("perf (linux-perf)", "perf", "version", "linux-perf"),
        ("bpftrace", "bpftrace", "--version", "bpftrace"),
        ("taskset (util-linux)", "taskset", "--version", "util-linux"),
    ] {
        let installed = step(
            what,
            &Args::default(),
            || stdout_of(Command::new(program).arg(arg)).is_some(),
            || apt_install(&[package]),
        );
        if let Err(e) = installed {
            eprintln!(
                "bootstrap: {what}: {e:#}; its configuration will be reported as not measured"
            );
        }
    }
    // The redis overhead bench.
    if let Err(e) = real_server_tools() {
        eprintln!("bootstrap: {e:#}; the redis overhead will be reported as not measured");
    }
    Ok(())
}

/// The directory of the release binaries a task runs: `given` as it is, or
/// else — after the bootstrap and the task's own `tools` — a fresh
/// `cargo build --release` and target/release.
pub fn release_bins(given: Option<&Path>, tools: fn() -> Result<()>) -> Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir.to_path_buf());
    }
    run(&Args::default())?;
    tools()?;
    cargo_build_release()?;
    Ok(workspace_root().join("target/release"))
}
