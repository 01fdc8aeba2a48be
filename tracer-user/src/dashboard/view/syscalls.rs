//! View 1: the selected process's syscall table, sparklines of the last
//! minutes, and histograms of the selected syscall.

use std::collections::VecDeque;

use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Style},
    text::{Line, Span, Text},
    widgets::{Bar, BarChart, BarGroup, Block, Borders, Cell, Paragraph, Row, Sparkline, Table},
    Frame,
};
use tracer_common::{fold_pow2, Pow2Hist, SyscallKind};

use super::{
    fit_columns, fit_line, format, hidden_note, no_process, num, process_title, DIM, NARROW,
    SELECTED, TITLE, VERDICT, WIDE,
};
use tracer_model::{format::thousands, ProcessMetrics, SyscallMetrics, Window};

use crate::dashboard::state::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let Some(p) = app.selected_process() else {
        return no_process(frame, area);
    };
    let rows = app.sorted_syscalls();
    let tall = area.height >= 36;
    // A long verdict (an io clause, busy-polling, stalls) keeps its start.
    let verdict = format::wrap_at_most(
        &p.verdict,
        usize::from(area.width),
        if tall { 5 } else { 3 },
    );
    let verdict_height = (verdict.len() as u16).max(1);
    let spark_height = if tall { 6 } else { 3 };
    let threshold = app.shown.as_ref().map_or(0, |m| m.stall_threshold_ns);
    // The panel's lines are written for 80 columns: cut at a word below.
    let loop_lines: Vec<Line> = loop_panel(p, threshold)
        .into_iter()
        .map(|l| fit_line(l, area.width))
        .collect();
    let uring_lines: Vec<Line> = uring_panel(p)
        .into_iter()
        .map(|l| fit_line(l, area.width))
        .collect();
    let (columns, hidden) = table_columns(area.width);
    let note = hidden_note(&hidden, area.width);
    let note_height = note.len() as u16;
    // The table leaves room for the loop panel, the sparklines and at least
    // 5 lines of histograms (3 of bars); below the first rows that fit, the
    // selection is pinned (`shown_rows`).
    // A short screen keeps two rows of the table first, then what of the
    // loop panel and the sparklines fits.
    let table_min = (rows.len() as u16).min(2) + 2;
    let mut left = area
        .height
        .saturating_sub(1 + verdict_height + note_height + table_min);
    let loop_height = (loop_lines.len() as u16).min(left);
    left -= loop_height;
    let uring_height = (uring_lines.len() as u16).min(left);
    left -= uring_height;
    let spark_height = if left >= spark_height {
        spark_height
    } else {
        0
    };
    left -= spark_height;
    let table_height = table_min
        + left
            .saturating_sub(5)
            .min(rows.len() as u16 + 2 - table_min);
    let [title, verdict_area, table, note_area, loop_area, uring_area, sparks, hists] =
        Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(verdict_height),
            Constraint::Length(table_height),
            Constraint::Length(note_height),
            Constraint::Length(loop_height),
            Constraint::Length(uring_height),
            Constraint::Length(spark_height),
            Constraint::Min(0),
        ])
        .areas(area);
    frame.render_widget(Paragraph::new(process_title(app, p, area.width)), title);
    let verdict: Vec<Line> = verdict.into_iter().map(Line::from).collect();
    frame.render_widget(Paragraph::new(verdict).style(VERDICT), verdict_area);
    render_table(frame, table, app, &rows, &columns);
    frame.render_widget(Paragraph::new(note), note_area);
    frame.render_widget(Paragraph::new(loop_lines), loop_area);
    frame.render_widget(Paragraph::new(uring_lines), uring_area);
    render_sparklines(frame, sparks, app, p.pid);
    if let Some(s) = rows.get(app.syscall) {
        render_histograms(frame, hists, s);
    }
}

