//! View 0, the top view: one row per process, ranked by the chosen column,
//! with its model and its verdict in one word; the selected row's whole
//! verdict below. For `--all`, `--cgroup` and `--comm`, where processes come
//! and go and may be many.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Cell, Paragraph, Row, Table},
    Frame,
};

use super::{fit_columns, fit_line, format, no_process, num, DIM, SELECTED, TITLE, VERDICT, WIDE};
use tracer_model::{format::thousands, Metrics, ProcessMetrics};

use crate::dashboard::{
    state::App,
    top::{TopFigures, TopRank},
};

type Figure = fn(&ProcessMetrics, &TopFigures) -> String;

/// A column: header, width, which ranking it shows (if any), how much it is
/// needed (0 most: a narrow screen drops the highest first), left-aligned
/// (text) or right-aligned (figures), and the cell.
struct Column {
    header: &'static str,
    width: u16,
    ranks: Option<TopRank>,
    need: u8,
    text: bool,
    figure: Figure,
}

/// `-` for a process that never waited: its wait figures are undefined.
fn if_waits(f: &TopFigures, v: String) -> String {
    if f.waits {
        v
    } else {
        "-".to_owned()
    }
}

/// Per-wait figures of the interval have nothing to divide by when no wait
/// returned in it.
fn if_interval_waits(p: &ProcessMetrics, f: &TopFigures, v: String) -> String {
    match p.interval.wakeups_per_sec > 0.0 {
        true => if_waits(f, v),
        false => "-".to_owned(),
    }
}

fn percent(share: f64) -> String {
    let v = share * 100.0;
    if v < 9.95 {
        format!("{v:.1}%")
    } else {
        format!("{v:.0}%")
    }
}

/// The name, and for folded totals how many exited processes they sum,
/// within the 15 columns a comm takes at most. A process that set a title
/// shows its role, the title's last part: `nginx: worker…`, and
/// PostgreSQL's `postgres: 15/main: checkpointer` as `postgres: check…`,
/// where the title's first 15 columns are the same for every backend.
fn name(p: &ProcessMetrics) -> String {
    let named = match &p.title {
        Some(title) => {
            let role = title.rsplit(": ").next().unwrap_or(title);
            format!("{}: {role}", p.comm)
        }
        None => p.comm.clone(),
    };
    let count = match p.folded {
        0 => String::new(),
        n => format!(" ×{n}"),
    };
    let room = 15usize.saturating_sub(count.chars().count());
    let shown = if named.chars().count() > room {
        let cut: String = named.chars().take(room.saturating_sub(1)).collect();
        cut.trim_end().to_owned() + "…"
    } else {
        named
    };
    format!("{shown}{count}")
}

/// The columns that fit `width`; the pid column is as wide as the longest
/// pid shown, since a column too wide for pids of 4 digits can push out a
/// figure at 80 columns.
fn columns(width: u16, rank: TopRank, pid_width: u16) -> Vec<Column> {
    let col = |header, width, ranks: Option<TopRank>, need, text, figure: Figure| Column {
        header,
        width,
        ranks,
        need,
        text,
        figure,
    };
    let mut columns = vec![
        col("pid", pid_width.max(3), None, 0, false, |p, _| {
            match p.pid {
                0 => "-".to_owned(),
                pid => pid.to_string(),
            }
        }),
        col("comm", 15, None, 0, true, |p, _| name(p)),
        col("model", 8, None, 1, true, |p, _| p.model.name().to_owned()),
        col("wait/s", 6, Some(TopRank::WaitCalls), 2, false, |_, f| {
            if_waits(f, format::rate(f.wait_calls_per_sec))
        }),
        col("unready/s", 9, Some(TopRank::Unready), 3, false, |_, f| {
            if_waits(f, format::rate(f.unready_per_sec))
        }),
        col("on-CPU", 6, Some(TopRank::WaitCpu), 4, false, |_, f| {
            if_waits(f, percent(f.wait_cpu_share))
        }),
        col(
            "empty/s",
            7,
            Some(TopRank::EmptyWakeups),
            5,
            false,
            |_, f| format::rate(f.empty_per_sec),
        ),
        col("stalls", 6, Some(TopRank::Stalls), 6, false, |_, f| {
            if_waits(f, thousands(f.stalls_total))
        }),
    ];
    if width >= WIDE {
        columns.extend([
            col("busy", 5, None, 7, false, |p, _| {
                p.loop_busy_share
                    .map_or("-".to_owned(), |b| format!("{:.0}%", b * 100.0))
            }),
            col("calls/s", 7, None, 7, false, |p, _| {
                format::rate(p.interval.calls_per_sec)
            }),
            col("watched", 7, None, 7, false, |p, f| {
                if_interval_waits(p, f, format::small(p.interval.watched_avg))
            }),
            col("ready", 5, None, 7, false, |p, f| {
                if_interval_waits(p, f, format::small(p.interval.ready_avg))
            }),
            col("threads", 7, None, 7, false, |p, _| {
                p.threads.len().to_string()
            }),
        ]);
    }
    columns.push(col("verdict", WORD_WIDTH, None, 0, true, |p, _| {
        tracer_model::word(p).to_owned()
    }));
    for c in &mut columns {
        if c.ranks == Some(rank) {
            c.need = 0;
        }
    }
    // The first column has no space before it.
    let sizes: Vec<(u16, u8)> = columns.iter().map(|c| (c.width, c.need)).collect();
    let keep = fit_columns(&sizes, width + 1);
    columns
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect()
}

/// As wide as the longest state word, so none is cut ("busy-polling" was,
/// to "busy-poll", before the word became "spinning").
const WORD_WIDTH: u16 = {
    let mut widest = 0;
    let mut i = 0;
    while i < tracer_model::STATES.len() {
        if tracer_model::STATES[i].len() > widest {
            widest = tracer_model::STATES[i].len();
        }
        i += 1;
    }
    widest as u16
};

