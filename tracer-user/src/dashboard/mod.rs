//! The live dashboard. `state` holds what is shown and what the user chose,
//! `input` turns keys into commands, `view` draws (a pure function of the
//! state), `term` owns the terminal. The session's loop owns all I/O and
//! calls in here.

mod input;
pub mod state;
mod term;
mod top;
pub mod view;

#[cfg(test)]
mod fixtures;

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt as _;

pub use state::Action;
use state::App;

use tracer_model::Metrics;

pub struct Dashboard {
    app: App,
    events: EventStream,
    term: term::TermGuard,
    /// Fault injection for the test that a panic restores the terminal: set
    /// from [`PANIC_ENV`] once, at open.
    panic_after_first_figures: bool,
}

/// Makes the dashboard panic once it has drawn its first figures.
pub const PANIC_ENV: &str = "MUXTRACE_TEST_PANIC";

impl Dashboard {
    /// Enters the alternate screen and raw mode; a panic hook and `Drop`
    /// restore the terminal however the program ends. A selection that can
    /// grow (`--all`, `--cgroup`, `--comm`) opens on the top view.
    pub fn open(selection_grows: bool) -> std::io::Result<Dashboard> {
        let term = term::TermGuard::enter()?;
        Ok(Dashboard {
            app: App::new(selection_grows),
            events: EventStream::new(),
            term,
            panic_after_first_figures: std::env::var_os(PANIC_ENV).is_some(),
        })
    }

    /// The next terminal event as an action. Cancel-safe, for `select!`.
    pub async fn next_action(&mut self) -> Action {
        match self.events.next().await {
            Some(Ok(Event::Key(key))) => self.app.handle(input::command_for(key)),
            Some(Ok(Event::Resize(..))) => Action::Redraw,
            Some(Ok(_)) => Action::None,
            // The terminal went away: nothing left to show.
            Some(Err(_)) | None => Action::Quit,
        }
    }

    pub fn update(&mut self, metrics: Metrics) {
        self.app.apply(metrics);
    }

    pub fn targets_exited(&mut self) {
        self.app.targets_exited();
    }

    pub fn freeze_on(&mut self, metrics: Metrics) {
        self.app.freeze_on(metrics);
    }

    pub fn draw(&mut self) -> std::io::Result<()> {
        let app = &self.app;
        self.term.terminal.draw(|frame| view::render(frame, app))?;
        if self.panic_after_first_figures && app.shown.is_some() {
            panic!("{PANIC_ENV} is set: a forced panic, to test the terminal's restore");
        }
        Ok(())
    }
}

#[cfg(test)]
mod snapshots {
    use ratatui::{backend::TestBackend, Terminal};

    use super::{
        fixtures,
        state::{App, Command, View},
        top::TopRank,
        view,
    };

