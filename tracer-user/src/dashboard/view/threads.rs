//! View 2: the selected process's threads, busiest first.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Cell, Paragraph, Row, Table},
    Frame,
};

use super::{
    fit_columns, format, hidden_note, no_process, num, process_title, DIM, NARROW, TITLE, WIDE,
};
use tracer_model::{format::thousands, ExitedThreadMetrics, ThreadMetrics};

type ThreadFigure = fn(&ThreadMetrics) -> String;

/// A loop figure, `-` for a thread that never waits: it has no loop.
fn loop_figure(t: &ThreadMetrics, v: u64) -> String {
    if t.wait_calls == 0 {
        "-".to_owned()
    } else {
        thousands(v)
    }
}

use crate::dashboard::state::App;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let Some(p) = app.selected_process() else {
        return no_process(frame, area);
    };
    let mut threads: Vec<_> = p.threads.iter().collect();
    threads.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.tid.cmp(&b.tid)));
    let exited = p.exited_threads.as_ref().map(exited_row);
    let (columns, hidden) = thread_columns(area.width);
    let note = hidden_note(&hidden, area.width);
    // The exited threads' row, below the live ones, takes one line.
    let room = usize::from(area.height.saturating_sub(2 + note.len() as u16))
        .saturating_sub(usize::from(exited.is_some()));
    let hidden = threads.len().saturating_sub(room);
    // When rows are hidden, the last line says how many.
    let shown = if hidden > 0 {
        room.saturating_sub(1)
    } else {
        room
    };
    let [title, note_area, table, more] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(note.len() as u16),
        Constraint::Length(shown.min(threads.len()) as u16 + 1 + u16::from(exited.is_some())),
        Constraint::Min(0),
    ])
    .areas(area);
    let n = p.threads.len();
    let mut line = process_title(app, p, area.width);
    let threads_word = format!("  {n} thread{}", if n == 1 { "" } else { "s" });
    // The long form when it fits, else the count alone: never cut mid-word.
    let note_text = [format!("{threads_word} with traced calls"), threads_word]
        .into_iter()
        .find(|t| line.width() + t.chars().count() <= usize::from(title.width));
    if let Some(text) = note_text {
        line.push_span(Span::styled(text, DIM));
    }
    frame.render_widget(Paragraph::new(line), title);
    frame.render_widget(Paragraph::new(note), note_area);
    let row = |t: &ThreadMetrics, is_exited: bool| {
        Row::new(columns.iter().map(|(name, _, _, figure)| match *name {
            // Many threads: no one tid, and no rate (their totals only).
            "tid" | "calls/s" if is_exited => num("-".to_owned()),
            "name" => Cell::from(figure(t)),
            _ => num(figure(t)),
        }))
    };
    let live_rows = threads.iter().take(shown).map(|t| row(t, false));
    let exited_row = exited.as_ref().map(|t| row(t, true).style(DIM));
    let rows = live_rows.chain(exited_row);
    let header = Row::new(columns.iter().map(|(h, _, _, _)| {
        let line = Line::from(*h);
        Cell::from(if *h == "name" {
            line
        } else {
            line.right_aligned()
        })
    }))
    .style(TITLE);
    let widths = columns.iter().map(|(_, w, _, _)| Constraint::Length(*w));
    frame.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        table,
    );
    if hidden > 0 {
        frame.render_widget(
            Paragraph::new(format!(
                "… {} more threads with fewer calls",
                threads.len() - shown
            ))
            .style(DIM),
            more,
        );
    }
}

/// The exited threads' totals as a row of the table: named by how many.
fn exited_row(e: &ExitedThreadMetrics) -> ThreadMetrics {
    ThreadMetrics {
        tid: 0,
        name: format!("{} exited", thousands(e.threads)),
        loop_busy_share: None,
        iterations: e.iterations,
        stalls: e.stalls,
        calls: e.calls,
        wait_calls: e.wait_calls,
        wakeups: e.wakeups,
        watched: e.watched,
        watched_waits: e.watched_waits,
        ready: e.ready,
        watched_per_wait: None,
        timed_calls: e.timed_calls,
        wall_ns: e.wall_ns,
        off_cpu_ns: e.off_cpu_ns,
        on_cpu_ns: e.on_cpu_ns,
        calls_per_sec: 0.0,
        stopped_ns: 0,
        parked_ns: 0,
    }
}

/// A column: header, width, rank (below 80 columns the highest go first),
/// figure.
type ThreadColumn = (&'static str, u16, u8, ThreadFigure);

/// 80 columns: the name as `top -H` shows it (at most 15 characters), then
/// each event-loop thread's utilisation, stalls and fds watched per wait;
/// wide screens add its iterations, wait calls and wakeups; narrow ones
/// keep what fits, the least needed going first, and return the names of
/// those left out.
fn thread_columns(width: u16) -> (Vec<ThreadColumn>, Vec<String>) {
    let mut columns: Vec<ThreadColumn> = vec![
        ("tid", 7, 0, |t| t.tid.to_string()),
        ("name", 15, 1, |t| t.name.chars().take(15).collect()),
        ("calls", 9, 4, |t| thousands(t.calls)),
        ("calls/s", 7, 2, |t| format::rate(t.calls_per_sec)),
        ("busy", 5, 3, |t| {
            t.loop_busy_share
                .map_or("-".to_owned(), |b| format!("{:.0}%", b * 100.0))
        }),
        ("stalls", 6, 6, |t| loop_figure(t, t.stalls)),
    ];
    if width >= WIDE {
        columns.push(("iter", 9, 9, |t| loop_figure(t, t.iterations)));
        columns.push(("waits", 9, 9, |t| thousands(t.wait_calls)));
    }
    // The loop's own interest set: a process's workers may each wait on
    // their own (memcached's), and the process's figure is the mean over
    // all its waits.
    columns.push(("watched", 7, 8, |t| {
        t.watched_per_wait
            .map_or("-".to_owned(), |w| format!("{w:.1}"))
    }));
    if width >= WIDE {
        columns.push(("wakeups", 9, 9, |t| thousands(t.wakeups)));
    }
    columns.extend([
        (
            "on-CPU",
            7,
            5,
            (|t| format::ns(t.on_cpu_ns as f64)) as ThreadFigure,
        ),
        ("off-CPU", 7, 7, |t| format::ns(t.off_cpu_ns as f64)),
    ]);
    if width >= NARROW {
        return (columns, Vec::new());
    }
    let sizes: Vec<(u16, u8)> = columns.iter().map(|c| (c.1, c.2)).collect();
    // The first column has no space before it.
    let keep = fit_columns(&sizes, width + 1);
    let hidden = columns
        .iter()
        .zip(&keep)
        .filter(|(_, k)| !**k)
        .map(|(c, _)| c.0.to_owned())
        .collect();
    let shown = columns
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect();
    (shown, hidden)
}
