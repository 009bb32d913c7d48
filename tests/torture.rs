//! RFC 4475 and RFC 5118 torture messages, sent over UDP as they are (bytes from tests/data) to one
//! shared ksrd running routes/default.py. Expectations follow tests/data/*/INDEX.md.
//!
//! Where replies go: a stateless reply goes to the source IP (`received`) and the port of the top
//! Via's sent-by (default 5060), or the source port with `rport` (RFC 3261 §18.2.2, RFC 3581).
//! The torture Vias name hosts like 192.0.2.15 without a port, so every test sends from its own
//! loopback address 127.77.P.N (P from the pid, N unique per test), from the Via's port, and also
//! listens on that address at 5060 and 5061 (TLS default), over UDP and TCP, so it sees the reply
//! wherever an RFC-conforming server sends it.
mod common;
use common::*;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static SERVER: OnceLock<Ksrd> = OnceLock::new();

fn server() -> &'static Ksrd {
    shared(&SERVER, || {
        Ksrd::start_with_route_file("routes/default.py", "")
    })
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The RFC's answer, exactly this status code.
    Code(u16),
    /// MUST/SHOULD accept: a final reply (whatever default.py decides: 403/404/200/…) that is not
    /// 400 (parse error) or 500 (crash in the route), and that echoes the request's CSeq.
    Accept,
    /// The RFC allows either rejecting (400) or accepting; any final reply but 500. The reason is
    /// the text after the file name in the test.
    Either(&'static str),
    /// A response: never answered (dropped), and ksrd still answers OPTIONS afterwards.
    NoReply,
}
use Expect::*;

static NEXT: AtomicU8 = AtomicU8::new(1);

/// One test's own loopback address 127.77.P.N.
fn own_ip() -> Ipv4Addr {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    assert!(n < 250);
    Ipv4Addr::new(127, 77, (std::process::id() % 250) as u8, n)
}

struct Catcher {
    ip: Ipv4Addr,
    sender: UdpSocket,
    udps: Vec<UdpSocket>,
    tcps: Vec<TcpListener>,
    conns: Vec<(TcpStream, Vec<u8>)>,
}

impl Catcher {
    fn new(via_port: u16) -> Catcher {
        let ip = own_ip();
        let mut ports = vec![via_port, 5060, 5061];
        ports.dedup();
        ports.sort();
        ports.dedup();
        let mut udps = Vec::new();
        let mut tcps = Vec::new();
        let mut sender = None;
        for p in ports {
            let u = UdpSocket::bind((ip, p)).unwrap_or_else(|e| {
                panic!("bind udp {ip}:{p}: {e} (something listening on 0.0.0.0:{p}?)")
            });
            u.set_nonblocking(true).unwrap();
            if p == via_port {
                sender = Some(u.try_clone().unwrap());
            }
            udps.push(u);
            if let Ok(t) = TcpListener::bind((ip, p)) {
                t.set_nonblocking(true).unwrap();
                tcps.push(t);
            }
        }
        Catcher {
            ip,
            sender: sender.unwrap(),
            udps,
            tcps,
            conns: Vec::new(),
        }
    }

    fn send(&self, k: &Ksrd, bytes: &[u8]) {
        self.sender.send_to(bytes, k.sip_addr()).expect("send");
    }

