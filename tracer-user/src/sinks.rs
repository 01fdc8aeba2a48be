//! Where metrics go: the dashboard, JSON lines, the Prometheus endpoint and
//! the end-of-run summary. [`Sinks`] publishes each reading to whichever are
//! on; the session loop never talks to one directly.

use tracer_model::Metrics;

use crate::{
    dashboard::{Action, Dashboard},
    error::{Result, UserError},
    json::{self, write_stdout, JsonOut, JSON_LINES_DROPPED},
    prometheus::Exporter,
    summary,
};

pub struct Sinks {
    dashboard: Option<Dashboard>,
    json: Option<JsonOut>,
    exporter: Option<Exporter>,
    /// Print the summary table at the end.
    summary: bool,
    wide: bool,
}

impl Sinks {
    pub fn new(
        dashboard: Option<Dashboard>,
        json: bool,
        exporter: Option<Exporter>,
        summary: bool,
        wide: bool,
    ) -> Sinks {
        Sinks {
            dashboard,
            json: json.then(JsonOut::start),
            exporter,
            summary,
            wide,
        }
    }

    /// One interval's figures to every sink, with the sinks' own losses (JSON
    /// lines a slow reader missed) added, so every sink shows them.
    pub fn publish(&mut self, mut metrics: Metrics) -> Result<()> {
        self.add_own_losses(&mut metrics);
        if let Some(json) = &mut self.json {
            json.send("interval", &metrics, false)?;
        }
        if let Some(exporter) = &mut self.exporter {
            exporter.publish(&metrics);
        }
        if let Some(dash) = &mut self.dashboard {
            dash.update(metrics);
            draw(dash)?;
        }
        Ok(())
    }

    /// Figures for the dashboard alone (after its reset: the other sinks'
    /// counters must not run backwards).
    pub fn show(&mut self, metrics: Metrics) -> Result<()> {
        if let Some(dash) = &mut self.dashboard {
            dash.update(metrics);
            draw(dash)?;
        }
        Ok(())
    }

    /// The next thing the user asked for; never resolves without a dashboard.
    pub async fn next_action(&mut self) -> Action {
        match &mut self.dashboard {
            Some(dash) => dash.next_action().await,
            None => std::future::pending().await,
        }
    }

    /// Whether stdout carries this session's output (JSON lines, or the
    /// summary table without them) and nobody reads it any more.
    pub fn stdout_reader_gone(&self) -> bool {
        (self.json.is_some() || self.summary) && json::stdout_reader_gone()
    }

    pub fn has_dashboard(&self) -> bool {
        self.dashboard.is_some()
    }

    pub fn redraw(&mut self) -> Result<()> {
        match &mut self.dashboard {
            Some(dash) => draw(dash),
            None => Ok(()),
        }
    }

    /// Every traced process has exited: the dashboard takes the last
    /// interval into its history, then freezes on the whole run's figures
    /// (`run`) with a banner (the other sinks end with the session).
    pub fn targets_exited(&mut self, last: Metrics, run: Option<Metrics>) -> Result<()> {
        if let Some(dash) = &mut self.dashboard {
            dash.update(last);
            match run {
                Some(run) => dash.freeze_on(run),
                None => dash.targets_exited(),
            }
            draw(dash)?;
        }
        Ok(())
    }

    /// Restores the terminal; called before anything else is printed.
    pub fn close_dashboard(&mut self) {
        self.dashboard = None;
    }

    /// The final JSON line and the summary table. `traced` lists every process
    /// traced, so one that made none of the measured calls is still named.
    pub fn finish(mut self, mut metrics: Metrics, traced: &[(u32, String)]) -> Result<()> {
        self.close_dashboard();
        self.add_own_losses(&mut metrics);
        let had_json = self.json.is_some();
        if let Some(mut json) = self.json.take() {
            json.send("final", &metrics, true)?;
            json.finish()?;
        }
        if self.summary {
            let table = summary::render(&metrics, traced, self.wide);
            // stdout holds JSON lines, one object each, for a parser.
            match had_json {
                true => eprint!("{table}"),
                false => write_stdout(&table)?,
            }
        }
        Ok(())
    }

    fn add_own_losses(&self, metrics: &mut Metrics) {
        if let Some(dropped) = self.json.as_ref().map(JsonOut::dropped).filter(|n| *n > 0) {
            metrics
                .losses
                .insert(JSON_LINES_DROPPED.to_owned(), dropped);
        }
    }
}

fn draw(dash: &mut Dashboard) -> Result<()> {
    dash.draw()
        .map_err(|e| UserError::runtime(format!("cannot draw on the terminal: {e}")))
}
