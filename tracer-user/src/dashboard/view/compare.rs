//! View 4: the processes side by side, one column each, so select, poll and
//! epoll servers can be read against each other; their verdicts below.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::Style,
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Paragraph, Row, Table},
    Frame,
};

use super::{fit_line, format, num, DIM, SELECTED, TITLE, VERDICT, WIDE};
use tracer_model::{format::bytes, Metrics, ProcessMetrics};

use crate::dashboard::state::App;

const LABEL_WIDTH: u16 = 14;
/// Wider columns would spread the figures apart for no gain.
const MAX_COLUMN: u16 = 20;

/// Readiness figures mean nothing for a process that never waits.
fn waits(p: &ProcessMetrics) -> bool {
    p.total.watched > 0 || p.total.ready > 0 || p.total.timeouts > 0
}

fn if_waits(p: &ProcessMetrics, v: String) -> String {
    if waits(p) {
        v
    } else {
        "-".to_owned()
    }
}

/// A figure per wait has none to divide by when no wait returned in the
/// interval (one that exited before it, one blocked through it).
fn if_interval_waits(p: &ProcessMetrics, v: String) -> String {
    if p.interval.wakeups_per_sec > 0.0 {
        if_waits(p, v)
    } else {
        "-".to_owned()
    }
}

/// A figure per ready fd has none to divide by when nothing was ready in
/// the interval (a dash, not "0ns").
fn if_ready(p: &ProcessMetrics, v: String) -> String {
    if p.interval.ready > 0 {
        if_waits(p, v)
    } else {
        "-".to_owned()
    }
}

/// Loop figures mean nothing for a process with no thread that waits; an
/// exited one has no threads left, but its loop's iterations stay.
fn if_loop(p: &ProcessMetrics, v: String) -> String {
    if p.loop_threads > 0 || p.total.iterations > 0 {
        v
    } else {
        "-".to_owned()
    }
}

/// When the screen is short, rows go in this order (highest first); the
/// figures the comparison is about never go.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    /// Only while some process has exited.
    Status,
    /// Only while some process shown submits io_uring requests.
    Uring,
    Always,
    Loop,
    Threads,
    Wakeups,
    Pid,
    /// Only on wide screens.
    Wide,
}

type Figure = fn(&ProcessMetrics) -> String;

