//! Drawing: a pure function of [`App`]. One function per screen; the header,
//! tabs and overlays are shared.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{
        Bar, BarChart, BarGroup, Block, Borders, Clear, Paragraph, Row, Sparkline, Table, Wrap,
    },
    Frame,
};
use tracer_common::{bucket_low, Hist};

use super::{
    input::KEYS,
    state::{App, View},
};
use crate::model::{bytes, thousands, Metrics, ProcessMetrics, Window};

const DIM: Style = Style::new().fg(Color::DarkGray);
const TITLE: Style = Style::new().add_modifier(Modifier::BOLD);
const ALERT: Style = Style::new()
    .fg(Color::White)
    .bg(Color::Red)
    .add_modifier(Modifier::BOLD);

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let [header, tabs, body] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    render_header(frame, header, app);
    render_tabs(frame, tabs, app);
    match (&app.shown, app.view) {
        (None, _) => frame.render_widget(
            Paragraph::new("waiting for the first figures… (one per interval)").style(DIM),
            body,
        ),
        (Some(m), View::Main) => render_main(frame, body, app, m),
        (Some(m), View::Threads) => render_threads(frame, body, app, m),
        (Some(m), View::Fds) => render_fds(frame, body, app, m),
        (Some(m), View::Compare) => render_compare(frame, body, m),
    }
    if app.exited {
        render_banner(frame, area);
    }
    if app.help {
        render_help(frame, area);
    }
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.1}s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.1}ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1}µs", ns / 1e3)
    } else {
        format!("{ns:.0}ns")
    }
}

fn fmt_uptime(s: f64) -> String {
    let s = s as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn render_header(frame: &mut Frame, area: Rect, app: &App) {
    let mut first = vec![Span::styled("muxtrace", TITLE)];
    let mut second = Vec::new();
    if let Some(m) = &app.shown {
        let events: f64 = m.processes.iter().map(|p| p.interval.calls_per_sec).sum();
        first.push(Span::raw(format!(
            "  up {}  {} calls/s",
            fmt_uptime(m.elapsed_s),
            fmt_rate(events)
        )));
        if let Some(c) = &m.cost {
            first.push(Span::styled(
                format!(
                    "  own cost {:.2}% CPU, {:.0} ns/run",
                    c.cpu_percent, c.ns_per_run
                ),
                DIM,
            ));
        }
        for p in &m.processes {
            let style = if p.alive { Style::new() } else { DIM };
            second.push(Span::styled(
                format!(
                    "{} {} ({}){}  ",
                    p.pid,
                    p.comm,
                    p.model.name(),
                    if p.alive { "" } else { " exited" }
                ),
                style,
            ));
        }
        if !m.losses.is_empty() {
            let lost: Vec<String> = m.losses.iter().map(|(k, v)| format!("{k}={v}")).collect();
            // Losses go first so a narrow screen cannot push them out of sight.
            second.insert(0, Span::styled(format!(" LOST {} ", lost.join(" ")), ALERT));
            second.insert(1, Span::raw(" "));
        }
    }
    if app.paused {
        first.push(Span::styled(
            "  PAUSED",
            Style::new().fg(Color::Yellow).bold(),
        ));
    }
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

fn render_tabs(frame: &mut Frame, area: Rect, app: &App) {
    let mut spans = Vec::new();
    for v in View::ALL {
        let style = if v == app.view {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            DIM
        };
        spans.push(Span::styled(format!(" {} ", v.title()), style));
    }
    spans.push(Span::styled(
        format!("  sort {}  ? help", app.sort.label()),
        DIM,
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn process_title(p: &ProcessMetrics) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("pid {} {}", p.pid, p.comm), TITLE),
        Span::raw(format!(" · {} model", p.model.name())),
    ])
}

fn render_main(frame: &mut Frame, area: Rect, app: &App, m: &Metrics) {
    let Some(p) = app.selected_process() else {
        frame.render_widget(
            Paragraph::new("no traced process has made a measured call yet").style(DIM),
            area,
        );
        return;
    };
    let rows = app.sorted_syscalls();
    // The table leaves room for the sparklines and at least 6 lines of
    // histograms; the rest scrolls with the selection.
    let table_height = (rows.len() as u16 + 1)
        .min(area.height.saturating_sub(12))
        .max(3);
    let [title, verdict, table, sparks, hists] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Length(table_height),
        Constraint::Length(3),
        Constraint::Min(0),
    ])
    .areas(area);
    let mut title_line = process_title(p);
    if m.processes.len() > 1 {
        title_line.push_span(Span::styled(
            format!(
                "  (process {} of {}, ↑↓ in view 4)",
                app.process + 1,
                m.processes.len()
            ),
            DIM,
        ));
    }
    frame.render_widget(Paragraph::new(title_line), title);
    frame.render_widget(
        Paragraph::new(p.verdict.clone())
            .style(Style::new().fg(Color::Yellow))
            .wrap(Wrap { trim: true }),
        verdict,
    );
    render_syscall_table(frame, table, app, &rows);
    render_sparklines(frame, sparks, app, p);
    if let Some(s) = rows.get(app.syscall) {
        render_histograms(frame, hists, s.syscall, &s.total);
    }
}