    /// Every SIP message that reached us until `until` returns true for the list or the deadline.
    fn collect(
        &mut self,
        timeout: Duration,
        mut until: impl FnMut(&[SipMsg]) -> bool,
    ) -> Vec<SipMsg> {
        let end = Instant::now() + timeout;
        let mut got: Vec<SipMsg> = Vec::new();
        let mut buf = vec![0u8; 65536];
        while Instant::now() < end && !until(&got) {
            let mut any = false;
            for u in &self.udps {
                while let Ok((n, _)) = u.recv_from(&mut buf) {
                    any = true;
                    match SipMsg::parse(&buf[..n]) {
                        Some(m) => got.push(m),
                        None => panic!(
                            "unparseable datagram from ksrd: {:?}",
                            String::from_utf8_lossy(&buf[..n])
                        ),
                    }
                }
            }
            for t in &self.tcps {
                while let Ok((s, _)) = t.accept() {
                    s.set_nonblocking(true).unwrap();
                    self.conns.push((s, Vec::new()));
                }
            }
            for (s, pending) in &mut self.conns {
                if let Ok(n) = s.read(&mut buf) {
                    pending.extend_from_slice(&buf[..n]);
                    any = true;
                }
                // TCP-delivered replies: parse what is complete (framing by Content-Length)
                while let Some((he, sep)) = find_header_end(pending) {
                    let head = String::from_utf8_lossy(&pending[..he]).to_string();
                    let cl = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(n, _)| long_name(n.trim()) == "content-length")
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if pending.len() < he + sep + cl {
                        break;
                    }
                    let m: Vec<u8> = pending.drain(..he + sep + cl).collect();
                    got.push(SipMsg::parse(&m).unwrap());
                }
            }
            if !any {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        got
    }

    /// An OPTIONS to ksrd from our sender socket (rport), and its reply.
    fn probe_options(&mut self, k: &Ksrd) -> (String, Vec<SipMsg>) {
        let from = self.sender.local_addr().unwrap();
        let req = options(k.port, from);
        let cid = req.get("Call-ID").unwrap().to_string();
        self.send(k, &req.build());
        let c2 = cid.clone();
        let got = self.collect(REPLY_TIMEOUT, move |g| {
            g.iter()
                .any(|m| m.header("call-id") == Some(c2.as_str()) && m.code >= 200)
        });
        (cid, got)
    }
}

fn cseq_of(raw: &[u8]) -> Option<String> {
    // some files end without the empty line closing the header section: close it to read them
    let m = SipMsg::parse(raw)
        .or_else(|| SipMsg::parse(&[raw, b"\r\n"].concat()))
        .or_else(|| SipMsg::parse(&[raw, b"\n"].concat()))?;
    m.header("cseq")
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn run(name: &str, bytes: &[u8], via_port: u16, expect: Expect) {
    let k = server();
    let mut c = Catcher::new(via_port);
    c.send(k, bytes);
    let ip = c.ip;
    let ctx = |what: &str, got: &[SipMsg]| {
        let replies: Vec<String> = got.iter().map(|m| m.start_line.clone()).collect();
        format!(
            "{name} (sent from {ip}:{via_port}): {what}; received {replies:?}\nksrd log tail:\n{}",
            k.log_tail(15)
        )
    };
    match expect {
        NoReply => {
            // the response must be dropped: send an OPTIONS after it and require that its reply is
            // the only thing that comes back (workers = 1 handles them in order)
            let (cid, got) = c.probe_options(k);
            let settle = c.collect(Duration::from_millis(200), |_| false);
            let all: Vec<SipMsg> = got.into_iter().chain(settle).collect();
            let ok = all
                .iter()
                .any(|m| m.header("call-id") == Some(cid.as_str()) && m.code == 200);
            assert!(
                ok,
                "{}",
                ctx("ksrd did not answer OPTIONS after the response", &all)
            );
            let other: Vec<&SipMsg> = all
                .iter()
                .filter(|m| m.header("call-id") != Some(cid.as_str()))
                .collect();
            assert!(
                other.is_empty(),
                "{}",
                ctx("a response must be dropped, not answered/forwarded", &all)
            );
        }
        _ => {
            let got = c.collect(REPLY_TIMEOUT, |g| {
                g.iter().any(|m| m.is_response() && m.code >= 200)
            });
            let fin = got.iter().find(|m| m.is_response() && m.code >= 200);
            let fin = match fin {
                Some(f) => f.clone(),
                None => panic!("{}", ctx("no final reply", &got)),
            };
            match expect {
                Code(code) => {
                    assert_eq!(fin.code, code, "{}", ctx(&format!("expected {code}"), &got))
                }
                Accept => {
                    assert!(
                        fin.code != 400 && fin.code != 500,
                        "{}",
                        ctx("must be accepted (not 400/500)", &got)
                    );
                    let sent = cseq_of(bytes);
                    let back = fin
                        .header("cseq")
                        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "));
                    assert_eq!(
                        back,
                        sent,
                        "{}",
                        ctx("reply must echo the request's CSeq", &got)
                    );
                }
                Either(why) => assert!(
                    fin.code != 500,
                    "{}",
                    ctx(&format!("either 400 or accept ({why}); not 500"), &got)
                ),
                NoReply => unreachable!(),
            }
            // exactly one final reply (dblreq: the trailing octets must never become a second request)
            let settle = c.collect(Duration::from_millis(150), |_| false);
            let finals = got
                .iter()
                .chain(settle.iter())
                .filter(|m| m.is_response() && m.code >= 200)
                .count();
            assert_eq!(finals, 1, "{}", ctx("exactly one final reply", &got));
        }
    }
    assert!(
        k.is_running(),
        "ksrd died after {name}:\n{}",
        k.log_tail(30)
    );
    assert!(
        !k.log().contains("panicked"),
        "panic in ksrd log after {name}:\n{}",
        k.log_tail(30)
    );
}

macro_rules! torture {
    ($name:ident, $file:literal, $port:expr, $exp:expr) => {
        #[test]
        fn $name() {
            run(
                $file,
                include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $file)),
                $port,
                $exp,
            );
        }
    };
}

