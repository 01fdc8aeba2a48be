//! Command-line arguments.

use std::time::Duration;

use clap::Parser;

use crate::error::UserError;

/// Shows what an event loop really pays for waiting: every select, poll and
/// epoll_wait call of the traced processes and the receive/send calls around
/// them, measured in the kernel with eBPF.
#[derive(Debug, Parser)]
#[command(
    name = "muxtrace",
    version,
    after_help = "Examples:
  sudo muxtrace --pid 1234                  live dashboard of one process
  sudo muxtrace --pid 1234 --pid 5678       compare processes side by side
  sudo muxtrace --comm nginx --duration 10s --summary
  sudo muxtrace --all --summary             every process that waits
  sudo muxtrace --cgroup system.slice/nginx.service
  sudo muxtrace --summary -- ./server --port 8080

Exit codes: 0 done (also when the traced process exited), 1 runtime failure,
2 bad usage or bad input (no such pid, not permitted)."
)]
pub struct Cli {
    /// Trace this process and all its threads (repeatable).
    #[arg(short, long = "pid", value_name = "PID", allow_negative_numbers = true)]
    pub pids: Vec<i64>,

    /// Trace every process with this name (its comm), including ones that
    /// start later.
    #[arg(short, long, value_name = "NAME")]
    pub comm: Option<String>,

    /// Also trace the children: those running at attach and those forked
    /// after.
    #[arg(short, long)]
    pub follow: bool,

    /// Trace every process on the machine that waits (select, poll,
    /// epoll_wait, io_uring_enter and their variants), each from its first
    /// wait call, including ones that start later; never muxtrace itself.
    #[arg(long)]
    pub all: bool,

    /// Trace every process in this cgroup v2 and the cgroups below it,
    /// including processes started or moved there later. PATH is absolute,
    /// or below the cgroup v2 mount (system.slice/nginx.service).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<std::path::PathBuf>,

    /// Processes traced at once (bounds the kernel's traced set). With
    /// --all or --cgroup, when it is full the least active are evicted to
    /// make room, and counted.
    #[arg(long, value_name = "N", default_value_t = tracer_common::MAX_TRACED_TGIDS,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_processes: u32,

    /// How often the maps are read and the figures updated.
    #[arg(short, long, default_value = "1s", value_parser = parse_interval, value_name = "DURATION")]
    pub interval: Duration,

    /// Stop after this long (e.g. 10s, 500ms, 2m).
    #[arg(short, long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,

    /// An event-loop iteration (a wait's return to the thread's next wait)
    /// at least this long is a stall.
    #[arg(long, default_value = "50ms", value_parser = parse_duration, value_name = "DURATION")]
    pub stall: Duration,

    /// Time one call in N, and one event-loop iteration in N with the wait
    /// that ends it: wall and on-CPU times, iteration times and the busy
    /// share are then estimated from the timed ones, and a stall in an
    /// untimed iteration is found and measured by the kernel's tick (4 ms
    /// at HZ=250) when at least a tick over --stall; counts, bytes, errors,
    /// fd-set sizes, off-CPU time and wakeups stay exact. Reading the clock is
    /// most of what a traced call costs; 16 keeps a saturated server closer
    /// to its untraced speed.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub time_every: u32,

    /// Print an strace -c-like table per process at the end (the default
    /// when stdout is not a terminal).
    #[arg(short, long)]
    pub summary: bool,

    /// The summary table with every column, for wide terminals.
    #[arg(short, long)]
    pub wide: bool,

    /// Write one JSON object per interval, then a final one, to stdout.
    #[arg(long)]
    pub json: bool,

    /// Per-thread slots in the kernel (bounds memory; threads beyond it are
    /// not measured, and every call of theirs is counted as lost).
    #[arg(long, value_name = "N", default_value_t = tracer_common::MAX_THREADS,
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub max_threads: u32,

    /// Serve Prometheus metrics at http://ADDR/metrics (a bare port binds
    /// 127.0.0.1; give 0.0.0.0:PORT to expose it beyond this machine).
    #[arg(long, value_name = "ADDR", value_parser = crate::prometheus::parse_addr)]
    pub prometheus: Option<std::net::SocketAddr>,

