//! muxtrace's own cost: the kernel's run time of its programs, in short
//! samples (the kernel's run-time accounting, BPF_ENABLE_STATS, costs two
//! clock reads on every program run while it is on — ~10 % of a saturated
//! server's throughput when left on), net of what the accounting itself adds
//! to each run.
//!
//! The kernel times a run from a clock read before the call into the program
//! to one after its return, so every accounted run carries the accounting's
//! own time: an empty program reads ~50 ns a run here, more than half of
//! what muxtrace's programs' work on a traced call costs. Taken as is, the
//! figure read 10.9–11.5 % of a core on a paced loop of polls where tracing
//! cost 8.9 beyond the floor (the bench's check). At each sample an empty
//! program ([`ACCOUNTING_PROGRAM`]) is run through `BPF_PROG_TEST_RUN`: its
//! accounted time per run is the accounting's, and that times our
//! programs' runs comes off their run time.

use std::{
    collections::VecDeque,
    os::fd::OwnedFd,
    time::{Duration, Instant},
};

use aya::{
    programs::{RawTracePoint, RawTracePointRunOptions, TestRun as _},
    Ebpf,
};
use tracer_model::ProbeCost;

use crate::tracepoints::ACCOUNTING_PROGRAM;

/// Samples per interval: short pieces spread over it (`session.rs`), so a
/// disturbance of a few milliseconds moves one piece, not the interval's
/// whole sample. With one 100 ms sample per interval, one reading under a
/// steady load strayed 22 % from the median of its run (bench, 2026-12-04
/// 17:05).
pub(crate) const PIECES_PER_INTERVAL: u32 = 4;

/// How many of the last samples the own-cost figure is taken over: ten
/// intervals' worth.
const RECENT_SAMPLES: usize = 10 * PIECES_PER_INTERVAL as usize;

/// Runs of the empty program per sample: enough that one interrupted run
/// moves the mean little, few enough to cost ~0.1 ms.
const CALIBRATION_RUNS: u32 = 64;

/// Loads the empty program (never attached). Without it the figure keeps
/// the accounting's time, and says so by an `accounting_ns_per_run` of 0.
/// Whether it loaded (a failure is logged here).
pub(crate) fn load_accounting_program(ebpf: &mut Ebpf) -> bool {
    let loaded = ebpf
        .program_mut(ACCOUNTING_PROGRAM)
        .ok_or_else(|| "missing from the eBPF object".to_owned())
        .and_then(|p| <&mut RawTracePoint>::try_from(p).map_err(|e| e.to_string()))
        .and_then(|p| p.load().map_err(|e| e.to_string()));
    if let Err(e) = &loaded {
        log::warn!(
            "cannot load {ACCOUNTING_PROGRAM} ({e}): the own-cost figure includes the kernel accounting's own time"
        );
    }
    loaded.is_ok()
}

/// One sample, ns.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Our programs' accounted run time, net of the accounting's.
    run: u64,
    length: u64,
    accounting: u64,
}

/// Where the sample in progress started.
#[derive(Debug, Clone, Copy)]
struct SampleStart {
    at: Instant,
    accounted: Accounted,
}

/// What the kernel accounted to our programs so far (while it was on).
#[derive(Debug, Clone, Copy, Default)]
struct Accounted {
    ns: u64,
    runs: u64,
}

#[derive(Debug)]
pub(crate) struct CostSampler {
    available: bool,
    /// Keeps the accounting on.
    stats_fd: Option<OwnedFd>,
    sample: Option<SampleStart>,
    first_sample_at: Option<Instant>,
    /// Over the samples ended so far: their length, our programs' runs and
    /// net run time, and the accounting's time taken out of it.
    sampled_ns: u64,
    runs: u64,
    run_ns: u64,
    accounting_ns: u64,
    recent: VecDeque<Sample>,
    /// The accounting's time per run at the last samples, ns.
    recent_per_run: VecDeque<f64>,
    /// Whether a failed measurement of it was reported already.
    calibration_failure_told: bool,
}

impl CostSampler {
    /// Whether the kernel can account our run time: tried once here.
    pub(crate) fn new() -> CostSampler {
        CostSampler {
            available: aya::sys::enable_stats(aya::sys::Stats::RunTime).is_ok(),
            stats_fd: None,
            sample: None,
            first_sample_at: None,
            sampled_ns: 0,
            runs: 0,
            run_ns: 0,
            accounting_ns: 0,
            recent: VecDeque::new(),
            recent_per_run: VecDeque::new(),
            calibration_failure_told: false,
        }
    }

    pub(crate) fn available(&self) -> bool {
        self.available
    }

    /// Without the empty program: its failure was told at its load.
    pub(crate) fn without_calibration(&mut self) {
        self.calibration_failure_told = true;
    }