    fn screen(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| view::render(f, app)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut out = String::new();
        for y in 0..height {
            let mut line = String::new();
            for x in 0..width {
                line.push_str(buffer[(x, y)].symbol());
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The app after a minute of figures: a history that rises and falls
    /// (so the sparklines have a shape), then `metrics` as the latest.
    fn app_with(metrics: Option<tracer_model::Metrics>, view: View) -> App {
        let mut app = App::default();
        if let Some(m) = metrics {
            for i in 0..60u32 {
                let wave = 0.6 + 0.4 * (f64::from(i) / 6.0).sin().abs();
                let mut earlier = m.clone();
                for p in &mut earlier.processes {
                    let w = &mut p.interval;
                    w.wakeups_per_sec *= wave;
                    w.ready_per_sec *= wave;
                    w.bookkeeping_bytes_per_sec *= wave;
                    w.on_cpu_share *= wave;
                }
                app.apply(earlier);
            }
            app.apply(m);
        }
        app.handle(Command::ShowView(view));
        app
    }

    macro_rules! snap {
        ($name:ident, $metrics:expr, $view:expr) => {
            #[test]
            fn $name() {
                let app = app_with($metrics, $view);
                insta::assert_snapshot!(concat!(stringify!($name), "_80x24"), screen(&app, 80, 24));
                insta::assert_snapshot!(
                    concat!(stringify!($name), "_160x48"),
                    screen(&app, 160, 48)
                );
            }
        };
    }

    /// Below 80 columns: fewer columns, never cut figures, and a note of
    /// what is hidden.
    macro_rules! snap_narrow {
        ($name:ident, $metrics:expr, $view:expr) => {
            #[test]
            fn $name() {
                let app = app_with($metrics, $view);
                insta::assert_snapshot!(concat!(stringify!($name), "_60x20"), screen(&app, 60, 20));
                insta::assert_snapshot!(concat!(stringify!($name), "_40x15"), screen(&app, 40, 15));
            }
        };
    }

    /// A thread-per-request server (Python's http.server): one thread
    /// polls the listening socket, 3,000 handler threads came and went.
    fn poll_server_with_exited_threads() -> tracer_model::Metrics {
        let mut m = fixtures::one_poll_server();
        m.processes[0].exited_threads = Some(tracer_model::ExitedThreadMetrics {
            threads: 3_000,
            iterations: 0,
            stalls: 0,
            calls: 21_000,
            wait_calls: 0,
            wakeups: 0,
            watched: 0,
            watched_waits: 0,
            ready: 0,
            timed_calls: 21_000,
            wall_ns: 186_000_000,
            off_cpu_ns: 12_000_000,
            on_cpu_ns: 174_000_000,
        });
        m
    }

    fn sampled_quiet_poll_server() -> tracer_model::Metrics {
        let mut m = fixtures::one_poll_server();
        m.time_every = 16;
        m.tick_ns = 4_000_000;
        for p in &mut m.processes {
            p.total.tick_stalls = p.total.stalls.saturating_sub(1);
            p.interval.timed_calls = 0;
            p.interval.timed_iterations = 0;
            for s in &mut p.syscalls {
                s.interval.timed_calls = 0;
                s.interval.timed_iterations = 0;
            }
        }
        m
    }

    snap_narrow!(
        narrow_poll_main,
        Some(fixtures::one_poll_server()),
        View::Main
    );
    snap_narrow!(
        narrow_overflowing_main,
        Some(fixtures::overflowing()),
        View::Main
    );
    snap_narrow!(
        narrow_overflowing_threads,
        Some(fixtures::overflowing()),
        View::Threads
    );
    snap_narrow!(
        narrow_overflowing_fds,
        Some(fixtures::overflowing()),
        View::Fds
    );
    snap_narrow!(
        narrow_compare_four,
        Some(fixtures::four_servers()),
        View::Compare
    );
    snap_narrow!(narrow_four_main, Some(fixtures::four_servers()), View::Main);

    snap!(empty_main, fixtures::empty(), View::Main);
    snap!(poll_main, Some(fixtures::one_poll_server()), View::Main);
    snap!(
        poll_threads,
        Some(fixtures::one_poll_server()),
        View::Threads
    );
    snap!(poll_fds, Some(fixtures::one_poll_server()), View::Fds);
    snap!(
        exited_threads,
        Some(poll_server_with_exited_threads()),
        View::Threads
    );
    snap_narrow!(
        narrow_exited_threads,
        Some(poll_server_with_exited_threads()),
        View::Threads
    );
    // Under --time-every the header says the times are sampled.
    snap!(
        sampled_compare_four,
        Some(tracer_model::Metrics {
            time_every: 16,
            ..fixtures::four_servers()
        }),
        View::Compare
    );
    // Under --time-every, a quiet interval with no timed call or iteration
    // shows dashes, not zeros, and the stalls the kernel's tick found.
    snap!(
        sampled_quiet_poll_main,
        Some(sampled_quiet_poll_server()),
        View::Main
    );
    snap!(overflowing_main, Some(fixtures::overflowing()), View::Main);
    snap!(
        overflowing_threads,
        Some(fixtures::overflowing()),
        View::Threads
    );
    snap!(overflowing_fds, Some(fixtures::overflowing()), View::Fds);
    snap!(compare_four, Some(fixtures::four_servers()), View::Compare);
    snap!(uring_main, Some(fixtures::one_uring_server()), View::Main);
    snap!(compare_five, Some(fixtures::five_servers()), View::Compare);

    snap!(empty_compare, fixtures::empty(), View::Compare);
    snap!(
        compare_eight,
        Some(fixtures::eight_servers()),
        View::Compare
    );

    /// At 20 columns a name is cut with an ellipsis, not run into the
    /// labels, and the header keeps whole words.
    #[test]
    fn twenty_columns_cut_words_with_an_ellipsis() {
        let app = app_with(Some(fixtures::four_servers()), View::Compare);
        insta::assert_snapshot!("narrow_compare_four_20x10", screen(&app, 20, 10));
        let fleet = app_with(Some(fixtures::top_fleet()), View::Compare);
        let text = screen(&fleet, 20, 10);
        assert_eq!(text.lines().nth(1), Some("10/14 alive"), "{text}");
        let text = screen(&fleet, 30, 10);
        assert_eq!(text.lines().next(), Some("muxtrace  up 1m02s"), "{text}");
    }

    snap!(top_fleet, Some(fixtures::top_fleet()), View::Top);
    snap!(top_crowd, Some(fixtures::top_crowd()), View::Top);
    snap!(empty_top, fixtures::empty(), View::Top);
    snap_narrow!(narrow_top_fleet, Some(fixtures::top_fleet()), View::Top);

    /// Past the first screen of rows the list turns a page, and the footer
    /// says which rows are shown.
    #[test]
    fn the_top_view_scrolls_with_the_selection() {
        let mut app = app_with(Some(fixtures::top_crowd()), View::Top);
        for _ in 0..20 {
            app.handle(Command::Down);
        }
        let text = screen(&app, 80, 24);
        insta::assert_snapshot!("top_crowd_scrolled_80x24", text);
        let selected = &app.shown.as_ref().unwrap().processes[app.process];
        assert!(text.contains(&selected.comm), "{text}");
    }

    /// Each ranking at 80 columns keeps its own column, and the screen never
    /// runs past 80 columns or cuts a figure.
    #[test]
    fn every_ranking_shows_its_column_at_80x24() {
        let mut app = app_with(Some(fixtures::top_fleet()), View::Top);
        for rank in TopRank::ALL {
            assert_eq!(app.top_rank, rank);
            let text = screen(&app, 80, 24);
            let header = text
                .lines()
                .find(|l| l.trim_start().starts_with("pid "))
                .unwrap_or_else(|| panic!("{text}"));
            assert!(
                header.split_whitespace().any(|h| h == rank.label()),
                "{rank:?}: {header}"
            );
            assert!(text.contains(&format!("ranked by {}", rank.label())));
            assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
            app.handle(Command::Sort);
        }
        insta::assert_snapshot!("top_fleet_by_stalls_80x24", {
            app.handle(Command::Sort);
            app.handle(Command::Sort);
            app.handle(Command::Sort);
            app.handle(Command::Sort);
            screen(&app, 80, 24)
        });
    }

    /// Enter opens the selected row in view 1; Esc comes back to it.
    #[test]
    fn enter_opens_the_selected_process_and_esc_returns() {
        let mut app = app_with(Some(fixtures::top_fleet()), View::Top);
        app.handle(Command::Down);
        app.handle(Command::Down);
        let pid = app.selected_process().unwrap().pid;
        let top = screen(&app, 80, 24);
        app.handle(Command::Open);
        let main = screen(&app, 80, 24);
        assert!(main.contains(&format!("pid {pid} ")), "{main}");
        assert!(main.contains("syscall"), "{main}");
        app.handle(Command::Back);
        assert_eq!(screen(&app, 80, 24), top);
    }

    /// Exited processes summed by name have no pid of their own: view 1
    /// and the compare view say what they are, not "pid 0".
    #[test]
    fn a_folded_row_is_named_in_words_not_as_pid_0() {
        let mut app = app_with(Some(fixtures::top_fleet()), View::Top);
        while app.selected_process().is_some_and(|p| p.folded == 0) {
            app.handle(Command::Down);
        }
        assert_eq!(app.selected_process().map(|p| p.folded), Some(3));
        app.handle(Command::Open);
        let main = screen(&app, 80, 24);
        assert!(
            main.contains("worker: 3 exited processes, folded · poll model"),
            "{main}"
        );
        assert!(!main.contains("pid 0"), "{main}");
        app.handle(Command::ShowView(View::Compare));
        let compare = screen(&app, 160, 48);
        assert!(compare.contains("   3 exited\n"), "{compare}");
        assert!(
            compare.contains("\nworker ×3 exited: poll scans"),
            "{compare}"
        );
        assert!(!compare.contains("worker 0"), "{compare}");
    }

    /// The header's process bar names a folded entry as the other views
    /// do, not as "0 worker (poll) exited".
    #[test]
    fn the_header_names_a_folded_entry_in_words() {
        let mut m = fixtures::top_fleet();
        let first_alive = m.processes.iter().position(|p| p.alive).unwrap();
        let folded = m.processes.iter().position(|p| p.folded > 0).unwrap();
        m.processes = vec![
            m.processes[first_alive].clone(),
            m.processes[folded].clone(),
        ];
        let app = app_with(Some(m), View::Top);
        let text = screen(&app, 160, 48);
        let bar = text.lines().nth(1).unwrap();
        assert!(bar.contains("worker ×3 exited"), "{text}");
        assert!(!bar.contains(" 0 worker"), "{text}");
    }

    /// After exit each process's interval is its own life: the header's
    /// rate is the calls of all over the run, not their lifetime rates
    /// summed (four processes of 1 s each in a 10 s run: 400/s, not 4.0k/s).
    #[test]
    fn the_header_rate_divides_the_calls_by_the_run() {
        let mut m = fixtures::four_servers();
        m.interval_s = 10.0;
        for p in &mut m.processes {
            p.alive = false;
            p.interval.seconds = 1.0;
            p.interval.calls = 1000;
            p.interval.calls_per_sec = 1000.0;
        }
        let mut app = app_with(Some(m), View::Compare);
        app.targets_exited();
        let text = screen(&app, 80, 24);
        assert!(
            text.lines().next().unwrap().contains(" 400 calls/s"),
            "{text}"
        );
    }

    /// A process the collector folded away stays listed a while, greyed —
    /// below the folded row that sums it and marked as one of its
    /// processes, not as a second listing among the others.
    #[test]
    fn an_exited_copy_is_listed_under_its_folded_row() {
        let mut app = app_with(Some(fixtures::four_servers()), View::Top);
        let mut m = fixtures::four_servers();
        let gone = m.processes.remove(1);
        let mut entry = gone.clone();
        (entry.pid, entry.folded, entry.alive) = (0, 1, false);
        // Busier than anything else, alive or not, in its last reading.
        entry.interval.calls_per_sec *= 10.0;
        m.processes.push(entry);
        // A named process that exited too, which nothing folds.
        m.processes[0].alive = false;
        app.apply(m);
        let rows = app.top_rows();
        let shown = app.shown.as_ref().unwrap();
        let at = |pid: u32, folded: u64| {
            rows.iter()
                .position(|&i| shown.processes[i].pid == pid && shown.processes[i].folded == folded)
                .unwrap()
        };
        assert_eq!(at(gone.pid, 0), at(0, 1) + 1, "{rows:?}");
        let text = screen(&app, 80, 24);
        let copy_line = text
            .lines()
            .find(|l| l.contains(&format!("{} ", gone.pid)))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(copy_line.contains(&format!("└ {}", gone.comm)), "{text}");
        // The header names it once, within its folded entry.
        let wide = screen(&app, 160, 48);
        let bar = wide.lines().nth(1).unwrap();
        assert!(bar.contains(&format!("{} ×1 exited", gone.comm)), "{wide}");
        assert!(
            !bar.contains(&format!("{} {}", gone.pid, gone.comm)),
            "{wide}"
        );
    }

    /// After `r` the verdicts weigh the figures since the reset, and say
    /// so; an exited process's thread count is unknown, not 0.
    #[test]
    fn the_compare_view_says_since_the_reset_and_no_threads_for_the_exited() {
        let mut m = fixtures::four_servers();
        m.processes[0].alive = false;
        m.processes[0].threads.clear();
        let mut app = app_with(Some(m), View::Compare);
        let before = screen(&app, 160, 48);
        assert!(before.contains("verdicts since attach"), "{before}");
        app.handle(Command::Reset);
        let text = screen(&app, 160, 48);
        assert!(text.contains("verdicts since the reset"), "{text}");
        let threads = text.lines().find(|l| l.starts_with("threads")).unwrap();
        assert_eq!(threads.split_whitespace().nth(1), Some("-"), "{text}");
    }

    /// A figure per ready fd with none ready in the interval (chronyd, quiet)
    /// is a dash, not "0ns", and so is one per wait with no wait in it; an
    /// exited process's loop figures stay.
    #[test]
    fn the_compare_view_divides_by_nothing_nowhere() {
        let mut m = fixtures::top_fleet();
        // The exited echo-poll made no call in this interval.
        for p in m.processes.iter_mut().filter(|p| p.pid == 4250) {
            p.interval = tracer_model::Window {
                seconds: p.interval.seconds,
                ..Default::default()
            };
        }
        let mut app = app_with(Some(m), View::Compare);
        app.handle(Command::ShowView(View::Compare));
        let text = screen(&app, 160, 48);
        let row = |label: &str| text.lines().find(|l| l.starts_with(label)).unwrap();
        // The cell right-aligned under a name (the header is ASCII).
        let cell = |label: &str, name: &str, nth: usize| -> String {
            let end = row("last ").match_indices(name).nth(nth).unwrap().0 + name.len();
            let chars: Vec<char> = row(label).chars().collect();
            chars[end - name.len()..end]
                .iter()
                .collect::<String>()
                .trim()
                .to_owned()
        };
        for label in ["on-CPU/ready", "bkkp/ready"] {
            assert_eq!(cell(label, "chronyd", 0), "-", "{text}");
        }
        // The exited echo-poll, the second of the name.
        assert_eq!(cell("status", "echo-poll", 1), "exited", "{text}");
        assert_eq!(cell("stalls, total", "echo-poll", 1), "3", "{text}");
        // No wait of the interval to divide by: its per-wait figures too.
        for label in ["watched/wait", "ready/wait", "efficiency", "timeouts"] {
            assert_eq!(cell(label, "echo-poll", 1), "-", "{label}: {text}");
            assert_ne!(cell(label, "echo-poll", 0), "-", "{label}: {text}");
        }
    }

    #[test]
    fn help_overlay() {
        let mut app = app_with(Some(fixtures::one_poll_server()), View::Main);
        app.handle(Command::Help);
        insta::assert_snapshot!("help_80x24", screen(&app, 80, 24));
        insta::assert_snapshot!("help_160x48", screen(&app, 160, 48));
    }

    #[test]
    fn exited_banner() {
        let mut m = fixtures::four_servers();
        for p in &mut m.processes {
            p.alive = false;
        }
        let mut app = app_with(Some(m), View::Compare);
        app.targets_exited();
        insta::assert_snapshot!("exited_80x24", screen(&app, 80, 24));
        insta::assert_snapshot!("exited_160x48", screen(&app, 160, 48));
        app.handle(Command::ShowView(View::Main));
        insta::assert_snapshot!("exited_main_80x24", screen(&app, 80, 24));
    }

    /// A wait kind with no call in the interval (after `r`) shows dashes in
    /// its per-wait columns, as a call that is no wait does, not zeros.
    #[test]
    fn a_wait_with_no_call_this_interval_has_no_per_wait_figures() {
        let mut m = fixtures::one_poll_server();
        for s in &mut m.processes[0].syscalls {
            if s.syscall.is_wait() {
                s.interval = tracer_model::Window::default();
            }
        }
        let text = screen(&app_with(Some(m), View::Main), 80, 24);
        let row = text
            .lines()
            .skip_while(|l| !l.starts_with("syscall "))
            .find(|l| l.starts_with("poll "))
            .unwrap_or_else(|| panic!("{text}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        // calls/s, then fds avg, fds p99, ready avg, eff %, tmo %.
        assert_eq!(cells[2..7], ["-", "-", "-", "-", "-"], "{row}");
    }

    /// nginx's workers share a name: at 80×24 the pid row, which a short
    /// screen otherwise drops first, stays and the verdicts name the pids.
    #[test]
    fn processes_of_one_name_are_told_apart_by_pid() {
        let mut m = fixtures::four_servers();
        for p in &mut m.processes {
            p.comm = "nginx".to_owned();
        }
        let pids: Vec<u32> = m.processes.iter().map(|p| p.pid).collect();
        let app = app_with(Some(m), View::Compare);
        let text = screen(&app, 80, 24);
        let pid_row = text
            .lines()
            .find(|l| l.trim_start().starts_with("pid "))
            .unwrap_or_else(|| panic!("no pid row: {text}"));
        for pid in &pids {
            assert!(pid_row.contains(&pid.to_string()), "{pid}: {text}");
        }
        assert!(text.contains(&format!("nginx {}:", pids[0])), "{text}");
        // Distinct names keep the short screen's choice: no pid row.
        let distinct = screen(
            &app_with(Some(fixtures::four_servers()), View::Compare),
            80,
            24,
        );
        assert!(
            !distinct.lines().any(|l| l.trim_start().starts_with("pid ")),
            "{distinct}"
        );
    }

    #[test]
    fn the_selected_process_is_marked_and_followed() {
        let mut app = app_with(Some(fixtures::eight_servers()), View::Compare);
        for _ in 0..7 {
            app.handle(Command::NextProcess);
        }
        let text = screen(&app, 80, 24);
        assert!(
            text.contains("echo-epoll-8"),
            "the last column slid in: {text}"
        );
        app.handle(Command::ShowView(View::Main));
        let text = screen(&app, 80, 24);
        assert!(text.contains("pid 4307 echo-epoll-8"), "{text}");
        assert!(text.contains("process 8 of 8"), "{text}");
    }

    #[test]
    fn the_threads_title_is_shortened_not_cut() {
        let app = app_with(Some(fixtures::eight_servers()), View::Threads);
        let text = screen(&app, 80, 24);
        let title = text.lines().nth(3).unwrap().trim_end();
        assert!(title.contains("process 1 of 8"), "{text}");
        assert!(
            title.ends_with(" thread") || title.ends_with(" threads"),
            "{title:?}"
        );
        let text = screen(&app, 160, 48);
        assert!(
            text.lines().nth(3).unwrap().contains("with traced calls"),
            "{text}"
        );
    }

    /// The kernel's unreported switch-ins and wakeups are counted, but not
    /// as our loss.
    #[test]
    fn the_kernel_s_gap_is_shown_apart_from_the_losses() {
        let mut m = fixtures::one_poll_server();
        m.losses.insert("switch_in_unseen".to_owned(), 15);
        let app = app_with(Some(m.clone()), View::Main);
        let line = screen(&app, 80, 24).lines().nth(1).unwrap().to_owned();
        assert!(
            line.contains("kernel gaps: 15 off-CPU spans untimed"),
            "{line}"
        );
        assert!(!line.contains("LOST"), "{line}");
        m.losses.insert("wakeup_unseen".to_owned(), 3);
        let app = app_with(Some(m.clone()), View::Main);
        let line = screen(&app, 80, 24).lines().nth(1).unwrap().to_owned();
        assert!(
            line.contains("kernel gaps: 15 off-CPU spans, 3 wakeups untimed")
                && !line.contains("LOST"),
            "{line}"
        );
        // One of each reads as one, not "1 switch-ins".
        let mut single = m.clone();
        single.losses.insert("switch_in_unseen".to_owned(), 1);
        single.losses.insert("wakeup_unseen".to_owned(), 1);
        let app = app_with(Some(single), View::Main);
        let line = screen(&app, 80, 24).lines().nth(1).unwrap().to_owned();
        assert!(
            line.contains("kernel gaps: 1 off-CPU span, 1 wakeup untimed"),
            "{line}"
        );
        m.losses.insert("thread_map_full".to_owned(), 2);
        let app = app_with(Some(m), View::Main);
        let line = screen(&app, 80, 24).lines().nth(1).unwrap().to_owned();
        assert!(
            line.contains("LOST thread_map_full=2") && line.contains("kernel gaps: 15"),
            "{line}"
        );
    }

    #[test]
    fn losses_are_shown_in_the_header() {
        let mut m = fixtures::one_poll_server();
        m.losses.insert("thread_map_full".to_owned(), 12);
        let app = app_with(Some(m), View::Main);
        let text = screen(&app, 80, 24);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .contains("LOST thread_map_full=12"),
            "{text}"
        );
        // In a colour that cannot be missed.
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|f| view::render(f, &app)).unwrap();
        let cell = &terminal.backend().buffer()[(2, 1)];
        assert_eq!(cell.symbol(), "O");
        assert_eq!(cell.bg, ratatui::style::Color::Red);
        assert!(cell.modifier.contains(ratatui::style::Modifier::BOLD));
    }
}