/// The event loop in three lines of at most 80 columns, from the interval
/// (the longest stall since attach): utilisation and iteration time, the
/// stalls, and where a woken event waits before the code sees it.
fn loop_panel(p: &ProcessMetrics, stall_threshold_ns: u64) -> Vec<Line<'static>> {
    let (w, t) = (&p.interval, &p.total);
    let label = |text: &'static str| Span::styled(format!("{text:<7}"), TITLE);
    let mut lines = Vec::new();
    if !p.syscalls.iter().any(|s| s.syscall.is_wait()) {
        if t.calls > 0 {
            lines.push(Line::from(vec![
                label("loop"),
                Span::styled(
                    "none: no thread waits for readiness, so an iteration is undefined",
                    DIM,
                ),
            ]));
        }
    } else {
        // An exited process has no threads left to be busy.
        let busy = p
            .loop_busy_share
            .map_or("-".to_owned(), |b| format!("{:.0}%", b * 100.0));
        let busy = match p.loop_threads {
            0 => String::new(),
            1 => format!("busy {busy} (1 thread)  "),
            n => format!("busy {busy} ({n} threads)  "),
        };
        let iterations = if w.iterations == 0 {
            "no iteration ended".to_owned()
        } else if w.timed_iterations == 0 {
            // --time-every: a quiet loop's interval may hold none timed.
            format!(
                "{}/s iterations, none timed this interval",
                format::rate(ratio(w.iterations as f64, w.seconds)),
            )
        } else {
            format!(
                "iteration p50 {} p99 {} max {}  {}/s",
                format::ns(w.iteration_p50_ns),
                format::ns(w.iteration_p99_ns),
                format::ns(w.iteration_max_ns as f64),
                format::rate(ratio(w.iterations as f64, w.seconds)),
            )
        };
        lines.push(Line::from(vec![
            label("loop"),
            Span::raw(format!("{busy}{iterations}")),
        ]));
        let threshold = tracer_model::format::duration(stall_threshold_ns);
        let stalls = if t.stalls == 0 {
            Span::styled(format!("none of {threshold} or more"), DIM)
        } else {
            let on = t
                .longest_stall_ns
                .saturating_sub(t.longest_stall_off_cpu_ns);
            let on_cpu = ratio(on as f64, t.longest_stall_ns as f64) * 100.0;
            let longest = format::ns(t.longest_stall_ns as f64);
            // Under --time-every, those in untimed iterations were found by
            // the kernel's tick (their lengths known to within one); the
            // longest's clock time, also in the verdict, makes room.
            Span::raw(if t.tick_stalls > 0 {
                format!(
                    "{} ≥{threshold} ({} now, {} by tick); longest {longest}, {on_cpu:.0}% on-CPU",
                    thousands(t.stalls),
                    thousands(w.stalls),
                    thousands(t.tick_stalls),
                )
            } else {
                format!(
                    "{} ≥{threshold} ({} now); longest {longest} at {}, {on_cpu:.0}% on-CPU",
                    thousands(t.stalls),
                    thousands(w.stalls),
                    tracer_model::format::clock_time_utc(t.longest_stall_at_s),
                )
            })
        };
        lines.push(Line::from(vec![label("stalls"), stalls]));
    }
    if w.runq_delays > 0 {
        let per = |ns: u64| format::ns(ratio(ns as f64, w.runq_delays as f64));
        lines.push(Line::from(vec![
            label("wakeup"),
            Span::raw(format!(
                "→ code {}: run queue {} + exit {}; queue p99 {} max {}",
                format::ns(w.readiness_latency_avg_ns),
                per(w.runq_ns),
                per(w.exit_path_ns),
                format::ns(w.runq_p99_ns),
                format::ns(w.runq_max_ns as f64),
            )),
        ]));
    }
    lines
}

/// The most io_uring opcodes listed (the busiest in the interval).
const URING_OPS_SHOWN: usize = 4;

