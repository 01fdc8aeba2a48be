//! The eBPF programs' own log lines (aya-log): the first occurrences of each
//! loss, with tid, syscall and address, forwarded to muxtrace's log — stderr,
//! or muxtrace.log under the dashboard — when run with `-v`. Without `-v` the
//! programs write no record at all.

use aya::Ebpf;
use aya_log::EbpfLogger;
use tokio::io::unix::AsyncFd;

/// What the programs may log: aya-log's level numbers (Info is 3).
pub const LEVEL_OFF: u8 = 0;
pub const LEVEL_INFO: u8 = 3;

pub struct KernelLog {
    records: AsyncFd<EbpfLogger<&'static dyn log::Log>>,
}

impl KernelLog {
    /// Takes the programs' log map; call before their load, and keep the
    /// value: dropping it closes the map.
    pub fn init(ebpf: &mut Ebpf) -> Option<KernelLog> {
        let logger = match EbpfLogger::init(ebpf) {
            Ok(logger) => logger,
            Err(e) => {
                log::debug!("the eBPF programs' log is not available: {e}");
                return None;
            }
        };
        // SAFETY: the logger owns its ring buffer's fd, which stays open and
        // the same for as long as the AsyncFd holds the logger.
        match unsafe { AsyncFd::register(logger) } {
            Ok(records) => Some(KernelLog { records }),
            Err(e) => {
                log::debug!("cannot watch the eBPF programs' log: {e}");
                None
            }
        }
    }

    /// Waits for records and hands them to the `log` crate. Cancel-safe.
    pub async fn forward(&mut self) {
        match self.records.readable_mut().await {
            Ok(mut guard) => {
                guard.get_inner_mut().flush();
                guard.clear_ready();
            }
            Err(e) => {
                log::debug!("the eBPF programs' log failed: {e}");
                std::future::pending::<()>().await;
            }
        }
    }
}
