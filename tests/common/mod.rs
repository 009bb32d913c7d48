//! Test harness for the integration tests: starts the real `ksrd` binary on private ports with a
//! route script in a temp directory, and talks SIP (UDP/TCP) and JSON-RPC (HTTP and unix socket)
//! to it. std only (plus serde_json / socket2 / libc, which are normal dependencies of the crate).
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod digest;
pub mod mmdb;
pub mod netns;
pub mod pg;
pub mod sipp;

pub use serde_json::{json, Value};

/// Path of the binary under test.
pub const KSRD_BIN: &str = env!("CARGO_BIN_EXE_ksrd");
/// The binary to run: KSRD_TEST_BIN overrides the one cargo built (e.g. a release build).
pub fn ksrd_bin() -> String {
    std::env::var("KSRD_TEST_BIN").unwrap_or_else(|_| KSRD_BIN.to_string())
}
/// The checkout (for routes/default.py, routes/stateless_proxy.py, tests/sipp/…).
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// How long a single SIP reply may take before a test gives up.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on start-up (ready = answers OPTIONS, or RPC answers and the SIP port is bound).
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------------------------------------
// small utilities

/// Poll `cond` every 10 ms until it holds or `timeout` passes. Returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

static UNIQ: AtomicU32 = AtomicU32::new(0);

/// A unique token for branches, tags and Call-IDs.
pub fn uniq(prefix: &str) -> String {
    let n = UNIQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}x{n}x{t:x}", std::process::id())
}

/// A fresh RFC 3261 branch.
pub fn branch() -> String {
    uniq("z9hG4bK")
}

/// A temporary directory (std::env::temp_dir + pid + counter), removed on drop unless the thread
/// is panicking (then it is kept for diagnosis and its path printed) or KSRD_KEEP_TMP is set.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        static SWEEP: std::sync::Once = std::sync::Once::new();
        // dirs of shared (static, never dropped) servers of earlier runs: remove those whose
        // process is gone
        SWEEP.call_once(|| {
            if std::env::var_os("KSRD_KEEP_TMP").is_some() {
                return;
            }
            if let Ok(rd) = fs::read_dir(std::env::temp_dir()) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if !name.starts_with("ksrd-it-") {
                        continue;
                    }
                    let parts: Vec<&str> = name.rsplitn(3, '-').collect();
                    if let Some(pid) = parts.get(1).and_then(|p| p.parse::<u32>().ok()) {
                        if !Path::new(&format!("/proc/{pid}")).exists() {
                            let _ = fs::remove_dir_all(e.path());
                        }
                    }
                }
            }
        });
        loop {
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("ksrd-it-{tag}-{}-{n}", std::process::id()));
            match fs::create_dir(&p) {
                Ok(()) => return TempDir(p),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let _ = fs::remove_dir_all(&p);
                }
                Err(e) => panic!("cannot create temp dir {}: {e}", p.display()),
            }
        }
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("KSRD_KEEP_TMP").is_some() {
            eprintln!("(kept temp dir {})", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Write `content` to `path` atomically (tmp file + rename), like an editor saving.
pub fn write_atomic(path: &Path, content: &[u8]) {
    let tmp = path.with_extension(format!("tmp{}", UNIQ.fetch_add(1, Ordering::Relaxed)));
    fs::write(&tmp, content).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static S: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A port free for both UDP and TCP on 127.0.0.1, never handed out twice by this process.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let u = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let p = u.local_addr().unwrap().port();
        let t = TcpListener::bind(("127.0.0.1", p));
        drop(u);
        if t.is_ok() && handed_out().lock().unwrap().insert(p) {
            return p;
        }
    }
    panic!("no free UDP+TCP port found");
}

/// A port free for TCP on 127.0.0.1 (for the RPC listener).
pub fn free_tcp_port() -> u16 {
    for _ in 0..200 {
        let t = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let p = t.local_addr().unwrap().port();
        if handed_out().lock().unwrap().insert(p) {
            return p;
        }
    }
    panic!("no free TCP port found");
}

/// A bare `ksrd` command (for --check / --version tests).
pub fn ksrd_cmd() -> Command {
    Command::new(ksrd_bin())
}

/// `ksrd --check --config FILE`, run in the config's directory.
pub fn ksrd_check(config: &Path) -> Output {
    ksrd_cmd()
        .arg("--check")
        .arg("--config")
        .arg(config)
        .current_dir(config.parent().unwrap())
        .stdin(Stdio::null())
        .output()
        .expect("run ksrd --check")
}

/// `ksrd db init` on `db_url` (PostgreSQL schemas are made this way; SQLite files get theirs at
/// first start).
/// `ksrd --check` on a ksrd.toml of `body` (after a listen line) must fail naming `key` and
/// the file.
pub fn assert_config_error(body: &str, key: &str) {
    let dir = TempDir::new("cfg-err");
    let cfg = dir.path().join("ksrd.toml");
    fs::write(&cfg, format!("listen = [\"udp:127.0.0.1:0\"]\n{body}\n")).unwrap();
    let out = ksrd_check(&cfg);
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "accepted:\n{body}");
    assert!(
        err.contains(key) && err.contains("ksrd.toml"),
        "{body}: {err}"
    );
}