fn render_syscall_table(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    rows: &[&crate::model::SyscallMetrics],
) {
    let wide = area.width >= 120;
    let visible = area.height.saturating_sub(1).max(1) as usize;
    let offset = (app.syscall + 1).saturating_sub(visible);
    let mut header = vec![
        "syscall", "calls/s", "watched", "ready", "eff%", "p50", "p99", "cpu/call", "bkkp/s",
    ];
    let mut widths = vec![12, 7, 7, 5, 5, 7, 7, 8, 8];
    if wide {
        header.extend(["w.p99", "tmo%", "payload/s", "errors", "oncpu%"]);
        widths.extend([6, 5, 9, 7, 6]);
    }
    let hidden_below = rows.len().saturating_sub(offset + visible);
    let body = rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(visible)
        .map(|(i, s)| {
            let w = &s.interval;
            let wait = w.watched > 0 || w.ready > 0 || w.timeouts > 0 || s.total.watched > 0;
            let or_dash = |v: String| if wait { v } else { "-".to_owned() };
            let mut cells = vec![
                s.syscall.to_owned(),
                fmt_rate(w.calls_per_sec),
                or_dash(format!("{:.0}", w.watched_avg)),
                or_dash(format!("{:.1}", w.ready_avg)),
                or_dash(format!("{:.1}", w.efficiency * 100.0)),
                fmt_ns(w.wall_p50_ns),
                fmt_ns(w.wall_p99_ns),
                fmt_ns(w.on_cpu_ns_per_call),
                if w.bookkeeping_bytes_per_sec > 0.0 {
                    format!("{}/s", short_bytes(w.bookkeeping_bytes_per_sec))
                } else {
                    "-".into()
                },
            ];
            if wide {
                cells.extend([
                    or_dash(format!("{:.0}", w.watched_p99)),
                    or_dash(format!("{:.0}", w.timeout_share * 100.0)),
                    if w.payload_bytes_per_sec > 0.0 {
                        format!("{}/s", short_bytes(w.payload_bytes_per_sec))
                    } else {
                        "-".into()
                    },
                    s.total.errors.to_string(),
                    format!("{:.0}", w.on_cpu_share * 100.0),
                ]);
            }
            let style = if i == app.syscall {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            if i + 1 == offset + visible && hidden_below > 0 && i != app.syscall {
                // The last visible line says how many rows are below.
                cells[0] = format!("↓ {hidden_below} more");
                return Row::new(cells).style(DIM);
            }
            Row::new(cells).style(style)
        });
    let table = Table::new(body, widths.into_iter().map(Constraint::Length))
        .header(Row::new(header).style(TITLE))
        .column_spacing(1);
    frame.render_widget(table, area);
}

/// Bytes with a one-letter unit, for tight columns.
fn short_bytes(v: f64) -> String {
    if v >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1}G", v / (1024.0 * 1024.0 * 1024.0))
    } else if v >= 1024.0 * 1024.0 {
        format!("{:.1}M", v / (1024.0 * 1024.0))
    } else if v >= 1024.0 {
        format!("{:.1}K", v / 1024.0)
    } else {
        format!("{v:.0}B")
    }
}