/// io_uring's requests, from the interval, in at most 80 columns: what a
/// syscall bought and the paths taken, then a row per opcode (requests,
/// CQEs and payload per second, errors since attach, path shares, latency).
fn uring_panel(p: &ProcessMetrics) -> Vec<Line<'static>> {
    let Some(u) = &p.uring else {
        return Vec::new();
    };
    let w = &u.interval;
    let pct = |n: u64| format!("{:.0}%", ratio(n as f64, w.timed as f64) * 100.0);
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{:<7}", "uring"), TITLE),
        Span::raw(format!(
            "{} SQE/enter  {} CQE/wait  bkkp {}B/wait  {}inline {} poll {} io-wq {}",
            format::small(w.sqes_per_enter),
            format::small(w.cqes_per_wait),
            format::short_bytes(w.bookkeeping_bytes_per_wait),
            if w.sqpoll_submitted > 0 {
                format!("SQPOLL {:.0}%  ", w.sqpoll_share * 100.0)
            } else {
                String::new()
            },
            pct(w.inline),
            pct(w.polled),
            pct(w.punted),
        )),
    ])];
    lines.push(Line::styled(
        format!(
            "{:<12} {:>6} {:>6} {:>8} {:>7} {:>5} {:>6} {:>7} {:>7}",
            "io_uring op",
            "req/s",
            "CQE/s",
            "data B/s",
            "errors",
            "poll",
            "io-wq",
            "lat p50",
            "p99"
        ),
        TITLE,
    ));
    let mut ops: Vec<_> = u.ops.iter().collect();
    ops.sort_by(|a, b| {
        b.interval
            .submitted
            .cmp(&a.interval.submitted)
            .then(a.opcode.cmp(&b.opcode))
    });
    for op in ops.iter().take(URING_OPS_SHOWN) {
        let o = &op.interval;
        let share = |n: u64| format!("{:.0}%", ratio(n as f64, o.timed as f64) * 100.0);
        lines.push(Line::from(format!(
            "{:<12} {:>6} {:>6} {:>8} {:>7} {:>5} {:>6} {:>7} {:>7}",
            op.op,
            format::rate(o.submitted_per_sec),
            format::rate(o.cqes_per_sec),
            or_dash(o.bytes_per_sec, format::short_bytes(o.bytes_per_sec)),
            thousands(op.total.errors),
            share(o.polled),
            share(o.punted),
            format::ns(o.latency_p50_ns),
            format::ns(o.latency_p99_ns),
        )));
    }
    if u.ops.len() > URING_OPS_SHOWN {
        lines.push(Line::styled(
            format!(
                "… {} more opcodes (--summary lists all)",
                u.ops.len() - URING_OPS_SHOWN
            ),
            DIM,
        ));
    }
    lines
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// One column of the syscall table: a two-line header and its figure.
struct Column {
    top: &'static str,
    bottom: &'static str,
    width: u16,
    /// Readiness figures, blank for calls that do not wait.
    wait_only: bool,
    /// Below 80 columns the columns of highest rank go first (0 stays).
    rank: u8,
    value: fn(&SyscallMetrics) -> String,
}

/// A time from the interval's timed calls; "-" when it had none (under
/// `--time-every`, a quiet call's interval may hold none), not a 0.
fn timed(s: &SyscallMetrics, ns: f64) -> String {
    if s.interval.timed_calls == 0 {
        "-".to_owned()
    } else {
        format::ns(ns)
    }
}

fn or_dash(v: f64, text: String) -> String {
    if v > 0.0 {
        text
    } else {
        "-".to_owned()
    }
}

/// Every column fits 80 wide (narrower screens drop them by rank);
/// `WIDE_COLUMNS` join from 120 on.
const COLUMNS: &[Column] = &[
    Column {
        top: "calls",
        bottom: "/s",
        width: 5,
        wait_only: false,
        rank: 0,
        value: |s| format::rate(s.interval.calls_per_sec),
    },
    Column {
        top: "fds",
        bottom: "avg",
        width: 5,
        wait_only: true,
        rank: 1,
        value: |s| format::small(s.interval.watched_avg),
    },
    Column {
        top: "fds",
        bottom: "p99",
        width: 5,
        wait_only: true,
        rank: 9,
        value: |s| format::small(s.interval.watched_p99),
    },
    Column {
        top: "ready",
        bottom: "avg",
        width: 5,
        wait_only: true,
        rank: 2,
        value: |s| format::small(s.interval.ready_avg),
    },
    Column {
        top: "eff",
        bottom: "%",
        width: 4,
        wait_only: true,
        rank: 5,
        // Nothing scanned (an idle epoll loop, a poll of no fds): no share.
        value: |s| match s.interval.scanned {
            0 => "-".to_owned(),
            _ => format::small(s.interval.efficiency * 100.0),
        },
    },
    Column {
        top: "tmo",
        bottom: "%",
        width: 4,
        wait_only: true,
        rank: 10,
        value: |s| format::small(s.interval.timeout_share * 100.0),
    },
    Column {
        top: "wall",
        bottom: "p50",
        width: 6,
        wait_only: false,
        rank: 8,
        value: |s| timed(s, s.interval.wall_p50_ns),
    },
    Column {
        top: "wall",
        bottom: "p99",
        width: 6,
        wait_only: false,
        rank: 3,
        value: |s| timed(s, s.interval.wall_p99_ns),
    },
    Column {
        top: "cpu",
        bottom: "/call",
        width: 6,
        wait_only: false,
        rank: 4,
        value: |s| timed(s, s.interval.on_cpu_ns_per_call),
    },
    Column {
        top: "bkkp",
        bottom: "B/s",
        width: 5,
        wait_only: false,
        rank: 7,
        value: |s| {
            let v = s.interval.bookkeeping_bytes_per_sec;
            or_dash(v, format::short_bytes(v))
        },
    },
    Column {
        top: "data",
        bottom: "B/s",
        width: 5,
        wait_only: false,
        rank: 6,
        value: |s| {
            let v = s.interval.payload_bytes_per_sec;
            or_dash(v, format::short_bytes(v))
        },
    },
];

