//! `cargo xtask build-and-demo`: the four I/O models side by side.
use anyhow::{bail, Result};

use crate::{bootstrap, exec::cargo_build_release};

#[derive(clap::Args)]
pub struct Args {
    /// Run the sweep without a terminal and write a report.
    #[arg(long)]
    headless: bool,
    /// A shorter sweep.
    #[arg(long)]
    quick: bool,
}

pub fn run(args: &Args) -> Result<()> {
    bootstrap::run(&bootstrap::Args::default())?;
    cargo_build_release()?;
    let _ = (args.headless, args.quick);
    bail!("the side-by-side demo is not there yet; the binaries are built in target/release (muxtrace, echo-*, loadgen)")
}
