//! The map → snapshot → metrics stage: owns the attached probes and what user
//! space knows of each traced process (name, identity, liveness), adds the
//! processes the kernel put in the traced set, and turns each reading of the
//! maps into [`Metrics`]. It never renders anything.

use std::{collections::BTreeMap, time::Instant};

use tracer_model::{format::display_comm, Metrics, ProcessInfo, Snapshot};

use crate::{
    error::Result,
    probes::Probes,
    targets::{self, ProcessId},
};

/// What user space knows of one traced process.
#[derive(Debug, Clone)]
struct Known {
    id: Option<ProcessId>,
    comm: Vec<u8>,
    alive: bool,
}

pub struct Collector {
    probes: Probes,
    known: BTreeMap<u32, Known>,
    started: Instant,
    prev: Option<Snapshot>,
    /// Set by a reset: figures count from here.
    baseline: Option<Snapshot>,
}

impl Collector {
    pub fn new(probes: Probes) -> Collector {
        Collector {
            probes,
            known: BTreeMap::new(),
            started: Instant::now(),
            prev: None,
            baseline: None,
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn probes_mut(&mut self) -> &mut Probes {
        &mut self.probes
    }

    /// Starts tracing `tgid` in the kernel; [`Collector::register`] then
    /// records what /proc says of it.
    pub fn trace(&mut self, tgid: u32, flags: u32) -> Result<()> {
        self.probes.trace(tgid, flags)
    }

    /// Reads the maps and computes metrics against the previous reading.
    pub fn collect(&mut self) -> Result<Metrics> {
        let dump = self.probes.dump()?;
        let cost = self.probes.cost();
        let known = &self.known;
        let mut snapshot = Snapshot::from_dump(
            self.started.elapsed(),
            dump,
            cost,
            known.keys().copied(),
            |tgid| describe(tgid, known.get(&tgid)),
            |tgid, tid| targets::thread_name(tgid, tid).unwrap_or_default(),
        );
        if let Some(base) = &self.baseline {
            snapshot = tracer_model::rebase(&snapshot, base);
        }
        let metrics = tracer_model::compute(self.prev.as_ref(), &snapshot);
        self.prev = Some(snapshot);
        Ok(metrics)
    }

    /// Figures count from now on (the dashboard's `r`).
    pub fn reset(&mut self) -> Result<()> {
        let dump = self.probes.dump()?;
        let cost = self.probes.cost();
        let base = Snapshot::from_dump(
            self.started.elapsed(),
            dump,
            cost,
            [],
            |_| ProcessInfo::default(),
            |_, _| Vec::new(),
        );
        self.prev = None;
        self.baseline = Some(base);
        Ok(())
    }

    /// Registers processes the kernel added to the traced set (followed
    /// children, `--comm` matches). Thread ids in the set (see the fork
    /// program) are skipped.
    pub fn discover(&mut self) -> Result<()> {
        for tgid in self.probes.dump_traced()? {
            if self.known.contains_key(&tgid) {
                continue;
            }
            match targets::tgid_of(tgid) {
                Some(t) if t == tgid => {
                    log::info!("now tracing pid {tgid}");
                    self.register(tgid, ProcessId::of(tgid));
                }
                Some(_) => {} // a thread of a traced process
                None => {
                    // Already gone: keep its name if the aggregates show it.
                    self.known.insert(
                        tgid,
                        Known {
                            id: None,
                            comm: b"?".to_vec(),
                            alive: false,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Marks exited processes; whether any traced process still runs.
    pub fn refresh_liveness(&mut self) -> bool {
        let mut any_alive = false;
        for (tgid, k) in self.known.iter_mut() {
            k.alive = k.alive && k.id.as_ref().is_some_and(ProcessId::alive);
            if k.alive {
                // A process that execs takes the new program's name.
                if let Some(comm) = targets::comm_of(*tgid) {
                    k.comm = comm;
                }
            }
            any_alive |= k.alive;
        }
        any_alive
    }

    /// (pid, printable name) of every process traced so far.
    pub fn traced(&self) -> Vec<(u32, String)> {
        self.known
            .iter()
            .map(|(tgid, k)| (*tgid, display_comm(&k.comm)))
            .collect()
    }

    /// Records a traced process's name and identity.
    pub fn register(&mut self, tgid: u32, id: Option<ProcessId>) {
        let comm = targets::comm_of(tgid)
            .or_else(|| id.as_ref().map(|id| id.comm.clone()))
            .unwrap_or_else(|| b"?".to_vec());
        let alive = id.as_ref().is_some_and(ProcessId::alive);
        self.known.insert(tgid, Known { id, comm, alive });
    }
}

/// What /proc says of a traced process at this reading: its name, whether it
/// still runs, its fds by class and its epoll sets as the kernel lists them.
fn describe(tgid: u32, known: Option<&Known>) -> ProcessInfo {
    let (comm, alive) = match known {
        Some(k) => (k.comm.clone(), k.alive),
        None => {
            // Seen only in the aggregates: a short-lived followed child.
            let id = ProcessId::of(tgid);
            let comm = targets::comm_of(tgid).unwrap_or_else(|| b"?".to_vec());
            (comm, id.as_ref().is_some_and(ProcessId::alive))
        }
    };
    if !alive {
        return ProcessInfo {
            comm,
            alive,
            ..ProcessInfo::default()
        };
    }
    let fd_classes = match targets::fd_table(tgid) {
        Ok(table) => table.classes,
        Err(e) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                WARNED.call_once(|| log::warn!("cannot list /proc/{tgid}/fd ({e}): its fd classes and epoll sets are not shown (they need CAP_SYS_PTRACE, or the process's own user); the per-call figures are measured all the same"));
            }
            BTreeMap::new()
        }
    };
    ProcessInfo {
        comm,
        alive,
        fd_classes,
        epoll_interest: targets::epoll_sets(tgid).into_iter().collect(),
    }
}
