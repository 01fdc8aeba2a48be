//! The dashboard's state: the latest metrics, a short history for the
//! sparklines, and what the user chose (view, selection, sort, pause). No
//! ratatui types here; updates and key handling are pure and unit-tested.

use std::collections::{BTreeMap, VecDeque};

use tracer_common::SyscallKind;
use tracer_model::{Metrics, ProcessMetrics, Window};

use super::top::{ranked, under_their_folded_rows, TopRank};

/// Samples kept per sparkline (one per interval: 5 minutes at 1 s).
pub const HISTORY: usize = 300;

/// Readings an exited process stays listed for, greyed, after the collector
/// folded it away (10 s at the default interval): long enough to see what
/// went, short enough that a busy `--all` does not fill up with the dead.
pub const EXITED_READINGS: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Every process, one row each, ranked by a chosen column.
    Top,
    Main,
    Threads,
    Fds,
    Compare,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Top,
        View::Main,
        View::Threads,
        View::Fds,
        View::Compare,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Top => "0 Top",
            View::Main => "1 Syscalls",
            View::Threads => "2 Threads",
            View::Fds => "3 Fds",
            View::Compare => "4 Compare",
        }
    }

    fn next(self) -> View {
        let i = View::ALL.iter().position(|v| *v == self).unwrap_or(0);
        View::ALL[(i + 1) % View::ALL.len()]
    }
}

/// How the syscall table is ordered (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CallsPerSec,
    WallP99,
    Bookkeeping,
    Name,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            SortKey::CallsPerSec => "calls/s",
            SortKey::WallP99 => "p99",
            SortKey::Bookkeeping => "bkkp/s",
            SortKey::Name => "name",
        }
    }

    fn next(self) -> SortKey {
        match self {
            SortKey::CallsPerSec => SortKey::WallP99,
            SortKey::WallP99 => SortKey::Bookkeeping,
            SortKey::Bookkeeping => SortKey::Name,
            SortKey::Name => SortKey::CallsPerSec,
        }
    }
}

/// What a key asks for, decided in `input.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Ctrl-C: quits even from the help overlay.
    Interrupt,
    NextView,
    ShowView(View),
    Up,
    Down,
    /// ← →: the previous or next process, in every view.
    PrevProcess,
    NextProcess,
    Sort,
    /// Enter: the top view's selected process in the syscall view.
    Open,
    /// Esc: back to the top view; from the top view (or without one), quit.
    Back,
    Pause,
    Reset,
    Help,
    Nothing,
}

/// What the session loop must do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    Reset,
    Redraw,
}

/// One process's sparkline series, newest last.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub wakeups_per_sec: VecDeque<u64>,
    pub ready_per_sec: VecDeque<u64>,
    pub bookkeeping_per_sec: VecDeque<u64>,
    /// On-CPU share of the wait calls' time, in per mille.
    pub on_cpu_permille: VecDeque<u64>,
}

impl History {
    fn push(&mut self, p: &ProcessMetrics) {
        let w = &p.interval;
        let push = |q: &mut VecDeque<u64>, v: f64| {
            if q.len() == HISTORY {
                q.pop_front();
            }
            q.push_back(v.max(0.0).round() as u64);
        };
        push(&mut self.wakeups_per_sec, w.wakeups_per_sec);
        push(&mut self.ready_per_sec, w.ready_per_sec);
        push(&mut self.bookkeeping_per_sec, w.bookkeeping_bytes_per_sec);
        push(&mut self.on_cpu_permille, w.on_cpu_share * 1000.0);
    }
}

/// `i` moved by `delta`, kept inside `0..n`.
fn step(i: usize, n: usize, delta: i64) -> usize {
    if n == 0 {
        0
    } else {
        (i as i64 + delta).clamp(0, n as i64 - 1) as usize
    }
}

