//! View 3: the selected process's open fds by class (from /proc) and the
//! interest-set size of each epoll fd (from epoll_ctl).

use ratatui::{
    layout::{Constraint, Layout, Rect},
    text::Line,
    widgets::{Block, Borders, Cell, Paragraph, Row, Table},
    Frame,
};

use super::{no_process, num, process_title, DIM, TITLE};
use tracer_model::format::thousands;

use crate::dashboard::state::App;

fn header(left: &'static str, right: &'static str) -> Row<'static> {
    Row::new([
        Cell::from(left),
        Cell::from(Line::from(right).right_aligned()),
    ])
    .style(TITLE)
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let Some(p) = app.selected_process() else {
        return no_process(frame, area);
    };
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(process_title(app, p, area.width)), title);
    // Side by side where both tables fit (21 columns each), else one above
    // the other.
    let halves = [Constraint::Percentage(50), Constraint::Percentage(50)];
    let [classes, epoll] = if body.width >= 44 {
        Layout::horizontal(halves).areas(body)
    } else {
        Layout::vertical(halves).areas(body)
    };

    let block = |title: &'static str| {
        Block::new()
            .borders(Borders::TOP)
            .title(title)
            .border_style(DIM)
    };
    // Most numerous class first: that is what the event loop juggles.
    let mut by_count: Vec<_> = p.fd_classes.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if by_count.is_empty() {
        frame.render_widget(
            Paragraph::new("not readable (the process exited, or /proc is hidden)")
                .style(DIM)
                .block(block("open fds (/proc)")),
            classes,
        );
    } else {
        let total: u32 = p.fd_classes.values().sum();
        // Room for the classes under the title and the header, beside the
        // total: on a short screen the rarest are summed in one row rather
        // than cut off without a word.
        let room = usize::from(classes.height.saturating_sub(3)).max(1);
        let (shown, rest) = if by_count.len() > room {
            by_count.split_at(room - 1)
        } else {
            (&by_count[..], &[][..])
        };
        let mut rows: Vec<Row> = shown
            .iter()
            .map(|(k, v)| {
                Row::new(vec![
                    Cell::from(k.to_string()),
                    num(thousands(u64::from(**v))),
                ])
            })
            .collect();
        if !rest.is_empty() {
            let others: u32 = rest.iter().map(|(_, v)| **v).sum();
            rows.push(
                Row::new(vec![
                    Cell::from(format!("{} more", rest.len())),
                    num(thousands(u64::from(others))),
                ])
                .style(DIM),
            );
        }
        rows.push(
            Row::new(vec![Cell::from("total"), num(thousands(u64::from(total)))]).style(TITLE),
        );
        frame.render_widget(
            Table::new(rows, [Constraint::Length(12), Constraint::Length(8)])
                .header(header("fd class", "open"))
                .block(block("open fds (/proc)")),
            classes,
        );
    }

    let rows: Vec<Row> = p
        .epoll_interest
        .iter()
        .map(|(fd, n)| Row::new(vec![num(fd.to_string()), num(thousands(*n))]))
        .collect();
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new("no epoll fd with registered fds")
                .style(DIM)
                .block(block("epoll interest sets")),
            epoll,
        );
    } else {
        frame.render_widget(
            Table::new(rows, [Constraint::Length(8), Constraint::Length(12)])
                .header(header("epoll fd", "registered"))
                .block(block("epoll interest sets")),
            epoll,
        );
    }
}