    /// With --prometheus: at most N processes get series of their own (the
    /// busiest waiters, sticky), the rest are summed into pid="other",
    /// comm="other" (docs/prometheus.md). Default with --all, --cgroup or
    /// --comm: 20; otherwise every process gets its own.
    #[arg(long, value_name = "N")]
    pub prometheus_top: Option<u32>,

    /// Log more: what muxtrace does, and the first few events its probes
    /// could not measure (with thread, syscall and address).
    #[arg(short, long)]
    pub verbose: bool,

    /// Start this command and trace it from its first syscall.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

impl Cli {
    /// Choices of processes that contradict each other, refused before
    /// anything is loaded: `--all` takes every waiting process already, and
    /// a cgroup's children stay in it (`--pid` with `--cgroup` is checked
    /// once the cgroup is found: those pids must be in it).
    pub fn check_selection(&self) -> Result<(), UserError> {
        let chosen = |list: &[(bool, &'static str)]| list.iter().find(|(set, _)| *set).map(|c| c.1);
        if self.all {
            if let Some(other) = chosen(&[
                (!self.pids.is_empty(), "--pid"),
                (self.comm.is_some(), "--comm"),
                (self.cgroup.is_some(), "--cgroup"),
                (self.follow, "--follow"),
                (!self.command.is_empty(), "a command"),
            ]) {
                return Err(UserError::usage(format!(
                    "--all traces every process that waits already; {other} cannot be combined with it"
                ))
                .hint("give --all alone, or choose the processes with --pid, --comm or --cgroup instead"));
            }
        }
        if let Some(cgroup) = &self.cgroup {
            if let Some(other) = chosen(&[
                (self.comm.is_some(), "--comm"),
                (self.follow, "--follow"),
                (!self.command.is_empty(), "a command"),
            ]) {
                return Err(UserError::usage(format!(
                    "--cgroup {} traces the cgroup's processes and the children they fork already; {other} cannot be combined with it",
                    cgroup.display()
                ))
                .hint("give --cgroup alone (with --pid only for processes of that cgroup)"));
            }
        }
        Ok(())
    }

    /// `--prometheus-top` needs an endpoint to bound, and room for one
    /// process at least.
    pub fn check_prometheus(&self) -> Result<(), UserError> {
        match (self.prometheus_top, self.prometheus) {
            (Some(0), _) => Err(UserError::usage(
                "--prometheus-top 0 would give no process series of its own",
            )
            .hint("give 1 or more; the processes beyond it are summed into pid=\"other\"")),
            (Some(n), None) => Err(UserError::usage(format!(
                "--prometheus-top {n} bounds the series of --prometheus, which is not given"
            ))
            .hint("add --prometheus 127.0.0.1:9464, or leave --prometheus-top out")),
            _ => Ok(()),
        }
    }

    /// How many processes get series of their own at /metrics: the
    /// `--prometheus-top` given, [`DEFAULT_PROMETHEUS_TOP`] for a fleet
    /// (`--all`, `--cgroup`, `--comm`: any number of processes), every
    /// process otherwise (`None`: the user named them).
    pub fn prometheus_top(&self) -> Option<u32> {
        let fleet = self.all || self.cgroup.is_some() || self.comm.is_some();
        self.prometheus_top
            .or(fleet.then_some(DEFAULT_PROMETHEUS_TOP))
    }

    /// The dashboard is the default on a terminal; `--summary`, `--json` or
    /// a pipe choose text output instead.
    pub fn dashboard(&self) -> bool {
        use std::io::IsTerminal as _;
        !self.summary && !self.json && std::io::stdout().is_terminal()
    }
}

/// Processes with series of their own at /metrics for a fleet: enough for a
/// host's few event loops that matter, few enough that a Prometheus
/// scraping many hosts stays small (a busy process has about 100 series).
pub const DEFAULT_PROMETHEUS_TOP: u32 = 20;

/// `10s`, `500ms`, `2m`, `1h`, or plain seconds (`1.5`); at most a year.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    tracer_common::duration::parse_duration(s).map_err(|e| format!("'{}' {e}", s.trim()))
}

/// The shortest `--interval`: reading every map more often costs more CPU
/// than the figures are worth, and rates over shorter spans are noise.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < MIN_INTERVAL {
        return Err(format!(
            "'{}' is shorter than the shortest interval, 10ms",
            s.trim()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5parsecs").is_err());
        assert!(parse_interval("5ms").is_err());
        assert_eq!(parse_interval("10ms"), Ok(MIN_INTERVAL));
    }

    #[test]
    fn absurd_durations_are_usage_errors() {
        for bad in [
            "99999999999999999999999s",
            "10000000000000000000s",
            "0.0000000001",
        ] {
            for flag in ["--interval", "--duration"] {
                let e = Cli::try_parse_from(["muxtrace", flag, bad, "--pid", "1"]).unwrap_err();
                assert_eq!(
                    e.kind(),
                    clap::error::ErrorKind::ValueValidation,
                    "{flag} {bad}"
                );
            }
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Words a command line may hold: every flag, values good and bad,
        /// the `--` separator, and anything at all.
        fn word() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    "--pid",
                    "-p",
                    "--comm",
                    "-c",
                    "--follow",
                    "-f",
                    "--all",
                    "--cgroup",
                    "--max-processes",
                    "--interval",
                    "-i",
                    "--duration",
                    "-d",
                    "--summary",
                    "-s",
                    "--wide",
                    "-w",
                    "--json",
                    "--max-threads",
                    "--prometheus",
                    "--prometheus-top",
                    "--verbose",
                    "-v",
                    "--",
                    "--help",
                    "--version",
                    "-",
                ])
                .prop_map(str::to_owned),
                "[0-9]{1,25}(\\.[0-9]{0,12})?(us|ms|s|m|h|x)?",
                "-?[0-9]{1,12}",
                "[0-9.:\\[\\]]{1,24}",
                any::<String>(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]

            /// clap and our value parsers answer every command line with
            /// arguments or an error — never a panic.
            #[test]
            fn any_command_line_parses_or_is_an_error(words in prop::collection::vec(word(), 0..8)) {
                let argv = std::iter::once("muxtrace".to_owned()).chain(words);
                if let Ok(cli) = Cli::try_parse_from(argv) {
                    prop_assert!(cli.interval >= MIN_INTERVAL);
                    prop_assert!(cli.interval <= tracer_common::duration::MAX_DURATION);
                    if let Some(d) = cli.duration {
                        prop_assert!(!d.is_zero() && d <= tracer_common::duration::MAX_DURATION);
                    }
                    prop_assert!((1..=1_048_576).contains(&cli.max_threads));
                    prop_assert!((1..=65_536).contains(&cli.max_processes));
                }
            }

            /// Good values come through as given, in any order.
            #[test]
            fn good_values_come_through(
                pids in prop::collection::vec(1i64..=4_194_304, 1..4),
                interval_ms in 10u64..=3_600_000,
                duration_s in prop::option::of(1u64..=86_400),
                max_threads in 1u32..=1_048_576,
                port in 1u16..,
                json in any::<bool>(),
                reversed in any::<bool>(),
            ) {
                let mut args: Vec<Vec<String>> = pids
                    .iter()
                    .map(|p| vec!["--pid".to_owned(), p.to_string()])
                    .collect();
                args.push(vec!["--interval".into(), format!("{interval_ms}ms")]);
                if let Some(d) = duration_s {
                    args.push(vec!["-d".into(), format!("{d}s")]);
                }
                args.push(vec!["--max-threads".into(), max_threads.to_string()]);
                args.push(vec!["--prometheus".into(), port.to_string()]);
                if json {
                    args.push(vec!["--json".into()]);
                }
                if reversed {
                    args.reverse();
                }
                let argv = std::iter::once("muxtrace".to_owned()).chain(args.into_iter().flatten());
                let cli = Cli::try_parse_from(argv).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut want = pids.clone();
                if reversed {
                    want.reverse();
                }
                prop_assert_eq!(cli.pids, want);
                prop_assert_eq!(cli.interval, Duration::from_millis(interval_ms));
                prop_assert_eq!(cli.duration, duration_s.map(Duration::from_secs));
                prop_assert_eq!(cli.max_threads, max_threads);
                prop_assert_eq!(cli.prometheus, Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))));
                prop_assert_eq!(cli.json, json);
            }
        }
    }

    #[test]
    fn command_after_double_dash() {
        let cli = Cli::try_parse_from(["muxtrace", "--summary", "--", "ls", "-l"]).unwrap();
        assert_eq!(cli.command, ["ls", "-l"]);
        assert!(cli.summary);
    }
}
