//! A throwaway PostgreSQL cluster for tests: `initdb` into a temp dir, the server on a free port
//! of 127.0.0.1 (password auth, scram) and on a unix socket in the temp dir (trust), removed at
//! the end. Needs the Debian `postgresql` package (scripts/test.sh installs it); the binaries are
//! taken from the newest /usr/lib/postgresql/*/bin (or $KSRD_PG_BIN).
//!
//! The server is started as a child process (not daemonised by `pg_ctl start`) with
//! PR_SET_PDEATHSIG, so a test process that dies takes it along; it is stopped with `pg_ctl stop`.
//! Only the thread that started it may restart it (the death signal follows that thread).
//! initdb and postgres refuse to run as root: as root they run as the `postgres` user (or `nobody`).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{free_tcp_port, TempDir};

/// Superuser of the test clusters.
pub const USER: &str = "ksrd";
/// Its password (for TCP connections).
pub const PASSWORD: &str = "ksrd-test-pw";
/// Bound on the server getting ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Directory of the PostgreSQL server binaries, if installed.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KSRD_PG_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// The server binaries, or a panic that says how to get them.
pub fn require_bin_dir() -> PathBuf {
    bin_dir().unwrap_or_else(|| {
        panic!("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the Debian package `postgresql` (scripts/test.sh does) or set KSRD_PG_BIN")
    })
}

/// (uid, gid) to run the server as when we are root.
fn run_as() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    for name in ["postgres", "nobody"] {
        for l in passwd.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() > 3 && f[0] == name {
                if let (Ok(u), Ok(g)) = (f[2].parse(), f[3].parse()) {
                    return Some((u, g));
                }
            }
        }
    }
    panic!("running as root and there is neither a `postgres` nor a `nobody` user to run PostgreSQL as");
}

/// A running throwaway cluster.
pub struct PgCluster {
    /// TCP port on 127.0.0.1 (also names the unix socket).
    pub port: u16,
    /// Directory of the unix socket (also holds data/ and the server log).
    pub sock_dir: PathBuf,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    child: Mutex<Option<Child>>,
    _dir: TempDir,
}

impl PgCluster {
    /// initdb + start; panics (with the server log) when it cannot.
    pub fn start() -> PgCluster {
        let bin = require_bin_dir();
        let dir = TempDir::new("pg");
        let sock_dir = dir.path().join("pg");
        fs::create_dir(&sock_dir).unwrap();
        let run_as = run_as();
        let pwfile = sock_dir.join("pw");
        fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((u, g)) = run_as {
            std::os::unix::fs::chown(&sock_dir, Some(u), Some(g)).unwrap();
            std::os::unix::fs::chown(&pwfile, Some(u), Some(g)).unwrap();
        }
        let mut c = Self::command_as(&bin, "initdb", run_as);
        c.arg("-D")
            .arg(sock_dir.join("data"))
            .args(["-U", USER, "-E", "UTF8", "--no-locale", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()));
        let out = c.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = PgCluster {
            port: 0,
            sock_dir,
            bin,
            run_as,
            child: Mutex::new(None),
            _dir: dir,
        };
        // A free port can be taken by someone else before the server binds it: try a few.
        for _ in 0..5 {
            pg.port = free_tcp_port();
            if pg.try_start_server() {
                return pg;
            }
        }
        panic!("PostgreSQL did not start; log:\n{}", pg.log());
    }

    fn command_as(bin: &Path, prog: &str, run_as: Option<(u32, u32)>) -> Command {
        let mut c = Command::new(bin.join(prog));
        c.stdin(Stdio::null()).env_remove("PGDATA");
        if let Some((u, g)) = run_as {
            c.uid(u).gid(g).current_dir("/");
        }
        c
    }

    /// Start the server again after [`PgCluster::stop`] (same port and data).
    pub fn start_server(&self) {
        assert!(
            self.try_start_server(),
            "PostgreSQL did not start again; log:\n{}",
            self.log()
        );
    }

    fn try_start_server(&self) -> bool {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.sock_dir.join("server.log"))
            .unwrap();
        if let Some((u, g)) = self.run_as {
            let _ = std::os::unix::fs::chown(self.sock_dir.join("server.log"), Some(u), Some(g));
        }
        let mut c = Self::command_as(&self.bin, "postgres", self.run_as);
        c.arg("-D")
            .arg(self.sock_dir.join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.sock_dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "max_connections=40", "-c", "shared_buffers=16MB"])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; this runs after the uid switch, which would
        // otherwise clear the death signal.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                Ok(())
            });
        }
        let mut child = c.spawn().expect("spawn postgres");
        let end = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if self.ready() {
                *self.child.lock().unwrap() = Some(child);
                return true;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True when the server accepts connections on its socket.
    pub fn ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .arg("-q")
            .arg("-h")
            .arg(&self.sock_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Stop the server (`pg_ctl stop -m fast`: clients are disconnected) and wait for it.
    pub fn stop(&self) {
        let out = Self::command_as(&self.bin, "pg_ctl", self.run_as)
            .arg("stop")
            .arg("-D")
            .arg(self.sock_dir.join("data"))
            .args(["-m", "fast", "-w", "-t", "30"])
            .output()
            .expect("run pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.wait();
        }
    }

    /// `postgres://ksrd:PASSWORD@127.0.0.1:PORT/db` (TCP, password auth).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// `postgres://ksrd@/db?host=SOCKDIR&port=PORT` (unix socket, trust).
    pub fn socket_url(&self, db: &str) -> String {
        format!(
            "postgres://{USER}@/{db}?host={}&port={}",
            self.sock_dir.display(),
            self.port
        )
    }

    /// `CREATE DATABASE name`.
    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }

    /// Run SQL with psql (unaligned, tuples only); its stdout. Panics on an error.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.psql_args(db, &["-c", sql])
    }

    /// Run an SQL file with psql. Panics on an error.
    pub fn psql_file(&self, db: &str, file: &Path) {
        self.psql_args(db, &["-f", &file.display().to_string()]);
    }

    fn psql_args(&self, db: &str, args: &[&str]) -> String {
        let out = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(&self.sock_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-U",
                USER,
                "-d",
                db,
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.sock_dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "---- postgres log tail ----\n{}\n----",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if let Some(mut c) = self.child.lock().unwrap().take() {
            // immediate shutdown: the cluster is thrown away anyway
            unsafe {
                libc::kill(c.id() as i32, libc::SIGQUIT);
            }
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A cluster shared by the tests of one test binary (tests that stop their server need their
/// own). It is started from a thread that never ends, so its death signal fires only when the
/// test process exits.
pub fn shared() -> &'static PgCluster {
    static PG: OnceLock<&'static PgCluster> = OnceLock::new();
    PG.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pg: &'static PgCluster = Box::leak(Box::new(PgCluster::start()));
            tx.send(pg).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("PostgreSQL cluster failed to start")
    })
}

/// A fresh database `TAG_N` in the shared cluster.
pub fn shared_db(tag: &str) -> (&'static PgCluster, String) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let pg = shared();
    let name = format!(
        "{tag}_{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    pg.create_db(&name);
    (pg, name)
}