pub fn db_init(db_url: &str) {
    let dir = TempDir::new("dbinit");
    let cfg = dir.path().join("init.toml");
    fs::write(&cfg, format!("db_url = \"{db_url}\"\n")).unwrap();
    let out = ksrd_cmd()
        .arg("--config")
        .arg(&cfg)
        .args(["db", "init"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ksrd db init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Path of a file in the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(REPO).join(rel)
}

// ------------------------------------------------------------------------------------------------
// SIP messages: builder and parser

/// A request builder. `build()` adds Content-Length (unless `no_content_length()`).
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub ruri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub content_length: bool,
}

impl Req {
    /// A request with Via (rport, from `from`), Max-Forwards 70, From (tagged), To, Call-ID, CSeq.
    pub fn new(method: &str, ruri: &str, from: SocketAddr) -> Req {
        let b = branch();
        Req {
            method: method.into(),
            ruri: ruri.into(),
            headers: vec![
                ("Via".into(), format!("SIP/2.0/UDP {from};branch={b};rport")),
                ("Max-Forwards".into(), "70".into()),
                (
                    "From".into(),
                    format!("<sip:tester@{from}>;tag={}", uniq("t")),
                ),
                ("To".into(), format!("<{ruri}>")),
                ("Call-ID".into(), format!("{}@ksrd-tests", uniq("c"))),
                ("CSeq".into(), format!("1 {method}")),
            ],
            body: Vec::new(),
            content_length: true,
        }
    }
    /// The same request as a new transaction: a new top Via branch (same sent-by), CSeq `n`.
    pub fn next_transaction(self, cseq: u32) -> Req {
        let via = self.get("Via").unwrap_or("").to_string();
        let sent_by = via.split(';').next().unwrap_or("").to_string();
        let method = self.method.clone();
        self.set("Via", &format!("{sent_by};branch={};rport", branch()))
            .set("CSeq", &format!("{cseq} {method}"))
    }
    /// Replace (all instances of) a header, or append it.
    pub fn set(mut self, name: &str, value: &str) -> Req {
        let mut done = false;
        self.headers.retain_mut(|(n, v)| {
            if n.eq_ignore_ascii_case(name) {
                if done {
                    return false;
                }
                *v = value.to_string();
                done = true;
            }
            true
        });
        if !done {
            self.headers.push((name.into(), value.into()));
        }
        self
    }
    /// Append a header (keeps existing ones of the same name).
    pub fn add(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn remove(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }
    pub fn body(mut self, ctype: &str, body: &[u8]) -> Req {
        self.body = body.to_vec();
        self.set("Content-Type", ctype)
    }
    pub fn no_content_length(mut self) -> Req {
        self.content_length = false;
        self
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn branch(&self) -> String {
        let via = self.get("Via").unwrap_or("");
        param(via, "branch").unwrap_or_default()
    }
    pub fn build(&self) -> Vec<u8> {
        let mut out = format!("{} {} SIP/2.0\r\n", self.method, self.ruri).into_bytes();
        for (n, v) in &self.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        if self.content_length {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// OPTIONS to ksrd itself (R-URI without user) from `from` (Via has rport).
pub fn options(port: u16, from: SocketAddr) -> Req {
    Req::new("OPTIONS", &format!("sip:127.0.0.1:{port}"), from)
}

/// MESSAGE to `user` at ksrd.
pub fn message(port: u16, user: &str, from: SocketAddr, text: &[u8]) -> Req {
    Req::new("MESSAGE", &format!("sip:{user}@127.0.0.1:{port}"), from).body("text/plain", text)
}

/// MESSAGE to bob at ksrd whose body is Python code for test routes that `exec` their body.
pub fn code_message(port: u16, from: SocketAddr, code: &str) -> Req {
    Req::new("MESSAGE", &format!("sip:bob@127.0.0.1:{port}"), from)
        .body("application/x-python", code.as_bytes())
}

/// Value of `;name=value` in a header value (first occurrence), `Some("")` for a flag param.
pub fn param(hvalue: &str, name: &str) -> Option<String> {
    for part in hvalue.split(';').skip(1) {
        let part = part.trim();
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (part, ""),
        };
        if k.eq_ignore_ascii_case(name) {
            let v = v.split([',', ' ', '>']).next().unwrap_or("");
            return Some(v.to_string());
        }
    }
    None
}

/// Long form of a compact header name.
pub fn long_name(n: &str) -> String {
    let l = n.to_ascii_lowercase();
    match l.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "e" => "content-encoding",
        "k" => "supported",
        "s" => "subject",
        "o" => "event",
        "r" => "refer-to",
        "u" => "allow-events",
        "x" => "session-expires",
        "b" => "referred-by",
        "a" => "accept-contact",
        "j" => "reject-contact",
        "d" => "request-disposition",
        _ => return l,
    }
    .to_string()
}

/// A parsed SIP message (request or response). Header lookup is case-insensitive and treats
/// compact names as their long forms. Folded lines are unfolded.
#[derive(Clone, Debug)]
pub struct SipMsg {
    pub raw: Vec<u8>,
    pub start_line: String,
    /// Responses: status code; requests: 0.
    pub code: u16,
    /// Responses: reason phrase; requests: the method.
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SipMsg {
    pub fn parse(raw: &[u8]) -> Option<SipMsg> {
        let (head_end, sep_len) = find_header_end(raw)?;
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start_line = lines.next()?.to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for l in lines {
            if l.starts_with(' ') || l.starts_with('\t') {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(l.trim());
                }
                continue;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let (code, reason) = if let Some(rest) = start_line.strip_prefix("SIP/2.0 ") {
            let (c, r) = rest.split_once(' ').unwrap_or((rest, ""));
            (c.parse().ok()?, r.to_string())
        } else {
            (0, start_line.split(' ').next().unwrap_or("").to_string())
        };
        let body = raw[head_end + sep_len..].to_vec();
        Some(SipMsg {
            raw: raw.to_vec(),
            start_line,
            code,
            reason,
            headers,
            body,
        })
    }
    pub fn is_response(&self) -> bool {
        self.start_line.starts_with("SIP/2.0 ")
    }
    /// First value of a header (long or compact name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let want = long_name(name);
        self.headers
            .iter()
            .find(|(n, _)| long_name(n) == want)
            .map(|(_, v)| v.as_str())
    }
    /// All header lines with that name, in order (comma-separated values are not split).
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        let want = long_name(name);
        self.headers
            .iter()
            .filter(|(n, _)| long_name(n) == want)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// All Via values, split on commas, top first.
    pub fn vias(&self) -> Vec<String> {
        self.headers_all("via")
            .iter()
            .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }
    pub fn to_tag(&self) -> Option<String> {
        self.header("to").and_then(|t| param(t, "tag"))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// A response to `req` as a UAS builds it: all Via lines, From, To (+tag unless present), Call-ID,
/// CSeq copied; `extra` headers added; Content-Length 0.
pub fn make_response(
    req: &SipMsg,
    code: u16,
    reason: &str,
    to_tag: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers_all("via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    out.push_str(&format!("From: {}\r\n", req.header("from").unwrap_or("")));
    let to = req.header("to").unwrap_or("");
    if param(to, "tag").is_some() {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag={to_tag}\r\n"));
    }
    out.push_str(&format!(
        "Call-ID: {}\r\n",
        req.header("call-id").unwrap_or("")
    ));
    out.push_str(&format!("CSeq: {}\r\n", req.header("cseq").unwrap_or("")));
    for (n, v) in extra {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// Index of the end of the header block and the length of the separator (CRLFCRLF or LFLF).
pub fn find_header_end(raw: &[u8]) -> Option<(usize, usize)> {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = raw.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) if b < a => Some((b, 2)),
        (Some(a), _) => Some((a, 4)),
        (None, Some(b)) => Some((b, 2)),
        _ => None,
    }
}

/// Parse a datagram that must be a SIP response.
pub fn parse_response(raw: &[u8]) -> SipMsg {
    let m = SipMsg::parse(raw)
        .unwrap_or_else(|| panic!("not a SIP message: {:?}", String::from_utf8_lossy(raw)));
    assert!(m.is_response(), "expected a response, got: {}", m.text());
    m
}

// ------------------------------------------------------------------------------------------------
// UDP client

/// A UDP socket of the test on 127.0.0.1, aimed at ksrd.
pub struct UdpClient {
    pub sock: UdpSocket,
    pub target: SocketAddr,
}

impl UdpClient {
    pub fn new(target_port: u16) -> UdpClient {
        Self::bind("127.0.0.1:0", target_port)
    }
    pub fn bind(local: &str, target_port: u16) -> UdpClient {
        let sock = UdpSocket::bind(local).unwrap_or_else(|e| panic!("bind {local}: {e}"));
        UdpClient {
            sock,
            target: SocketAddr::from(([127, 0, 0, 1], target_port)),
        }
    }
    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }
    pub fn send(&self, msg: &[u8]) {
        self.sock.send_to(msg, self.target).expect("udp send");
    }
    /// Next datagram (from anyone) within `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let end = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return None
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // ICMP port unreachable from an earlier send: keep waiting
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                Err(e) => panic!("udp recv: {e}"),
            }
        }
    }
    /// Next final response (1xx skipped) within `timeout`.
    pub fn recv_final(&self, timeout: Duration) -> Option<SipMsg> {
        let end = Instant::now() + timeout;
        loop {
            let (d, _) = self.recv(end.saturating_duration_since(Instant::now()))?;
            if let Some(m) = SipMsg::parse(&d) {
                if m.is_response() && m.code >= 200 {
                    return Some(m);
                }
            }
        }
    }
    /// Next message with this Call-ID within `timeout`; others (e.g. ksrd's start-up probes
    /// forwarded by a proxy route) are skipped.
    pub fn recv_call(&self, call_id: &str, timeout: Duration) -> Option<SipMsg> {
        let end = Instant::now() + timeout;
        loop {
            let (d, _) = self.recv(end.saturating_duration_since(Instant::now()))?;
            if let Some(m) = SipMsg::parse(&d) {
                if m.header("call-id") == Some(call_id) {
                    return Some(m);
                }
            }
        }
    }
    /// Send and wait for the final response; panics after REPLY_TIMEOUT.
    pub fn request(&self, msg: &[u8]) -> SipMsg {
        self.send(msg);
        self.recv_final(REPLY_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "no final reply within {REPLY_TIMEOUT:?} to:\n{}",
                String::from_utf8_lossy(msg)
            )
        })
    }
    /// Send and expect no datagram at all within `quiet`.
    pub fn expect_silence(&self, quiet: Duration) {
        if let Some((d, from)) = self.recv(quiet) {
            panic!(
                "expected no reply, got from {from}:\n{}",
                String::from_utf8_lossy(&d)
            );
        }
    }
}

// ------------------------------------------------------------------------------------------------
// TCP framing

/// Read one SIP message from a stream (framed by Content-Length), with a deadline.
/// `pending` keeps bytes that belong to the next message.
pub fn read_sip_stream(
    s: &mut TcpStream,
    pending: &mut Vec<u8>,
    timeout: Duration,
) -> Option<SipMsg> {
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 65536];
    loop {
        // drop keepalive CRLFs in front
        while pending.starts_with(b"\r\n") {
            pending.drain(..2);
        }
        if let Some((he, sep)) = find_header_end(pending) {
            let head = String::from_utf8_lossy(&pending[..he]).to_string();
            let cl = head
                .split('\n')
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| long_name(n.trim()) == "content-length")
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let total = he + sep + cl;
            if pending.len() >= total {
                let msg: Vec<u8> = pending.drain(..total).collect();
                return SipMsg::parse(&msg);
            }
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// the server under test

/// Options for starting ksrd.
#[derive(Clone, Debug, Default)]
pub struct StartOpts {
    /// Route source written to `routes/r.py` in the temp dir (ignored when `route_file` is set).
    pub route_src: Option<String>,
    /// An existing route file (absolute path), used as is.
    pub route_file: Option<PathBuf>,
    /// TOML appended to the generated config. Top-level keys here replace the defaults
    /// (listen, alias, workers, db_url, on_exception); tables are appended.
    pub extra_toml: String,
    /// `[script] watch` (default true for route_src, false for a repo route_file).
    pub watch: Option<bool>,
    /// Don't wait for readiness (for start-up failure tests).
    pub no_wait: bool,
    /// Extra files (name, content) written into the routes directory before start (helper modules).
    pub files: Vec<(String, String)>,
    /// Run ksrd inside this network namespace (`ip netns exec`); readiness is probed from it.
    pub netns: Option<String>,
}

pub struct Ksrd {
    pub child: Child,
    pub dir: TempDir,
    /// SIP port (UDP and TCP).
    pub port: u16,
    pub rpc_port: u16,
    pub rpc_socket: PathBuf,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    route: PathBuf,
    netns: Option<String>,
}

impl Ksrd {
    /// Start ksrd with `route_py` as routes/r.py (watched) and `extra_toml` added to the config.
    pub fn start(route_py: &str, extra_toml: &str) -> Ksrd {
        Self::start_opts(StartOpts {
            route_src: Some(route_py.into()),
            extra_toml: extra_toml.into(),
            ..Default::default()
        })
    }

    /// Start ksrd with a route file of the repository, e.g. "routes/default.py".
    pub fn start_with_route_file(rel_or_abs: &str, extra_toml: &str) -> Ksrd {
        let p = Path::new(rel_or_abs);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            repo_path(rel_or_abs)
        };
        assert!(p.is_file(), "route file {} missing", p.display());
        Self::start_opts(StartOpts {
            route_file: Some(p),
            extra_toml: extra_toml.into(),
            ..Default::default()
        })
    }

    /// The ksrd.toml text the harness writes (exposed for config tests).
    pub fn config_text(
        port: u16,
        rpc_port: u16,
        dir: &Path,
        route: &str,
        watch: bool,
        extra: &str,
    ) -> String {
        let mut overridden = HashSet::new();
        for l in extra.lines() {
            let t = l.trim();
            if t.starts_with('[') {
                break;
            }
            if let Some((k, _)) = t.split_once('=') {
                overridden.insert(k.trim().to_string());
            }
        }
        let db = dir.join("ksrd.db");
        let defaults = [
            (
                "listen",
                format!("[\"udp:127.0.0.1:{port}\", \"tcp:127.0.0.1:{port}\"]"),
            ),
            ("alias", "[\"localhost\"]".to_string()),
            ("workers", "1".to_string()),
            ("db_url", format!("\"sqlite://{}\"", db.display())),
            ("on_exception", "\"reply\"".to_string()),
        ];
        let mut t = String::new();
        for (k, v) in defaults {
            if !overridden.contains(k) {
                t.push_str(&format!("{k} = {v}\n"));
            }
        }
        // extra first: its top-level keys must come before any table header
        t.push_str(extra);
        if !extra.ends_with('\n') {
            t.push('\n');
        }
        t.push_str(&format!(
            "\n[script]\nfile = \"{route}\"\nwatch = {watch}\n\n[rpc]\nlisten = \"127.0.0.1:{rpc_port}\"\nsocket = \"ksrd_rpc.sock\"\n\n[log]\nlevel = \"info\"\n"
        ));
        t
    }

    pub fn start_opts(o: StartOpts) -> Ksrd {
        // A port picked free can be taken (e.g. as the ephemeral port of a database connection)
        // before ksrd binds it: start again on other ports when that is why it exited.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let k = Self::spawn(&o);
            if o.no_wait {
                return k;
            }
            match k.try_ready() {
                Ok(()) => return k,
                Err(e) if attempt < 3 && k.log().contains("cannot listen") => {
                    eprintln!("ksrd could not bind its ports, starting again: {e}");
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn spawn(o: &StartOpts) -> Ksrd {
        let dir = TempDir::new("ksrd");
        fs::create_dir_all(dir.path().join("routes")).unwrap();
        let (route, route_cfg, default_watch) = match (&o.route_file, &o.route_src) {
            (Some(f), _) => (f.clone(), f.display().to_string(), false),
            (None, src) => {
                let r = dir.path().join("routes/r.py");
                fs::write(&r, src.as_deref().unwrap_or(DEFAULT_TEST_ROUTE)).unwrap();
                (r, "routes/r.py".to_string(), true)
            }
        };
        for (name, content) in &o.files {
            fs::write(route.parent().unwrap().join(name), content).unwrap();
        }
        let port = free_port();
        let rpc_port = free_tcp_port();
        let config_path = dir.path().join("ksrd.toml");
        let cfg = Self::config_text(
            port,
            rpc_port,
            dir.path(),
            &route_cfg,
            o.watch.unwrap_or(default_watch),
            // "{port}" in the extra config is the SIP port picked here (netns tests list it).
            &o.extra_toml.replace("{port}", &port.to_string()),
        );
        fs::write(&config_path, cfg).unwrap();
        let log_path = dir.path().join("ksrd.log");
        let log = fs::File::create(&log_path).unwrap();
        let mut cmd = match &o.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, &ksrd_bin()]);
                c
            }
            None => Command::new(ksrd_bin()),
        };
        // if the test process dies, take ksrd with it (signal fires when the spawning thread ends:
        // shared servers are spawned from a thread that never ends, see `shared`)
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", ksrd_bin()));
        let k = Ksrd {
            child,
            rpc_socket: dir.path().join("ksrd_rpc.sock"),
            dir,
            port,
            rpc_port,
            config_path,
            log_path,
            route,
            netns: o.netns.clone(),
        };
        k
    }

    /// Wait until ksrd answers an OPTIONS (any final reply), or — for routes that never answer
    /// OPTIONS — until RPC `core.version` answers and the SIP UDP port is bound. Bounded by
    /// START_TIMEOUT; panics with the log when ksrd exits or never gets ready.
    pub fn wait_ready(&self) {
        if let Err(e) = self.try_ready() {
            panic!("{e}");
        }
    }

    /// [`Ksrd::wait_ready`], returning what went wrong instead of panicking.
    pub fn try_ready(&self) -> Result<(), String> {
        if let Some(ns) = self.netns.clone() {
            // The probe must come from inside the namespace: a thread of our own moves there.
            return std::thread::scope(|s| {
                s.spawn(|| {
                    netns::enter(&ns);
                    self.probe_ready(false)
                })
                .join()
                .unwrap_or_else(|_| Err("readiness probe panicked".into()))
            });
        }
        self.probe_ready(true)
    }

    fn probe_ready(&self, rpc: bool) -> Result<(), String> {
        let end = Instant::now() + START_TIMEOUT;
        let c = UdpClient::new(self.port);
        while Instant::now() < end {
            if let Some(st) = self.exited() {
                return Err(format!(
                    "ksrd exited during start-up ({st}); log:\n{}",
                    self.log()
                ));
            }
            c.send(&options(self.port, c.addr()).build());
            if c.recv_final(Duration::from_millis(150)).is_some() {
                return Ok(());
            }
            let bound = rpc && UdpSocket::bind(("127.0.0.1", self.port)).is_err();
            if bound {
                if let Ok(v) = self.try_rpc("core.version", json!([])) {
                    if v.get("result").is_some() {
                        return Ok(());
                    }
                }
            }
        }
        Err(format!(
            "ksrd not ready within {START_TIMEOUT:?}; log:\n{}",
            self.log()
        ))
    }

    /// Some(exit status text) when the process has exited.
    pub fn exited(&self) -> Option<String> {
        // Child::try_wait needs &mut; use waitpid(WNOHANG) semantics through /proc instead.
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        let state = stat
            .rsplit_once(") ")
            .map(|(_, r)| r.chars().next().unwrap_or('?'))?;
        if state == 'Z' || state == 'X' {
            Some(format!("state {state}"))
        } else {
            None
        }
    }
    pub fn is_running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.child.id())).exists() && self.exited().is_none()
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    /// A new UDP client socket aimed at ksrd.
    pub fn udp(&self) -> UdpClient {
        UdpClient::new(self.port)
    }
    /// A raw UDP socket on 127.0.0.1 (not connected).
    pub fn raw_udp(&self) -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").unwrap()
    }
    /// Send `msg` from a fresh socket and return the final reply's bytes (panics on timeout).
    /// The message must make ksrd answer that socket: its top Via needs `;rport`.
    pub fn udp_request(&self, msg: &[u8]) -> Vec<u8> {
        self.udp().request(msg).raw
    }
    /// OPTIONS from a fresh socket; the final reply.
    pub fn options(&self) -> SipMsg {
        let c = self.udp();
        c.request(&options(self.port, c.addr()).build())
    }
    pub fn tcp_connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.sip_addr()).expect("tcp connect to ksrd");
        s.set_nodelay(true).ok();
        s
    }

    // ---- RPC

    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let body =
            json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
        self.try_rpc_raw(body.as_bytes())
    }
    /// JSON-RPC over HTTP; the whole response document.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params)
            .unwrap_or_else(|e| panic!("rpc {method}: {e}; log:\n{}", self.log_tail(30)))
    }
    /// POST raw bytes to the RPC listener; the parsed JSON response.
    pub fn rpc_raw(&self, body: &[u8]) -> Value {
        self.try_rpc_raw(body)
            .unwrap_or_else(|e| panic!("rpc: {e}; log:\n{}", self.log_tail(30)))
    }
    pub fn try_rpc_raw(&self, body: &[u8]) -> Result<Value, String> {
        let (status, resp) = http_post(self.rpc_port, "/RPC", body)?;
        serde_json::from_slice(&resp).map_err(|e| {
            format!(
                "HTTP {status}, body not JSON ({e}): {:?}",
                String::from_utf8_lossy(&resp)
            )
        })
    }
    /// JSON-RPC over the unix socket: write one document, read one document (+ "\n").
    pub fn rpc_unix(&self, method: &str, params: Value) -> Value {
        let body =
            json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
        self.rpc_unix_raw(body.as_bytes())
    }
    pub fn rpc_unix_raw(&self, body: &[u8]) -> Value {
        let mut s = UnixStream::connect(&self.rpc_socket)
            .unwrap_or_else(|e| panic!("connect {}: {e}", self.rpc_socket.display()));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if out.ends_with(b"\n") && serde_json::from_slice::<Value>(&out).is_ok() {
                        break;
                    }
                }
                Err(e) => panic!(
                    "read from rpc socket: {e}; got so far {:?}",
                    String::from_utf8_lossy(&out)
                ),
            }
        }
        serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!(
                "rpc socket reply not JSON ({e}): {:?}",
                String::from_utf8_lossy(&out)
            )
        })
    }

    // ---- log and files

    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }
    pub fn log_tail(&self, n: usize) -> String {
        let l = self.log();
        let lines: Vec<&str> = l.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
    /// Poll the log until it contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }
    /// Number of occurrences of `needle` in the log.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }
    pub fn route_path(&self) -> &Path {
        &self.route
    }
    pub fn routes_dir(&self) -> PathBuf {
        self.route.parent().unwrap().to_path_buf()
    }
    /// Replace the route file atomically (tmp + rename).
    pub fn rewrite_route(&self, src: &str) {
        write_atomic(&self.route, src.as_bytes());
    }
    /// Write a file next to the route (e.g. a helper module) atomically.
    pub fn write_route_sibling(&self, name: &str, src: &str) {
        write_atomic(&self.routes_dir().join(name), src.as_bytes());
    }
}