const FIGURES: &[(&str, Keep, Figure)] = &[
    // Exited processes summed by name have no pid of their own (pid 0).
    ("pid", Keep::Pid, |p| match p.folded {
        0 => p.pid.to_string(),
        _ => "-".to_owned(),
    }),
    ("status", Keep::Status, |p| match (p.alive, p.folded) {
        (true, _) => "running".to_owned(),
        (false, 0) => "exited".to_owned(),
        (false, n) => format!("{n} exited"),
    }),
    ("model", Keep::Always, |p| p.model.name().to_owned()),
    ("calls/s", Keep::Always, |p| {
        format::rate(p.interval.calls_per_sec)
    }),
    ("wakeups/s", Keep::Wakeups, |p| {
        if_waits(p, format::rate(p.interval.wakeups_per_sec))
    }),
    ("watched/wait", Keep::Always, |p| {
        if_interval_waits(p, format::small(p.interval.watched_avg))
    }),
    ("ready/wait", Keep::Always, |p| {
        if_interval_waits(p, format::small(p.interval.ready_avg))
    }),
    ("efficiency", Keep::Always, |p| {
        // io_uring's waits examine no fds: no efficiency to speak of.
        if p.total.scanned == 0 || p.interval.scanned == 0 {
            return "-".to_owned();
        }
        if_interval_waits(
            p,
            format!("{}%", format::small(p.interval.efficiency * 100.0)),
        )
    }),
    ("on-CPU/ready", Keep::Always, |p| {
        if_ready(p, format::ns(p.interval.on_cpu_ns_per_ready))
    }),
    ("SQEs/enter", Keep::Uring, |p| {
        p.uring
            .as_ref()
            .map_or("-".to_owned(), |u| format::small(u.interval.sqes_per_enter))
    }),
    ("CQEs/wait", Keep::Uring, |p| {
        p.uring
            .as_ref()
            .map_or("-".to_owned(), |u| format::small(u.interval.cqes_per_wait))
    }),
    ("io-wq punts", Keep::Uring, |p| {
        p.uring.as_ref().map_or("-".to_owned(), |u| {
            format!("{}%", format::small(u.interval.punt_share * 100.0))
        })
    }),
    ("bkkp/ready", Keep::Always, |p| {
        if_ready(p, bytes(p.interval.bookkeeping_bytes_per_ready))
    }),
    // Without a receive that returned data, or a timed call, there is no
    // figure: a dash, as elsewhere, not a zero.
    ("syscalls/recv", Keep::Always, |p| {
        if p.interval.syscalls_per_receive > 0.0 {
            format!("{:.2}", p.interval.syscalls_per_receive)
        } else {
            "-".to_owned()
        }
    }),
    ("wall p99", Keep::Always, |p| {
        if p.interval.calls > 0 {
            format::ns(p.interval.wall_p99_ns)
        } else {
            "-".to_owned()
        }
    }),
    ("loop busy", Keep::Loop, |p| {
        p.loop_busy_share
            .map_or("-".to_owned(), |b| format!("{:.0}%", b * 100.0))
    }),
    ("iteration p99", Keep::Loop, |p| {
        match p.interval.timed_iterations {
            // None in the interval (an exited process, an idle loop): no
            // figure, not 0.
            0 => "-".to_owned(),
            _ => if_loop(p, format::ns(p.interval.iteration_p99_ns)),
        }
    }),
    ("stalls, total", Keep::Wide, |p| {
        if_loop(p, tracer_model::format::thousands(p.total.stalls))
    }),
    ("run queue p99", Keep::Wide, |p| {
        if p.interval.runq_delays == 0 {
            "-".to_owned()
        } else {
            format::ns(p.interval.runq_p99_ns)
        }
    }),
    ("timeouts", Keep::Wide, |p| {
        if_interval_waits(
            p,
            format!("{}%", format::small(p.interval.timeout_share * 100.0)),
        )
    }),
    ("bkkp B/s", Keep::Wide, |p| {
        format::short_bytes(p.interval.bookkeeping_bytes_per_sec)
    }),
    ("data B/s", Keep::Wide, |p| {
        format::short_bytes(p.interval.payload_bytes_per_sec)
    }),
    ("open fds", Keep::Wide, |p| {
        tracer_model::format::thousands(u64::from(p.fd_classes.values().sum::<u32>()))
    }),
    // An exited process has no threads left to count, not none at all.
    ("threads", Keep::Threads, |p| match p.alive {
        true => p.threads.len().to_string(),
        false => "-".to_owned(),
    }),
];