const WIDE_COLUMNS: &[Column] = &[
    Column {
        top: "wake",
        bottom: "ups/s",
        width: 6,
        wait_only: true,
        rank: 0,
        value: |s| format::rate(s.interval.wakeups_per_sec),
    },
    Column {
        top: "on-CPU",
        bottom: "%",
        width: 6,
        wait_only: false,
        rank: 0,
        value: |s| format::small(s.interval.on_cpu_share * 100.0),
    },
    Column {
        top: "EINTR",
        bottom: "total",
        width: 7,
        wait_only: false,
        rank: 0,
        value: |s| tracer_model::format::thousands(s.total.eintr),
    },
    Column {
        top: "errors",
        bottom: "total",
        width: 8,
        wait_only: false,
        rank: 0,
        value: |s| tracer_model::format::thousands(s.total.errors),
    },
    Column {
        top: "calls",
        bottom: "total",
        width: 11,
        wait_only: false,
        rank: 0,
        value: |s| tracer_model::format::thousands(s.total.calls),
    },
];

const NAME_WIDTH: u16 = 12;

/// A syscall's name in the table's 12 columns: io_uring_enter's two kinds
/// are `uring_enter` (submits) and `uring_wait` (waits for completions).
fn short_name(kind: SyscallKind) -> &'static str {
    match kind {
        SyscallKind::IoUringEnter => "uring_enter",
        SyscallKind::IoUringWait => "uring_wait",
        k => k.name(),
    }
}

/// The columns shown `width` wide, and the names of those left out: all
/// of them from 80 columns on, the wide ones too from 120; below 80, those
/// that fit, the least needed going first.
fn table_columns(width: u16) -> (Vec<&'static Column>, Vec<String>) {
    let mut columns: Vec<&Column> = COLUMNS.iter().collect();
    if width >= WIDE {
        columns.extend(WIDE_COLUMNS);
    }
    if width >= NARROW {
        return (columns, Vec::new());
    }
    let sizes: Vec<(u16, u8)> = columns.iter().map(|c| (c.width, c.rank)).collect();
    let keep = fit_columns(&sizes, width.saturating_sub(NAME_WIDTH));
    let hidden = columns
        .iter()
        .zip(&keep)
        .filter(|(_, k)| !**k)
        .map(|(c, _)| match c.bottom {
            "%" | "B/s" => c.top.to_owned(),
            per if per.starts_with('/') => format!("{}{per}", c.top),
            stat => format!("{} {stat}", c.top),
        })
        .collect();
    let shown = columns
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect();
    (shown, hidden)
}

/// The rows a table of `visible` rows shows: the first ones, the busiest
/// in the default sort, and the selected row in the last place when it is
/// further down. Scrolling to the selection instead hid the busiest calls
/// whenever the wait call followed by default was the least frequent
/// (lighttpd's `poll`, under its `accept4`, `recvfrom`, `read`…).
fn shown_rows(rows: usize, visible: usize, selected: usize) -> Vec<usize> {
    if selected < visible || rows <= visible {
        (0..rows.min(visible)).collect()
    } else {
        (0..visible - 1).chain([selected]).collect()
    }
}