#[derive(Debug, Clone)]
pub struct App {
    /// What is on screen (frozen while paused).
    pub shown: Option<Metrics>,
    /// The newest figures, kept while paused.
    pub latest: Option<Metrics>,
    pub history: BTreeMap<u32, History>,
    pub view: View,
    /// Index into `shown.processes`.
    pub process: usize,
    /// Index into the sorted syscall rows of the selected process.
    pub syscall: usize,
    pub sort: SortKey,
    pub paused: bool,
    pub help: bool,
    /// Every traced process has exited: the banner is up, figures frozen.
    pub exited: bool,
    /// `r` was pressed: the figures "since attach" are since the reset.
    pub was_reset: bool,
    /// `r` was pressed: the figures that follow cover a few microseconds,
    /// with every rank a tie, so the selection stays on its process rather
    /// than follow the top row until an interval has passed.
    hold_selection: bool,
    /// Set on the first update with several processes, so compare mode is
    /// the opening view then — and a user's own choice is never overridden.
    chose_view: bool,
    /// Until the user moves the selection, it follows the busiest wait call
    /// (the one whose histograms say most).
    chose_syscall: bool,
    /// What is selected, by identity: `process` and `syscall` are found
    /// again from these after new figures or a new sort, so the selection
    /// stays on the same process and call when rows move.
    selected_pid: Option<u32>,
    selected_kind: Option<SyscallKind>,
    /// The column the top view ranks by.
    pub top_rank: TopRank,
    /// Esc leads back to the top view: the selection can grow (`--all`,
    /// `--cgroup`, `--comm`) or the user has been there.
    top_home: bool,
    /// Until the user picks a process, the selection follows the top view's
    /// first row (where the top view is home), as `top` keeps the busiest
    /// in sight.
    chose_process: bool,
    /// Processes that were traced and are no longer in the figures (the
    /// collector folds exited ones away), with the readings they have left.
    gone: Vec<(ProcessMetrics, u32)>,
    /// The pids of the exited copies in `shown`: each is also among its
    /// name's folded processes, and is not counted twice.
    shown_copies: Vec<u32>,
}

impl Default for App {
    fn default() -> Self {
        App {
            shown: None,
            latest: None,
            history: BTreeMap::new(),
            view: View::Main,
            process: 0,
            syscall: 0,
            sort: SortKey::CallsPerSec,
            paused: false,
            help: false,
            exited: false,
            was_reset: false,
            hold_selection: false,
            chose_view: false,
            chose_syscall: false,
            selected_pid: None,
            selected_kind: None,
            top_rank: TopRank::WaitCalls,
            top_home: false,
            chose_process: false,
            gone: Vec::new(),
            shown_copies: Vec::new(),
        }
    }
}

impl App {
    /// A dashboard whose selection can grow opens on the top view: one
    /// screen for any number of processes, the busiest first.
    pub fn new(selection_grows: bool) -> App {
        App {
            view: if selection_grows {
                View::Top
            } else {
                View::Main
            },
            chose_view: selection_grows,
            top_home: selection_grows,
            ..App::default()
        }
    }

    pub fn apply(&mut self, mut metrics: Metrics) {
        if self.exited {
            return;
        }
        self.keep_exited(&mut metrics);
        for p in &metrics.processes {
            self.history.entry(p.pid).or_default().push(p);
        }
        if !self.chose_view && metrics.processes.len() > 1 {
            self.view = View::Compare;
            self.chose_view = true;
        }
        if !self.paused {
            self.shown = Some(metrics.clone());
            self.shown_copies = self.gone_pids();
        }
        self.latest = Some(metrics);
        // The reset's own figures hold it; the next interval's rank again.
        match std::mem::take(&mut self.hold_selection) {
            true => self.reselect_process(),
            false => self.reselect(),
        }
    }

    /// Adds, greyed (not alive), the processes that vanished from the
    /// figures in the last [`EXITED_READINGS`] readings: an exited process
    /// is folded into its name's totals at once, and would otherwise leave
    /// the top view without a trace.
    fn keep_exited(&mut self, metrics: &mut Metrics) {
        let present = |pid: u32| metrics.processes.iter().any(|p| p.pid == pid);
        for (_, left) in &mut self.gone {
            *left -= 1;
        }
        self.gone.retain(|(p, left)| *left > 0 && !present(p.pid));
        if let Some(before) = &self.latest {
            for p in &before.processes {
                // Folded totals (pid 0) and those already gone are not new.
                if p.alive && p.pid != 0 && !present(p.pid) {
                    self.gone.push((exited_copy(p), EXITED_READINGS));
                }
            }
        }
        metrics
            .processes
            .extend(self.gone.iter().map(|(p, _)| p.clone()));
    }