/// `comm: verdict`, wrapped, with the name in bold; `comm pid:` when
/// another process shown has the same name (nginx's workers), and
/// `comm ×N exited:` for exited ones folded by name, which have no pid.
fn verdict_lines(p: &ProcessMetrics, width: usize, with_pid: bool) -> Vec<Line<'static>> {
    let prefix = match (with_pid, p.folded) {
        (_, n @ 1..) => format!("{} ×{n} exited:", p.comm),
        (true, _) => format!("{} {}:", p.comm, p.pid),
        (false, _) => format!("{}:", p.comm),
    };
    format::wrap(&format!("{prefix} {}", p.verdict), width)
        .into_iter()
        .enumerate()
        .map(|(i, text)| match text.strip_prefix(&prefix) {
            Some(rest) if i == 0 => Line::from(vec![
                Span::styled(prefix.clone(), TITLE),
                Span::styled(rest.to_owned(), VERDICT),
            ]),
            _ => Line::styled(text, VERDICT),
        })
        .collect()
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, m: &Metrics) {
    let n = m.processes.len();
    if n == 0 {
        return;
    }
    // Columns: as many processes as fit, sliding to keep the selected one;
    // narrower than the longest name (15 at most) would cut names.
    let longest = m
        .processes
        .iter()
        .map(|p| p.comm.chars().count() as u16)
        .max()
        .unwrap_or(0);
    let min_column = longest.clamp(10, 15) + 1;
    let fits = usize::from((area.width.saturating_sub(LABEL_WIDTH)) / min_column).clamp(1, n);
    let start = app.process.saturating_sub(fits - 1).min(n - fits);
    let shown = &m.processes[start..start + fits];
    let col_width = ((area.width.saturating_sub(LABEL_WIDTH)) / fits as u16)
        .clamp(min_column, MAX_COLUMN.max(min_column))
        - 1;
    // Narrower than the labels and one whole name, the two share the width
    // and the name is cut with an ellipsis: cut by the table, its tail ran
    // into the labels ("last 1.0 s -blocking").
    let (label_width, col_width) = if LABEL_WIDTH + min_column > area.width {
        let label = area.width / 2;
        (label, area.width.saturating_sub(label + 1))
    } else {
        (LABEL_WIDTH - 1, col_width)
    };

    // Columns headed by the same name are told apart by their pids, which
    // then stay on however short the screen.
    let names_repeat = shown
        .iter()
        .enumerate()
        .any(|(i, p)| shown[..i].iter().any(|q| q.comm == p.comm));
    let verdicts: Vec<Line> = shown
        .iter()
        .flat_map(|p| verdict_lines(p, usize::from(area.width), names_repeat))
        .collect();
    let wide = area.width >= WIDE;
    let any_exited = shown.iter().any(|p| !p.alive);
    let any_uring = shown.iter().any(|p| p.uring.is_some());
    let included = |f: &(&str, Keep, Figure), keep: Keep| {
        if f.1 == Keep::Status {
            any_exited
        } else if f.1 == Keep::Uring {
            any_uring
        } else if f.1 == Keep::Pid && names_repeat {
            true
        } else {
            f.1 <= keep
        }
    };
    // Drop the least needed rows until the verdicts fit below the table.
    let mut keep = if wide { Keep::Wide } else { Keep::Pid };
    let rows_at = |keep: Keep| FIGURES.iter().filter(|f| included(f, keep)).count() as u16 + 1;
    while keep > Keep::Always && rows_at(keep) + 1 + verdicts.len() as u16 > area.height {
        keep = match keep {
            Keep::Wide => Keep::Pid,
            Keep::Pid => Keep::Wakeups,
            Keep::Wakeups => Keep::Threads,
            Keep::Threads => Keep::Loop,
            _ => Keep::Always,
        };
    }
    let [table, verdict_area] =
        Layout::vertical([Constraint::Length(rows_at(keep)), Constraint::Min(0)]).areas(area);

    // The figures are the last interval's (stalls: since attach), or once
    // every process has exited, each one's over its own time traced; which
    // processes are shown, when not all fit, goes in the verdicts' title.
    let scope = match app.exited {
        true => "whole run".to_owned(),
        false => format!(
            "last {}",
            tracer_model::format::duration((m.interval_s * 1e9) as u64)
        ),
    };
    let mut header = vec![Cell::from(scope).style(DIM)];
    header.extend(shown.iter().enumerate().map(|(i, p)| {
        let style = if start + i == app.process && n > 1 {
            SELECTED
        } else {
            TITLE
        };
        Cell::from(fit_line(Line::from(p.comm.clone()), col_width).right_aligned()).style(style)
    }));
    let rows: Vec<Row> = FIGURES
        .iter()
        .filter(|f| included(f, keep))
        .map(|(label, _, figure)| {
            let mut cells = vec![Cell::from(*label)];
            cells.extend(shown.iter().map(|p| num(figure(p))));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(label_width)];
    widths.extend(std::iter::repeat_n(Constraint::Length(col_width), fits));
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(Style::new()))
            .column_spacing(1),
        table,
    );

    let room = usize::from(verdict_area.height.saturating_sub(1));
    let mut lines = verdicts;
    if lines.len() > room && room > 0 {
        lines.truncate(room - 1);
        lines.push(Line::styled("… (each verdict is in full in view 1)", DIM));
    }
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::TOP)
                // The table is the last interval's, the verdicts weigh the
                // figures since attach: said, or a server whose idle
                // connections grew reads "scans 16 fds" under "110".
                .title({
                    let shown = (fits < n).then(|| {
                        format!(
                            " · {}-{} of {n} shown, ←→ for more",
                            start + 1,
                            start + fits
                        )
                    });
                    let shown = shown.unwrap_or_default();
                    // Narrow, which columns are shown matters more.
                    let since = if app.was_reset { "the reset" } else { "attach" };
                    [
                        format!("verdicts since {since}{shown}"),
                        format!("verdicts{shown}"),
                    ]
                    .into_iter()
                    .find(|t| t.chars().count() <= usize::from(verdict_area.width))
                    .unwrap_or_else(|| format!("verdicts{shown}"))
                })
                .border_style(DIM),
        ),
        verdict_area,
    );
}
