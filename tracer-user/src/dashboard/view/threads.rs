//! View 2: the selected process's threads, busiest first.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Cell, Paragraph, Row, Table},
    Frame,
};

use super::{format, no_process, num, process_title, DIM, TITLE};
use tracer_model::format::thousands;

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
    let rows = threads.iter().take(shown).map(|t| {
        Row::new(vec![
            num(t.tid.to_string()),
            Cell::from(t.name.chars().take(15).collect::<String>()),
            num(thousands(t.calls)),
            num(format::rate(t.calls_per_sec)),
            num(thousands(t.wait_calls)),
            num(thousands(t.wakeups)),
            num(format::ns(t.on_cpu_ns as f64)),
            num(format::ns(t.off_cpu_ns as f64)),
        ])
    });
    let header = Row::new(
        [
            "tid", "name", "calls", "calls/s", "waits", "wakeups", "on-CPU", "off-CPU",
        ]
        .map(|h| {
            let line = Line::from(h);
            Cell::from(if h == "name" {
                line
            } else {
                line.right_aligned()
            })
        }),
    )
    .style(TITLE);
    // 77 columns: the name as `top -H` shows it, at most 15 characters.
    let widths = [7, 15, 9, 7, 9, 9, 7, 7].map(Constraint::Length);
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
