//! Shared code of the echo servers and the load generator.
//!
//! Each server binary in `src/bin/` owns its event loop — the part that shows
//! an I/O model — and nothing else. What every model needs the same way lives
//! here, so the differences muxtrace measures come from the model, not from
//! how carefully each file was written:
//!
//! - [`sys`]: thin checked wrappers over the few libc calls used everywhere,
//!   including the one receive call (`recvfrom`) and the one send call
//!   (`sendto`) that every server issues for payload;
//! - [`net`]: listener setup, `accept4`, the fd-limit raise;
//! - [`buffer`] and [`conn`]: the bounded per-connection echo buffer and the
//!   read/write steps of one connection, with backpressure;
//! - [`ring`]: the same bound as a ring that never moves, for the io_uring
//!   server, whose buffers the kernel holds while requests are in flight;
//! - [`server`]: command-line arguments, start-up and the stop report;
//! - [`signals`]: SIGINT/SIGTERM as a self-pipe (multiplexed servers) or as a
//!   dedicated `sigwait` thread (the blocking server);
//! - [`stats`]: the counters behind `stopped: connections=… bytes_echoed=… errors=…`;
//! - [`pattern`]: loadgen's verifiable byte stream, also used by the tests.
//!
//! Nothing here starts threads, waits for readiness or submits io_uring
//! requests: that is the models' job.

pub mod buffer;
pub mod conn;
pub mod net;
pub mod pattern;
pub mod ring;
pub mod server;
pub mod signals;
pub mod stats;
pub mod sys;
