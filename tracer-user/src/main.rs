//! `muxtrace`: parse the arguments, run a session, print a failure as one
//! sentence and exit with the documented code.
use std::process::ExitCode;

use clap::Parser as _;
use tracer_user::{
    cli::Cli,
    error::{exit, UserError},
    logfile::DashboardLog,
    session,
};

fn main() -> ExitCode {
    // One malloc arena, before any thread starts: glibc's default of one per
    // thread (up to 8 per core) let freed snapshots of short-lived processes
    // sit in several arenas at once — 20,000 followed children peaked at
    // 58 MiB RSS, 48 MiB with one. muxtrace's few threads rarely allocate
    // at the same time.
    // SAFETY: mallopt only tunes the allocator; no allocation is in flight.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
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
    let dashboard_log = init_logging(cli.dashboard(), cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(UserError::runtime(format!("cannot start the runtime: {e}"))),
    };
    let code = match runtime.block_on(session::run(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => fail(e),
    };
    // The terminal is back: say where the dashboard's log lines went.
    if let Some(said) = dashboard_log.and_then(|log| log.report()) {
        eprintln!("muxtrace: {said}");
    }
    code
}

/// Logs go to stderr, except under the dashboard, which owns the terminal:
/// then to muxtrace.log in the temporary directory, returned to be named at
/// exit. `-v` shows info lines (the probes' own among them); RUST_LOG
/// overrides both.
fn init_logging(dashboard: bool, verbose: bool) -> Option<DashboardLog> {
    let level = if verbose { "info" } else { "warn" };
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level));
    // A warning reads like every other sentence muxtrace prints; only the
    // lines -v adds say their level.
    builder.format(|out, record| {
        use std::io::Write as _;
        match record.level() {
            log::Level::Error | log::Level::Warn => writeln!(out, "muxtrace: {}", record.args()),
            level => writeln!(
                out,
                "muxtrace {}: {}",
                level.as_str().to_ascii_lowercase(),
                record.args()
            ),
        }
    });
    let log = dashboard.then(|| DashboardLog::new(std::env::temp_dir()));
    if let Some(log) = &log {
        builder.target(env_logger::Target::Pipe(Box::new(log.clone())));
    }
    builder.init();
    log
}

fn fail(e: UserError) -> ExitCode {
    eprintln!("muxtrace: {e}");
    ExitCode::from(e.code)
}