fn render_sparklines(frame: &mut Frame, area: Rect, app: &App, p: &ProcessMetrics) {
    let Some(h) = app.history.get(&p.pid) else {
        return;
    };
    let cols = Layout::horizontal([Constraint::Ratio(1, 4); 4]).split(area);
    let last = |q: &std::collections::VecDeque<u64>| q.back().copied().unwrap_or(0);
    let series = [
        (
            format!("wakeups/s {}", fmt_rate(last(&h.wakeups_per_sec) as f64)),
            &h.wakeups_per_sec,
        ),
        (
            format!("ready/s {}", fmt_rate(last(&h.ready_per_sec) as f64)),
            &h.ready_per_sec,
        ),
        (
            format!(
                "bkkp {}/s",
                short_bytes(last(&h.bookkeeping_per_sec) as f64)
            ),
            &h.bookkeeping_per_sec,
        ),
        (
            format!("on-CPU {:.0}%", last(&h.on_cpu_permille) as f64 / 10.0),
            &h.on_cpu_permille,
        ),
    ];
    for ((title, data), col) in series.iter().zip(cols.iter()) {
        let width = col.width.saturating_sub(1) as usize;
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

fn render_histograms(frame: &mut Frame, area: Rect, name: &str, w: &Window) {
    if area.height < 4 {
        return;
    }
    let cols = Layout::horizontal([Constraint::Ratio(1, 3); 3]).split(area);
    let charts = [
        (format!("{name}: watched fds"), &w.hists.watched, false),
        (format!("{name}: ready fds"), &w.hists.ready, false),
        (format!("{name}: wall time"), &w.hists.wall_ns, true),
    ];
    for ((title, hist, is_time), col) in charts.iter().zip(cols.iter()) {
        render_hist(frame, *col, title, hist, *is_time);
    }
}

/// A bucket's lower bound in at most 4 characters (the bar width).
fn bucket_label(b: usize, is_time: bool) -> String {
    let low = bucket_low(b);
    if is_time {
        match low {
            0..=999 => format!("{low}n"),
            1_000..=999_999 => format!("{}µ", low / 1_000),
            1_000_000..=999_999_999 => format!("{}m", low / 1_000_000),
            _ => format!("{}s", low / 1_000_000_000),
        }
    } else if low >= 1024 {
        format!("{}k", low / 1024)
    } else {
        low.to_string()
    }
}

fn render_hist(frame: &mut Frame, area: Rect, title: &str, hist: &Hist, is_time: bool) {
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
    let bar_width = 4u16;
    let fits = ((area.width + 1) / (bar_width + 1)).max(1) as usize;
    // Wide distributions are shown whole: adjacent buckets share a bar.
    let group = (last - first + 1).div_ceil(fits).max(1);
    let bars: Vec<Bar> = (first..=last)
        .step_by(group)
        .map(|b| {
            let end = (b + group).min(last + 1);
            Bar::default()
                .value(hist[b..end].iter().sum())
                .text_value(String::new())
                .label(Line::from(bucket_label(b, is_time)))
        })
        .collect();
    let chart = BarChart::default()
        .block(block)
        .data(BarGroup::default().bars(&bars))
        .bar_width(bar_width)
        .bar_gap(1)
        .bar_style(Style::new().fg(Color::Green));
    frame.render_widget(chart, area);
}

fn render_threads(frame: &mut Frame, area: Rect, app: &App, _m: &Metrics) {
    let Some(p) = app.selected_process() else {
        return;
    };
    let [title, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let mut line = process_title(p);
    let n = p.threads.len();
    line.push_span(Span::styled(
        format!(
            "  {n} thread{} with traced calls",
            if n == 1 { "" } else { "s" }
        ),
        DIM,
    ));
    frame.render_widget(Paragraph::new(line), title);
    let mut threads: Vec<_> = p.threads.iter().collect();
    threads.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.tid.cmp(&b.tid)));
    let shown = table.height.saturating_sub(1) as usize;
    let hidden = threads.len().saturating_sub(shown);
    let rows = threads
        .iter()
        .take(if hidden > 0 {
            shown.saturating_sub(1)
        } else {
            shown
        })
        .map(|t| {
            Row::new(vec![
                t.tid.to_string(),
                thousands(t.calls),
                fmt_rate(t.calls_per_sec),
                thousands(t.wait_calls),
                thousands(t.wakeups),
                fmt_ns(t.on_cpu_ns as f64),
                fmt_ns(t.off_cpu_ns as f64),
            ])
        });
    let mut rows: Vec<Row> = rows.collect();
    if hidden > 0 {
        rows.push(
            Row::new(vec!["…".to_owned(), format!("{} more threads", hidden + 1)]).style(DIM),
        );
    }
    let widths = [8, 11, 8, 10, 10, 9, 9].map(Constraint::Length);
    let header = Row::new([
        "tid", "calls", "calls/s", "waits", "wakeups", "on-CPU", "off-CPU",
    ])
    .style(TITLE);
    frame.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        table,
    );
}