impl Ksrd {
    /// Stop ksrd as an operator does (SIGTERM) and wait for it to exit (panics after 20 s);
    /// its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return st.code(),
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
                r => panic!("ksrd did not stop on SIGTERM: {r:?}\n{}", self.log_tail(30)),
            }
        }
    }
}

impl Drop for Ksrd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- ksrd log ({}) tail ----\n{}\n----",
                self.log_path.display(),
                self.log_tail(60)
            );
        }
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            // Already reaped (terminate): its pid may belong to another process by now.
            return;
        }
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(3);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
    }
}

/// A ksrd shared by all tests of one test binary (tests run in parallel threads). It is started
/// from a thread that stays parked for the life of the process, so PR_SET_PDEATHSIG kills ksrd
/// when the test process exits (statics are never dropped).
pub fn shared(cell: &'static OnceLock<Ksrd>, init: fn() -> Ksrd) -> &'static Ksrd {
    cell.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(init);
            let _ = tx.send(r);
            loop {
                std::thread::park();
            }
        });
        match rx.recv().expect("shared ksrd starter thread") {
            Ok(k) => k,
            Err(e) => std::panic::resume_unwind(e),
        }
    })
}

/// A route that answers OPTIONS 200 and everything else 404, used when no source is given.
pub const DEFAULT_TEST_ROUTE: &str = r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "OK")
            return 1
        KSR.sl.sl_send_reply(404, "Not here")
        return 1
