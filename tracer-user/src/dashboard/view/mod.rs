//! Drawing: a pure function of [`App`]. One file per screen (`top`,
//! `syscalls`, `threads`, `fds`, `compare`); the header, tabs and overlays are shared
//! (`header`, `overlay`), and `format` sizes every figure for its column.

mod compare;
mod fds;
mod format;
mod header;
mod overlay;
mod syscalls;
mod threads;
mod top;

use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Cell, Paragraph},
    Frame,
};

use super::state::{App, View};
use tracer_model::ProcessMetrics;

const DIM: Style = Style::new().fg(Color::DarkGray);
const TITLE: Style = Style::new().add_modifier(Modifier::BOLD);
const VERDICT: Style = Style::new().fg(Color::Yellow);
const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);
/// Losses and the exit banner: nobody may miss them.
const ALERT: Style = Style::new()
    .fg(Color::White)
    .bg(Color::Red)
    .add_modifier(Modifier::BOLD);

/// From this width on, screens show their extra columns.
const WIDE: u16 = 120;
/// Below this width, tables hide their least needed columns and say which.
const NARROW: u16 = 80;

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let [header, banner, tabs, body] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(u16::from(app.exited)),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    header::render(frame, header, app);
    if app.exited {
        overlay::render_banner(frame, banner);
    }
    header::render_tabs(frame, tabs, app);
    match (&app.shown, app.view) {
        (None, _) => frame.render_widget(
            Paragraph::new("waiting for the first figures… (one per interval)").style(DIM),
            body,
        ),
        (Some(m), View::Top) => top::render(frame, body, app, m),
        (Some(_), View::Main) => syscalls::render(frame, body, app),
        (Some(_), View::Threads) => threads::render(frame, body, app),
        (Some(_), View::Fds) => fds::render(frame, body, app),
        (Some(m), View::Compare) => compare::render(frame, body, app, m),
    }
    if app.help {
        overlay::render_help(frame, area);
    }
}

/// `pid 4242 echo-poll · poll model`, and which of several processes it is
/// (shorter when `width` is too narrow for the whole).
fn process_title(app: &App, p: &ProcessMetrics, width: u16) -> Line<'static> {
    // Exited processes summed by name have no pid of their own (pid 0).
    let who = match p.folded {
        0 => format!("pid {} {}", p.pid, p.title.as_deref().unwrap_or(&p.comm)),
        1 => format!("{}: 1 exited process, folded", p.comm),
        n => format!("{}: {n} exited processes, folded", p.comm),
    };
    let mut line = Line::from(vec![
        Span::styled(who, TITLE),
        Span::raw(format!(" · {} model", p.model.name())),
    ]);
    if !p.alive && p.folded == 0 {
        line.push_span(Span::styled(" · exited", ALERT));
    }
    let n = app.process_count();
    if n > 1 {
        let i = app.process + 1;
        let room = usize::from(width).saturating_sub(line.width());
        let which = [
            format!("  process {i} of {n} (← →)"),
            format!("  process {i} of {n}"),
            format!("  {i}/{n}"),
        ]
        .into_iter()
        .find(|t| t.chars().count() <= room)
        .unwrap_or_else(|| format!("  {i}/{n}"));
        line.push_span(Span::styled(which, DIM));
    }
    line
}

/// A number in a table: right-aligned, so digits line up down the column.
fn num(text: String) -> Cell<'static> {
    Cell::from(Line::from(text).right_aligned())
}

/// The body when no process is selected (none has made a measured call).
fn no_process(frame: &mut Frame, area: Rect) {
    frame.render_widget(
        Paragraph::new("no traced process has made a measured call yet").style(DIM),
        area,
    );
}

/// Which columns, each `(width, rank)` with rank 0 the most needed, fit in
/// `room` cells with one space between them: the most needed first, up to
/// the first that does not fit, so those hidden are always the least
/// needed. A mask in the columns' own order.
fn fit_columns(columns: &[(u16, u8)], room: u16) -> Vec<bool> {
    let mut by_rank: Vec<usize> = (0..columns.len()).collect();
    by_rank.sort_by_key(|&i| columns[i].1);
    let mut keep = vec![false; columns.len()];
    let mut used = 0u16;
    for i in by_rank {
        let need = columns[i].0 + 1;
        if used + need > room {
            break;
        }
        used += need;
        keep[i] = true;
    }
    keep
}

/// At most two dim lines naming the columns a narrow screen hides, for
/// screens below [`NARROW`]; none when nothing is hidden.
fn hidden_note(hidden: &[String], width: u16) -> Vec<Line<'static>> {
    if hidden.is_empty() {
        return Vec::new();
    }
    let text = format!("hidden below {NARROW} columns: {}", hidden.join(", "));
    let width = usize::from(width);
    let mut lines = format::wrap(&text, width);
    if lines.len() > 2 {
        lines.truncate(2);
        let last = &mut lines[1];
        while last.chars().count() + 2 > width && last.pop().is_some() {}
        last.push_str(" …");
    }
    lines.into_iter().map(|l| Line::styled(l, DIM)).collect()
}

/// `line` cut to `width` at a word where it is longer, marked with `…`.
fn fit_line(line: Line<'static>, width: u16) -> Line<'static> {
    let width = usize::from(width);
    if line.width() <= width {
        return line;
    }
    let mut spans = Vec::new();
    let mut room = width.saturating_sub(1);
    for span in line.spans {
        let n = span.content.chars().count();
        if n <= room {
            room -= n;
            spans.push(span);
            continue;
        }
        let cut: String = span.content.chars().take(room).collect();
        let cut = match cut.rfind(' ') {
            Some(i) if i > 0 => cut[..i].trim_end().to_owned(),
            _ => cut,
        };
        spans.push(Span::styled(cut, span.style));
        break;
    }
    spans.push(Span::raw("…"));
    Line::from(spans)
}