// ---- RFC 4475 3.1.1 valid: MUST (or SHOULD) accept
torture!(r4475_wsinv, "rfc4475/wsinv.dat", 5060, Accept);
torture!(r4475_intmeth, "rfc4475/intmeth.dat", 5060, Accept);
torture!(r4475_esc01, "rfc4475/esc01.dat", 5060, Accept);
torture!(r4475_escnull, "rfc4475/escnull.dat", 5060, Accept);
torture!(r4475_esc02, "rfc4475/esc02.dat", 5060, Accept);
torture!(r4475_lwsdisp, "rfc4475/lwsdisp.dat", 5060, Accept);
torture!(r4475_longreq, "rfc4475/longreq.dat", 5060, Accept);
torture!(r4475_dblreq, "rfc4475/dblreq.dat", 5060, Accept);
torture!(r4475_semiuri, "rfc4475/semiuri.dat", 5060, Accept);
torture!(r4475_transports, "rfc4475/transports.dat", 5060, Accept);
torture!(r4475_mpart01, "rfc4475/mpart01.dat", 5070, Accept);
torture!(r4475_unreason, "rfc4475/unreason.dat", 5060, NoReply);
torture!(r4475_noreason, "rfc4475/noreason.dat", 5060, NoReply);

// ---- RFC 4475 3.1.2 invalid
torture!(r4475_badinv01, "rfc4475/badinv01.dat", 5060, Code(400));
torture!(r4475_clerr, "rfc4475/clerr.dat", 5060, Code(400));
torture!(r4475_ncl, "rfc4475/ncl.dat", 5060, Code(400));
torture!(r4475_scalar02, "rfc4475/scalar02.dat", 5060, Code(400));
torture!(r4475_scalarlg, "rfc4475/scalarlg.dat", 5060, NoReply);
torture!(r4475_quotbal, "rfc4475/quotbal.dat", 5050, Code(400));
torture!(r4475_ltgtruri, "rfc4475/ltgtruri.dat", 5060, Code(400));
torture!(r4475_lwsruri, "rfc4475/lwsruri.dat", 5060, Code(400));
torture!(
    r4475_lwsstart,
    "rfc4475/lwsstart.dat",
    5060,
    Either("3.1.2.9: may reject; a liberal element may accept")
);
torture!(
    r4475_trws,
    "rfc4475/trws.dat",
    5060,
    Either("3.1.2.10: may reject; a liberal element may accept")
);
torture!(
    r4475_escruri,
    "rfc4475/escruri.dat",
    5060,
    Either("3.1.2.11: may 400; may ignore the escaped headers")
);
torture!(
    r4475_baddate,
    "rfc4475/baddate.dat",
    5060,
    Either("3.1.2.12: should not reject unless it uses Date")
);
torture!(
    r4475_regbadct,
    "rfc4475/regbadct.dat",
    5060,
    Either("3.1.2.13: 400 reasonable; may infer the <>")
);
torture!(
    r4475_badaspec,
    "rfc4475/badaspec.dat",
    5060,
    Either("3.1.2.14: 400 reasonable; may ignore the spaces")
);
torture!(
    r4475_baddn,
    "rfc4475/baddn.dat",
    5060,
    Either("3.1.2.15: 400 reasonable; lenient proxy must not propagate")
);
torture!(r4475_badvers, "rfc4475/badvers.dat", 5060, Code(505));
torture!(r4475_mismatch01, "rfc4475/mismatch01.dat", 5060, Code(400));
torture!(
    r4475_mismatch02,
    "rfc4475/mismatch02.dat",
    5060,
    Either("3.1.2.18: 501 preferred, 400 acceptable")
);
torture!(r4475_bigcode, "rfc4475/bigcode.dat", 5060, NoReply);

// ---- RFC 4475 3.2 transaction
torture!(
    r4475_badbranch,
    "rfc4475/badbranch.dat",
    5060,
    Either("3.2.1: 400, or RFC 2543 matching")
);

// ---- RFC 4475 3.3 application (a proxy: default.py)
torture!(r4475_insuf, "rfc4475/insuf.dat", 5060, Code(400));
torture!(r4475_unkscm, "rfc4475/unkscm.dat", 5060, Code(416));
torture!(
    r4475_novelsc,
    "rfc4475/novelsc.dat",
    5060,
    Either("3.3.3: 416 if the scheme is never acceptable, else 404")
);
torture!(r4475_unksm2, "rfc4475/unksm2.dat", 5060, Accept);
torture!(r4475_bext01, "rfc4475/bext01.dat", 5060, Code(420));
torture!(r4475_invut, "rfc4475/invut.dat", 5060, Accept);
torture!(r4475_regaut01, "rfc4475/regaut01.dat", 5060, Accept);
torture!(r4475_multi01, "rfc4475/multi01.dat", 5060, Code(400));
torture!(r4475_mcl01, "rfc4475/mcl01.dat", 5060, Code(400));
torture!(r4475_bcast, "rfc4475/bcast.dat", 5060, NoReply);
torture!(r4475_zeromf, "rfc4475/zeromf.dat", 5060, Code(483));
torture!(r4475_cparam01, "rfc4475/cparam01.dat", 5060, Accept);
torture!(r4475_cparam02, "rfc4475/cparam02.dat", 5060, Accept);
torture!(r4475_regescrt, "rfc4475/regescrt.dat", 5060, Accept);
torture!(
    r4475_sdp01,
    "rfc4475/sdp01.dat",
    5060,
    Either("3.3.15: 406 (or 400) at an endpoint; a proxy routes it")
);