"#;

/// A KEMI route file whose request route answers OPTIONS `200 <reason>` and other requests 404.
pub fn route_options_reason(reason: &str) -> String {
    format!(
        r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "{reason}")
            return 1
        KSR.sl.sl_send_reply(404, "Not here")
        return 1
"#
    )
}

// ------------------------------------------------------------------------------------------------
// HTTP

/// Minimal HTTP/1.1 POST on 127.0.0.1:port; returns (status, body). Handles Content-Length,
/// chunked and read-to-close bodies.
pub fn http_post(port: u16, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut s =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect :{port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let mut need: Option<usize> = None;
    loop {
        if let Some(n) = need {
            if raw.len() >= n {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if need.is_none() {
                    if let Some(he) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..he]).to_ascii_lowercase();
                        if let Some(cl) = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                        {
                            need = Some(he + 4 + cl);
                        }
                    }
                }
            }
            Err(e) => {
                if raw.is_empty() {
                    return Err(format!("read: {e}"));
                }
                break;
            }
        }
    }
    let he = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header end in {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..he]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    let mut body = raw[he + 4..].to_vec();
    if let Some(n) = need {
        body.truncate(n - he - 4);
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..p])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        b = &b[p + 2..];
        if size == 0 || b.len() < size {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out
}

