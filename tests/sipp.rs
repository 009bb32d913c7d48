//! SIPp against the real ksrd: OPTIONS load on routes/default.py, MESSAGE through
//! routes/stateless_proxy.py to a SIPp UAS, and hot reload under 500 OPTIONS/s.
//! Needs `sipp` (Debian sip-tester; scripts/install.sh installs it). The tests run one at a time.
mod common;
use common::*;
use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn scenario(name: &str) -> String {
    repo_path(&format!("tests/sipp/{name}"))
        .display()
        .to_string()
}

struct Sipp {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    tag: String,
}

/// Start sipp in `dir` with the common options (loopback, own port, no stdin, errors traced).
fn sipp(dir: &Path, tag: &str, local_port: u16, args: &[&str]) -> Sipp {
    let out = dir.join(format!("{tag}.out"));
    let err = dir.join(format!("{tag}_errors.log"));
    let mut cmd = Command::new(sipp_bin());
    cmd.args([
        "-i",
        "127.0.0.1",
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
    fn wait(mut self, limit: Duration) -> (i32, String) {
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

fn udp_port_bound(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_err()
}

#[test]
fn options_load_on_default_routes() {
    let _g = serial();
    let k = Ksrd::start_with_route_file("routes/default.py", "");
    let dir = TempDir::new("sipp");
    let s = sipp(
        dir.path(),
        "options",
        free_port(),
        &[
            &format!("127.0.0.1:{}", k.port),
            "-sf",
            &scenario("options_uac.xml"),
            "-m",
            "200",
            "-r",
            "100",
            "-timeout",
            "30s",
        ],
    );
    let (code, report) = s.wait(Duration::from_secs(45));
    assert_eq!(code, 0, "{report}\nksrd log:\n{}", k.log_tail(20));
    assert!(k.is_running());
}

#[test]
fn message_through_stateless_proxy_to_sipp_uas() {
    let _g = serial();
    let dir = TempDir::new("sipp");
    let uas_port = free_port();
    let k = Ksrd::start_with_route_file(
        "routes/stateless_proxy.py",
        &format!("[define]\nPROXY_TARGET = \"sip:127.0.0.1:{uas_port}\"\n"),
    );
    let uas = sipp(
        dir.path(),
        "uas",
        uas_port,
        &[
            "-sf",
            &scenario("message_uas.xml"),
            "-m",
            "50",
            "-timeout",
            "40s",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(10), || udp_port_bound(uas_port)),
        "SIPp UAS did not bind {uas_port}"
    );
    let uac = sipp(
        dir.path(),
        "uac",
        free_port(),
        &[
            &format!("127.0.0.1:{}", k.port),
            "-sf",
            &scenario("message_uac.xml"),
            "-s",
            "alice",
            "-m",
            "50",
            "-r",
            "50",
            "-timeout",
            "30s",
        ],
    );
    let (uac_code, uac_report) = uac.wait(Duration::from_secs(45));
    let (uas_code, uas_report) = uas.wait(Duration::from_secs(20));
    assert_eq!(
        uac_code,
        0,
        "{uac_report}\n{uas_report}\nksrd log:\n{}",
        k.log_tail(20)
    );
    assert_eq!(
        uas_code,
        0,
        "UAS (checks X-Proxied): {uas_report}\nksrd log:\n{}",
        k.log_tail(20)
    );
    assert!(
        k.log_count("reply 200") >= 50,
        "ksr_reply_route logged each 200; log tail:\n{}",
        k.log_tail(10)
    );
}

fn options_reason(k: &Ksrd) -> Option<String> {
    let c = k.udp();
    c.send(&options(k.port, c.addr()).build());
    c.recv_final(Duration::from_millis(200)).map(|r| r.reason)
}

#[test]
fn reload_under_load_loses_no_call() {
    let _g = serial();
    let k = Ksrd::start(&route_options_reason("Alive v0"), "");
    let dir = TempDir::new("sipp");
    let load = sipp(
        dir.path(),
        "reload-load",
        free_port(),
        &[
            &format!("127.0.0.1:{}", k.port),
            "-sf",
            &scenario("options_uac.xml"),
            "-r",
            "500",
            "-m",
            "3000",
            "-timeout",
            "40s",
        ],
    );
    let versions = [
        "Alive A1",
        "Alive B2",
        "Alive A3",
        "Alive B4",
        "Alive final",
    ];
    let mut reload_times = Vec::new();
    for v in versions {
        // pacing of the edits over the ~6 s of load (not a synchronisation)
        std::thread::sleep(Duration::from_millis(900));
        let t0 = Instant::now();
        k.rewrite_route(&route_options_reason(v));
        let live = wait_until(Duration::from_secs(3), || {
            options_reason(&k).as_deref() == Some(v)
        });
        assert!(
            live,
            "version {v:?} not live under load; log:\n{}",
            k.log_tail(20)
        );
        reload_times.push(t0.elapsed());
    }
    let (code, report) = load.wait(Duration::from_secs(60));
    assert_eq!(
        code,
        0,
        "SIPp saw failed calls across 5 reloads: {report}\nksrd log:\n{}",
        k.log_tail(20)
    );
    assert_eq!(
        options_reason(&k).as_deref(),
        Some("Alive final"),
        "the final version is live"
    );
    eprintln!("reload times under load: {reload_times:?}");
}

/// routes/stateful_proxy.py: a record-routed call from a SIPp caller to a SIPp callee; the ACK
/// and BYE come back through ksrd (loose_route), the AVP set for the INVITE is seen by its reply
/// route but not by the BYE.
#[test]
fn record_routed_calls_through_the_stateful_proxy_route() {
    let _g = serial();
    let dir = TempDir::new("sipp");
    let uas_port = free_port();
    let k = Ksrd::start_with_route_file(
        "routes/stateful_proxy.py",
        &format!("[define]\nPROXY_TARGET = \"sip:127.0.0.1:{uas_port}\"\n"),
    );
    let uas = sipp(
        dir.path(),
        "uas",
        uas_port,
        &[
            "-sf",
            &scenario("call_rr_uas.xml"),
            "-m",
            "5",
            "-timeout",
            "40s",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(10), || udp_port_bound(uas_port)),
        "SIPp UAS did not bind {uas_port}"
    );
    let uac = sipp(
        dir.path(),
        "uac",
        free_port(),
        &[
            &format!("127.0.0.1:{}", k.port),
            "-sf",
            &scenario("call_rr_uac.xml"),
            "-s",
            "bob",
            "-m",
            "5",
            "-r",
            "5",
            "-timeout",
            "30s",
        ],
    );
    let (code, report) = uac.wait(Duration::from_secs(45));
    assert_eq!(code, 0, "{report}\nksrd log:\n{}", k.log_tail(30));
    let (code, report) = uas.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{report}");
    // Every BYE was loose-routed by ksrd (so the callee's Record-Route worked) and saw no AVP.
    assert_eq!(k.log_count("in-dialog BYE, note=None"), 5, "{}", k.log());
    assert!(
        k.log_count("reply 200, note=I remember") >= 5,
        "{}",
        k.log()
    );
    assert_eq!(
        k.log_count("note=I remember"),
        k.log_count("reply "),
        "{}",
        k.log()
    );
}
