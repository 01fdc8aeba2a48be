//! The two header lines (targets, uptime, rate, our own cost, losses) and the
//! tab bar.

use ratatui::{
    layout::Rect,
    style::{Color, Style, Stylize},
    text::{Line, Span},
    widgets::Paragraph,
    Frame,
};

use super::{format, ALERT, DIM, TITLE};
use tracer_common::Stat;
use tracer_model::ProcessMetrics;

use crate::dashboard::state::{App, View};

const PAUSED: &str = "  PAUSED (p resumes)";

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let mut first = vec![Span::styled("muxtrace", TITLE)];
    let mut second = Vec::new();
    if let Some(m) = &app.shown {
        // Calls over the reading's interval, not a sum of rates: a process
        // that exited has its whole life as its interval, and its rate over
        // that is not what it adds to the interval's.
        let events: f64 = if m.interval_s > 0.0 {
            m.processes.iter().map(|p| p.interval.calls).sum::<u64>() as f64 / m.interval_s
        } else {
            0.0
        };
        first.push(Span::raw(format!("  up {}", format::uptime(m.elapsed_s))));
        let paused = if app.paused {
            PAUSED.chars().count()
        } else {
            0
        };
        // The rate whole or not at all: cut, "94k calls/" reads as a figure.
        let rate = format!("  {} calls/s", format::rate(events));
        if Line::from(first.clone()).width() + rate.chars().count() + paused
            <= usize::from(area.width)
        {
            first.push(Span::raw(rate));
        }
        if let Some(c) = &m.cost {
            // In full where it fits beside the rest, else shorter, else not.
            let room =
                usize::from(area.width).saturating_sub(Line::from(first.clone()).width() + paused);
            let cost = [
                format!(
                    "  own cost {:.2}% CPU, {:.0} ns/run",
                    c.cpu_percent, c.ns_per_run
                ),
                format!("  own cost {:.2}%", c.cpu_percent),
            ]
            .into_iter()
            .find(|t| t.chars().count() <= room);
            if let Some(cost) = cost {
                first.push(Span::styled(cost, DIM));
            }
        }
        // The kernel's own gaps are not ours to alarm about: said apart, in
        // the verdicts' colour, after muxtrace's losses.
        let is_gap = |k: &str| Stat::named(k).is_some_and(Stat::is_kernel_gap);
        let lost: Vec<String> = m
            .losses
            .iter()
            .filter(|(k, _)| !is_gap(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !lost.is_empty() {
            // Losses go first so a narrow screen cannot push them out of sight.
            second.push(Span::styled(format!(" LOST {} ", lost.join(" ")), ALERT));
            second.push(Span::raw("  "));
        }
        // Said by what goes unmeasured: "switch-ins" meant nothing to a
        // user watching the demo.
        let hidden: Vec<String> = [
            (Stat::SwitchInUnseen, "off-CPU span"),
            (Stat::WakeupUnseen, "wakeup"),
        ]
        .into_iter()
        .filter_map(|(stat, what)| {
            let n = *m.losses.get(stat.name())?;
            Some(format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
        })
        .collect();
        if !hidden.is_empty() {
            second.push(Span::styled(
                format!("kernel gaps: {} untimed", hidden.join(", ")),
                super::VERDICT,
            ));
            second.push(Span::raw("  "));
        }
        // Every time shown below is then an estimate: said before the targets.
        if m.time_every > 1 {
            second.push(Span::styled(format!("timed: 1 in {}", m.time_every), DIM));
            second.push(Span::raw("  "));
        }
        let room = usize::from(area.width).saturating_sub(Line::from(second.clone()).width());
        // An exited copy is among its folded entry's `comm ×N exited`.
        let listed: Vec<&ProcessMetrics> = m
            .processes
            .iter()
            .filter(|p| !app.is_exited_copy(p))
            .collect();
        second.extend(targets(&listed, app.processes_alive_and_exited(), room));
    }
    if app.paused {
        first.push(Span::styled(PAUSED, Style::new().fg(Color::Yellow).bold()));
    }
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

/// The traced processes in `room` columns: `pid comm (model)` each when that
/// fits, else `pid comm`, else a count of the processes behind the rows,
/// (alive, exited) — never a list cut mid-name.
fn targets(
    processes: &[&ProcessMetrics],
    (alive, exited): (usize, usize),
    room: usize,
) -> Vec<Span<'static>> {
    // Exited processes folded by name have no pid (0) and no single model:
    // they are named by what they are, `comm ×N exited`.
    let name = |p: &ProcessMetrics, with_model: bool| match p.folded {
        0 => format!(
            "{} {}{}{}",
            p.pid,
            p.comm,
            if with_model {
                format!(" ({})", p.model.name())
            } else {
                String::new()
            },
            if p.alive { "" } else { " exited" }
        ),
        n => format!("{} ×{n} exited", p.comm),
    };
    let full: Vec<String> = processes.iter().map(|p| name(p, true)).collect();
    let short: Vec<String> = processes.iter().map(|p| name(p, false)).collect();
    let width = |v: &[String]| v.iter().map(|s| s.chars().count() + 2).sum::<usize>();
    let chosen = if width(&full) <= room + 2 {
        full
    } else if width(&short) <= room + 2 {
        short
    } else {
        let count = format!("{} processes, {alive} alive", alive + exited);
        let shortest = format!("{alive}/{} alive", alive + exited);
        let hint = format!("{count} (view 4 compares them)");
        vec![[hint, count]
            .into_iter()
            .find(|t| t.chars().count() <= room)
            .unwrap_or(shortest)]
    };
    let mut spans = Vec::new();
    for (i, (text, p)) in chosen.iter().zip(processes).enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(
            text.clone(),
            if p.alive { Style::new() } else { DIM },
        ));
    }
    spans
}

/// The tabs, the sort and the help key; narrower, the sort goes, then the
/// tabs' names are cut to three letters, then to their keys.
pub fn render_tabs(frame: &mut Frame, area: Rect, app: &App) {
    let tabs = |letters: usize| -> Vec<Span<'static>> {
        View::ALL
            .iter()
            .map(|&v| {
                let style = if v == app.view {
                    Style::new().fg(Color::Black).bg(Color::Cyan)
                } else {
                    DIM
                };
                let title: String = v.title().chars().take(letters).collect();
                Span::styled(format!(" {title} "), style)
            })
            .collect()
    };
    // Only the top view's rows and view 1's syscalls are sorted.
    let sort = match app.view {
        View::Top => format!("  sort {}  ? help", app.top_rank.label()),
        View::Main => format!("  sort {}  ? help", app.sort.label()),
        _ => "  ? help".to_owned(),
    };
    let line = [
        (usize::MAX, sort.as_str()),
        (usize::MAX, "  ? help"),
        (5, "  ? help"),
        (1, "  ? help"),
    ]
    .into_iter()
    .map(|(letters, tail)| {
        let mut spans = tabs(letters);
        spans.push(Span::styled(tail.to_owned(), DIM));
        Line::from(spans)
    })
    .find(|l| l.width() <= usize::from(area.width))
    .unwrap_or_else(|| Line::from(tabs(1)));
    frame.render_widget(Paragraph::new(line), area);
}