    /// Switches the kernel's accounting on until [`CostSampler::end`].
    pub(crate) fn start(&mut self, ebpf: &Ebpf) {
        if !self.available || self.stats_fd.is_some() {
            return;
        }
        self.stats_fd = aya::sys::enable_stats(aya::sys::Stats::RunTime).ok();
        let (accounted, at) = accounted_at(ebpf);
        self.first_sample_at.get_or_insert(at);
        self.sample = Some(SampleStart { at, accounted });
    }

    pub(crate) fn end(&mut self, ebpf: &Ebpf) {
        let Some(start) = self.sample.take() else {
            self.stats_fd = None;
            return;
        };
        let (now, at) = accounted_at(ebpf);
        let length = duration_ns(at.saturating_duration_since(start.at));
        // While the accounting is still on.
        let per_run = accounting_per_run(ebpf);
        self.stats_fd = None;
        match per_run {
            Some(per_run) => {
                self.recent_per_run.push_back(per_run);
                if self.recent_per_run.len() > RECENT_SAMPLES {
                    self.recent_per_run.pop_front();
                }
            }
            None if !self.calibration_failure_told => {
                self.calibration_failure_told = true;
                log::warn!(
                    "cannot time {ACCOUNTING_PROGRAM} (BPF_PROG_TEST_RUN of a raw tracepoint needs Linux 5.10): the own-cost figure includes the kernel accounting's own time"
                );
            }
            None => {}
        }
        let run = now.ns.saturating_sub(start.accounted.ns);
        let runs = now.runs.saturating_sub(start.accounted.runs);
        // A median over the last samples: one calibration an interrupt
        // landed in does not move the figure.
        let accounting = ((median(&self.recent_per_run) * runs as f64) as u64).min(run);
        self.accounting_ns += accounting;
        self.run_ns += run - accounting;
        self.runs += runs;
        self.sampled_ns += length;
        self.recent.push_back(Sample {
            run: run - accounting,
            length,
            accounting,
        });
        if self.recent.len() > RECENT_SAMPLES {
            self.recent.pop_front();
        }
    }

    /// Our programs' run time and count during the samples ended so far,
    /// when the kernel keeps them.
    pub(crate) fn cost(&self) -> Option<ProbeCost> {
        if !self.available {
            return None;
        }
        Some(ProbeCost {
            run_time_ns: self.run_ns,
            run_count: self.runs,
            sampled_ns: self.sampled_ns,
            accounting_ns: self.accounting_ns,
            elapsed_ns: self
                .first_sample_at
                .map_or(0, |at| duration_ns(at.elapsed())),
            recent_run_time_ns: self.recent.iter().map(|s| s.run).sum(),
            recent_sampled_ns: self.recent.iter().map(|s| s.length).sum(),
            recent_accounting_ns: self.recent.iter().map(|s| s.accounting).sum(),
        })
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// [`accounted`], and when: the middle of the reads (a syscall per
/// program). muxtrace shares the CPUs with what it traces, so it can be
/// preempted between them; timed from either end, the sample's length
/// would miss or gain that time while its programs ran on.
fn accounted_at(ebpf: &Ebpf) -> (Accounted, Instant) {
    let before = Instant::now();
    let accounted = accounted(ebpf);
    (accounted, before + before.elapsed() / 2)
}

/// Our programs' accounted run time and runs (the empty one's not).
fn accounted(ebpf: &Ebpf) -> Accounted {
    ebpf.programs()
        .filter(|(name, _)| *name != ACCOUNTING_PROGRAM)
        .filter_map(|(_, program)| program.info().ok())
        .fold(Accounted::default(), |a, info| Accounted {
            ns: a.ns + duration_ns(info.run_time()),
            runs: a.runs + info.run_count(),
        })
}

/// The accounting's own time per run, ns: what the empty program's test
/// runs were accounted. Only while the accounting is on.
fn accounting_per_run(ebpf: &Ebpf) -> Option<f64> {
    let program: &RawTracePoint = ebpf.program(ACCOUNTING_PROGRAM)?.try_into().ok()?;
    let before = program.info().ok()?;
    for _ in 0..CALIBRATION_RUNS {
        program.test_run(RawTracePointRunOptions::new()).ok()?;
    }
    let after = program.info().ok()?;
    let runs = after.run_count().saturating_sub(before.run_count());
    let ns = duration_ns(after.run_time().saturating_sub(before.run_time()));
    (runs > 0).then(|| ns as f64 / runs as f64)
}

/// 0 for none.
fn median(values: &VecDeque<f64>) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(&VecDeque::from([3.0, 1.0, 2.0])), 2.0);
        assert_eq!(median(&VecDeque::from([4.0, 1.0, 2.0, 3.0])), 2.5);
        assert_eq!(median(&VecDeque::new()), 0.0);
    }
}
