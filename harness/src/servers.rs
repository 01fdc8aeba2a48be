//! nginx, redis, lighttpd and memcached — real servers, written without
//! muxtrace in mind — started from the configs kept in `harness/servers/`
//! (memcached, which has no config file, from its command line) on a free
//! loopback port, every path they write in a temporary folder, returned once
//! they accept connections and their event loops wait, and stopped by pid
//! (SIGTERM to nginx's master, which stops its workers) when dropped. Never
//! as system services.

use std::{
    io::Read as _,
    net::{Ipv4Addr, Shutdown, TcpListener, TcpStream},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{anyhow, bail, Result};

use crate::{
    echo::pinned,
    proc::Proc,
    procfs::{
        blocked_in, children, poll_until, thread_comm, thread_epoll_wait_fd, threads,
        waits_in_epoll,
    },
};

/// nginx's config; `@DIR@`, `@PORT@` and `@SENDFILE@` are filled in.
pub const NGINX_CONF: &str = include_str!("../servers/nginx.conf");
/// redis's config; `@DIR@` and `@PORT@` are filled in.
pub const REDIS_CONF: &str = include_str!("../servers/redis.conf");
/// lighttpd's config; `@DIR@`, `@PORT@` and `@BACKEND@` are filled in.
pub const LIGHTTPD_CONF: &str = include_str!("../servers/lighttpd.conf");
/// Node.js's http server with an idle worker thread; run as
/// `node FILE PORT BODY_BYTES`.
pub const NODE_HTTP: &str = include_str!("../servers/node-http.js");

/// How long a server may take to start listening and settle.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries with a new port when the one picked was taken meanwhile.
const PORT_TRIES: usize = 5;

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// `template` with each `@KEY@` replaced; an error if one is left.
pub fn render(template: &str, values: &[(&str, &str)]) -> Result<String> {
    let mut text = template.to_owned();
    for (key, value) in values {
        text = text.replace(&format!("@{key}@"), value);
    }
    // Placeholders are upper-case words between two @.
    if let Some(left) = text
        .split('@')
        .skip(1)
        .step_by(2)
        .find(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
    {
        bail!("the config still has the placeholder @{left}@");
    }
    Ok(text)
}

/// A temporary folder the servers' unprivileged workers can read (nginx's
/// run as `nobody` when started as root).
fn server_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Whether a connection to `port` is accepted and closed by the server once
/// we close our side. Waiting for the server's close matters: a server that
/// still holds the probe's connection has it in its epoll set, and a test
/// that reads the set then counts one fd that soon goes (the kernel drops
/// the registration before the FIN we wait for is sent).
fn connects(port: u16) -> bool {
    closed_by_server(port).is_ok()
}

fn closed_by_server(port: u16) -> std::io::Result<()> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(START_TIMEOUT))?;
    stream.read_to_end(&mut Vec::new())?;
    Ok(())
}

/// What nginx serves.
#[derive(Debug, Clone, Copy)]
pub struct NginxOptions {
    /// `sendfile on` (the body by sendfile) or `off` (all by writev).
    pub sendfile: bool,
    /// Size of `/index.html`, its only file.
    pub body_bytes: usize,
}

/// nginx: a master and [`Nginx::WORKERS`] workers.
pub struct Nginx {
    master: Proc,
    workers: Vec<u32>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Worker processes, as the config says.
    pub const WORKERS: usize = 2;

    /// Starts nginx on a free port and returns once it accepts connections
    /// and every worker waits in epoll.
    pub fn start(opts: NginxOptions) -> Result<Nginx> {
        let mut last = None;
        for _ in 0..PORT_TRIES {
            match Nginx::start_on(opts, free_port()?) {
                Ok(n) => return Ok(n),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("nginx did not start")))
    }