// ---- RFC 4475 3.4 backward compatibility
torture!(r4475_inv2543, "rfc4475/inv2543.dat", 5060, Accept);

// ---- RFC 5118 (bare LF line endings, sent as they are)
torture!(r5118_ipv6_good, "rfc5118/ipv6-good.dat", 5060, Accept);
torture!(r5118_ipv6_bad, "rfc5118/ipv6-bad.dat", 5060, Code(400));
torture!(
    r5118_port_ambiguous,
    "rfc5118/port-ambiguous.dat",
    5060,
    Accept
);
torture!(
    r5118_port_unambiguous,
    "rfc5118/port-unambiguous.dat",
    5060,
    Accept
);
torture!(
    r5118_via_received_with_delim,
    "rfc5118/via-received-param-with-delim.dat",
    5060,
    Accept
);
torture!(
    r5118_via_received_no_delim,
    "rfc5118/via-received-param-no-delim.dat",
    5060,
    Accept
);
torture!(
    r5118_mult_ip_in_header,
    "rfc5118/mult-ip-in-header.dat",
    6050,
    Accept
);
torture!(
    r5118_ipv4_mapped_ipv6,
    "rfc5118/ipv4-mapped-ipv6.dat",
    19823,
    Accept
);
torture!(
    r5118_ipv6_bug_abnf_3_colons,
    "rfc5118/ipv6-bug-abnf-3-colons.dat",
    5060,
    Accept
);
torture!(
    r5118_ipv6_correct_abnf_2_colons,
    "rfc5118/ipv6-correct-abnf-2-colons.dat",
    5060,
    Accept
);
// Content-Length larger than the archived body: as sent that is a framing error over UDP (400) ...
torture!(
    r5118_ipv6_in_sdp_as_sent,
    "rfc5118/ipv6-in-sdp.dat",
    5060,
    Code(400)
);
torture!(
    r5118_mult_ip_in_sdp_as_sent,
    "rfc5118/mult-ip-in-sdp.dat",
    5060,
    Code(400)
);

/// ... and with Content-Length recomputed the message is accepted.
fn fixed_cl(bytes: &[u8]) -> Vec<u8> {
    let (he, sep) = find_header_end(bytes).expect("header end");
    let body = &bytes[he + sep..];
    let head = String::from_utf8_lossy(&bytes[..he]).to_string();
    let mut out = String::new();
    let mut replaced = false;
    for l in head.split('\n') {
        if l.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!("Content-Length: {}\n", body.len()));
            replaced = true;
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    assert!(replaced);
    let mut v = out.into_bytes();
    v.push(b'\n');
    v.extend_from_slice(body);
    v
}

#[test]
fn r5118_ipv6_in_sdp_fixed_content_length() {
    let b = fixed_cl(include_bytes!("data/rfc5118/ipv6-in-sdp.dat"));
    run(
        "rfc5118/ipv6-in-sdp.dat (Content-Length recomputed)",
        &b,
        5060,
        Accept,
    );
}

#[test]
fn r5118_mult_ip_in_sdp_fixed_content_length() {
    let b = fixed_cl(include_bytes!("data/rfc5118/mult-ip-in-sdp.dat"));
    run(
        "rfc5118/mult-ip-in-sdp.dat (Content-Length recomputed)",
        &b,
        5060,
        Accept,
    );
}

#[test]
fn every_data_file_has_a_test() {
    // keep this list in step with the directory: a new .dat file needs a test above
    let src = include_str!("torture.rs");
    for dir in ["rfc4475", "rfc5118"] {
        for e in std::fs::read_dir(repo_path(&format!("tests/data/{dir}"))).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().to_string();
            if n.ends_with(".dat") {
                let needle = format!("\"{dir}/{n}\"");
                assert!(
                    src.contains(&needle),
                    "no torture test for tests/data/{dir}/{n}"
                );
            }
        }
    }
}

#[test]
fn fixed_cl_helper_is_right() {
    let b = fixed_cl(b"MESSAGE sip:a@b SIP/2.0\nContent-Length: 99\n\nhello");
    assert_eq!(
        b,
        b"MESSAGE sip:a@b SIP/2.0\nContent-Length: 5\n\nhello".to_vec()
    );
}