    pub fn targets_exited(&mut self) {
        self.exited = true;
    }

    /// Every traced process has exited: the screen freezes on the whole
    /// run's figures. The last interval ended mid-way with the exit, and
    /// its few calls (a last timeout: "tmo 100 %") read as the process's
    /// story beside histograms of the whole run.
    pub fn freeze_on(&mut self, metrics: Metrics) {
        self.shown = Some(metrics.clone());
        self.shown_copies.clear();
        self.latest = Some(metrics);
        self.exited = true;
        self.reselect();
    }

    pub fn handle(&mut self, command: Command) -> Action {
        if self.help && command != Command::Interrupt {
            // Any key — Esc and q included — closes the help overlay.
            self.help = false;
            return Action::Redraw;
        }
        match command {
            Command::Quit | Command::Interrupt => return Action::Quit,
            Command::NextView => {
                self.view = self.view.next();
                self.chose_view = true;
            }
            Command::ShowView(v) => {
                self.view = v;
                self.chose_view = true;
                self.top_home |= v == View::Top;
                self.follow_top();
            }
            Command::Open => {
                if self.view != View::Top || self.selected_process().is_none() {
                    return Action::None;
                }
                self.view = View::Main;
                self.chose_view = true;
                // Esc must come back to this process, whatever ranks first then.
                self.chose_process = true;
                // The opened process's rows: start from its busiest wait call.
                self.syscall = 0;
                self.chose_syscall = false;
                self.follow_busiest_wait();
            }
            Command::Back => {
                if self.view == View::Top || !self.top_home {
                    return Action::Quit;
                }
                self.view = View::Top;
            }
            Command::Up => {
                self.chose_syscall = true;
                self.move_selection(-1);
            }
            Command::Down => {
                self.chose_syscall = true;
                self.move_selection(1);
            }
            Command::PrevProcess => self.move_process(-1),
            Command::NextProcess => self.move_process(1),
            Command::Sort if self.view == View::Top => {
                self.top_rank = self.top_rank.next();
                self.follow_top();
            }
            Command::Sort => self.sort = self.sort.next(),
            Command::Pause => {
                self.paused = !self.paused;
                if !self.paused {
                    self.shown = self.latest.clone();
                    self.shown_copies = self.gone_pids();
                }
            }
            Command::Reset => {
                self.history.clear();
                self.was_reset = true;
                self.hold_selection = true;
                return Action::Reset;
            }
            Command::Help => self.help = true,
            Command::Nothing => return Action::None,
        }
        if command == Command::Sort {
            // The rows reorder: find the same call again.
            self.reselect();
        } else {
            self.clamp();
            self.remember();
        }
        Action::Redraw
    }

    /// ↑↓ move between syscalls in the syscall view, between processes in
    /// the others.
    fn move_selection(&mut self, delta: i64) {
        match self.view {
            View::Main => self.syscall = step(self.syscall, self.syscall_count(), delta),
            _ => self.move_process(delta),
        }
    }

    /// ← → (and ↑↓ outside view 1): the previous or next process, in the
    /// top view's ranked order there, in the figures' order elsewhere.
    fn move_process(&mut self, delta: i64) {
        self.chose_process = true;
        if self.view != View::Top {
            let i = step(self.process, self.process_count(), delta);
            return self.select_process(i);
        }
        let rows = self.top_rows();
        let at = rows.iter().position(|&i| i == self.process).unwrap_or(0);
        if let Some(&i) = rows.get(step(at, rows.len(), delta)) {
            self.select_process(i);
        }
    }

    fn select_process(&mut self, i: usize) {
        let before = self.process;
        self.process = i;
        if self.process != before {
            // Another process's rows: start again from its busiest wait call.
            self.syscall = 0;
            self.chose_syscall = false;
            self.follow_busiest_wait();
        }
    }

