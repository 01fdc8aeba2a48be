//! `cargo xtask bench`: the echo servers' throughput sweep, written to
//! target/bench/.
use std::process::Command;

use anyhow::Result;

use crate::{
    bootstrap,
    exec::{cargo_build_release, exec, workspace_root},
};

#[derive(clap::Args)]
pub struct Args {
    /// Shorter runs per point.
    #[arg(long)]
    quick: bool,
}

pub fn run(args: &Args) -> Result<()> {
    bootstrap::run(&bootstrap::Args::default())?;
    cargo_build_release()?;
    let root = workspace_root();
    let bin_dir = root.join("target/release");
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let mut cmd = Command::new(bin_dir.join("server-bench"));
    cmd.arg("--bin-dir").arg(&bin_dir).arg("--out").arg(&out);
    if args.quick {
        cmd.arg("--quick");
    }
    exec(&mut cmd)
}
