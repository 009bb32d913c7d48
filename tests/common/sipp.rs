//! SIPp runner shared by the SIPp integration tests: one SIPp process per call, loopback only,
//! always bounded (`-timeout_error`, callers pass `-timeout`, `-m` and a rate), output and errors
//! collected for the assertion message. Tests that use it run one at a time (`serial()`).

use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{repo_path, sipp_bin};

pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn scenario(name: &str) -> String {
    repo_path(&format!("tests/sipp/{name}"))
        .display()
        .to_string()
}

pub struct Sipp {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    tag: String,
}

/// Start sipp in `dir` with the common options (loopback, own port, no stdin, errors traced).
pub fn sipp(dir: &Path, tag: &str, local_port: u16, args: &[&str]) -> Sipp {
    sipp_at(dir, tag, None, "127.0.0.1", local_port, args)
}

/// [`sipp`] inside a network namespace (`ip netns exec`), on address `ip` there.
pub fn sipp_at(
    dir: &Path,
    tag: &str,
    netns: Option<&str>,
    ip: &str,
    local_port: u16,
    args: &[&str],
) -> Sipp {
    let out = dir.join(format!("{tag}.out"));
    let err = dir.join(format!("{tag}_errors.log"));
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, &sipp_bin()]);
            c
        }
        None => Command::new(sipp_bin()),
    };
    cmd.args([
        "-i",
        ip,
        "-p",
        &local_port.to_string(),
        "-nostdin",
        "-timeout_error",
    ])
    .arg("-trace_err")
    .arg("-error_file")
    .arg(&err)
    .args(args)
    .current_dir(dir)
    .stdin(Stdio::null())
    .stdout(fs::File::create(&out).unwrap())
    .stderr(Stdio::from(
        fs::File::options().append(true).open(&out).unwrap(),
    ));
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn sipp: {e}"));
    Sipp {
        child,
        out,
        err,
        tag: tag.into(),
    }
}

impl Sipp {
    /// Wait for sipp to exit (it stops by itself: -m / -timeout); kill it after `limit`.
    pub fn wait(mut self, limit: Duration) -> (i32, String) {
        let end = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = String::from_utf8_lossy(&fs::read(&self.out).unwrap_or_default()).into_owned();
        let tail: Vec<&str> = out.lines().collect();
        let tail = tail[tail.len().saturating_sub(40)..].join("\n");
        let errs = String::from_utf8_lossy(&fs::read(&self.err).unwrap_or_default()).into_owned();
        let errs: String = errs.lines().take(30).collect::<Vec<_>>().join("\n");
        let code = status.and_then(|s| s.code()).unwrap_or(-999);
        (
            code,
            format!(
                "sipp {} exit {code}; output tail:\n{tail}\nerrors:\n{errs}",
                self.tag
            ),
        )
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn udp_port_bound(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_err()
}