// ------------------------------------------------------------------------------------------------
// SIPp

/// Path of the sipp binary; panics with a clear message when missing.
pub fn sipp_bin() -> String {
    for p in ["/usr/bin/sipp", "/usr/local/bin/sipp"] {
        if Path::new(p).exists() {
            return p.to_string();
        }
    }
    if Command::new("sipp").arg("-v").output().is_ok() {
        return "sipp".into();
    }
    panic!("sipp not found: install Debian package sip-tester (scripts/install.sh does)");
}

// ------------------------------------------------------------------------------------------------
// SIP peers for transaction tests: a UAS (or UAC) stand-in on its own UDP port

/// Where a response to a request whose top Via is `via` goes (RFC 3261 §18.2.2): `received` /
/// `rport` when present, else the sent-by host:port (5060 by default). None for a host name.
pub fn via_dest(via: &str) -> Option<SocketAddr> {
    let sent_by = via.split_whitespace().nth(1)?.split(';').next()?;
    let (host, port) = match sent_by.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse::<u16>().ok()?),
        None => (sent_by.to_string(), 5060),
    };
    let host = param(via, "received")
        .filter(|r| !r.is_empty())
        .unwrap_or(host);
    let port = param(via, "rport")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(port);
    format!("{host}:{port}").parse().ok()
}