/// `1-5`, or `1-4,9` with the selected row pinned below the first ones.
fn shown_label(shown: &[usize]) -> String {
    let run_end = shown
        .iter()
        .enumerate()
        .take_while(|(k, &i)| *k == i)
        .count();
    let run = match run_end {
        0 => String::new(),
        1 => "1".to_owned(),
        n => format!("1-{n}"),
    };
    let rest: Vec<String> = shown[run_end..]
        .iter()
        .map(|i| (i + 1).to_string())
        .collect();
    [run, rest.join(",")]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

fn render_table(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    rows: &[&SyscallMetrics],
    columns: &[&Column],
) {
    let visible = usize::from(area.height.saturating_sub(2)).max(1);
    let shown = shown_rows(rows.len(), visible, app.syscall);
    let header_cell = |top: String, bottom: &'static str| {
        Cell::from(Text::from(vec![
            Line::from(top).right_aligned(),
            Line::from(bottom).right_aligned(),
        ]))
    };
    // When rows are hidden (↑↓ moves the selection), the corner says which
    // are shown.
    let window = if rows.len() > visible {
        format!("{} of {}", shown_label(&shown), rows.len())
    } else {
        String::new()
    };
    let mut header = vec![Cell::from(Text::from(vec![
        Line::styled(window, DIM),
        Line::from("syscall"),
    ]))];
    header.extend(
        columns
            .iter()
            .map(|c| header_cell(c.top.to_owned(), c.bottom)),
    );
    let body = shown.iter().map(|&i| (i, rows[i])).map(|(i, s)| {
        let wait = s.syscall.is_wait();
        let mut cells = vec![Cell::from(short_name(s.syscall))];
        // Per-wait figures of a wait kind with no call this interval
        // (after `r`, say) are undefined, not 0.
        let no_waits = !wait || s.interval.calls == 0;
        cells.extend(columns.iter().map(|c| {
            if c.wait_only && no_waits {
                num("-".to_owned())
            } else {
                num((c.value)(s))
            }
        }));
        let style = if i == app.syscall {
            SELECTED
        } else {
            Style::new()
        };
        Row::new(cells).style(style)
    });
    let mut widths = vec![Constraint::Length(NAME_WIDTH)];
    widths.extend(columns.iter().map(|c| Constraint::Length(c.width)));
    let table = Table::new(body, widths)
        .header(Row::new(header).height(2).style(TITLE))
        .column_spacing(1);
    frame.render_widget(table, area);
}

fn render_sparklines(frame: &mut Frame, area: Rect, app: &App, pid: u32) {
    let Some(h) = app.history.get(&pid) else {
        return;
    };
    // Four side by side from 80 columns; below, as many as keep a title.
    let n = if area.width >= NARROW {
        4
    } else {
        usize::from(area.width / 20).clamp(1, 4)
    };
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(area);
    let last = |q: &VecDeque<u64>| q.back().copied().unwrap_or(0) as f64;
    let series = [
        (
            format!("wakeups/s {}", format::rate(last(&h.wakeups_per_sec))),
            &h.wakeups_per_sec,
        ),
        (
            format!("ready/s {}", format::rate(last(&h.ready_per_sec))),
            &h.ready_per_sec,
        ),
        (
            format!(
                "bkkp {}B/s",
                format::short_bytes(last(&h.bookkeeping_per_sec))
            ),
            &h.bookkeeping_per_sec,
        ),
        (
            format!("on-CPU {:.0}%", last(&h.on_cpu_permille) / 10.0),
            &h.on_cpu_permille,
        ),
    ];
    for ((title, data), col) in series.iter().zip(cols.iter()) {
        let width = usize::from(col.width.saturating_sub(1));
        let skip = data.len().saturating_sub(width);
        let points: Vec<u64> = data.iter().skip(skip).copied().collect();
        let spark = Sparkline::default()
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(title.clone())
                    .border_style(DIM),
            )
            .data(&points)
            .style(Style::new().fg(Color::Cyan));
        frame.render_widget(spark, *col);
    }
}

