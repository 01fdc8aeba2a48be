//! Files muxtrace writes in the temporary directory while the dashboard
//! owns the terminal: its own log, and the output of a command it started.
//! That directory is shared and muxtrace usually runs as root, so no file
//! there is opened through a link or taken over from another user.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Creates a new file at `first`, or beside it (`name.1.log`, …) when that
/// name is taken: an earlier run's file is never emptied, and a link
/// planted under the name is not followed (O_EXCL).
pub fn create_unique(first: &Path) -> io::Result<(File, PathBuf)> {
    let mut path = first.to_path_buf();
    let mut n = 0;
    loop {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => {
                n += 1;
                path = first.with_extension(format!("{n}.log"));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens `dir/muxtrace.log` to append to it, the one log every dashboard
/// run adds to, if it is a plain file of this user's with one name.
/// Otherwise (a link, a hard link to some other file, another user's file)
/// this run writes a file of its own, `muxtrace-PID.log`.
fn open_log_in(dir: &Path) -> io::Result<(File, PathBuf)> {
    let shared = dir.join("muxtrace.log");
    // O_NONBLOCK: a FIFO planted under the name would block the open until
    // someone reads it, and the dashboard with it (the fstat then refuses it).
    let opened = OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&shared);
    if let Ok(file) = opened {
        // SAFETY: geteuid only reads the process's credentials.
        let euid = unsafe { libc::geteuid() };
        if file
            .metadata()
            .is_ok_and(|m| m.file_type().is_file() && m.uid() == euid && m.nlink() == 1)
        {
            return Ok((file, shared));
        }
    }
    create_unique(&dir.join(format!("muxtrace-{}.log", std::process::id())))
}

/// The dashboard's log: created at the first line logged (a run that logs
/// nothing leaves no file), and named on stderr once the terminal is back,
/// so no warning goes unseen.
#[derive(Clone)]
pub struct DashboardLog(Arc<Mutex<LogState>>);

struct LogState {
    dir: PathBuf,
    file: Option<io::Result<(File, PathBuf)>>,
    lines: u64,
    /// Lines the file did not take (a full disk), and why.
    unwritten: u64,
    write_error: Option<String>,
}

impl DashboardLog {
    pub fn new(dir: PathBuf) -> DashboardLog {
        DashboardLog(Arc::new(Mutex::new(LogState {
            dir,
            file: None,
            lines: 0,
            unwritten: 0,
            write_error: None,
        })))
    }

    /// What to tell the user at exit: where the lines went, or that they
    /// were lost and why. None when nothing was logged.
    pub fn report(&self) -> Option<String> {
        let state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let lines = state.lines;
        let (plural, is, was) = if lines == 1 {
            ("", "is", "was")
        } else {
            ("s", "are", "were")
        };
        match state.file.as_ref()? {
            Ok((_, path)) if state.unwritten > 0 => Some(format!(
                "{lines} line{plural} logged while the dashboard ran; {} of them could not be \
                 written to {}: {}",
                state.unwritten,
                path.display(),
                state.write_error.as_deref().unwrap_or("unknown error")
            )),
            Ok((_, path)) => Some(format!(
                "{lines} line{plural} logged while the dashboard ran {is} in {}",
                path.display()
            )),
            Err(e) => Some(format!(
                "{lines} line{plural} logged while the dashboard ran {was} lost: \
                 cannot create a log in {}: {e}",
                state.dir.display()
            )),
        }
    }
}

impl Write for DashboardLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        let opened = state.file.get_or_insert_with(|| open_log_in(&state.dir));
        let lines = buf.iter().filter(|&&b| b == b'\n').count() as u64;
        state.lines += lines;
        // Failures are counted and said at exit, never returned: the
        // logger would drop them silently, and the terminal is the
        // dashboard's.
        if let Ok((file, _)) = opened {
            if let Err(e) = file.write_all(buf) {
                state.unwritten += lines;
                state.write_error = Some(e.to_string());
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0.lock().unwrap_or_else(|e| e.into_inner()).file {
            Some(Ok((file, _))) => file.flush(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_once(dir: &Path, line: &str) -> DashboardLog {
        let log = DashboardLog::new(dir.to_path_buf());
        writeln!(log.clone(), "{line}").unwrap();
        log
    }

    /// A line logged with muxtrace.log refused goes to the run's own log,
    /// which the report names.
    fn went_to_its_own_log(dir: &Path) {
        let log = log_once(dir, "a warning");
        let own = dir.join(format!("muxtrace-{}.log", std::process::id()));
        assert_eq!(std::fs::read_to_string(&own).unwrap(), "a warning\n");
        assert!(log.report().unwrap().ends_with(&own.display().to_string()));
    }

    /// Nothing logged, no file and nothing to say; lines logged are
    /// appended to muxtrace.log run after run, and counted.
    #[test]
    fn the_log_is_made_at_the_first_line_and_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let silent = DashboardLog::new(dir.path().to_path_buf());
        assert_eq!(silent.report(), None);
        assert!(!dir.path().join("muxtrace.log").exists());
        log_once(dir.path(), "first run");
        let second = log_once(dir.path(), "second run");
        let path = dir.path().join("muxtrace.log");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "first run\nsecond run\n"
        );
        assert_eq!(
            second.report().unwrap(),
            format!(
                "1 line logged while the dashboard ran is in {}",
                path.display()
            )
        );
    }

    /// A link planted as muxtrace.log (root follows links in a shared
    /// /tmp) and a hard link to another file are both left alone: the
    /// lines go to a file of this run's own, which the report names.
    #[test]
    fn a_planted_link_is_not_written_through() {
        for hard in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let victim = dir.path().join("victim");
            std::fs::write(&victim, "precious\n").unwrap();
            let planted = dir.path().join("muxtrace.log");
            if hard {
                std::fs::hard_link(&victim, &planted).unwrap();
            } else {
                std::os::unix::fs::symlink(&victim, &planted).unwrap();
            }
            went_to_its_own_log(dir.path());
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        }
    }

    /// A FIFO planted as muxtrace.log neither blocks the first line nor
    /// takes it.
    #[test]
    fn a_planted_fifo_does_not_block_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("muxtrace.log");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
        went_to_its_own_log(dir.path());
    }

    /// No writable directory: the lines are lost, but counted and said.
    #[test]
    fn lines_that_cannot_be_written_are_counted_and_said() {
        let log = DashboardLog::new(PathBuf::from("/proc/no-such-dir"));
        let mut writer = log.clone();
        writeln!(writer, "one").unwrap();
        writeln!(writer, "two").unwrap();
        let said = log.report().unwrap();
        assert!(
            said.starts_with("2 lines logged while the dashboard ran were lost: cannot create a log in /proc/no-such-dir: "),
            "{said}"
        );
    }

    /// A name already taken gets a numbered sibling; the first file keeps
    /// its contents.
    #[test]
    fn create_unique_keeps_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("muxtrace-1-x.log");
        std::fs::write(&first, "kept\n").unwrap();
        let (_, path) = create_unique(&first).unwrap();
        assert_eq!(path, dir.path().join("muxtrace-1-x.1.log"));
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "kept\n");
    }
}
