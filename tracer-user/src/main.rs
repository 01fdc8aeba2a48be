//! `muxtrace`: parse the arguments, run a session, print a failure as one
//! sentence and exit with the documented code.
use std::process::ExitCode;

use clap::Parser as _;
use tracer_user::{
    cli::Cli,
    error::{exit, UserError},
    session,
};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_target(false)
        .format_timestamp(None)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout with code 0, errors with 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(UserError::runtime(format!("cannot start the runtime: {e}"))),
    };
    match runtime.block_on(session::run(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => fail(e),
    }
}

fn fail(e: UserError) -> ExitCode {
    eprintln!("muxtrace: {e}");
    ExitCode::from(e.code)
}