fn render_fds(frame: &mut Frame, area: Rect, app: &App, _m: &Metrics) {
    let Some(p) = app.selected_process() else {
        return;
    };
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(process_title(p)), title);
    let [classes, epoll] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
    let total: u32 = p.fd_classes.values().sum();
    let mut rows: Vec<Row> = p
        .fd_classes
        .iter()
        .map(|(k, v)| Row::new(vec![k.clone(), thousands(u64::from(*v))]))
        .collect();
    rows.push(Row::new(vec!["total".to_owned(), thousands(u64::from(total))]).style(TITLE));
    frame.render_widget(
        Table::new(rows, [Constraint::Length(12), Constraint::Length(8)])
            .header(Row::new(["fd class", "open"]).style(TITLE))
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title("open fds (/proc)")
                    .border_style(DIM),
            ),
        classes,
    );
    let rows: Vec<Row> = p
        .epoll_interest
        .iter()
        .map(|(fd, n)| Row::new(vec![fd.to_string(), thousands(*n)]))
        .collect();
    let block = Block::new()
        .borders(Borders::TOP)
        .title("epoll interest sets")
        .border_style(DIM);
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new("no epoll_ctl seen since attach")
                .style(DIM)
                .block(block),
            epoll,
        );
    } else {
        frame.render_widget(
            Table::new(rows, [Constraint::Length(8), Constraint::Length(12)])
                .header(Row::new(["epoll fd", "registered"]).style(TITLE))
                .block(block),
            epoll,
        );
    }
}

fn render_compare(frame: &mut Frame, area: Rect, m: &Metrics) {
    if m.processes.is_empty() {
        return;
    }
    let label_width = 16u16;
    let n = m.processes.len() as u16;
    let col_width = (area.width.saturating_sub(label_width) / n).max(8);
    // Readiness figures mean nothing for a process that never waits.
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
    type Figure = fn(&ProcessMetrics) -> String;
    let labels: [(&str, Figure); 13] = [
        ("process", |p| p.comm.clone()),
        ("pid", |p| p.pid.to_string()),
        ("model", |p| p.model.name().to_owned()),
        ("calls/s", |p| fmt_rate(p.interval.calls_per_sec)),
        ("wakeups/s", |p| {
            if_waits(p, fmt_rate(p.interval.wakeups_per_sec))
        }),
        ("watched/wait", |p| {
            if_waits(p, format!("{:.0}", p.interval.watched_avg))
        }),
        ("ready/wait", |p| {
            if_waits(p, format!("{:.1}", p.interval.ready_avg))
        }),
        ("efficiency", |p| {
            if_waits(p, format!("{:.1}%", p.interval.efficiency * 100.0))
        }),
        ("cpu per ready", |p| {
            if_waits(p, fmt_ns(p.interval.on_cpu_ns_per_ready))
        }),
        ("bkkp per ready", |p| {
            if_waits(p, bytes(p.interval.bookkeeping_bytes_per_ready))
        }),
        ("calls per recv", |p| {
            format!("{:.2}", p.interval.syscalls_per_receive)
        }),
        ("wall p99", |p| fmt_ns(p.interval.wall_p99_ns)),
        ("threads", |p| p.threads.len().to_string()),
    ];
    let rows: Vec<Row> = labels
        .iter()
        .map(|(label, f)| {
            let mut cells = vec![label.to_string()];
            cells.extend(m.processes.iter().map(f));
            let style = if *label == "process" {
                TITLE
            } else {
                Style::new()
            };
            Row::new(cells).style(style)
        })
        .collect();
    let mut widths = vec![Constraint::Length(label_width)];
    widths.extend(std::iter::repeat_n(
        Constraint::Length(col_width.saturating_sub(1)),
        n as usize,
    ));
    let table_height = rows.len() as u16;
    let [table, verdicts] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)]).areas(area);
    frame.render_widget(Table::new(rows, widths).column_spacing(1), table);
    let lines: Vec<Line> = m
        .processes
        .iter()
        .map(|p| {
            Line::from(vec![
                Span::styled(format!("{}: ", p.comm), TITLE),
                Span::styled(p.verdict.clone(), Style::new().fg(Color::Yellow)),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(
            Block::new()
                .borders(Borders::TOP)
                .title("verdicts")
                .border_style(DIM),
        ),
        verdicts,
    );
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn render_banner(frame: &mut Frame, area: Rect) {
    let text = "every traced process has exited — figures frozen; q quits";
    let rect = centered(area, text.chars().count() as u16 + 4, 3);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text)
            .style(ALERT)
            .block(Block::bordered().border_style(ALERT)),
        rect,
    );
}

fn render_help(frame: &mut Frame, area: Rect) {
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:<16}"), TITLE),
                Span::raw(*what),
            ])
        })
        .collect();
    let rect = centered(area, 60, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("keys")),
        rect,
    );
}