    /// Until the user picks a row, the selection sits on the first wait call
    /// in sort order (the one whose histograms say most).
    fn follow_busiest_wait(&mut self) {
        if self.chose_syscall {
            return;
        }
        let rows = self.sorted_syscalls();
        if let Some(i) = rows.iter().position(|s| s.syscall.is_wait()) {
            self.syscall = i;
        }
    }

    /// Selects the top view's first row, until the user picks a process.
    fn follow_top(&mut self) {
        if !self.top_home || self.chose_process {
            return;
        }
        if let Some(&i) = self.top_rows().first() {
            self.select_process(i);
        }
    }

    /// Finds the selected process and call again in the rows as they are now
    /// (new figures, a new process, another sort); what vanished falls back
    /// to a row in range.
    fn reselect(&mut self) {
        self.follow_top();
        if !self.top_home || self.chose_process {
            self.reselect_process();
        } else {
            self.reselect_syscall();
        }
    }

    /// The selected process found again, by pid, then its call.
    fn reselect_process(&mut self) {
        if let Some(pid) = self.selected_pid {
            if let Some(i) = self
                .shown
                .as_ref()
                .and_then(|m| m.processes.iter().position(|p| p.pid == pid))
            {
                self.process = i;
            }
        }
        self.reselect_syscall();
    }

    /// The selected call found again in the selected process's rows.
    fn reselect_syscall(&mut self) {
        self.clamp();
        if self.chose_syscall {
            if let Some(kind) = self.selected_kind {
                if let Some(i) = self
                    .sorted_syscalls()
                    .iter()
                    .position(|s| s.syscall == kind)
                {
                    self.syscall = i;
                }
            }
        } else {
            self.follow_busiest_wait();
        }
        self.clamp();
        self.remember();
    }

    /// Records the identities behind the selected positions.
    fn remember(&mut self) {
        self.selected_pid = self.selected_process().map(|p| p.pid);
        self.selected_kind = self.sorted_syscalls().get(self.syscall).map(|s| s.syscall);
    }

    fn clamp(&mut self) {
        let n = self.process_count();
        if self.process >= n {
            self.process = n.saturating_sub(1);
        }
        let s = self.syscall_count();
        if self.syscall >= s {
            self.syscall = s.saturating_sub(1);
        }
    }

    /// The top view's rows: indices into `shown.processes`, ranked, each
    /// exited copy below the folded row that sums it.
    pub fn top_rows(&self) -> Vec<usize> {
        self.shown.as_ref().map_or(Vec::new(), |m| {
            under_their_folded_rows(m, ranked(m, self.top_rank), &self.shown_copies)
        })
    }

    /// Whether the shown process `pid` is an exited copy: a process the
    /// collector has folded into its name's entry, listed a while longer.
    pub fn is_exited_copy(&self, p: &ProcessMetrics) -> bool {
        p.folded == 0 && !p.alive && self.shown_copies.contains(&p.pid)
    }

    pub fn process_count(&self) -> usize {
        self.shown.as_ref().map_or(0, |m| m.processes.len())
    }

    /// The processes behind the shown rows, (alive, exited): a folded row
    /// counts the processes it sums, and an exited copy none, for its
    /// process is among its name's folded ones already.
    pub fn processes_alive_and_exited(&self) -> (usize, usize) {
        let Some(m) = &self.shown else {
            return (0, 0);
        };
        let alive = m.processes.iter().filter(|p| p.alive).count();
        let exited = m
            .processes
            .iter()
            .filter(|p| !p.alive && !self.shown_copies.contains(&p.pid))
            .map(|p| usize::try_from(p.folded).unwrap_or(usize::MAX).max(1))
            .sum();
        (alive, exited)
    }

    fn gone_pids(&self) -> Vec<u32> {
        self.gone.iter().map(|(p, _)| p.pid).collect()
    }

    fn syscall_count(&self) -> usize {
        self.selected_process().map_or(0, |p| p.syscalls.len())
    }

    pub fn selected_process(&self) -> Option<&ProcessMetrics> {
        self.shown.as_ref()?.processes.get(self.process)
    }