    fn start_on(opts: NginxOptions, port: u16) -> Result<Nginx> {
        let dir = server_dir("muxtrace-nginx-")?;
        let d = dir.path();
        let html = d.join("html");
        std::fs::create_dir(&html)?;
        std::fs::set_permissions(&html, std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(html.join("index.html"), body(opts.body_bytes))?;
        let conf = render(
            NGINX_CONF,
            &[
                ("DIR", &d.to_string_lossy()),
                ("PORT", &port.to_string()),
                ("SENDFILE", if opts.sendfile { "on" } else { "off" }),
            ],
        )?;
        let conf_path = d.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        // -e: the error log before the config is read, too, is ours, not
        // /var/log/nginx's.
        let mut master = Proc::spawn(
            Command::new("nginx")
                .arg("-p")
                .arg(d)
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(d.join("error.log")),
        )?;
        let pid = master.pid();
        let ready = poll_until("nginx's workers waiting", START_TIMEOUT, || {
            if !master.is_running() {
                return Some(false);
            }
            let workers = children(pid);
            (workers.len() == Nginx::WORKERS
                && workers.iter().all(|&w| waits_in_epoll(w))
                && connects(port))
            .then_some(true)
        });
        if !matches!(ready, Ok(true)) {
            let log = std::fs::read_to_string(d.join("error.log")).unwrap_or_default();
            let _ = master.stop();
            bail!(
                "nginx did not start on port {port} ({}): {}{log}",
                ready.err().map_or("it exited".into(), |e| format!("{e:#}")),
                master.stderr()
            );
        }
        // The test connection above reached a worker: wait until it is
        // served, every worker waits again and the master waits for signals.
        poll_until("nginx waiting again", START_TIMEOUT, || {
            (children(pid).iter().all(|&w| waits_in_epoll(w))
                && blocked_in(pid) == Some(libc::SYS_rt_sigsuspend))
            .then_some(())
        })?;
        Ok(Nginx {
            workers: children(pid),
            master,
            port,
            dir,
        })
    }

    pub fn master_pid(&self) -> u32 {
        self.master.pid()
    }

    /// The workers' pids, sorted.
    pub fn workers(&self) -> &[u32] {
        &self.workers
    }

    /// The master, then the workers.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.master_pid())
            .chain(self.workers.iter().copied())
            .collect()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the one file nginx serves.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/index.html", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The access log so far: one line per request served.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir().join("access.log")).unwrap_or_default()
    }

    /// The error log so far (at level info), each line starting with the
    /// date, the level and `PID#TID:` of the process that wrote it.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir().join("error.log")).unwrap_or_default()
    }

    /// Whether the master waits for signals and every worker in epoll: no
    /// request in progress.
    pub fn is_quiet(&self) -> bool {
        blocked_in(self.master_pid()) == Some(libc::SYS_rt_sigsuspend)
            && self.workers.iter().all(|&w| waits_in_epoll(w))
    }

    /// Signals the master (SIGUSR1: reopen the logs, which it passes on to
    /// each worker over its channel socket).
    pub fn signal_master(&self, sig: i32) {
        self.master.signal(sig);
    }
}

/// `n` bytes of printable text, the same every run.
fn body(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| match i % 64 {
            63 => b'\n',
            k => b'a' + (k % 26) as u8,
        })
        .collect()
}

/// redis, single-threaded I/O, no persistence.
pub struct Redis {
    proc: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts redis on a free port (on `cpu` when given) and returns once it
    /// accepts connections and waits in epoll.
    pub fn start(cpu: Option<u32>) -> Result<Redis> {
        let mut last = None;
        for _ in 0..PORT_TRIES {
            match Redis::start_on(free_port()?, cpu) {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("redis did not start")))
    }

