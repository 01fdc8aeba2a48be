//! The report's charts: one line per model against idle connections, as SVG
//! and as PNG (same drawing code, two plotters backends).
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use serde_json::Value;

/// DejaVu Sans, from Debian's fonts-dejavu-core (the bootstrap installs it):
/// the PNG backend draws text with it.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

const SERIES: [(&str, RGBColor); 7] = [
    ("blocking", RGBColor(120, 120, 120)),
    ("select", RGBColor(214, 39, 40)),
    ("poll", RGBColor(255, 127, 14)),
    ("epoll", RGBColor(31, 119, 180)),
    ("epoll-et", RGBColor(44, 160, 44)),
    ("uring", RGBColor(148, 103, 189)),
    ("uring-sqpoll", RGBColor(23, 190, 207)),
];

const CHARTS: [(&str, &str, &str); 6] = [
    (
        "on_cpu_ns_per_ready",
        "On-CPU ns per ready event (wait calls)",
        "ns",
    ),
    (
        "bookkeeping_bytes_per_ready",
        "Bookkeeping bytes copied per ready event",
        "bytes",
    ),
    (
        "syscalls_per_message",
        "Event-loop syscalls per echoed message",
        "syscalls",
    ),
    (
        "waits_per_message",
        "Wait calls per echoed message",
        "calls",
    ),
    (
        "messages_per_sec",
        "Messages per second (same offered load)",
        "msgs/s",
    ),
    ("p99_us", "p99 latency", "µs"),
];

fn register_font() -> Result<()> {
    let bytes = std::fs::read(FONT)
        .map_err(|e| anyhow!("cannot read {FONT}: {e} (apt-get install fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{FONT} is not a usable font"))?;
    Ok(())
}

pub fn draw_all(points: &[Value], out: &Path) -> Result<Vec<PathBuf>> {
    register_font()?;
    let mut written = Vec::new();
    for (field, title, unit) in CHARTS {
        let svg = out.join(format!("{field}.svg"));
        let png = out.join(format!("{field}.png"));
        draw(
            SVGBackend::new(&svg, (800, 480)).into_drawing_area(),
            points,
            field,
            title,
            unit,
        )?;
        draw(
            BitMapBackend::new(&png, (800, 480)).into_drawing_area(),
            points,
            field,
            title,
            unit,
        )?;
        written.push(svg);
    }
    Ok(written)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    points: &[Value],
    field: &str,
    title: &str,
    unit: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing {field}: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let value = |p: &Value| p[field].as_f64().unwrap_or(0.0);
    let idle = |p: &Value| p["idle_requested"].as_f64().unwrap_or(0.0);
    let max_y = points.iter().map(value).fold(0.0f64, f64::max).max(1.0) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..1050f64, 0f64..max_y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("idle connections")
        .y_desc(unit)
        .x_label_formatter(&|v| format!("{v:.0}"))
        // Whole numbers once the axis is tall enough that they differ.
        .y_label_formatter(&|v| {
            if max_y >= 20.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        })
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    for (model, color) in SERIES {
        // Blocking I/O makes no wait calls: per-ready-event figures do not apply.
        if model == "blocking" && field.ends_with("_per_ready") {
            continue;
        }
        let mut line: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p["model"] == model)
            .map(|p| (idle(p), value(p)))
            .collect();
        line.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(3)))
            .map_err(err)?
            .label(model)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        chart
            .draw_series(
                line.iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