/// The word's colour: what needs a look stands out.
fn word_style(word: &str) -> Style {
    match word {
        "stalling" | "saturated" => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        "scanning" | "spinning" => VERDICT,
        _ => Style::new(),
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, m: &Metrics) {
    if m.processes.is_empty() {
        return no_process(frame, area);
    }
    let rank = app.top_rank;
    let order = app.top_rows();
    let n = order.len();
    let selected = order.iter().position(|&i| i == app.process).unwrap_or(0);
    let width = usize::from(area.width);

    // The selected process's verdict in full, in the lines the rows leave
    // (two at least, five at most): at 80×24 the last clause, the loop's
    // busy share, fell off two lines.
    let p = &m.processes[order[selected]];
    let max_verdict = usize::from(area.height.saturating_sub(5 + n as u16)).clamp(2, 5);
    // The pid too: several processes may share a name (`--comm`).
    let title = p.title.as_deref().unwrap_or(&p.comm);
    let who = match p.pid {
        0 => title.to_owned(),
        pid => format!("{pid} {title}"),
    };
    let mut verdict = format::wrap_at_most(&format!("{who}: {}", p.verdict), width, max_verdict);
    if area.height < 12 {
        verdict.clear();
    }
    let fixed = 2 + 1 + 1 + verdict.len() as u16;
    let room = usize::from(area.height.saturating_sub(fixed)).max(1);
    let [title, legend, table, footer, verdict_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(room.min(n) as u16 + 1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);

    let (alive, exited) = app.processes_alive_and_exited();
    let mut head = vec![Span::styled(
        format!("{alive} process{}", if alive == 1 { "" } else { "es" }),
        TITLE,
    )];
    if exited > 0 {
        head.push(Span::styled(format!(" + {exited} exited"), DIM));
    }
    head.push(Span::raw(format!(
        " · ranked by {} (s cycles)",
        rank.label()
    )));
    frame.render_widget(
        Paragraph::new(fit_line(Line::from(head), area.width)),
        title,
    );
    let meaning = Line::styled(format!("{}: {}", rank.label(), rank.meaning()), DIM);
    frame.render_widget(Paragraph::new(fit_line(meaning, area.width)), legend);

    // A page at a time: the rows stay put while the selection moves; the
    // last page is a full one.
    let first = (selected / room * room).min(n.saturating_sub(room));
    let pid_width = m
        .processes
        .iter()
        .map(|p| p.pid.to_string().len() as u16)
        .max()
        .unwrap_or(0);
    let columns = columns(area.width, rank, pid_width);
    let header = Row::new(columns.iter().map(|c| {
        let line = Line::from(c.header);
        let cell = Cell::from(if c.text { line } else { line.right_aligned() });
        match c.ranks == Some(rank) {
            true => cell.style(TITLE.add_modifier(Modifier::UNDERLINED)),
            false => cell.style(TITLE),
        }
    }));
    let rows = order
        .iter()
        .enumerate()
        .skip(first)
        .take(room)
        .map(|(at, &i)| {
            let p = &m.processes[i];
            let f = TopFigures::of(p);
            let member = app.is_exited_copy(p);
            let cells = columns.iter().map(|c| {
                let mut text = (c.figure)(p, &f);
                // One of the processes the folded row above sums.
                if member && c.header == "comm" {
                    text = format!("└ {}", text.chars().take(13).collect::<String>());
                }
                match c.header {
                    "verdict" => Cell::from(Span::styled(text.clone(), word_style(&text))),
                    _ if c.text => Cell::from(text),
                    _ => num(text),
                }
            });
            let style = if at == selected {
                SELECTED
            } else if !p.alive {
                DIM
            } else {
                Style::new()
            };
            Row::new(cells).style(style)
        });
    let widths = columns.iter().map(|c| Constraint::Length(c.width));
    frame.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        table,
    );

    let keys = format!(
        "Enter opens · s ranks by {}",
        TopRank::ALL.map(TopRank::label).join(", ")
    );
    let mut hint = Vec::new();
    if n > room {
        hint.push(Span::raw(format!(
            "rows {}-{} of {n} (↑↓)  ",
            first + 1,
            (first + room).min(n)
        )));
    }
    hint.push(Span::raw(keys));
    frame.render_widget(
        Paragraph::new(fit_line(Line::from(hint), area.width)).style(DIM),
        footer,
    );
    let verdict: Vec<Line> = verdict
        .into_iter()
        .map(|l| Line::styled(l, VERDICT))
        .collect();
    frame.render_widget(Paragraph::new(verdict), verdict_area);
}

#[cfg(test)]
mod tests {
    use super::name;
    use crate::dashboard::fixtures;

    /// PostgreSQL's titles share their first 15 columns; their last part
    /// tells a checkpointer from a backend.
    #[test]
    fn a_title_shows_its_role_within_fifteen_columns() {
        let mut p = fixtures::top_fleet().processes[0].clone();
        p.folded = 0;
        p.comm = "postgres".to_owned();
        p.title = Some("postgres: 15/main: checkpointer".to_owned());
        assert_eq!(name(&p), "postgres: chec…");
        p.title = Some("postgres: 15/main: walwriter".to_owned());
        assert_eq!(name(&p), "postgres: walw…");
        p.title = None;
        assert_eq!(name(&p), "postgres");
        p.comm = "worker".to_owned();
        p.folded = 3;
        assert_eq!(name(&p), "worker ×3");
        p.comm = "a-fifteen-chars".to_owned();
        assert_eq!(name(&p), "a-fifteen-c… ×3");
    }
}