    /// The selected process's syscalls in the current sort order.
    pub fn sorted_syscalls(&self) -> Vec<&tracer_model::SyscallMetrics> {
        let Some(p) = self.selected_process() else {
            return Vec::new();
        };
        let mut rows: Vec<_> = p.syscalls.iter().collect();
        let desc = |a: f64, b: f64| b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal);
        match self.sort {
            SortKey::CallsPerSec => rows.sort_by(|a, b| {
                desc(a.interval.calls_per_sec, b.interval.calls_per_sec)
                    .then(b.total.calls.cmp(&a.total.calls))
            }),
            SortKey::WallP99 => {
                rows.sort_by(|a, b| desc(a.interval.wall_p99_ns, b.interval.wall_p99_ns))
            }
            SortKey::Bookkeeping => rows.sort_by(|a, b| {
                desc(
                    a.interval.bookkeeping_bytes_per_sec,
                    b.interval.bookkeeping_bytes_per_sec,
                )
            }),
            SortKey::Name => rows.sort_by_key(|s| s.syscall.name()),
        }
        rows
    }
}

/// What stays listed of a process that exited and was folded away: its
/// figures since attach, and nothing in the interval, for it runs no more.
/// Its last interval's rates would keep a dead process's calls/s in the
/// header and at the top of the rankings for ten readings, beside the
/// folded totals that already hold its calls.
fn exited_copy(p: &ProcessMetrics) -> ProcessMetrics {
    let idle = |w: &Window| Window {
        seconds: w.seconds,
        ..Window::default()
    };
    let mut last = p.clone();
    last.alive = false;
    last.interval = idle(&p.interval);
    for s in &mut last.syscalls {
        s.interval = idle(&s.interval);
    }
    for t in &mut last.threads {
        t.calls_per_sec = 0.0;
        t.loop_busy_share = None;
    }
    last.loop_busy_share = None;
    if let Some(u) = &mut last.uring {
        u.interval = Default::default();
        for op in &mut u.ops {
            op.interval = Default::default();
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::fixtures;

    /// `r` in the top view: the reset's own figures (a few microseconds,
    /// every rank a tie) leave the selection on its process; the next
    /// interval's ranking is followed again.
    #[test]
    fn a_reset_does_not_move_the_selection() {
        let mut app = App::new(true);
        app.apply(fixtures::top_fleet());
        let busiest = app.selected_process().unwrap().pid;
        let mut just_reset = fixtures::top_fleet();
        for p in &mut just_reset.processes {
            p.interval = Window::default();
        }
        let mut other = App::new(true);
        other.apply(just_reset.clone());
        let tie_first = other.selected_process().unwrap().pid;
        assert_ne!(tie_first, busiest, "the fixture must rank another first");

        assert_eq!(app.handle(Command::Reset), Action::Reset);
        app.apply(just_reset.clone());
        assert_eq!(app.selected_process().unwrap().pid, busiest);
        app.apply(just_reset);
        assert_eq!(app.selected_process().unwrap().pid, tie_first);
    }

    #[test]
    fn compare_opens_for_several_processes_but_never_overrides_a_choice() {
        let mut app = App::default();
        app.apply(fixtures::one_poll_server());
        assert_eq!(app.view, View::Main);
        app.apply(fixtures::four_servers());
        assert_eq!(app.view, View::Compare);
        app.handle(Command::ShowView(View::Threads));
        app.apply(fixtures::four_servers());
        assert_eq!(app.view, View::Threads);
    }

    #[test]
    fn pause_freezes_the_screen_but_keeps_collecting() {
        let mut app = App::default();
        app.apply(fixtures::one_poll_server());
        app.handle(Command::Pause);
        let mut newer = fixtures::one_poll_server();
        newer.elapsed_s += 1.0;
        app.apply(newer);
        assert_eq!(
            app.shown.as_ref().unwrap().elapsed_s,
            fixtures::one_poll_server().elapsed_s
        );
        assert_eq!(app.history[&4242].wakeups_per_sec.len(), 2);
        app.handle(Command::Pause);
        assert_eq!(
            app.shown.as_ref().unwrap().elapsed_s,
            fixtures::one_poll_server().elapsed_s + 1.0
        );
    }

    #[test]
    fn selection_stays_in_range() {
        let mut app = App::default();
        app.apply(fixtures::one_poll_server());
        for _ in 0..50 {
            app.handle(Command::Down);
        }
        assert_eq!(
            app.syscall,
            app.selected_process().unwrap().syscalls.len() - 1
        );
        for _ in 0..50 {
            app.handle(Command::Up);
        }
        assert_eq!(app.syscall, 0);
        app.handle(Command::ShowView(View::Compare));
        app.handle(Command::Down);
        assert_eq!(app.process, 0, "one process: nowhere to go");
    }

    #[test]
    fn left_right_select_a_process_in_every_view() {
        let mut app = App::default();
        app.apply(fixtures::four_servers());
        app.handle(Command::ShowView(View::Main));
        app.handle(Command::Down);
        app.handle(Command::NextProcess);
        assert_eq!(app.process, 1);
        let rows = app.sorted_syscalls();
        assert_eq!(
            rows[app.syscall].syscall.name(),
            "pselect6",
            "another process: back to its wait call"
        );
        for _ in 0..10 {
            app.handle(Command::NextProcess);
        }
        assert_eq!(app.process, 3);
        app.handle(Command::PrevProcess);
        assert_eq!(app.process, 2);
        app.handle(Command::ShowView(View::Threads));
        app.handle(Command::Up);
        assert_eq!(app.process, 1, "↑↓ pick processes outside view 1");
    }

    #[test]
    fn history_is_bounded() {
        let mut app = App::default();
        for _ in 0..HISTORY + 20 {
            app.apply(fixtures::one_poll_server());
        }
        assert_eq!(app.history[&4242].ready_per_sec.len(), HISTORY);
    }

    #[test]
    fn help_closes_on_any_key_and_reset_is_passed_on() {
        let mut app = App::default();
        assert_eq!(app.handle(Command::Help), Action::Redraw);
        assert!(app.help);
        assert_eq!(app.handle(Command::Sort), Action::Redraw);
        assert!(!app.help);
        assert_eq!(
            app.sort,
            SortKey::CallsPerSec,
            "the key only closed the overlay"
        );

        assert_eq!(app.handle(Command::Reset), Action::Reset);
        assert_eq!(app.handle(Command::Quit), Action::Quit);
        app.handle(Command::Help);
        assert_eq!(
            app.handle(Command::Quit),
            Action::Redraw,
            "Esc/q close the overlay first"
        );
        app.handle(Command::Help);
        assert_eq!(
            app.handle(Command::Interrupt),
            Action::Quit,
            "Ctrl-C always quits"
        );
    }

    #[test]
    fn exited_freezes_the_figures() {
        let mut app = App::default();
        app.apply(fixtures::one_poll_server());
        app.targets_exited();
        let mut newer = fixtures::one_poll_server();
        newer.elapsed_s += 5.0;
        app.apply(newer);
        assert_eq!(
            app.shown.as_ref().unwrap().elapsed_s,
            fixtures::one_poll_server().elapsed_s
        );
    }

    #[test]
    fn the_selection_follows_the_process_when_rows_move() {
        let mut app = App::default();
        app.apply(fixtures::four_servers());
        app.handle(Command::NextProcess);
        app.handle(Command::NextProcess);
        let pid = app.selected_process().unwrap().pid;
        // A new process appears first in the list (a --comm match).
        let mut more = fixtures::four_servers();
        let mut newcomer = more.processes[0].clone();
        newcomer.pid = 1;
        more.processes.insert(0, newcomer);
        app.apply(more);
        assert_eq!(app.selected_process().unwrap().pid, pid);
        assert_eq!(app.process, 3);
    }

    #[test]
    fn the_selection_follows_the_call_across_sorts_and_figures() {
        let mut app = App::default();
        app.apply(fixtures::one_poll_server());
        app.handle(Command::Down);
        let kind = app.sorted_syscalls()[app.syscall].syscall;
        for _ in 0..4 {
            app.handle(Command::Sort);
            assert_eq!(
                app.sorted_syscalls()[app.syscall].syscall,
                kind,
                "{:?}",
                app.sort
            );
        }
        // New figures where the rows order differently.
        let mut next = fixtures::one_poll_server();
        for s in &mut next.processes[0].syscalls {
            s.interval.calls_per_sec = if s.syscall == kind { 0.0 } else { 1e9 };
        }
        app.apply(next);
        assert_eq!(app.sorted_syscalls()[app.syscall].syscall, kind);
    }

    fn pid_of(app: &App) -> u32 {
        app.selected_process().unwrap().pid
    }

    /// The pids of the top view's rows, in order.
    fn top_pids(app: &App) -> Vec<u32> {
        let m = app.shown.as_ref().unwrap();
        app.top_rows().iter().map(|&i| m.processes[i].pid).collect()
    }

    #[test]
    fn a_selection_that_can_grow_opens_on_the_top_view() {
        let mut app = App::new(true);
        app.apply(fixtures::four_servers());
        assert_eq!(app.view, View::Top, "not compare: the user's home is top");
        let mut app = App::new(false);
        app.apply(fixtures::one_poll_server());
        assert_eq!(app.view, View::Main);
        assert_eq!(app.handle(Command::Back), Action::Quit, "--pid: Esc quits");
    }

    #[test]
    fn up_down_walk_the_ranked_rows_from_the_top() {
        let mut app = App::new(true);
        app.apply(fixtures::top_fleet());
        let rows = top_pids(&app);
        assert_eq!(pid_of(&app), rows[0], "the first row until one is picked");
        // Another ranking: still the first row.
        app.handle(Command::Sort);
        assert_eq!(pid_of(&app), top_pids(&app)[0]);
        app.handle(Command::Sort);
        app.handle(Command::Sort);
        app.handle(Command::Sort);
        app.handle(Command::Sort);
        assert_eq!(top_pids(&app), rows);
        for (i, pid) in rows.iter().enumerate().skip(1) {
            app.handle(if i % 2 == 0 {
                Command::Down
            } else {
                Command::NextProcess
            });
            assert_eq!(pid_of(&app), *pid, "row {i}");
        }
        app.handle(Command::Down);
        assert_eq!(pid_of(&app), *rows.last().unwrap(), "stays on the last row");
        app.handle(Command::PrevProcess);
        assert_eq!(pid_of(&app), rows[rows.len() - 2]);
    }

    #[test]
    fn enter_opens_view_1_on_the_row_and_esc_comes_back_to_it() {
        let mut app = App::new(true);
        app.apply(fixtures::top_fleet());
        app.handle(Command::Down);
        app.handle(Command::Down);
        let pid = pid_of(&app);
        assert_eq!(app.handle(Command::Open), Action::Redraw);
        assert_eq!(app.view, View::Main);
        assert_eq!(pid_of(&app), pid);
        assert!(
            app.sorted_syscalls()[app.syscall].syscall.is_wait()
                || !app
                    .selected_process()
                    .unwrap()
                    .syscalls
                    .iter()
                    .any(|s| s.syscall.is_wait()),
            "the opened process's busiest wait call is selected"
        );
        app.handle(Command::ShowView(View::Threads));
        assert_eq!(app.handle(Command::Back), Action::Redraw);
        assert_eq!(app.view, View::Top);
        assert_eq!(pid_of(&app), pid, "the same row");
        assert_eq!(app.handle(Command::Back), Action::Quit, "Esc on top quits");
        app.handle(Command::ShowView(View::Main));
        assert_eq!(app.handle(Command::Open), Action::None, "Enter outside top");
        assert_eq!(app.view, View::Main);
    }

    #[test]
    fn having_visited_the_top_view_esc_leads_back_to_it() {
        let mut app = App::new(false);
        app.apply(fixtures::four_servers());
        app.handle(Command::ShowView(View::Top));
        app.handle(Command::Open);
        assert_eq!(app.handle(Command::Back), Action::Redraw);
        assert_eq!(app.view, View::Top);
    }

    #[test]
    fn s_ranks_the_top_view_and_sorts_the_others() {
        let mut app = App::new(true);
        app.apply(fixtures::top_fleet());
        app.handle(Command::Down);
        let pid = pid_of(&app);
        app.handle(Command::Sort);
        assert_eq!(app.top_rank, TopRank::Unready);
        assert_eq!(app.sort, SortKey::CallsPerSec, "view 1's sort untouched");
        assert_eq!(pid_of(&app), pid, "the selection stays on its process");
        app.handle(Command::ShowView(View::Main));
        app.handle(Command::Sort);
        assert_eq!(app.sort, SortKey::WallP99);
        assert_eq!(app.top_rank, TopRank::Unready);
    }

    #[test]
    fn an_exited_copy_is_not_counted_beside_its_folded_entry() {
        let mut app = App::new(true);
        app.apply(fixtures::four_servers());
        assert_eq!(app.processes_alive_and_exited(), (4, 0));
        // The collector folds the exited process away at once.
        let mut folded = fixtures::four_servers();
        let mut entry = folded.processes.remove(1);
        (entry.pid, entry.folded, entry.alive) = (0, 1, false);
        folded.processes.push(entry);
        app.apply(folded.clone());
        assert_eq!(app.process_count(), 5, "its greyed copy and the folded row");
        assert_eq!(app.processes_alive_and_exited(), (3, 1));
        // Paused, then resumed once the copy has gone: still one.
        app.handle(Command::Pause);
        for _ in 0..=EXITED_READINGS {
            app.apply(folded.clone());
        }
        assert_eq!(app.processes_alive_and_exited(), (3, 1));
        app.handle(Command::Pause);
        assert_eq!(app.process_count(), 4);
        assert_eq!(app.processes_alive_and_exited(), (3, 1));
    }

    #[test]
    fn exited_processes_stay_greyed_for_a_while_then_go() {
        let mut app = App::new(true);
        app.apply(fixtures::four_servers());
        let mut without = fixtures::four_servers();
        let gone = without.processes.remove(1);
        for reading in 1..=EXITED_READINGS + 1 {
            app.apply(without.clone());
            let m = app.shown.as_ref().unwrap();
            let kept: Vec<_> = m.processes.iter().filter(|p| p.pid == gone.pid).collect();
            if reading <= EXITED_READINGS {
                assert_eq!(kept.len(), 1, "reading {reading}");
                assert!(!kept[0].alive);
                assert_eq!(tracer_model::word(kept[0]), "exited");
                // Nothing of it runs: no rate of its last interval lingers.
                assert_eq!(kept[0].interval.calls_per_sec, 0.0);
                assert!(kept[0].total.calls > 0, "its figures since attach stay");
                let last = *top_pids(&app).last().unwrap();
                assert_eq!(last, gone.pid, "exited rows go last");
            } else {
                assert!(kept.is_empty(), "gone after {EXITED_READINGS} readings");
            }
        }
        assert_eq!(app.process_count(), 3);
        // A pid that comes back is itself again, not its ghost.
        app.apply(without.clone());
        app.apply(fixtures::four_servers());
        let m = app.shown.as_ref().unwrap();
        assert_eq!(m.processes.iter().filter(|p| p.pid == gone.pid).count(), 1);
        let mut again = fixtures::four_servers();
        app.apply(again.clone());
        again.processes.remove(1);
        app.apply(again);
        app.apply(fixtures::four_servers());
        let m = app.shown.as_ref().unwrap();
        let same: Vec<_> = m.processes.iter().filter(|p| p.pid == gone.pid).collect();
        assert_eq!(same.len(), 1, "no ghost beside the living");
        assert!(same[0].alive);
    }

    #[test]
    fn sort_cycles_and_orders() {
        let mut app = App::default();
        app.apply(fixtures::one_poll_server());
        let first = app.sorted_syscalls()[0].syscall;
        assert_eq!(first.name(), "recvfrom", "the busiest call first");
        app.handle(Command::Sort);
        app.handle(Command::Sort);
        app.handle(Command::Sort);
        assert_eq!(app.sort, SortKey::Name);
        assert_eq!(app.sorted_syscalls()[0].syscall.name(), "accept4");
    }
}
