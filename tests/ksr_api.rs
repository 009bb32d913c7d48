//! The KSR API as route scripts see it, driven through the real binary over UDP: exact names,
//! return values and Python types (int vs bool vs None), as Kamailio's KEMI (kemi-spec.md §1.3-§1.6,
//! §2.1-§2.3, §3.7-§3.8, §3.14; Kamailio's own source where the spec is silent).
//!
//! Most tests use one shared ksrd whose request route runs the Python code carried in the request
//! (body with Content-Type application/x-python, or a one-line `X-Code` header) and reports values
//! with `R(name, value)`: a reply header `X-R-<name>: repr(value)` added by
//! `KSR.hdr.append_to_reply`, then `KSR.sl.sl_send_reply(200, "OK")` unless the code set `NOREPLY`.
//! Forwarding tests aim the request at a UDP socket the test owns and check the bytes that arrive.
mod common;
use common::*;
use std::net::UdpSocket;
use std::sync::OnceLock;
use std::time::Duration;

const ROUTE: &str = r#"import KSR
import sys
import textwrap

# state shared by the messages of this worker (tests store msg objects here)
G = {}
RANKS = []

def R(name, value):
    return KSR.hdr.append_to_reply("X-R-%s: %s\r\n" % (name, repr(value)))

def mod_init():
    return kamailio()

class kamailio:
    def child_init(self, rank):
        RANKS.append(rank)
        return 0

    def ksr_request_route(self, msg):
        cid = KSR.pv.gete("$ci")
        KSR.info("ROUTE-RUN " + cid)
        code = KSR.hdr.get("X-Code")
        if code is None and KSR.hdr.get("Content-Type") == "application/x-python":
            code = textwrap.dedent(KSR.pv.get("$rb"))
        if code is None:
            KSR.sl.sl_send_reply(200, "OK")
            return 1
        env = {"KSR": KSR, "msg": msg, "R": R, "G": G, "RANKS": RANKS, "NOREPLY": False, "sys": sys}
        exec(code, env)
        if not env["NOREPLY"]:
            KSR.sl.sl_send_reply(200, "OK")
        return 1

    def ksr_reply_route(self, msg):
        cid = KSR.pv.gete("$ci")
        KSR.info("REPLY-ROUTE " + cid)
        if KSR.hdr.is_present("X-Drop-Reply") > 0:
            KSR.info("REPLY-DROPPED " + cid)
            KSR.set_drop()
            return 1
        if KSR.hdr.is_present("X-Inspect") > 0:
            vals = [
                ("rs", KSR.pv.get("$rs")),
                ("rr", KSR.pv.get("$rr")),
                ("rm", KSR.pv.get("$rm")),
                ("ru", KSR.pv.get("$ru")),
                ("rUser", KSR.pv.get("$rU")),
                ("ou", KSR.pv.get("$ou")),
                ("tt", KSR.pv.get("$tt")),
                ("sp_is_int", type(KSR.pv.get("$sp")) is int),
                ("type", msg.Type),
                ("status", msg.Status),
                ("method", msg.Method),
                ("ruri", msg.RURI),
                ("is_reply", KSR.siputils.is_reply()),
                ("is_request", KSR.siputils.is_request()),
                ("kx_status", KSR.kx.get_status()),
                ("mi_M", KSR.is_method_in("M")),
                ("mi_I", KSR.is_method_in("I")),
                ("is_MESSAGE", KSR.is_MESSAGE()),
                ("hdr", KSR.hdr.get("X-Inspect")),
            ]
            for name, v in vals:
                KSR.hdr.append("X-RR-%s: %r\r\n" % (name, v))
        return 1

    def ksr_onsend_route(self, msg):
        KSR.info("ONSEND " + KSR.pv.gete("$ci") + " " + KSR.pv.gete("$hdr(X-Second)"))
        if KSR.isflagset(7):
            KSR.set_drop()
        return 1
"#;

const EXTRA: &str =
    "alias = [\"localhost\", \"alias.example:5070\"]\n\n[define]\nD1 = \"hello-def\"\nDN = 42\n";

static SERVER: OnceLock<Ksrd> = OnceLock::new();

fn server() -> &'static Ksrd {
    shared(&SERVER, || Ksrd::start(ROUTE, EXTRA))
}

/// Python repr of a plain string (no quotes or backslashes inside that need escaping).
fn py(s: &str) -> String {
    format!("'{s}'")
}

/// A MESSAGE to bob at ksrd from `c`, carrying `code` as its body.
fn code_req(k: &Ksrd, c: &UdpClient, code: &str) -> Req {
    code_message(k.port, c.addr(), code)
}

/// Send `req` (its body is the code) and return the final reply.
fn run_req(c: &UdpClient, req: &Req) -> SipMsg {
    c.request(&req.build())
}

/// Run `code` in the request route of a fresh MESSAGE; the final reply.
fn run(code: &str) -> SipMsg {
    let k = server();
    let c = k.udp();
    let req = code_req(k, &c, code);
    let r = run_req(&c, &req);
    assert_eq!(r.header("call-id"), req.get("Call-ID"));
    r
}

/// Value of `X-R-<name>` in the reply (the repr of what the route reported).
fn x(r: &SipMsg, name: &str) -> String {
    r.header(&format!("X-R-{name}"))
        .unwrap_or_else(|| panic!("no X-R-{name} in reply:\n{}", r.text()))
        .to_string()
}

/// Assert every `(name, python repr)` pair.
fn expect(r: &SipMsg, want: &[(&str, &str)]) {
    let mut bad = Vec::new();
    for (n, w) in want {
        let got = r.header(&format!("X-R-{n}"));
        if got != Some(*w) {
            bad.push(format!("  {n}: want {w}, got {got:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "mismatches:\n{}\nreply:\n{}",
        bad.join("\n"),
        r.text()
    );
}

/// A UDP socket standing in for the next hop.
struct Uas {
    c: UdpClient,
}

impl Uas {
    fn new(k: &Ksrd) -> Uas {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        Uas {
            c: UdpClient {
                sock,
                target: k.sip_addr(),
            },
        }
    }
    fn port(&self) -> u16 {
        self.c.addr().port()
    }
    fn uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.port())
    }
    fn recv(&self, k: &Ksrd, call_id: &str) -> SipMsg {
        self.c.recv_call(call_id, REPLY_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "{call_id} not forwarded to the next hop; log:\n{}",
                k.log_tail(30)
            )
        })
    }
}

/// The raw header lines of a message (start line excluded), as sent.
fn raw_lines(m: &SipMsg) -> Vec<String> {
    let (he, _) = find_header_end(&m.raw).unwrap();
    String::from_utf8_lossy(&m.raw[..he])
        .split("\r\n")
        .skip(1)
        .map(|s| s.to_string())
        .collect()
}

/// The raw line of the first header named `name` (exact, case-sensitive name match).
fn raw_line(m: &SipMsg, name: &str) -> Option<String> {
    raw_lines(m)
        .into_iter()
        .find(|l| l.split(':').next() == Some(name))
}

/// After a reply (or none) on `c`, an OPTIONS on the same socket must be the next thing answered.
fn next_datagram_is_options_reply(k: &Ksrd, c: &UdpClient) {
    let o = options(k.port, c.addr());
    c.send(&o.build());
    let (d, _) = c.recv(REPLY_TIMEOUT).expect("OPTIONS answered");
    let m = parse_response(&d);
    assert_eq!(
        m.header("call-id"),
        o.get("Call-ID"),
        "unexpected extra datagram: {}",
        m.text()
    );
}

// ------------------------------------------------------------------------------------------------
// pseudo-variables: reads

