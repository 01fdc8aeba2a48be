//! Drawing: a pure function of [`App`]. One file per screen (`syscalls`,
//! `threads`, `fds`, `compare`); the header, tabs and overlays are shared
//! (`header`, `overlay`), and `format` sizes every figure for its column.

mod compare;
mod fds;
mod format;
mod header;
mod overlay;
mod syscalls;
mod threads;

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
        (Some(_), View::Main) => syscalls::render(frame, body, app),
        (Some(_), View::Threads) => threads::render(frame, body, app),
        (Some(_), View::Fds) => fds::render(frame, body, app),
        (Some(m), View::Compare) => compare::render(frame, body, app, m),
    }
    if app.help {
        overlay::render_help(frame, area);
    }
}

/// `pid 4242 echo-poll · poll model`, and which of several processes it is.
fn process_title(app: &App, p: &ProcessMetrics) -> Line<'static> {
    let mut line = Line::from(vec![
        Span::styled(format!("pid {} {}", p.pid, p.comm), TITLE),
        Span::raw(format!(" · {} model", p.model.name())),
    ]);
    if !p.alive {
        line.push_span(Span::styled(" · exited", ALERT));
    }
    let n = app.process_count();
    if n > 1 {
        line.push_span(Span::styled(
            format!("  process {} of {n} (← →)", app.process + 1),
            DIM,
        ));
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