fn render_histograms(frame: &mut Frame, area: Rect, s: &SyscallMetrics) {
    if area.height < 4 {
        return;
    }
    let kind = s.syscall;
    let name = short_name(kind);
    let w: &Window = &s.total;
    // Readiness histograms for the wait calls; for the others, what they
    // moved and what they burned. Wide screens add the on-CPU time of waits.
    let wall = fold_pow2(&w.hists.wall_ns);
    let mut charts = if kind == SyscallKind::IoUringWait {
        // No fds watched: the CQEs waiting as each wait returned.
        vec![
            (format!("{name}: CQEs"), w.hists.ready, false),
            (format!("{name}: wall time"), wall, true),
        ]
    } else if kind.is_wait() {
        vec![
            (
                format!("{name}: watched fds"),
                fold_pow2(&w.hists.watched),
                false,
            ),
            (format!("{name}: ready fds"), w.hists.ready, false),
            (format!("{name}: wall time"), wall, true),
        ]
    } else {
        vec![
            (format!("{name}: bytes"), w.hists.payload, false),
            (format!("{name}: on-CPU time"), w.hists.on_cpu_ns, true),
            (format!("{name}: wall time"), wall, true),
        ]
    };
    if kind.is_wait() && area.width >= WIDE {
        if w.iterations > 0 {
            let iteration = fold_pow2(&w.hists.iteration_ns);
            charts.push((format!("{name}: loop iteration"), iteration, true));
        }
        charts.push((format!("{name}: on-CPU time"), w.hists.on_cpu_ns, true));
    }
    // Below 80 columns, as many as keep their bars readable.
    if area.width < NARROW {
        charts.truncate(usize::from(area.width / 20).max(1));
    }
    let n = charts.len() as u32;
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, n); charts.len()]).split(area);
    for ((title, hist, is_time), col) in charts.iter().zip(cols.iter()) {
        render_hist(frame, *col, title, hist, *is_time);
    }
}

/// A histogram as bars, one per power of two labelled with its range when
/// that fits, else adjacent buckets share a bar labelled with its low end.
fn render_hist(frame: &mut Frame, area: Rect, title: &str, hist: &Pow2Hist, is_time: bool) {
    let block = Block::new()
        .borders(Borders::TOP)
        .title(title.to_owned())
        .border_style(DIM);
    let first = hist.iter().position(|&n| n > 0);
    let last = hist.iter().rposition(|&n| n > 0);
    let (Some(first), Some(last)) = (first, last) else {
        frame.render_widget(Paragraph::new("no samples").style(DIM).block(block), area);
        return;
    };
    let room = usize::from(area.width.saturating_sub(1)) + 1;
    let buckets = last - first + 1;
    let full_width = (first..=last)
        .map(|b| format::bucket_label(b, b, is_time, false).chars().count())
        .max()
        .unwrap_or(1)
        .clamp(4, 9);
    let (group, bar_width, short) = if buckets * (full_width + 1) <= room {
        (1, full_width, false)
    } else if let Some((group, width)) = (!is_time)
        .then(|| count_groups(first, last, room))
        .flatten()
    {
        (group, width, false)
    } else {
        let width = if is_time { 5 } else { 4 };
        (buckets.div_ceil((room / (width + 1)).max(1)), width, true)
    };
    let total: u64 = hist.iter().sum();
    let bars: Vec<Bar> = (first..=last)
        .step_by(group)
        .map(|b| {
            let end = (b + group).min(last + 1);
            let value: u64 = hist[b..end].iter().sum();
            let share = format!("{:.0}%", value as f64 * 100.0 / total as f64);
            Bar::default()
                .value(value)
                .text_value(if share.len() <= bar_width {
                    share
                } else {
                    String::new()
                })
                .label(Line::from(format::bucket_label(b, end - 1, is_time, short)))
        })
        .collect();
    let chart = BarChart::default()
        .block(block)
        .data(BarGroup::default().bars(&bars))
        .bar_width(bar_width as u16)
        .bar_gap(1)
        .bar_style(Style::new().fg(Color::Green))
        .value_style(Style::new().fg(Color::Black).bg(Color::Green));
    frame.render_widget(chart, area);
}

/// The fewest buckets per bar whose bars, each labelled with the range it
/// holds (`0-1`, `2-7`), fit in `room` columns, and the bar width that
/// takes. A count bar labelled with its low end alone read as its own
/// value: redis's waits that each returned 1 fd showed as 43 % over `0`.
fn count_groups(first: usize, last: usize, room: usize) -> Option<(usize, usize)> {
    const WIDEST: usize = 9;
    let buckets = last - first + 1;
    (2..=buckets).find_map(|group| {
        let width = (first..=last)
            .step_by(group)
            .map(|b| {
                let end = (b + group).min(last + 1);
                format::bucket_label(b, end - 1, false, false)
                    .chars()
                    .count()
            })
            .max()?
            .max(4);
        (width <= WIDEST && buckets.div_ceil(group) * (width + 1) <= room).then_some((group, width))
    })
}

#[cfg(test)]
mod tests {
    use ratatui::{backend::TestBackend, Terminal};
    use tracer_common::SyscallKind;

    use super::*;
    use crate::dashboard::{
        fixtures,
        state::{App, Command, View},
    };