#[test]
fn pv_reads_of_a_request_have_kamailio_values_and_types() {
    let k = server();
    let c = k.udp();
    let pvs = [
        "$ru",
        "$rU",
        "$rd",
        "$rp",
        "$rz",
        "$rP",
        "$ou",
        "$oU",
        "$od",
        "$du",
        "$rm",
        "$si",
        "$sp",
        "$su",
        "$Ri",
        "$Rp",
        "$pr",
        "$proto",
        "$fu",
        "$from",
        "$fU",
        "$fd",
        "$fn",
        "$ft",
        "$tu",
        "$to",
        "$tU",
        "$td",
        "$tn",
        "$tt",
        "$ct",
        "$cs",
        "$csb",
        "$ua",
        "$sv",
        "$server",
        "$rs",
        "$rr",
        "$cl",
        "$T_branch_idx",
        "$mf",
        "$flags",
        "$bf",
        "$au",
        "$ar",
        "$aU",
        "$ad",
        "$adu",
        "$null",
        "$hdr(X-Two)",
        "$hdrc(X-Two)",
        "$hdrc(X-None)",
        "$hdr(X-None)",
        "$var(never_set_in_any_test)",
        "$avp(never_set)",
        "$def(D1)",
        "$def(NOPE)",
    ];
    let list = pvs
        .iter()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let code = format!(
        r#"
        for i, n in enumerate([{list}]):
            R("p%d" % i, KSR.pv.get(n))
        R("ci_ok", KSR.pv.get("$ci") == msg.getHeader("Call-ID"))
        R("ml_ok", KSR.pv.get("$ml") == len(KSR.pv.get("$mb").encode()))
        R("types", [type(KSR.pv.get(n)).__name__ for n in ["$Ts", "$TS", "$mi", "$ml", "$mb"]])
        import time
        R("ts_now", abs(KSR.pv.get("$Ts") - int(time.time())) < 60)
        R("kx_ts", KSR.kx.get_timestamp() == KSR.pv.get("$Ts"))
        "#
    );
    let req = Req::new("MESSAGE", &format!("sip:bob@127.0.0.1:{}", k.port), c.addr())
        .set("From", "\"Alice A\" <sip:alice@example.com>;tag=ft1")
        .set("To", "<sip:bob@example.org>")
        .set("CSeq", "7 MESSAGE")
        .add("Contact", "<sip:alice@127.0.0.1:5099>")
        .add("User-Agent", "ua-test/1.0")
        .add(
            "Authorization",
            "Digest username=\"carol@dom.example\", realm=\"realm.example\", nonce=\"n1\", uri=\"sip:127.0.0.1\", response=\"0123\"",
        )
        .add("X-Two", "first")
        .add("X-Two", "second")
        .body("application/x-python", code.as_bytes());
    let r = run_req(&c, &req);
    assert_eq!(r.code, 200, "{}", r.text());
    let port = k.port.to_string();
    let cport = c.addr().port().to_string();
    let ruri = py(&format!("sip:bob@127.0.0.1:{port}"));
    let su = py(&format!("sip:127.0.0.1:{cport}"));
    let cl = req.body.len().to_string();
    let want: Vec<(&str, String)> = vec![
        ("$ru", ruri.clone()),
        ("$rU", py("bob")),
        ("$rd", py("127.0.0.1")),
        // Kamailio: pv_get_xuri_attr returns the port with pv_get_strintval (no PV_TYPE_INT), so
        // KSR.pv.get gives a str
        ("$rp", py(&port)),
        ("$rz", py("sip")),
        // no transport parameter: pv_get_udp ("udp")
        ("$rP", py("udp")),
        ("$ou", ruri.clone()),
        ("$oU", py("bob")),
        ("$od", py("127.0.0.1")),
        ("$du", "None".into()),
        ("$rm", py("MESSAGE")),
        ("$si", py("127.0.0.1")),
        ("$sp", cport.clone()),
        ("$su", su),
        ("$Ri", py("127.0.0.1")),
        ("$Rp", port.clone()),
        ("$pr", py("udp")),
        ("$proto", py("udp")),
        ("$fu", py("sip:alice@example.com")),
        ("$from", py("sip:alice@example.com")),
        ("$fU", py("alice")),
        ("$fd", py("example.com")),
        // the display name as written, quotes included (parse_addr_spec.c keeps them)
        ("$fn", "'\"Alice A\"'".into()),
        ("$ft", py("ft1")),
        ("$tu", py("sip:bob@example.org")),
        ("$to", py("sip:bob@example.org")),
        ("$tU", py("bob")),
        ("$td", py("example.org")),
        ("$tn", "None".into()),
        ("$tt", "None".into()),
        ("$ct", py("<sip:alice@127.0.0.1:5099>")),
        ("$cs", py("7")),
        ("$csb", py("7 MESSAGE")),
        ("$ua", py("ua-test/1.0")),
        ("$sv", "None".into()),
        ("$server", "None".into()),
        ("$rs", "None".into()),
        ("$rr", "None".into()),
        ("$cl", cl),
        ("$T_branch_idx", "0".into()),
        ("$mf", "0".into()),
        ("$flags", "0".into()),
        ("$bf", "0".into()),
        ("$au", py("carol")),
        ("$ar", py("realm.example")),
        ("$aU", py("carol@dom.example")),
        ("$ad", py("dom.example")),
        ("$adu", py("sip:127.0.0.1")),
        ("$null", "None".into()),
        ("$hdr(X-Two)", py("first")),
        ("$hdrc(X-Two)", "2".into()),
        ("$hdrc(X-None)", "0".into()),
        ("$hdr(X-None)", "None".into()),
        ("$var(never_set_in_any_test)", "0".into()),
        ("$avp(never_set)", "None".into()),
        ("$def(D1)", py("hello-def")),
        ("$def(NOPE)", "None".into()),
    ];
    assert_eq!(want.len(), pvs.len());
    let mut bad = Vec::new();
    for (i, (name, w)) in want.iter().enumerate() {
        assert_eq!(*name, pvs[i]);
        let got = r.header(&format!("X-R-p{i}"));
        if got != Some(w.as_str()) {
            bad.push(format!("  {name}: want {w}, got {got:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "PV mismatches:\n{}\n{}",
        bad.join("\n"),
        r.text()
    );
    expect(
        &r,
        &[
            ("ci_ok", "True"),
            ("ml_ok", "True"),
            ("types", "['int', 'int', 'int', 'int', 'str']"),
            ("ts_now", "True"),
            ("kx_ts", "True"),
        ],
    );
}

#[test]
fn pv_get_variants_and_null_handling() {
    let r = run(r#"
        R("get_null", KSR.pv.get("$avp(none)"))
        R("gete_null", KSR.pv.gete("$avp(none)"))
        R("getw_null", KSR.pv.getw("$avp(none)"))
        R("getvs_null", KSR.pv.getvs("$avp(none)", "dflt"))
        R("getvn_null", KSR.pv.getvn("$avp(none)", 7))
        R("is_null_avp", KSR.pv.is_null("$avp(none)"))
        R("is_null_ru", KSR.pv.is_null("$ru"))
        R("is_null_var", KSR.pv.is_null("$var(also_never_set)"))
        R("gete_var", KSR.pv.gete("$var(also_never_set)"))
        R("gete_ru", KSR.pv.gete("$rU"))
        R("bad_name", KSR.pv.get("$no_such_pv"))
        R("bad_name_e", KSR.pv.gete("$no_such_pv"))
        R("not_a_pv", KSR.pv.get("ru"))
        R("hdr_gete", KSR.hdr.gete("X-None"))
        R("hdr_getw", KSR.hdr.getw("X-None"))
        R("rb_type", type(KSR.pv.get("$rb")).__name__)
    "#);
    expect(
        &r,
        &[
            ("get_null", "None"),
            ("gete_null", "''"),
            ("getw_null", "'<<null>>'"),
            ("getvs_null", "'dflt'"),
            ("getvn_null", "7"),
            ("is_null_avp", "True"),
            ("is_null_ru", "False"),
            ("is_null_var", "False"),
            ("gete_var", "0"),
            ("gete_ru", "'bob'"),
            ("bad_name", "None"),
            ("bad_name_e", "''"),
            ("not_a_pv", "None"),
            ("hdr_gete", "''"),
            ("hdr_getw", "'<<null>>'"),
            ("rb_type", "'str'"),
        ],
    );
}

#[test]
fn pv_reads_of_a_reply_in_reply_route() {
    let k = server();
    let uas = Uas::new(k);
    let c = k.udp();
    let req = code_req(
        k,
        &c,
        &format!("NOREPLY = True\nKSR.forward_uri({:?})\n", uas.uri()),
    );
    c.send(&req.build());
    let f = uas.recv(k, req.get("Call-ID").unwrap());
    let resp = make_response(&f, 200, "OK", "uas1", &[("X-Inspect", "yes")]);
    uas.c.sock.send_to(&resp, k.sip_addr()).unwrap();
    let r = c
        .recv_final(REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("reply not relayed; log:\n{}", k.log_tail(30)));
    assert_eq!(r.code, 200);
    let want = [
        ("rs", "200"),
        ("rr", "'OK'"),
        ("rm", "'MESSAGE'"),
        ("ru", "None"),
        ("rUser", "None"),
        ("ou", "None"),
        ("tt", "'uas1'"),
        ("sp_is_int", "True"),
        ("type", "'SIP_REPLY'"),
        ("status", "'200'"),
        ("method", "'MESSAGE'"),
        ("ruri", "None"),
        ("is_reply", "1"),
        ("is_request", "-1"),
        ("kx_status", "200"),
        ("mi_M", "True"),
        ("mi_I", "False"),
        ("is_MESSAGE", "True"),
        ("hdr", "'yes'"),
    ];
    let mut bad = Vec::new();
    for (n, w) in want {
        let got = r.header(&format!("X-RR-{n}"));
        if got != Some(w) {
            bad.push(format!("  {n}: want {w}, got {got:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "reply PVs:\n{}\n{}",
        bad.join("\n"),
        r.text()
    );
}

#[test]
fn rb_of_a_non_utf8_body_does_not_raise_and_round_trips() {
    let k = server();
    let c = k.udp();
    let body: &[u8] = b"\xff\xfeab\xc3\x28";
    let req = Req::new("MESSAGE", &format!("sip:bob@127.0.0.1:{}", k.port), c.addr())
        .set(
            "X-Code",
            "b = KSR.pv.get('$rb'); R('type', type(b).__name__); R('bytes', b.encode('utf-8', 'surrogateescape')); R('kx', KSR.kx.get_body() == b); R('cl', KSR.pv.get('$cl'))",
        )
        .body("application/octet-stream", body);
    let r = run_req(&c, &req);
    assert_eq!(
        r.code,
        200,
        "no exception (500) for a binary body: {}",
        r.text()
    );
    expect(
        &r,
        &[
            ("type", "'str'"),
            ("bytes", "b'\\xff\\xfeab\\xc3('"),
            ("kx", "True"),
            ("cl", "6"),
        ],
    );
}

// ------------------------------------------------------------------------------------------------
// pseudo-variables: writes and their effect on the forwarded request

#[test]
fn pv_writes_rewrite_the_forwarded_request() {
    let k = server();
    let uas = Uas::new(k);
    let c = k.udp();
    let code = format!(
        r#"
        R("s_rU", KSR.pv.sets("$rU", "carl"))
        R("s_rd", KSR.pv.sets("$rd", "127.0.0.1"))
        R("s_rp", KSR.pv.seti("$rp", {port}))
        R("ru", KSR.pv.get("$ru"))
        R("rUser", KSR.pv.get("$rU"))
        R("ou", KSR.pv.get("$ou"))
        R("s_fU", KSR.pv.sets("$fU", "newfrom"))
        R("s_fn", KSR.pv.sets("$fn", "New Name"))
        R("s_tU", KSR.pv.sets("$tU", "newto"))
        R("s_ro", KSR.pv.sets("$si", "1.2.3.4"))
        R("si", KSR.pv.get("$si"))
        R("fwd", KSR.forward())
        "#,
        port = uas.port()
    );
    let req = code_req(k, &c, &code)
        .set("From", "<sip:alice@example.com>;tag=keepme")
        .set("To", "<sip:bob@example.org>")
        .add("X-Keep", "a ,  b;c=d")
        .add("Subject", "untouched   spacing");
    let r = run_req(&c, &req);
    expect(
        &r,
        &[
            ("s_rU", "True"),
            ("s_rd", "True"),
            ("s_rp", "True"),
            ("ru", &py(&format!("sip:carl@127.0.0.1:{}", uas.port()))),
            ("rUser", "'carl'"),
            ("ou", &py(&format!("sip:bob@127.0.0.1:{}", k.port))),
            ("s_fU", "True"),
            ("s_fn", "True"),
            ("s_tU", "True"),
            ("s_ro", "False"),
            ("si", "'127.0.0.1'"),
            ("fwd", "1"),
        ],
    );
    let f = uas.recv(k, req.get("Call-ID").unwrap());
    assert_eq!(
        f.start_line,
        format!("MESSAGE sip:carl@127.0.0.1:{} SIP/2.0", uas.port())
    );
    let from = f.header("from").unwrap();
    assert!(
        from.contains("sip:newfrom@example.com") && from.contains("New Name"),
        "From rewritten: {from}"
    );
    assert_eq!(
        param(from, "tag").as_deref(),
        Some("keepme"),
        "From tag kept: {from}"
    );
    let to = f.header("to").unwrap();
    assert!(to.contains("sip:newto@example.org"), "To rewritten: {to}");
    // untouched headers and the body arrive byte for byte
    for h in [
        "Call-ID",
        "CSeq",
        "X-Keep",
        "Subject",
        "Max-Forwards",
        "Content-Type",
        "Content-Length",
    ] {
        let sent = format!(
            "{h}: {}",
            req.get(h)
                .map(str::to_string)
                .unwrap_or_else(|| req.body.len().to_string())
        );
        assert_eq!(
            raw_line(&f, h),
            Some(sent),
            "{h} byte-identical:\n{}",
            f.text()
        );
    }
    assert_eq!(f.body, req.body);
}

#[test]
fn du_sends_to_the_destination_uri_and_keeps_the_request_uri() {
    let k = server();
    let uas = Uas::new(k);
    let c = k.udp();
    let code = format!(
        r#"
        NOREPLY = True
        R("before", KSR.pv.get("$du"))
        R("isset0", KSR.isdsturiset())
        KSR.pv.sets("$ru", "sip:someone@192.0.2.1:5999")
        R("set_du", KSR.pv.sets("$du", {uri:?}))
        R("du", KSR.pv.get("$du"))
        R("isset1", KSR.isdsturiset())
        R("kx_duri", KSR.kx.get_duri())
        R("fwd", KSR.forward())
        KSR.sl.sl_send_reply(200, "OK")
        "#,
        uri = uas.uri()
    );
    let req = code_req(k, &c, &code);
    let r = run_req(&c, &req);
    expect(
        &r,
        &[
            ("before", "None"),
            ("isset0", "False"),
            ("set_du", "True"),
            ("du", &py(&uas.uri())),
            ("isset1", "True"),
            ("kx_duri", &py(&uas.uri())),
            ("fwd", "1"),
        ],
    );
    let f = uas.recv(k, req.get("Call-ID").unwrap());
    assert_eq!(f.start_line, "MESSAGE sip:someone@192.0.2.1:5999 SIP/2.0");
}

#[test]
fn msg_rewrite_ruri_changes_the_forwarded_request_uri() {
    let k = server();
    let uas = Uas::new(k);
    let c = k.udp();
    let code = format!(
        "NOREPLY = True\nmsg.rewrite_ruri('sip:viamsg@127.0.0.1:{}')\nKSR.forward()\n",
        uas.port()
    );
    let req = code_req(k, &c, &code);
    c.send(&req.build());
    let f = uas.recv(k, req.get("Call-ID").unwrap());
    assert_eq!(
        f.start_line,
        format!("MESSAGE sip:viamsg@127.0.0.1:{} SIP/2.0", uas.port())
    );
}

#[test]
fn avp_is_a_stack_per_message() {
    let r = run(r#"
        R("s1", KSR.pv.seti("$avp(x)", 1))
        R("s2", KSR.pv.sets("$avp(x)", "two"))
        R("top", KSR.pv.get("$avp(x)"))
        R("i0", KSR.pv.get("$(avp(x)[0])"))
        R("i1", KSR.pv.get("$(avp(x)[1])"))
        R("i2", KSR.pv.get("$(avp(x)[2])"))
        R("u1", KSR.pv.unset("$avp(x)"))
        R("after1", KSR.pv.get("$avp(x)"))
        R("after1_i1", KSR.pv.get("$(avp(x)[1])"))
        KSR.pv.unset("$avp(x)")
        R("after2", KSR.pv.get("$avp(x)"))
        R("after2_null", KSR.pv.is_null("$avp(x)"))
        KSR.pv.sets("$avp(s:y)", "named")
        R("y", KSR.pv.get("$avp(y)"))
        KSR.pv.sets("$avp(keep)", "leaks?")
    "#);
    expect(
        &r,
        &[
            ("s1", "True"),
            ("s2", "True"),
            ("top", "'two'"),
            ("i0", "'two'"),
            ("i1", "1"),
            ("i2", "None"),
            ("u1", "True"),
            ("after1", "1"),
            ("after1_i1", "None"),
            ("after2", "None"),
            ("after2_null", "True"),
            ("y", "'named'"),
        ],
    );
    // AVPs live for one message
    let r = run(r#"R("keep", KSR.pv.get("$avp(keep)"))"#);
    expect(&r, &[("keep", "None")]);
}

#[test]
fn var_persists_across_messages_of_the_worker() {
    let name = uniq("v").replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let r = run(&format!(
        r#"
        R("unset", KSR.pv.get("$var({name})"))
        R("set", KSR.pv.seti("$var({name})", 41))
        R("now", KSR.pv.get("$var({name})"))
        KSR.pv.sets("$var({name}_s)", "text")
        "#
    ));
    expect(&r, &[("unset", "0"), ("set", "True"), ("now", "41")]);
    let r = run(&format!(
        r#"
        R("later", KSR.pv.get("$var({name})"))
        R("later_s", KSR.pv.get("$var({name}_s)"))
        KSR.pv.seti("$var({name})", KSR.pv.get("$var({name})") + 1)
        R("inc", KSR.pv.get("$var({name})"))
        "#
    ));
    expect(&r, &[("later", "41"), ("later_s", "'text'"), ("inc", "42")]);
}

// ------------------------------------------------------------------------------------------------
// KSR.hdr

#[test]
fn hdr_functions_edit_the_forwarded_request() {
    let k = server();
    let uas = Uas::new(k);
    let c = k.udp();
    let code = format!(
        r#"
        NOREPLY = True
        R("append", KSR.hdr.append("X-App: 1\r\n"))
        R("present_added", KSR.hdr.is_present("X-App"))
        R("present_subject", KSR.hdr.is_present("Subject"))
        R("present_compact", KSR.hdr.is_present("s"))
        R("present_none", KSR.hdr.is_present("X-None"))
        R("insert", KSR.hdr.insert("X-Ins: top\r\n"))
        R("ib", KSR.hdr.insert_before("X-IB: b\r\n", "Call-ID"))
        R("aa", KSR.hdr.append_after("X-AA: a\r\n", "Call-ID"))
        R("rm_subject", KSR.hdr.remove("Subject"))
        R("rm_none", KSR.hdr.remove("X-None"))
        R("rmappend", KSR.hdr.rmappend("X-Old", "X-New: n\r\n"))
        R("get", KSR.hdr.get("X-Multi"))
        R("get_compact", KSR.hdr.get("s"))
        R("get_idx0", KSR.hdr.get_idx("X-Multi", 0))
        R("get_idx1", KSR.hdr.get_idx("X-Multi", 1))
        R("get_idx_neg", KSR.hdr.get_idx("X-Multi", -1))
        R("get_idx_out", KSR.hdr.get_idx("X-Multi", 5))
        R("get_none", KSR.hdr.get("X-None"))
        R("count", KSR.hdr.count("X-Multi"))
        R("count_none", KSR.hdr.count("X-None"))
        R("get_after_rm", KSR.hdr.get("Subject"))
        R("msg_getHeader", msg.getHeader("X-Multi"))
        R("msg_getHeader_none", msg.getHeader("X-None"))
        R("fwd", KSR.forward_uri({uri:?}))
        KSR.sl.sl_send_reply(200, "OK")
        "#,
        uri = uas.uri()
    );
    let req = code_req(k, &c, &code)
        .add("Subject", "long form")
        .add("s", "compact form")
        .add("X-Multi", "m1")
        .add("X-Multi", "m2")
        .add("X-Old", "old1")
        .add("X-Old", "old2");
    let r = run_req(&c, &req);
    expect(
        &r,
        &[
            ("append", "1"),
            ("present_added", "-1"),
            ("present_subject", "1"),
            ("present_compact", "1"),
            ("present_none", "-1"),
            ("insert", "1"),
            ("ib", "1"),
            ("aa", "1"),
            ("rm_subject", "1"),
            ("rm_none", "1"),
            ("rmappend", "1"),
            ("get", "'m1'"),
            ("get_compact", "'long form'"),
            ("get_idx0", "'m1'"),
            ("get_idx1", "'m2'"),
            ("get_idx_neg", "'m2'"),
            ("get_idx_out", "None"),
            ("get_none", "None"),
            ("count", "2"),
            ("count_none", "0"),
            ("get_after_rm", "'long form'"),
            ("msg_getHeader", "'m1'"),
            ("msg_getHeader_none", "None"),
            ("fwd", "1"),
        ],
    );
    let f = uas.recv(k, req.get("Call-ID").unwrap());
    let names: Vec<String> = raw_lines(&f)
        .iter()
        .filter_map(|l| l.split(':').next().map(|s| s.to_string()))
        .filter(|s| !s.is_empty())
        .collect();
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("{n} missing in forwarded request:\n{}", f.text()))
    };
    assert_eq!(
        pos("X-Ins"),
        0,
        "insert puts the line above everything: {names:?}"
    );
    assert_eq!(pos("X-IB") + 1, pos("Call-ID"), "{names:?}");
    assert_eq!(pos("Call-ID") + 1, pos("X-AA"), "{names:?}");
    assert_eq!(
        names.last().map(String::as_str),
        Some("X-New"),
        "rmappend appends last: {names:?}"
    );
    assert_eq!(names[names.len() - 2], "X-App", "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n == "Subject" || n == "s" || n == "X-Old"),
        "Subject, its compact form s and X-Old removed: {names:?}"
    );
    assert_eq!(f.header("X-App"), Some("1"));
    assert_eq!(f.headers_all("X-Multi"), vec!["m1", "m2"]);
}

#[test]
fn hdr_insert_before_and_append_after_a_missing_header() {
    // Kamailio (kemi.c sr_kemi_hdr_insert_before / _append_after): no such header means before the
    // first / after the last header, and 1
    let k = server();
    let uas = Uas::new(k);
    let c = k.udp();
    let code = format!(
        r#"
        R("ib", KSR.hdr.insert_before("X-IB: b\r\n", "X-Missing"))
        R("aa", KSR.hdr.append_after("X-AA: a\r\n", "X-Missing"))
        R("fwd", KSR.forward_uri({uri:?}))
        "#,
        uri = uas.uri()
    );
    let req = code_req(k, &c, &code);
    let r = run_req(&c, &req);
    expect(&r, &[("ib", "1"), ("aa", "1"), ("fwd", "1")]);
    let f = uas.recv(k, req.get("Call-ID").unwrap());
    let lines = raw_lines(&f);
    // ksrd's own Via goes above the first Via, the inserted line stays first
    assert!(lines[0].starts_with("X-IB: b"), "{lines:?}");
    assert!(lines.last().unwrap().starts_with("X-AA: a"), "{lines:?}");
}

#[test]
fn append_to_reply_adds_to_the_local_reply() {
    let r = run(r#"
        R("ret", KSR.hdr.append_to_reply("X-Extra: yes\r\n"))
        KSR.sl.sl_send_reply(202, "Accepted")
    "#);
    assert_eq!((r.code, r.reason.as_str()), (202, "Accepted"));
    assert_eq!(r.header("X-Extra"), Some("yes"));
    expect(&r, &[("ret", "1")]);
}

// ------------------------------------------------------------------------------------------------
// core KSR.*

#[test]
fn message_and_branch_flags() {
    let r = run(r#"
        R("set3", KSR.setflag(3))
        R("is3", KSR.isflagset(3))
        R("is4", KSR.isflagset(4))
        R("mf", KSR.pv.get("$mf"))
        R("reset3", KSR.resetflag(3))
        R("is3_after", KSR.isflagset(3))
        KSR.setflag(0)
        KSR.setflag(31)
        R("mf2", KSR.pv.get("$mf"))
        R("set32", KSR.setflag(32))
        R("setneg", KSR.setflag(-1))
        R("bset2", KSR.setbflag(2))
        R("bis2", KSR.isbflagset(2))
        R("bis3", KSR.isbflagset(3))
        R("bf", KSR.pv.get("$bf"))
        R("breset2", KSR.resetbflag(2))
        R("bis2_after", KSR.isbflagset(2))
        R("biset", KSR.setbiflag(5, 0))
        R("biis", KSR.isbiflagset(5, 0))
        R("bis5", KSR.isbflagset(5))
        R("bset32", KSR.setbflag(32))
    "#);
    expect(
        &r,
        &[
            ("set3", "True"),
            ("is3", "True"),
            ("is4", "False"),
            ("mf", "8"),
            ("reset3", "True"),
            ("is3_after", "False"),
            ("mf2", "2147483649"),
            ("set32", "False"),
            ("setneg", "False"),
            ("bset2", "True"),
            ("bis2", "True"),
            ("bis3", "False"),
            ("bf", "4"),
            ("breset2", "True"),
            ("bis2_after", "False"),
            ("biset", "True"),
            ("biis", "True"),
            ("bis5", "True"),
            ("bset32", "False"),
        ],
    );
    // flags belong to the message
    let r = run(
        r#"R("is0", KSR.isflagset(0)); R("mf", KSR.pv.get("$mf")); R("bf", KSR.pv.get("$bf"))"#,
    );
    expect(&r, &[("is0", "False"), ("mf", "0"), ("bf", "0")]);
}

#[test]
fn is_method_in_letters() {
    let k = server();
    let code = r#"
        R("all", KSR.is_method_in("IABCROSPNUMEFKGTVD"))
        R("mine", KSR.is_method_in(LETTER))
        R("lower", KSR.is_method_in(LETTER.lower()))
        R("others", KSR.is_method_in("".join(l for l in "IABCROSPNUMEFKGTVD" if l != LETTER)))
        R("is_method", KSR.is_method(KSR.pv.get("$rm")))
    "#;
    for (method, letter) in [
        ("INVITE", "I"),
        ("BYE", "B"),
        ("CANCEL", "C"),
        ("REGISTER", "R"),
        ("OPTIONS", "O"),
        ("SUBSCRIBE", "S"),
        ("PUBLISH", "P"),
        ("NOTIFY", "N"),
        ("UPDATE", "U"),
        ("MESSAGE", "M"),
        ("PRACK", "E"),
        ("REFER", "F"),
        ("INFO", ""),
    ] {
        let c = k.udp();
        let req = Req::new(method, &format!("sip:bob@127.0.0.1:{}", k.port), c.addr()).body(
            "application/x-python",
            format!("LETTER = {letter:?}\n{}", textwrap(code)).as_bytes(),
        );
        let r = run_req(&c, &req);
        let (all, mine, lower) = if letter.is_empty() {
            ("False", "False", "False")
        } else {
            ("True", "True", "True")
        };
        let ctx = format!("{method} ({letter})");
        assert_eq!(x(&r, "all"), all, "{ctx}");
        assert_eq!(x(&r, "mine"), mine, "{ctx}");
        assert_eq!(x(&r, "lower"), lower, "{ctx}");
        assert_eq!(x(&r, "others"), "False", "{ctx}");
        assert_eq!(x(&r, "is_method"), "True", "{ctx}");
    }
}

/// Left-align an indented Python snippet (the route dedents the whole body, which the LETTER line
/// prefix would defeat).
fn textwrap(code: &str) -> String {
    let lines: Vec<&str> = code.lines().filter(|l| !l.trim().is_empty()).collect();
    let indent = lines
        .iter()
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| &l[indent..])
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn is_myself_with_listen_addresses_aliases_and_ports() {
    let k = server();
    let c = k.udp();
    let p = k.port;
    let code = format!(
        r#"
        R("ip_port", KSR.is_myself("sip:127.0.0.1:{p}"))
        R("ip_other_port", KSR.is_myself("sip:127.0.0.1:1"))
        R("ip_no_port", KSR.is_myself("sip:127.0.0.1"))
        R("bare_ip", KSR.is_myself("127.0.0.1"))
        R("alias", KSR.is_myself("sip:localhost"))
        R("alias_any_port", KSR.is_myself("sip:localhost:{p}"))
        R("alias_port", KSR.is_myself("sip:alias.example:5070"))
        R("alias_wrong_port", KSR.is_myself("sip:alias.example:5071"))
        R("alias_no_port", KSR.is_myself("sip:alias.example"))
        R("alias_case", KSR.is_myself("sip:ALIAS.example:5070"))
        R("foreign", KSR.is_myself("sip:example.net"))
        R("foreign_ip", KSR.is_myself("sip:192.0.2.7:{p}"))
        R("ruri", KSR.is_myself_ruri())
        R("furi", KSR.is_myself_furi())
        R("turi", KSR.is_myself_turi())
        R("srcip", KSR.is_myself_srcip())
        R("duri_unset", KSR.is_myself_duri())
        KSR.setdsturi("sip:alias.example:5070")
        R("duri", KSR.is_myself_duri())
        "#
    );
    let req = Req::new("MESSAGE", "sip:bob@localhost", c.addr())
        .set("From", "<sip:alice@alias.example:5070>;tag=1")
        .set("To", &format!("<sip:bob@127.0.0.1:{p}>"))
        .body("application/x-python", code.as_bytes());
    let r = run_req(&c, &req);
    expect(
        &r,
        &[
            ("ip_port", "True"),
            ("ip_other_port", "False"),
            ("ip_no_port", "True"),
            ("bare_ip", "True"),
            ("alias", "True"),
            ("alias_any_port", "True"),
            ("alias_port", "True"),
            ("alias_wrong_port", "False"),
            ("alias_no_port", "True"),
            ("alias_case", "True"),
            ("foreign", "False"),
            ("foreign_ip", "False"),
            ("ruri", "True"),
            ("furi", "True"),
            ("turi", "True"),
            ("srcip", "True"),
            ("duri_unset", "False"),
            ("duri", "True"),
        ],
    );
    // From at a foreign domain
    let c = k.udp();
    let req = Req::new("MESSAGE", "sip:bob@example.net", c.addr())
        .set("From", "<sip:alice@example.com>;tag=1")
        .body(
            "application/x-python",
            b"R('ruri', KSR.is_myself_ruri()); R('furi', KSR.is_myself_furi())",
        );
    let r = run_req(&c, &req);
    expect(&r, &[("ruri", "False"), ("furi", "False")]);
}

#[test]
fn maxfwd_return_codes_and_forwarded_value() {
    let k = server();
    // (Max-Forwards sent, limit, expected return, value forwarded)
    for (mf, limit, ret, fwd) in [
        (Some("70"), 10, "1", Some("69")),
        (Some("5"), 10, "1", Some("4")),
        (Some("1"), 10, "1", Some("0")),
        // above max_limit (70): Kamailio sets max_limit+1, then decrements
        (Some("200"), 10, "1", Some("70")),
        (None, 16, "2", Some("16")),
        (Some("0"), 10, "-1", None),
        // (an unparsable Max-Forwards never reaches the route: the core answers 400 first)
        (Some("70"), 256, "-1", None),
    ] {
        let uas = Uas::new(k);
        let c = k.udp();
        let code = format!(
            r#"
            rc = KSR.maxfwd.process_maxfwd({limit})
            R("rc", rc)
            R("lt", KSR.maxfwd.is_maxfwd_lt(3))
            if rc > 0:
                KSR.forward_uri({uri:?})
            "#,
            uri = uas.uri()
        );
        let mut req = code_req(k, &c, &code);
        req = match mf {
            Some(v) => req.set("Max-Forwards", v),
            None => req.remove("Max-Forwards"),
        };
        let r = run_req(&c, &req);
        let ctx = format!("Max-Forwards {mf:?}, limit {limit}");
        assert_eq!(x(&r, "rc"), ret, "{ctx}: {}", r.text());
        if let Some(v) = fwd {
            let f = uas.recv(k, req.get("Call-ID").unwrap());
            assert_eq!(
                f.headers_all("Max-Forwards"),
                vec![v],
                "{ctx}:\n{}",
                f.text()
            );
        }
    }
    let r = run("R('lt5', KSR.maxfwd.is_maxfwd_lt(80)); R('lt0', KSR.maxfwd.is_maxfwd_lt(70))");
    expect(&r, &[("lt5", "1"), ("lt0", "-1")]);
}

// ------------------------------------------------------------------------------------------------
// sanity

/// Send `req` whose X-Code runs sanity_check(checks, uri_checks); the reply and the logged result.
fn sanity(k: &Ksrd, req: Req, c: &UdpClient, checks: i64, uri_checks: i64) -> (SipMsg, String) {
    let cid = req.get("Call-ID").unwrap().to_string();
    let req = req.set(
        "X-Code",
        &format!(
            "rc = KSR.sanity.sanity_check({checks}, {uri_checks}); KSR.info('SANITY-RC %s %r' % (KSR.pv.get('$ci'), rc)); R('rc', rc)"
        ),
    );
    let r = c.request(&req.build());
    let needle = format!("SANITY-RC {cid} ");
    assert!(
        k.wait_log(&needle, Duration::from_secs(3)),
        "log:\n{}",
        k.log_tail(20)
    );
    let log = k.log();
    let at = log.find(&needle).unwrap() + needle.len();
    let rc = log[at..].split_whitespace().next().unwrap().to_string();
    (r, rc)
}

#[test]
fn sanity_checks_each_bit_with_kamailio_codes_and_reasons() {
    let k = server();
    let base = |c: &UdpClient| {
        Req::new(
            "MESSAGE",
            &format!("sip:bob@127.0.0.1:{}", k.port),
            c.addr(),
        )
    };
    type Mk = Box<dyn Fn(Req) -> Req>;
    // (bit, how to break the message, code, reason)
    let cases: Vec<(i64, Mk, u16, &str)> = vec![
        (
            2,
            Box::new(|r: Req| Req {
                ruri: "mailto:bob@example.com".into(),
                ..r
            }),
            416,
            "Unsupported URI Scheme in Request URI",
        ),
        (
            64,
            Box::new(|r: Req| r.set("CSeq", "2147483648 MESSAGE")),
            400,
            "CSeq number is illegal",
        ),
        (
            256,
            Box::new(|r: Req| r.add("Expires", "abc")),
            400,
            "Expires value is illegal",
        ),
        (
            512,
            Box::new(|r: Req| r.add("Proxy-Require", "foo")),
            420,
            "Bad Proxy Require Extension",
        ),
        (
            2048,
            Box::new(|r: Req| {
                r.add(
                    "Authorization",
                    "Digest username=\"\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"a\"",
                )
            }),
            400,
            "Auth Empty User",
        ),
        (
            // SANITY_CHECK_AUTHORIZATION (sanity.c check_authorization).
            8192,
            Box::new(|r: Req| {
                r.add(
                    "Proxy-Authorization",
                    "Digest username=\"u\", realm=\"r\", nonce=\"\", uri=\"sip:x\", response=\"a\"",
                )
            }),
            400,
            "Auth Empty Nonce",
        ),
    ];
    for (bit, mk, code, reason) in cases {
        let c = k.udp();
        let req = mk(base(&c));
        // the same message passes every other bit of the default request set
        let (r, rc) = sanity(k, req.clone(), &c, 17895 & !bit & !(1 << 10), 7);
        assert_eq!(
            r.code,
            200,
            "bit {bit}: only that check fails:\n{}",
            r.text()
        );
        assert_eq!(rc, "1", "bit {bit}");
        let c = k.udp();
        let (r, rc) = sanity(k, mk(base(&c)), &c, bit, 7);
        assert_eq!(
            (r.code, r.reason.as_str()),
            (code, reason),
            "bit {bit}:\n{}",
            r.text()
        );
        assert_eq!(rc, "-1", "bit {bit}");
        if bit == 512 {
            assert_eq!(r.header("Unsupported"), Some("foo"), "{}", r.text());
        }
        // the route's own 200 afterwards is refused: one final reply per request
        next_datagram_is_options_reply(k, &c);
    }
}

#[test]
fn sanity_proxy_require_reports_the_first_unsupported_extension() {
    let k = server();
    let c = k.udp();
    let req = Req::new(
        "MESSAGE",
        &format!("sip:bob@127.0.0.1:{}", k.port),
        c.addr(),
    )
    .add("Proxy-Require", "foo, bar");
    let (r, rc) = sanity(k, req, &c, 512, 0);
    assert_eq!(
        (r.code, r.reason.as_str()),
        (420, "Bad Proxy Require Extension")
    );
    assert_eq!(rc, "-1");
    // sanity.c check_proxy_require: one Unsupported header naming the first unknown extension
    assert_eq!(r.headers_all("Unsupported"), vec!["foo"], "{}", r.text());
}

#[test]
fn sanity_via_checks_are_noops() {
    // Kamailio's check_via_sip_version / check_via_protocol are "useless checks" that pass
    let k = server();
    let c = k.udp();
    let req = Req::new(
        "MESSAGE",
        &format!("sip:bob@127.0.0.1:{}", k.port),
        c.addr(),
    );
    let (r, rc) = sanity(k, req, &c, 8 | 16 | 16384, 0);
    assert_eq!(r.code, 200, "{}", r.text());
    assert_eq!(rc, "1");
    // VIA1 without a branch passes in ksrd (Kamailio drops it silently; RFC 2543 clients and
    // RFC 4475 longreq/inv2543 must be answered, tests/torture.rs)
    let c = k.udp();
    let req = Req::new(
        "MESSAGE",
        &format!("sip:bob@127.0.0.1:{}", k.port),
        c.addr(),
    )
    .set("Via", &format!("SIP/2.0/UDP {};rport", c.addr()));
    let (r, rc) = sanity(k, req, &c, 16384, 0);
    assert_eq!(rc, "1");
    assert_eq!(r.code, 200, "{}", r.text());
}

#[test]
fn sanity_content_length_counts_the_framed_body() {
    // Bytes after Content-Length in a datagram are ignored (RFC 4475 dblreq), so sanity's
    // Content-Length check passes; a Content-Length beyond the data is answered 400 by the core
    // before any route runs, so Kamailio's "400 Content-Length mis-match" cannot be provoked
    let k = server();
    let c = k.udp();
    let req = Req::new(
        "MESSAGE",
        &format!("sip:bob@127.0.0.1:{}", k.port),
        c.addr(),
    )
    .set(
        "X-Code",
        "R('rc', KSR.sanity.sanity_check(128, 0)); R('rb', KSR.pv.get('$rb'))",
    );
    let mut raw = req
        .clone()
        .body("text/plain", b"hello")
        .no_content_length()
        .build();
    let pos = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    raw.splice(pos + 2..pos + 2, b"Content-Length: 3\r\n".iter().copied());
    c.send(&raw);
    let r = c
        .recv_final(REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("no reply; log:\n{}", k.log_tail(20)));
    expect(&r, &[("rc", "1"), ("rb", "'hel'")]);
    let c = k.udp();
    let mut raw = req.body("text/plain", b"hi").no_content_length().build();
    let pos = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    raw.splice(pos + 2..pos + 2, b"Content-Length: 30\r\n".iter().copied());
    c.send(&raw);
    let r = c.recv_final(REPLY_TIMEOUT).expect("core 400");
    assert_eq!(r.code, 400, "{}", r.text());
    assert!(
        r.header("X-R-rc").is_none(),
        "the route did not run: {}",
        r.text()
    );
}

// ------------------------------------------------------------------------------------------------
// siputils, corex, kx

#[test]
fn siputils_and_corex() {
    let k = server();
    let c = k.udp();
    let code = r#"
        R("totag", KSR.siputils.has_totag())
        R("first_hop", KSR.siputils.is_first_hop())
        R("is_request", KSR.siputils.is_request())
        R("is_reply", KSR.siputils.is_reply())
        R("ruri_user", KSR.corex.has_ruri_user())
        R("ua", KSR.corex.has_user_agent())
    "#;
    let req = code_req(k, &c, code);
    let r = run_req(&c, &req);
    expect(
        &r,
        &[
            ("totag", "-1"),
            ("first_hop", "1"),
            ("is_request", "1"),
            ("is_reply", "-1"),
            ("ruri_user", "1"),
            ("ua", "-1"),
        ],
    );
    let c = k.udp();
    let mut req = Req::new("MESSAGE", &format!("sip:127.0.0.1:{}", k.port), c.addr())
        .set("To", "<sip:bob@example.org>;tag=abc")
        .add("User-Agent", "x")
        .body("application/x-python", code.as_bytes());
    // a second Via below the client's: not the first hop
    req.headers.insert(
        1,
        (
            "Via".into(),
            "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKup".into(),
        ),
    );
    let r = run_req(&c, &req);
    expect(
        &r,
        &[
            ("totag", "1"),
            ("first_hop", "-1"),
            ("ruri_user", "-1"),
            ("ua", "1"),
        ],
    );
}

#[test]
fn kx_getters_and_defines() {
    let k = server();
    let c = k.udp();
    let code = r#"
        R("ruri", KSR.kx.get_ruri())
        R("ruser", KSR.kx.get_ruser())
        R("rhost", KSR.kx.get_rhost())
        R("furi", KSR.kx.get_furi())
        R("fuser", KSR.kx.get_fuser())
        R("fhost", KSR.kx.get_fhost())
        R("turi", KSR.kx.get_turi())
        R("tuser", KSR.kx.get_tuser())
        R("duri", KSR.kx.get_duri())
        R("gete_duri", KSR.kx.gete_duri())
        R("srcip", KSR.kx.get_srcip())
        R("srcport_ok", KSR.kx.get_srcport() == KSR.pv.get("$sp"))
        R("srcport_type", type(KSR.kx.get_srcport()).__name__)
        R("ua", KSR.kx.get_ua())
        R("gete_ua", KSR.kx.gete_ua())
        R("method", KSR.kx.get_method())
        R("callid_ok", KSR.kx.get_callid() == KSR.pv.get("$ci"))
        R("status", KSR.kx.get_status())
        R("au", KSR.kx.get_au())
        R("def", KSR.kx.get_def("D1"))
        R("def_int", KSR.kx.get_def("DN"))
        R("def_none", KSR.kx.get_def("NOPE"))
        R("defn", KSR.kx.get_defn("DN"))
        R("ifdef", KSR.kx.ifdef("D1"))
        R("ifdef_no", KSR.kx.ifdef("NOPE"))
        R("env_none", KSR.kx.get_env("KSRD_SURELY_NOT_SET_VAR"))
    "#;
    let req = Req::new(
        "MESSAGE",
        &format!("sip:bob@127.0.0.1:{}", k.port),
        c.addr(),
    )
    .set("From", "<sip:alice@example.com>;tag=1")
    .set("To", "<sip:bob@example.org>")
    .body("application/x-python", code.as_bytes());
    let r = run_req(&c, &req);
    expect(
        &r,
        &[
            ("ruri", &py(&format!("sip:bob@127.0.0.1:{}", k.port))),
            ("ruser", "'bob'"),
            ("rhost", "'127.0.0.1'"),
            ("furi", "'sip:alice@example.com'"),
            ("fuser", "'alice'"),
            ("fhost", "'example.com'"),
            ("turi", "'sip:bob@example.org'"),
            ("tuser", "'bob'"),
            ("duri", "None"),
            ("gete_duri", "''"),
            ("srcip", "'127.0.0.1'"),
            ("srcport_ok", "True"),
            ("srcport_type", "'int'"),
            ("ua", "None"),
            ("gete_ua", "''"),
            ("method", "'MESSAGE'"),
            ("callid_ok", "True"),
            ("status", "-1"),
            ("au", "None"),
            ("def", "'hello-def'"),
            ("def_int", "'42'"),
            ("def_none", "None"),
            ("defn", "42"),
            ("ifdef", "True"),
            ("ifdef_no", "False"),
            ("env_none", "None"),
        ],
    );
}

// ------------------------------------------------------------------------------------------------
// the msg object

#[test]
fn msg_object_members() {
    let k = server();
    let c = k.udp();
    let req = code_req(
        k,
        &c,
        r#"
        R("Type", msg.Type)
        R("Method", msg.Method)
        R("RURI", msg.RURI)
        R("Status", msg.Status)
        R("src", msg.src_address)
        R("dst", msg.dst_address)
        R("hdr", msg.getHeader("X-Here"))
        R("hdr_none", msg.getHeader("X-None"))
        msg.rewrite_ruri("sip:else@example.net")
        R("RURI2", msg.RURI)
        R("ru2", KSR.pv.get("$ru"))
        "#,
    )
    .add("X-Here", "present");
    let r = run_req(&c, &req);
    expect(
        &r,
        &[
            ("Type", "'SIP_REQUEST'"),
            ("Method", "'MESSAGE'"),
            ("RURI", &py(&format!("sip:bob@127.0.0.1:{}", k.port))),
            ("Status", "None"),
            ("src", &format!("('127.0.0.1', {})", c.addr().port())),
            ("dst", &format!("('127.0.0.1', {})", k.port)),
            ("hdr", "'present'"),
            ("hdr_none", "None"),
            ("RURI2", "'sip:else@example.net'"),
            ("ru2", "'sip:else@example.net'"),
        ],
    );
}

#[test]
fn stored_msg_raises_runtime_error_in_the_next_request() {
    let key = uniq("m").replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let r = run(&format!("G[{key:?}] = msg\nR('ok', msg.Method)"));
    expect(&r, &[("ok", "'MESSAGE'")]);
    let r = run(&format!(
        r#"
        old = G[{key:?}]
        for attr in ["Type", "Method", "RURI", "src_address"]:
            try:
                getattr(old, attr)
                R(attr, "no error")
            except RuntimeError as e:
                R(attr, "RuntimeError")
        try:
            old.getHeader("Call-ID")
            R("getHeader", "no error")
        except RuntimeError:
            R("getHeader", "RuntimeError")
        try:
            old.rewrite_ruri("sip:x@example.com")
            R("rewrite", "no error")
        except RuntimeError:
            R("rewrite", "RuntimeError")
        R("ru", KSR.pv.get("$rU"))
        "#
    ));
    expect(
        &r,
        &[
            ("Type", "'RuntimeError'"),
            ("Method", "'RuntimeError'"),
            ("RURI", "'RuntimeError'"),
            ("src_address", "'RuntimeError'"),
            ("getHeader", "'RuntimeError'"),
            ("rewrite", "'RuntimeError'"),
            ("ru", "'bob'"),
        ],
    );
}

// ------------------------------------------------------------------------------------------------
// replies, drop, onsend, exit, exceptions

#[test]
fn second_final_reply_sends_nothing_and_returns_minus_one() {
    let k = server();
    let c = k.udp();
    let req = code_req(
        k,
        &c,
        r#"
        NOREPLY = True
        a = KSR.sl.sl_send_reply(404, "First")
        b = KSR.sl.sl_send_reply(200, "Second")
        c = KSR.sl.send_reply(500, "Third")
        KSR.info("SECOND-REPLY %s %r %r %r" % (KSR.pv.get("$ci"), a, b, c))
        "#,
    );
    let r = run_req(&c, &req);
    assert_eq!((r.code, r.reason.as_str()), (404, "First"));
    next_datagram_is_options_reply(k, &c);
    let needle = format!("SECOND-REPLY {} 1 -1 -1", req.get("Call-ID").unwrap());
    assert!(
        k.wait_log(&needle, Duration::from_secs(3)),
        "log:\n{}",
        k.log_tail(20)
    );
}

#[test]
fn provisional_then_final_reply() {
    let k = server();
    let c = k.udp();
    let req = code_req(
        k,
        &c,
        r#"
        NOREPLY = True
        R("p", KSR.sl.sl_send_reply(180, "Ringing"))
        R("f", KSR.sl.sl_send_reply(486, "Busy Here"))
        R("bad", KSR.sl.sl_send_reply(99, "Nope"))
        "#,
    );
    c.send(&req.build());
    let (d, _) = c.recv(REPLY_TIMEOUT).expect("180");
    let p = parse_response(&d);
    assert_eq!((p.code, p.reason.as_str()), (180, "Ringing"));
    let f = c.recv_final(REPLY_TIMEOUT).expect("486");
    assert_eq!((f.code, f.reason.as_str()), (486, "Busy Here"));
    // append_to_reply headers went into the first reply that followed them
    assert_eq!(x(&f, "p"), "1", "{}", f.text());
}

#[test]
fn set_drop_in_reply_route_stops_the_reply() {
    let k = server();
    let uas = Uas::new(k);
    let c = k.udp();
    let req = code_req(
        k,
        &c,
        &format!("NOREPLY = True\nKSR.forward_uri({:?})", uas.uri()),
    );
    c.send(&req.build());
    let f = uas.recv(k, req.get("Call-ID").unwrap());
    // a 183 the route drops, then a 200 it lets through: the 200 is the first thing the client sees
    let dropped = make_response(&f, 183, "Session Progress", "uas", &[("X-Drop-Reply", "1")]);
    uas.c.sock.send_to(&dropped, k.sip_addr()).unwrap();
    let ok = make_response(&f, 200, "OK", "uas", &[]);
    uas.c.sock.send_to(&ok, k.sip_addr()).unwrap();
    let (d, _) = c
        .recv(REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("no reply; log:\n{}", k.log_tail(20)));
    let r = parse_response(&d);
    assert_eq!(r.code, 200, "the dropped 183 never arrives: {}", r.text());
    assert!(k
        .log()
        .contains(&format!("REPLY-DROPPED {}", req.get("Call-ID").unwrap())));
}

#[test]
fn onsend_route_runs_for_forwarded_requests_and_set_drop_stops_the_send() {
    let k = server();
    let uas = Uas::new(k);
    let c = k.udp();
    let code = format!(
        r#"
        NOREPLY = True
        KSR.setflag(7)
        R("first", KSR.forward_uri({uri:?}))
        KSR.resetflag(7)
        KSR.hdr.append("X-Second: yes\r\n")
        R("second", KSR.forward_uri({uri:?}))
        KSR.sl.sl_send_reply(200, "OK")
        "#,
        uri = uas.uri()
    );
    let req = code_req(k, &c, &code);
    let r = run_req(&c, &req);
    expect(&r, &[("first", "1"), ("second", "1")]);
    let cid = req.get("Call-ID").unwrap();
    let f = uas.recv(k, cid);
    assert_eq!(
        f.header("X-Second"),
        Some("yes"),
        "the first send was dropped by ksr_onsend_route; the first to arrive is the second:\n{}",
        f.text()
    );
    assert!(k.wait_log(&format!("ONSEND {cid}"), Duration::from_secs(3)));
    assert_eq!(
        k.log_count(&format!("ONSEND {cid}")),
        2,
        "onsend ran for both sends"
    );
}

#[test]
fn ksr_x_exit_ends_the_route_quietly() {
    let k = server();
    let c = k.udp();
    let req = code_req(
        k,
        &c,
        r#"
        KSR.sl.sl_send_reply(202, "Exited")
        KSR.x.exit()
        KSR.info("AFTER-EXIT " + KSR.pv.get("$ci"))
        "#,
    );
    let r = run_req(&c, &req);
    assert_eq!((r.code, r.reason.as_str()), (202, "Exited"));
    next_datagram_is_options_reply(k, &c);
    let cid = req.get("Call-ID").unwrap();
    let log = k.log();
    assert!(
        !log.contains(&format!("AFTER-EXIT {cid}")),
        "code after exit() ran"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains(cid) && l.contains("exception")),
        "exit() is not an exception:\n{log}"
    );
    // sys.exit() too, and with nothing sent no reply goes out
    let c = k.udp();
    let req = code_req(k, &c, "sys.exit()");
    c.send(&req.build());
    next_datagram_is_options_reply(k, &c);
}

#[test]
fn wrong_argument_types_raise_type_error() {
    let r = run(r#"
        def t(name, f, *a):
            try:
                f(*a)
                R(name, "no error")
            except TypeError:
                R(name, "TypeError")
        t("seti_str", KSR.pv.seti, "$var(x)", "1")
        t("sets_int", KSR.pv.sets, "$var(x)", 1)
        t("reply_str_code", KSR.sl.sl_send_reply, "200", "OK")
        t("append_int", KSR.hdr.append, 5)
        t("get_none", KSR.pv.get, None)
        t("too_few", KSR.pv.get)
        t("too_many", KSR.is_myself, "a", "b")
        t("setflag_float", KSR.setflag, 1.5)
        t("core_str", KSR.info, 3)
        t("kx_def_int", KSR.kx.get_def, 1)
        t("setflag_bool", KSR.setflag, True)
    "#);
    expect(
        &r,
        &[
            ("seti_str", "'TypeError'"),
            ("sets_int", "'TypeError'"),
            ("reply_str_code", "'TypeError'"),
            ("append_int", "'TypeError'"),
            ("get_none", "'TypeError'"),
            ("too_few", "'TypeError'"),
            ("too_many", "'TypeError'"),
            ("setflag_float", "'TypeError'"),
            ("core_str", "'TypeError'"),
            ("kx_def_int", "'TypeError'"),
            // INT parameters accept True/False (app_python3 master)
            ("setflag_bool", "'no error'"),
        ],
    );
    // uncaught, it is an exception in the route: the default on_exception answers 500
    let r = run("KSR.sl.sl_send_reply('200', 'OK')");
    assert_eq!(
        (r.code, r.reason.as_str()),
        (500, "Server Internal Error"),
        "{}",
        r.text()
    );
}

#[test]
fn int_returns_are_truthy_even_when_negative() {
    // KEMI INT -1 is a Python int, and truthy: scripts must compare (`> 0`), not test truthiness
    let r = run(r#"
        rc = KSR.hdr.is_present("X-None")
        R("rc", rc)
        R("type", type(rc).__name__)
        R("truthy", bool(rc))
        b = KSR.is_myself("sip:example.net")
        R("b", b)
        R("btype", type(b).__name__)
        R("none", KSR.info("x"))
    "#);
    expect(
        &r,
        &[
            ("rc", "-1"),
            ("type", "'int'"),
            ("truthy", "True"),
            ("b", "False"),
            ("btype", "'bool'"),
            ("none", "None"),
        ],
    );
}

#[test]
fn child_init_received_rank_one() {
    let r = run("R('ranks', RANKS)");
    expect(&r, &[("ranks", "[1]")]);
}

#[test]
fn retransmission_gets_the_identical_reply_without_running_python() {
    let k = server();
    let c = k.udp();
    let req = code_req(k, &c, "R('n', 1)\nKSR.sl.sl_send_reply(201, 'Made')");
    let raw = req.build();
    c.send(&raw);
    let (first, _) = c.recv(REPLY_TIMEOUT).expect("reply");
    c.send(&raw);
    let (second, _) = c.recv(REPLY_TIMEOUT).expect("reply to the retransmission");
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second),
        "identical bytes"
    );
    assert_eq!(parse_response(&first).code, 201);
    // a barrier request on the same worker: once its run is logged, any run of the
    // retransmission would have been logged before it
    let b = run("R('barrier', 1)");
    let bcid = b.header("call-id").unwrap().to_string();
    assert!(k.wait_log(&format!("ROUTE-RUN {bcid}"), Duration::from_secs(3)));
    let cid = req.get("Call-ID").unwrap();
    assert_eq!(
        k.log_count(&format!("ROUTE-RUN {cid}")),
        1,
        "route ran once"
    );
}

// ------------------------------------------------------------------------------------------------
// other script styles

#[test]
fn app_python3s_style_module_level_functions_without_msg() {
    let route = r#"import KSR

COUNT = [0]

def ksr_request_route():
    COUNT[0] += 1
    KSR.hdr.append_to_reply("X-Style: functions\r\n")
    KSR.hdr.append_to_reply("X-Count: %d\r\n" % COUNT[0])
    KSR.hdr.append_to_reply("X-Method: %s\r\n" % KSR.pv.get("$rm"))
    KSR.sl.sl_send_reply(200, "OK")
    return 1
"#;
    let k = Ksrd::start(route, "");
    let c = k.udp();
    let r = c.request(&message(k.port, "bob", c.addr(), b"x").build());
    assert_eq!(r.code, 200, "{}", r.text());
    assert_eq!(r.header("X-Style"), Some("functions"));
    assert_eq!(r.header("X-Method"), Some("MESSAGE"));
    let n: u32 = r.header("X-Count").unwrap().parse().unwrap();
    assert!(n >= 1);
    let r = c.request(&message(k.port, "bob", c.addr(), b"y").build());
    assert_eq!(
        r.header("X-Count"),
        Some((n + 1).to_string().as_str()),
        "module state persists"
    );
}
