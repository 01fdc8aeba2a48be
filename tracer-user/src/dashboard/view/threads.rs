//! View 2: the selected process's threads, busiest first.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Cell, Paragraph, Row, Table},
    Frame,
};

use super::{format, no_process, num, process_title, DIM, TITLE, WIDE};
use tracer_model::{format::thousands, ThreadMetrics};

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
    let room = usize::from(area.height.saturating_sub(2));
    let hidden = threads.len().saturating_sub(room);
    // When rows are hidden, the last line says how many.
    let shown = if hidden > 0 {
        room.saturating_sub(1)
    } else {
        room
    };
    let [title, table, note] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(shown.min(threads.len()) as u16 + 1),
        Constraint::Min(0),
    ])
    .areas(area);
    let n = p.threads.len();
    let mut line = process_title(app, p);
    let threads_word = format!("  {n} thread{}", if n == 1 { "" } else { "s" });
    // The long form when it fits, else the count alone: never cut mid-word.
    let note_text = [format!("{threads_word} with traced calls"), threads_word]
        .into_iter()
        .find(|t| line.width() + t.chars().count() <= usize::from(title.width));
    if let Some(text) = note_text {
        line.push_span(Span::styled(text, DIM));
    }
    frame.render_widget(Paragraph::new(line), title);
    // 80 columns: the name as `top -H` shows it (at most 15 characters),
    // then each event-loop thread's utilisation and stalls; wide screens
    // add its iterations and its wait calls.
    let wide = area.width >= WIDE;
    let mut columns: Vec<(&str, u16, ThreadFigure)> = vec![
        ("tid", 7, |t| t.tid.to_string()),
        ("name", 15, |t| t.name.chars().take(15).collect()),
        ("calls", 9, |t| thousands(t.calls)),
        ("calls/s", 7, |t| format::rate(t.calls_per_sec)),
        ("busy", 5, |t| {
            t.loop_busy_share
                .map_or("-".to_owned(), |b| format!("{:.0}%", b * 100.0))
        }),
        ("stalls", 6, |t| loop_figure(t, t.stalls)),
    ];
    if wide {
        columns.push(("iter", 9, |t| loop_figure(t, t.iterations)));
        columns.push(("waits", 9, |t| thousands(t.wait_calls)));
    }
    columns.extend([
        ("wakeups", 9, (|t| thousands(t.wakeups)) as ThreadFigure),
        ("on-CPU", 7, |t| format::ns(t.on_cpu_ns as f64)),
        ("off-CPU", 7, |t| format::ns(t.off_cpu_ns as f64)),
    ]);
    let rows = threads.iter().take(shown).map(|t| {
        Row::new(columns.iter().map(|(name, _, figure)| {
            if *name == "name" {
                Cell::from(figure(t))
            } else {
                num(figure(t))
            }
        }))
    });
    let header = Row::new(columns.iter().map(|(h, _, _)| {
        let line = Line::from(*h);
        Cell::from(if *h == "name" {
            line
        } else {
            line.right_aligned()
        })
    }))
    .style(TITLE);
    let widths = columns.iter().map(|(_, w, _)| Constraint::Length(*w));
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
            note,
        );
    }
}