    fn start_on(port: u16, cpu: Option<u32>) -> Result<Redis> {
        let dir = server_dir("muxtrace-redis-")?;
        let conf = render(
            REDIS_CONF,
            &[
                ("DIR", &dir.path().to_string_lossy()),
                ("PORT", &port.to_string()),
            ],
        )?;
        let conf_path: PathBuf = dir.path().join("redis.conf");
        std::fs::write(&conf_path, conf)?;
        let mut cmd = pinned("redis-server".as_ref(), cpu);
        cmd.arg(&conf_path);
        let mut proc = Proc::spawn(&mut cmd)?;
        // With taskset, redis is taskset's exec'ed self: the same pid.
        if let Err(e) = proc.wait_line("Ready to accept connections", START_TIMEOUT) {
            let _ = proc.stop();
            return Err(e.context(format!("redis did not start on port {port}")));
        }
        let pid = proc.pid();
        poll_until("redis waiting", START_TIMEOUT, || {
            (connects(port) && waits_in_epoll(pid)).then_some(())
        })?;
        Ok(Redis {
            proc,
            port,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// lighttpd, one process, with the event handler asked for.
pub struct Lighttpd {
    proc: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Lighttpd {
    /// Starts lighttpd on a free port with `backend` as its event handler
    /// ("poll", "linux-sysepoll") and `/index.html` of `body_bytes`, and
    /// returns once it accepts connections and waits again.
    pub fn start(backend: &str, body_bytes: usize) -> Result<Lighttpd> {
        let mut last = None;
        for _ in 0..PORT_TRIES {
            match Lighttpd::start_on(backend, body_bytes, free_port()?) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("lighttpd did not start")))
    }

    fn start_on(backend: &str, body_bytes: usize, port: u16) -> Result<Lighttpd> {
        let dir = server_dir("muxtrace-lighttpd-")?;
        let d = dir.path();
        let www = d.join("www");
        std::fs::create_dir(&www)?;
        std::fs::set_permissions(&www, std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(www.join("index.html"), body(body_bytes))?;
        let conf = render(
            LIGHTTPD_CONF,
            &[
                ("DIR", &d.to_string_lossy()),
                ("PORT", &port.to_string()),
                ("BACKEND", backend),
            ],
        )?;
        let conf_path = d.join("lighttpd.conf");
        std::fs::write(&conf_path, conf)?;
        let mut proc = Proc::spawn(Command::new("lighttpd").arg("-D").arg("-f").arg(&conf_path))?;
        let pid = proc.pid();
        let waits = |pid| {
            matches!(blocked_in(pid), Some(nr) if nr == libc::SYS_poll) || waits_in_epoll(pid)
        };
        let ready = poll_until("lighttpd waiting", START_TIMEOUT, || {
            if !proc.is_running() {
                return Some(false);
            }
            (connects(port) && waits(pid)).then_some(true)
        });
        if !matches!(ready, Ok(true)) {
            let log = std::fs::read_to_string(d.join("error.log")).unwrap_or_default();
            let _ = proc.stop();
            bail!(
                "lighttpd did not start on port {port}: {}{log}",
                proc.stderr()
            );
        }
        Ok(Lighttpd {
            proc,
            port,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the one file it serves.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/index.html", self.port)
    }
}

/// memcached: a main thread that accepts and hands each connection to one
/// of its worker threads, each worker serving its connections on its own
/// libevent loop. Started in the foreground with command-line options only
/// (memcached reads no config file):
///
/// `memcached -l 127.0.0.1 -p PORT -U 0 -t WORKERS -c 4096 -m 64 [-u root]`
///
/// - `-l 127.0.0.1 -p PORT`: TCP on loopback only; `-U 0`: no UDP;
/// - `-t WORKERS`: the worker threads asked for;
/// - `-c 4096`: connections, enough for a test's idle ones. memcached sets
///   its own RLIMIT_NOFILE, soft and hard, to this figure;
/// - `-m 64`: MB of item memory, memcached's default, stated so that a
///   changed default cannot change the tests;
/// - `-u root` only when run as root, which memcached refuses otherwise
///   ("can't run as root without the -u switch", exit 64); not `-v`: a
///   quiet server writes nothing to its pipes.
///
/// Threads, as memcached 1.6.18 (Debian 12) names them in
/// `/proc/PID/task/TID/comm`: `memcached` (the main thread, tid = pid),
/// `mc-worker` × WORKERS, and `mc-log`, `mc-assocmaint`, `mc-itemcrawler`,
/// `mc-lrumaint`, `mc-slabmaint`, which never wait in epoll. Each event
/// loop has its epoll fd: the main thread's holds the listening socket; a
/// worker's holds its notify eventfd (the main thread writes it to hand
/// over a connection) and then its connections. libevent's signal pipe of
/// each loop is never registered.
pub struct Memcached {
    proc: Proc,
    port: u16,
    main_epfd: u32,
    /// (tid, epoll fd) of each worker, by tid.
    workers: Vec<(u32, u32)>,
}

impl Memcached {
    /// The thread name memcached gives its workers (1.6.18 does; older
    /// releases leave every thread named `memcached`).
    pub const WORKER_COMM: &str = "mc-worker";

    /// Starts memcached with `worker_threads` workers on a free port and
    /// returns once it accepts connections and its main thread and every
    /// worker wait in epoll.
    pub fn start(worker_threads: u32) -> Result<Memcached> {
        Memcached::start_program("memcached", worker_threads)
    }

    fn start_program(program: &str, worker_threads: u32) -> Result<Memcached> {
        if worker_threads == 0 {
            bail!("memcached needs at least one worker thread");
        }
        // One clear error, not PORT_TRIES of "cannot start".
        if let Err(e) = Command::new(program).arg("-V").output() {
            bail!(
                "{program} cannot be run ({e}); install it: apt-get install memcached \
                 (cargo xtask test installs the real servers)"
            );
        }
        let mut last = None;
        for _ in 0..PORT_TRIES {
            match Memcached::start_on(program, worker_threads, free_port()?) {
                Ok(m) => return Ok(m),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("memcached did not start")))
    }

    fn start_on(program: &str, worker_threads: u32, port: u16) -> Result<Memcached> {
        let mut cmd = Command::new(program);
        cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"])
            .args(["-t", &worker_threads.to_string(), "-c", "4096", "-m", "64"]);
        // SAFETY: geteuid has no arguments and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            cmd.args(["-u", "root"]);
        }
        let mut proc = Proc::spawn(&mut cmd)?;
        let pid = proc.pid();
        let want = worker_threads as usize;
        let ready = poll_until("memcached's threads waiting", START_TIMEOUT, || {
            if !proc.is_running() {
                return Some(false);
            }
            (thread_epoll_wait_fd(pid, pid).is_some()
                && Memcached::find_workers(pid).len() == want
                && connects(port))
            .then_some(true)
        });
        if !matches!(ready, Ok(true)) {
            let _ = proc.stop();
            bail!(
                "memcached did not start on port {port} ({}): {}",
                ready.err().map_or("it exited".into(), |e| format!("{e:#}")),
                proc.stderr()
            );
        }
        // memcached closed the probe connection before it read EOF, so no
        // set holds it: wait until every thread waits again, and note the
        // epoll fd each one waits on.
        let (main_epfd, workers) = poll_until("memcached waiting again", START_TIMEOUT, || {
            let workers = Memcached::find_workers(pid);
            let main = thread_epoll_wait_fd(pid, pid)?;
            (workers.len() == want).then_some((main, workers))
        })?;
        Ok(Memcached {
            proc,
            port,
            main_epfd,
            workers,
        })
    }

    /// (tid, epoll fd) of the workers waiting in epoll now: the threads
    /// named [`Memcached::WORKER_COMM`]; with a memcached that names none
    /// (not seen here, untested), every thread but the main one that waits
    /// in epoll — none of its other threads uses epoll. A worker that is
    /// serving a request is not in the list.
    fn find_workers(pid: u32) -> Vec<(u32, u32)> {
        let tids = threads(pid);
        let named = tids
            .iter()
            .any(|&t| thread_comm(pid, t).as_deref() == Some(Memcached::WORKER_COMM));
        tids.into_iter()
            .filter(|&t| match named {
                true => thread_comm(pid, t).as_deref() == Some(Memcached::WORKER_COMM),
                false => t != pid,
            })
            .filter_map(|t| Some((t, thread_epoll_wait_fd(pid, t)?)))
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Each worker's (tid, epoll fd), sorted by tid: the set holding its
    /// notify eventfd and its connections.
    pub fn worker_epoll_fds(&self) -> &[(u32, u32)] {
        &self.workers
    }

    /// The main thread's epoll fd: the set holding the listening socket.
    pub fn main_epoll_fd(&self) -> u32 {
        self.main_epfd
    }

    /// Whether the main thread and every worker wait in epoll: no request
    /// in progress.
    pub fn is_quiet(&self) -> bool {
        let pid = self.pid();
        thread_epoll_wait_fd(pid, pid).is_some()
            && self
                .workers
                .iter()
                .all(|&(t, _)| thread_epoll_wait_fd(pid, t).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_render_completely_and_a_missed_placeholder_is_an_error() {
        let nginx = render(
            NGINX_CONF,
            &[("DIR", "/tmp/x"), ("PORT", "8080"), ("SENDFILE", "off")],
        )
        .unwrap();
        assert!(nginx.contains("listen 127.0.0.1:8080;"));
        assert!(nginx.contains("sendfile off;"));
        assert!(nginx.contains("daemon off;"));
        let redis = render(REDIS_CONF, &[("DIR", "/tmp/x"), ("PORT", "6399")]).unwrap();
        assert!(redis.contains("port 6399"));
        assert!(redis.contains("bind 127.0.0.1"));
        assert!(render(NGINX_CONF, &[("DIR", "/tmp/x"), ("PORT", "1")]).is_err());
    }

    #[test]
    fn every_path_the_configs_name_is_in_the_temporary_folder() {
        for (conf, values) in [
            (
                NGINX_CONF,
                &[("DIR", "/TMPDIR"), ("PORT", "1"), ("SENDFILE", "on")][..],
            ),
            (REDIS_CONF, &[("DIR", "/TMPDIR"), ("PORT", "1")][..]),
            (
                LIGHTTPD_CONF,
                &[("DIR", "/TMPDIR"), ("PORT", "1"), ("BACKEND", "poll")][..],
            ),
        ] {
            let text = render(conf, values).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
                for word in line.split_whitespace() {
                    let word = word.trim_end_matches(';').trim_matches('"');
                    if word.starts_with('/') {
                        assert!(
                            word == "/TMPDIR" || word.starts_with("/TMPDIR/"),
                            "{word} in {line:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_missing_memcached_is_one_clear_error() {
        let e = Memcached::start_program("memcached-not-installed-here", 2)
            .err()
            .unwrap();
        let text = format!("{e:#}");
        assert!(text.contains("apt-get install memcached"), "{text}");
        assert!(Memcached::start_program("memcached", 0).is_err());
    }

    #[test]
    fn the_body_is_the_size_asked_for() {
        assert_eq!(body(17_510).len(), 17_510);
        assert!(body(100).is_ascii());
    }
}