    /// Counts too many for a bar each share bars labelled with the range
    /// they hold, never with their low end alone.
    #[test]
    fn shared_count_bars_say_their_range() {
        // 0, 1, 2-3, 4-7, 8-15, 16-31: six bars need 36 columns.
        assert_eq!(count_groups(0, 5, 20), Some((2, 4)));
        let labels: Vec<String> = (0..=5)
            .step_by(2)
            .map(|b| format::bucket_label(b, b + 1, false, false))
            .collect();
        assert_eq!(labels, ["0-1", "2-7", "8-31"]);
        // Too many even so: the low ends, as for times.
        assert_eq!(count_groups(0, 40, 12), None);
        let mut hist: Pow2Hist = [0; tracer_common::POW2_BUCKETS];
        (hist[0], hist[1], hist[5]) = (6, 14_110, 3);
        let backend = TestBackend::new(16, 6);
        let mut terminal = Terminal::new(backend).unwrap();
        terminal
            .draw(|f| render_hist(f, f.area(), "ready", &hist, false))
            .unwrap();
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(screen.contains("0-1"), "{screen:?}");
    }

    #[test]
    fn the_first_rows_stay_and_a_selection_below_them_is_pinned_last() {
        assert_eq!(shown_rows(4, 5, 3), [0, 1, 2, 3]);
        assert_eq!(shown_rows(6, 5, 4), [0, 1, 2, 3, 4]);
        assert_eq!(shown_rows(6, 5, 5), [0, 1, 2, 3, 5]);
        assert_eq!(shown_rows(28, 4, 21), [0, 1, 2, 21]);
        assert_eq!(shown_rows(3, 1, 2), [2]);
        assert_eq!(shown_label(&[0, 1, 2, 3, 4]), "1-5");
        assert_eq!(shown_label(&[0, 1, 2, 21]), "1-3,22");
        assert_eq!(shown_label(&[0, 5]), "1,6");
        assert_eq!(shown_label(&[2]), "3");
    }

    /// From 40 columns on the poll row shows, whole and in order, the
    /// figures of the columns kept, and the line under the table names every
    /// column left out; from 80 on nothing is left out (the old table cut
    /// its figures: `.5µs` for 45.5µs).
    #[test]
    fn below_80_columns_each_figure_is_whole_or_named_as_hidden() {
        let mut app = App::default();
        app.apply(fixtures::one_poll_server());
        app.apply(fixtures::one_poll_server());
        app.handle(Command::ShowView(View::Main));
        let poll = *app
            .sorted_syscalls()
            .iter()
            .find(|s| s.syscall == SyscallKind::Poll)
            .unwrap();
        for width in 40..=100u16 {
            let mut terminal = Terminal::new(TestBackend::new(width, 40)).unwrap();
            terminal
                .draw(|f| crate::dashboard::view::render(f, &app))
                .unwrap();
            let buffer = terminal.backend().buffer();
            let lines: Vec<String> = (0..40)
                .map(|y| (0..width).map(|x| buffer[(x, y)].symbol()).collect())
                .collect();
            let row = lines
                .iter()
                .skip_while(|l| !l.starts_with("syscall "))
                .find(|l| l.starts_with("poll "))
                .unwrap_or_else(|| panic!("{width}: no poll row in {lines:#?}"));
            let (shown, hidden) = table_columns(width);
            let expected: Vec<String> = shown.iter().map(|c| (c.value)(poll)).collect();
            let figures: Vec<&str> = row.split_whitespace().skip(1).collect();
            assert_eq!(figures, expected, "{width} columns: {row:?}");
            assert_eq!(shown.len() + hidden.len(), COLUMNS.len(), "{width}");
            let note: String = lines
                .iter()
                .skip_while(|l| !l.starts_with("hidden below 80 columns:"))
                .take(super::hidden_note(&hidden, width).len())
                .map(|l| l.trim_end())
                .collect::<Vec<_>>()
                .join(" ");
            if width >= 80 {
                assert!(hidden.is_empty(), "{width}: {hidden:?}");
            }
            if hidden.is_empty() {
                assert!(note.is_empty(), "{width}: {note}");
                continue;
            }
            let named = note
                .trim_start_matches("hidden below 80 columns:")
                .split(',')
                .map(str::trim)
                .collect::<Vec<_>>();
            assert_eq!(named, hidden, "{width} columns: {note:?}");
        }
    }
}