/// A SIP endpoint of the test on 127.0.0.1 (a UAS behind ksrd, or a caller): receives requests
/// and responses, answers requests to their top Via with its own To tag.
pub struct SipPeer {
    pub sock: UdpSocket,
    /// To tag of the responses `reply` builds.
    pub tag: String,
}

impl Default for SipPeer {
    fn default() -> Self {
        Self::new()
    }
}

impl SipPeer {
    /// A peer on a free port of 127.0.0.1.
    pub fn new() -> SipPeer {
        for _ in 0..50 {
            if let Ok(sock) = UdpSocket::bind(("127.0.0.1", free_port())) {
                return SipPeer {
                    sock,
                    tag: uniq("peer"),
                };
            }
        }
        panic!("no UDP port for a SIP peer");
    }
    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }
    pub fn port(&self) -> u16 {
        self.addr().port()
    }
    /// `sip:127.0.0.1:PORT`, a URI for this peer.
    pub fn uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.port())
    }
    pub fn send_to(&self, data: &[u8], to: SocketAddr) {
        self.sock.send_to(data, to).expect("udp send");
    }
    /// Next SIP message (with its source) within `timeout`; datagrams that do not parse as SIP
    /// (keepalives) are skipped.
    pub fn recv_msg(&self, timeout: Duration) -> Option<(SipMsg, SocketAddr)> {
        let end = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if let Some(m) = SipMsg::parse(&buf[..n]) {
                        return Some((m, from));
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return None
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::Interrupted
                        || e.kind() == std::io::ErrorKind::ConnectionRefused =>
                {
                    continue
                }
                Err(e) => panic!("udp recv: {e}"),
            }
        }
    }
    /// Next request within `timeout`; panics when a response comes first.
    pub fn recv_request(&self, timeout: Duration) -> Option<SipMsg> {
        let (m, from) = self.recv_msg(timeout)?;
        assert!(
            !m.is_response(),
            "peer {} expected a request, got from {from}:\n{}",
            self.addr(),
            m.text()
        );
        Some(m)
    }
    /// Next request with this method within `timeout`; other requests (e.g. retransmissions of
    /// the INVITE while waiting for its CANCEL) are skipped, responses panic.
    pub fn recv_method(&self, method: &str, timeout: Duration) -> Option<SipMsg> {
        let end = Instant::now() + timeout;
        loop {
            let m = self.recv_request(end.saturating_duration_since(Instant::now()))?;
            if m.reason == method {
                return Some(m);
            }
        }
    }
    /// Next response within `timeout`; panics when a request comes first.
    pub fn recv_response(&self, timeout: Duration) -> Option<SipMsg> {
        let (m, from) = self.recv_msg(timeout)?;
        assert!(
            m.is_response(),
            "peer {} expected a response, got from {from}:\n{}",
            self.addr(),
            m.text()
        );
        Some(m)
    }
    /// Next final (>= 200) response within `timeout`; provisional ones are skipped.
    pub fn recv_final(&self, timeout: Duration) -> Option<SipMsg> {
        let end = Instant::now() + timeout;
        loop {
            let m = self.recv_response(end.saturating_duration_since(Instant::now()))?;
            if m.code >= 200 {
                return Some(m);
            }
        }
    }
    /// Every SIP message that arrives until nothing has come for `quiet`, bounded by `limit`.
    pub fn drain(&self, quiet: Duration, limit: Duration) -> Vec<SipMsg> {
        let end = Instant::now() + limit;
        let mut out = Vec::new();
        while Instant::now() < end {
            let wait = quiet.min(end.saturating_duration_since(Instant::now()));
            match self.recv_msg(wait) {
                Some((m, _)) => out.push(m),
                None => break,
            }
        }
        out
    }
    /// Panics if any SIP message arrives within `quiet`.
    pub fn expect_silence(&self, quiet: Duration) {
        if let Some((m, from)) = self.recv_msg(quiet) {
            panic!(
                "peer {} expected nothing, got from {from}:\n{}",
                self.addr(),
                m.text()
            );
        }
    }
    /// Answer `req` to its top Via (Vias, From, To + this peer's tag, Call-ID, CSeq copied;
    /// `extra` headers added). Returns the bytes sent.
    pub fn reply(&self, req: &SipMsg, code: u16, reason: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let tag = self.tag.clone();
        self.reply_tagged(req, code, reason, &tag, extra)
    }
    /// `reply` with an explicit To tag.
    pub fn reply_tagged(
        &self,
        req: &SipMsg,
        code: u16,
        reason: &str,
        to_tag: &str,
        extra: &[(&str, &str)],
    ) -> Vec<u8> {
        let vias = req.vias();
        let top = vias.first().expect("request has a Via");
        let dest = via_dest(top).unwrap_or_else(|| panic!("cannot answer Via {top}"));
        let resp = make_response(req, code, reason, to_tag, extra);
        self.send_to(&resp, dest);
        resp
    }
}

/// Branch parameter of the top Via of a received message.
pub fn top_branch(m: &SipMsg) -> String {
    m.vias()
        .first()
        .and_then(|v| param(v, "branch"))
        .unwrap_or_default()
}

/// Number in the CSeq header and its method.
pub fn cseq(m: &SipMsg) -> (u32, String) {
    let c = m.header("cseq").unwrap_or("");
    let mut it = c.split_whitespace();
    let n = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    (n, it.next().unwrap_or("").to_string())
}

impl Req {
    /// An INVITE to `ruri` from `from` (Via with rport), with Contact and a small SDP body.
    pub fn invite(ruri: &str, from: SocketAddr) -> Req {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\n",
            from.port()
        );
        Req::new("INVITE", ruri, from)
            .set("Contact", &format!("<sip:caller@{from}>"))
            .body("application/sdp", sdp.as_bytes())
    }
    /// The CANCEL for this request (RFC 3261 §9.1): same Request-URI, top Via, From, To,
    /// Call-ID and CSeq number.
    pub fn cancel(&self) -> Req {
        let mut c = Req {
            method: "CANCEL".into(),
            ruri: self.ruri.clone(),
            headers: Vec::new(),
            body: Vec::new(),
            content_length: true,
        };
        for n in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
            if let Some(v) = self.get(n) {
                c.headers.push((n.into(), v.into()));
            }
        }
        let num = self.get("CSeq").and_then(|v| v.split_whitespace().next());
        c.headers
            .push(("CSeq".into(), format!("{} CANCEL", num.unwrap_or("1"))));
        c
    }
    /// The ACK for a non-2xx final response to this INVITE (RFC 3261 §17.1.1.3): same branch,
    /// To of the response, CSeq number with method ACK.
    pub fn ack_non2xx(&self, resp: &SipMsg) -> Req {
        let mut a = self.cancel();
        a.method = "ACK".into();
        a = a.set("To", resp.header("to").unwrap_or(""));
        let num = self.get("CSeq").and_then(|v| v.split_whitespace().next());
        a.set("CSeq", &format!("{} ACK", num.unwrap_or("1")))
    }
    /// A request inside the dialog a 2xx to this INVITE set up (ACK or BYE): new branch, To
    /// with the response's tag, CSeq `num method`.
    pub fn in_dialog(&self, method: &str, num: u32, resp: &SipMsg, from: SocketAddr) -> Req {
        let mut r = Req::new(method, &self.ruri, from);
        for n in ["From", "Call-ID"] {
            if let Some(v) = self.get(n) {
                r = r.set(n, v);
            }
        }
        r.set("To", resp.header("to").unwrap_or(""))
            .set("CSeq", &format!("{num} {method}"))
    }
}

/// Value of a statistic from RPC `stats.get_statistics` (`"name = value"` lines).
pub fn ksrd_stat(k: &Ksrd, name: &str) -> Option<u64> {
    let v = k.try_rpc("stats.get_statistics", json!(["all"])).ok()?;
    v.get("result")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|s| {
            let (n, v) = s.split_once(" = ")?;
            (n.trim() == name).then(|| v.trim().parse().ok()).flatten()
        })
}
