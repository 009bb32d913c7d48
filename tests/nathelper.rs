//! nathelper over real sockets: nat_uac_test's flag bits, Contact/R-URI alias handling, SDP
//! rewriting with a correct Content-Length, fix_nated_register + lookup, and NAT keepalives
//! (OPTIONS and 4-byte pings, keepalive_timeout). Semantics from Kamailio's nathelper.c.
mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

/// The route: X-Do picks the function under test; results come back in reply headers, or the
/// request is forwarded (statelessly) to $du so the test sees what ksrd sent.
const ROUTE: &str = r#"
import KSR

def mod_init():
    return R()

class R:
    def ksr_request_route(self, msg):
        do = KSR.hdr.get("X-Do") or ""
        if do == "test":
            bits = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
            du = KSR.hdr.get("X-Du")
            if du:
                KSR.setdsturi(du)
            res = ",".join("%d:%d" % (b, KSR.nathelper.nat_uac_test(b)) for b in bits)
            KSR.hdr.append_to_reply("X-Nat: %s\r\n" % res)
            KSR.hdr.append_to_reply("X-1918: %d/%d/%d\r\n" % (
                KSR.nathelper.is_rfc1918("192.168.0.103"),
                KSR.nathelper.is_rfc1918("8.8.8.8"),
                KSR.nathelper.is_rfc1918("100.64.1.1")))
            KSR.hdr.append_to_reply("X-First-Hop: %d\r\n" % KSR.siputils.is_first_hop())
            KSR.sl.sl_send_reply(200, "OK")
            return 1
        if do == "register":
            if KSR.nathelper.nat_uac_test(19) > 0:
                KSR.nathelper.fix_nated_register()
                KSR.setbflag(6)
                if KSR.hdr.get("X-Sipping"):
                    KSR.setbflag(7)
            KSR.registrar.save("location", 0)
            return 1
        if do == "call":
            if KSR.registrar.lookup("location") < 0:
                KSR.sl.sl_send_reply(404, "Not Found")
                return 1
            KSR.tm.t_relay()
            return 1
        if do == "save-fixed":
            KSR.nathelper.fix_nated_contact()
            KSR.registrar.save("location", 0)
            return 1
        # The rest forward to X-Du after the edit, so the test reads the result.
        rc = 0
        if do == "fix_contact":
            rc = KSR.nathelper.fix_nated_contact()
            rc2 = KSR.nathelper.fix_nated_contact()
            KSR.hdr.append("X-Twice: %d\r\n" % rc2)
        elif do == "alias":
            rc = KSR.nathelper.set_contact_alias()
        elif do == "alias_trim":
            rc = KSR.nathelper.set_contact_alias_trim()
        elif do == "add_alias":
            rc = KSR.nathelper.add_contact_alias()
        elif do == "add_alias_addr":
            rc = KSR.nathelper.add_contact_alias_addr("2001:db8::7", "5070", "tcp")
        elif do == "ruri_alias":
            rc = KSR.nathelper.handle_ruri_alias()
            KSR.hdr.append("X-Du-After: %s\r\n" % KSR.pv.get("$du"))
            KSR.forward()
            return 1
        elif do == "ruri_alias_last":
            rc = KSR.nathelper.handle_ruri_alias_mode(1)
            KSR.hdr.append("X-Du-After: %s\r\n" % KSR.pv.get("$du"))
            KSR.forward()
            return 1
        elif do == "sdp":
            rc = KSR.nathelper.fix_nated_sdp(int(KSR.hdr.get("X-Level")))
        elif do == "sdp_ip":
            rc = KSR.nathelper.fix_nated_sdp_ip(2, "203.0.113.50")
        elif do == "rcv":
            rc = KSR.nathelper.add_rcv_param(int(KSR.hdr.get("X-Upos")))
        elif do == "alias_pv":
            rc = KSR.nathelper.set_alias_to_pv("$var(a)")
            KSR.hdr.append("X-Alias: %s\r\n" % KSR.pv.get("$var(a)"))
        KSR.hdr.append("X-Rc: %d\r\n" % rc)
        KSR.setdsturi(KSR.hdr.get("X-Du"))
        KSR.forward()
        return 1
"#;

fn start(extra: &str) -> Ksrd {
    Ksrd::start(
        ROUTE,
        &format!(
            "[modparam.registrar]\nreceived_avp = \"$avp(RECEIVED)\"\n\
             [modparam.nathelper]\nreceived_avp = \"$avp(RECEIVED)\"\n{extra}"
        ),
    )
}

/// A phone on 127.0.0.2 that claims to be 192.168.0.103 in Via, Contact and SDP.
fn natted(k: &Ksrd, method: &str, do_: &str) -> (UdpClient, Req) {
    let c = UdpClient::bind("127.0.0.2:0", k.port);
    let ruri = format!("sip:bob@127.0.0.1:{}", k.port);
    let r = Req::new(method, &ruri, c.addr())
        .set(
            "Via",
            &format!("SIP/2.0/UDP 192.168.0.103:5060;branch={};rport", branch()),
        )
        .set(
            "Contact",
            "<sip:alice@192.168.0.103:5060;transport=udp>;expires=60",
        )
        .set("X-Do", do_);
    (c, r)
}

const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 192.168.0.103\r\ns=-\r\nc=IN IP4 192.168.0.103\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 192.168.0.103\r\nm=video 4002 RTP/AVP 96\r\n";

fn results(reply: &SipMsg) -> Vec<(i64, i64)> {
    reply
        .header("X-Nat")
        .unwrap_or_else(|| panic!("no X-Nat: {}", reply.text()))
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once(':').unwrap();
            (k.parse().unwrap(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn nat_uac_test_bits_detect_a_natted_phone_and_pass_a_clean_one() {
    let k = start("");
    let (c, r) = natted(&k, "INVITE", "test");
    let reply = c.request(&r.body("application/sdp", SDP).build());
    assert_eq!(reply.code, 200, "{}", reply.text());
    // 1 Contact private, 2 Via != source, 4 Via private, 8 SDP private, 16 source port != Via
    // port, 32 source private (127.0.0.2 is not), 64 WebSocket (no), 128 Contact port !=
    // source port, 256 SDP c= != source, 512 no $du → the R-URI: same target.
    assert_eq!(
        results(&reply),
        [
            (1, 1),
            (2, 1),
            (4, 1),
            (8, 1),
            (16, 1),
            (32, -1),
            (64, -1),
            (128, 1),
            (256, 1),
            (512, -1)
        ]
    );
    assert_eq!(reply.header("X-1918"), Some("1/-1/1"));
    assert_eq!(reply.header("X-First-Hop"), Some("1"));

    // A phone that tells the truth about where it is.
    let c = UdpClient::bind("127.0.0.2:0", k.port);
    let a = c.addr();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let r = Req::new("INVITE", &format!("sip:bob@127.0.0.1:{}", k.port), a)
        .set("Contact", &format!("<sip:alice@{a}>"))
        .set("X-Do", "test")
        .set("X-Du", &format!("sip:127.0.0.1:{}", k.port + 1))
        .body("application/sdp", sdp.as_bytes());
    let reply = c.request(&r.build());
    let res = results(&reply);
    assert!(
        res.iter().all(|(b, v)| *v == -1 || *b == 512),
        "clean phone seen as NATed: {res:?}"
    );
    // 512: $du points at another port than the R-URI.
    assert!(res.contains(&(512, 1)), "{res:?}");
}

/// The UAS the route forwards to (X-Du), and what arrived there.
fn forwarded(k: &Ksrd, do_: &str, f: impl FnOnce(Req) -> Req) -> (SipMsg, std::net::SocketAddr) {
    let uas = UdpClient::bind("127.0.0.1:0", k.port);
    let (c, r) = natted(k, "INVITE", do_);
    let r = f(r.set("X-Du", &format!("sip:{}", uas.addr())));
    c.send(&r.build());
    let got = uas
        .recv_call(r.get("Call-ID").unwrap(), REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("{do_}: nothing forwarded; log:\n{}", k.log_tail(20)));
    (got, c.addr())
}

#[test]
fn fix_nated_contact_puts_the_source_address_in_the_contact_once() {
    let k = start("");
    let (m, src) = forwarded(&k, "fix_contact", |r| {
        r.set(
            "Contact",
            "\"Al, ice\" <sip:alice@192.168.0.103:5062;maddr=192.168.0.1;lr>;expires=60",
        )
    });
    assert_eq!(m.header("X-Rc"), Some("1"));
    assert_eq!(
        m.header("X-Twice"),
        Some("-1"),
        "second call refused as in Kamailio"
    );
    assert_eq!(
        m.header("Contact"),
        Some(format!("\"Al, ice\" <sip:alice@{src};lr>;expires=60").as_str())
    );
}

#[test]
fn set_contact_alias_appends_the_source_and_brackets_the_uri() {
    let k = start("");
    let (m, src) = forwarded(&k, "alias", |r| {
        r.set("Contact", "sip:alice@192.168.0.103:5060;expires=60")
    });
    assert_eq!(m.header("X-Rc"), Some("1"));
    assert_eq!(
        m.header("Contact"),
        Some(
            format!(
                "<sip:alice@192.168.0.103:5060;alias={}~{}~1>;expires=60",
                src.ip(),
                src.port()
            )
            .as_str()
        )
    );
    let (m, src) = forwarded(&k, "alias_trim", |r| {
        r.set(
            "Contact",
            "<sip:alice@192.168.0.103;alias=10.0.0.1~5060~1;ob>",
        )
    });
    assert_eq!(
        m.header("Contact"),
        Some(
            format!(
                "<sip:alice@192.168.0.103;ob;alias={}~{}~1>",
                src.ip(),
                src.port()
            )
            .as_str()
        )
    );
}

#[test]
fn add_contact_alias_only_when_needed_and_with_explicit_addresses() {
    let k = start("");
    let (m, src) = forwarded(&k, "add_alias", |r| {
        r.set("Contact", "<sip:alice@192.168.0.103:5060;ob>")
    });
    assert_eq!(m.header("X-Rc"), Some("1"));
    assert_eq!(
        m.header("Contact"),
        Some(
            format!(
                "<sip:alice@192.168.0.103:5060;alias={}~{}~1;ob>",
                src.ip(),
                src.port()
            )
            .as_str()
        )
    );
    // Contact already is the source address: 2, nothing changed.
    let uas = UdpClient::bind("127.0.0.1:0", k.port);
    let c = UdpClient::bind("127.0.0.2:0", k.port);
    let a = c.addr();
    let r = Req::new("INVITE", &format!("sip:bob@127.0.0.1:{}", k.port), a)
        .set("Contact", &format!("<sip:alice@{a}>"))
        .set("X-Do", "add_alias")
        .set("X-Du", &format!("sip:{}", uas.addr()));
    c.send(&r.build());
    let m = uas
        .recv_call(r.get("Call-ID").unwrap(), REPLY_TIMEOUT)
        .unwrap();
    assert_eq!(m.header("X-Rc"), Some("2"));
    assert_eq!(
        m.header("Contact"),
        Some(format!("<sip:alice@{a}>").as_str())
    );
    let (m, _) = forwarded(&k, "add_alias_addr", |r| {
        r.set("Contact", "sip:alice@192.168.0.103")
    });
    assert_eq!(m.header("X-Rc"), Some("1"));
    assert_eq!(
        m.header("Contact"),
        Some("<sip:alice@192.168.0.103;alias=[2001:db8::7]~5070~2>")
    );
}

#[test]
fn handle_ruri_alias_sends_to_the_alias_and_removes_it() {
    let k = start("");
    let uas = UdpClient::bind("127.0.0.1:0", k.port);
    let c = UdpClient::bind("127.0.0.2:0", k.port);
    let u = uas.addr();
    let ruri = format!(
        "sip:bob@192.168.0.9:5060;ob;alias={}~{}~1;x=y",
        u.ip(),
        u.port()
    );
    let r = Req::new("BYE", &ruri, c.addr()).set("X-Do", "ruri_alias");
    c.send(&r.build());
    let m = uas
        .recv_call(r.get("Call-ID").unwrap(), REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("not sent to the alias address; log:\n{}", k.log_tail(20)));
    assert_eq!(m.start_line, "BYE sip:bob@192.168.0.9:5060;ob;x=y SIP/2.0");
    assert_eq!(m.header("X-Du-After"), Some(format!("sip:{u}").as_str()));

    // Two aliases: mode 1 takes the last.
    let ruri = format!(
        "sip:bob@192.168.0.9;alias=10.9.9.9~1~1;alias={}~{}~1",
        u.ip(),
        u.port()
    );
    let r = Req::new("BYE", &ruri, c.addr()).set("X-Do", "ruri_alias_last");
    c.send(&r.build());
    let m = uas
        .recv_call(r.get("Call-ID").unwrap(), REPLY_TIMEOUT)
        .unwrap();
    assert_eq!(
        m.start_line,
        "BYE sip:bob@192.168.0.9;alias=10.9.9.9~1~1 SIP/2.0"
    );
}

fn content_length_matches(m: &SipMsg) {
    let cl: usize = m.header("Content-Length").unwrap().trim().parse().unwrap();
    assert_eq!(cl, m.body.len(), "Content-Length vs body:\n{}", m.text());
}

#[test]
fn fix_nated_sdp_rewrites_media_addresses_and_keeps_content_length_right() {
    let k = start("");
    let (m, src) = forwarded(&k, "sdp", |r| {
        r.set("X-Level", "3").body("application/sdp", SDP)
    });
    assert_eq!(m.header("X-Rc"), Some("1"));
    let body = String::from_utf8(m.body.clone()).unwrap();
    let ip = src.ip().to_string();
    assert!(body.contains(&format!("c=IN IP4 {ip}\r\n")), "{body}");
    assert!(
        body.contains(&format!("a=rtcp:4001 IN IP4 {ip}\r\n")),
        "{body}"
    );
    assert!(
        body.contains("o=- 1 1 IN IP4 192.168.0.103\r\n"),
        "o= only with flag 8: {body}"
    );
    assert_eq!(
        body.matches("a=direction:active").count(),
        2,
        "one per m= section: {body}"
    );
    assert!(body.contains("a=oldmediaip:192.168.0.103"), "{body}");
    assert!(body.ends_with("\r\n"), "{body:?}");
    content_length_matches(&m);

    let (m, _) = forwarded(&k, "sdp", |r| {
        r.set("X-Level", "8").body("application/sdp", SDP)
    });
    let body = String::from_utf8(m.body.clone()).unwrap();
    assert!(body.contains(&format!("o=- 1 1 IN IP4 {ip}\r\n")), "{body}");
    content_length_matches(&m);

    let (m, _) = forwarded(&k, "sdp_ip", |r| r.body("application/sdp", SDP));
    let body = String::from_utf8(m.body.clone()).unwrap();
    assert!(body.contains("c=IN IP4 203.0.113.50\r\n"), "{body}");
    content_length_matches(&m);

    // Nothing private to change: 2.
    let (m, _) = forwarded(&k, "sdp", |r| {
        r.set("X-Level", "2").body(
            "application/sdp",
            b"v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 1 RTP/AVP 0\r\n",
        )
    });
    assert_eq!(m.header("X-Rc"), Some("2"));
}

#[test]
fn add_rcv_param_marks_every_contact() {
    let k = start("");
    let (m, src) = forwarded(&k, "rcv", |r| {
        r.set("X-Upos", "0").set(
            "Contact",
            "<sip:a@192.168.0.103>;expires=60, sip:b@192.168.0.104;q=0.5",
        )
    });
    assert_eq!(
        m.header("Contact"),
        Some(format!("<sip:a@192.168.0.103>;expires=60;received=\"sip:{src}\", sip:b@192.168.0.104;q=0.5;received=\"sip:{src}\"").as_str())
    );
    let (m, src) = forwarded(&k, "rcv", |r| r.set("X-Upos", "1"));
    assert_eq!(
        m.header("Contact"),
        Some(
            format!("<sip:alice@192.168.0.103:5060;transport=udp;received=sip:{src}>;expires=60")
                .as_str()
        )
    );
    let (m, _) = forwarded(&k, "alias_pv", |r| {
        r.set("Contact", "<sip:a@192.168.0.103;alias=198.51.100.4~5099~2>")
    });
    assert_eq!(
        m.header("X-Alias"),
        Some("sip:198.51.100.4:5099;transport=tcp")
    );
}

fn register(k: &Ksrd, c: &UdpClient, user: &str, sipping: bool) {
    let ruri = format!("sip:127.0.0.1:{}", k.port);
    let mut r = Req::new("REGISTER", &ruri, c.addr())
        .set(
            "Via",
            &format!("SIP/2.0/UDP 192.168.0.103:5060;branch={};rport", branch()),
        )
        .set("From", &format!("<sip:{user}@localhost>;tag={}", uniq("t")))
        .set("To", &format!("<sip:{user}@localhost>"))
        .set("Contact", &format!("<sip:{user}@192.168.0.103:5060>"))
        .set("Expires", "60")
        .set("X-Do", "register");
    if sipping {
        r = r.set("X-Sipping", "1");
    }
    let reply = c.request(&r.build());
    assert_eq!(reply.code, 200, "{}", reply.text());
}

#[test]
fn fix_nated_register_stores_the_real_address_and_lookup_uses_it() {
    let k = start("");
    let phone = UdpClient::bind("127.0.0.2:0", k.port);
    register(&k, &phone, "alice", false);
    let dump = k.rpc("ul.dump", json!([]));
    let s = dump.to_string();
    assert!(
        s.contains(&format!("sip:{}", phone.addr())) && s.contains("192.168.0.103"),
        "received address stored with the private contact: {s}"
    );
    // A call to alice reaches the phone's real address, with the private Contact as R-URI.
    let caller = UdpClient::bind("127.0.0.3:0", k.port);
    let r = Req::new(
        "INVITE",
        &format!("sip:alice@127.0.0.1:{}", k.port),
        caller.addr(),
    )
    .set("X-Do", "call");
    caller.send(&r.build());
    let got = phone
        .recv_call(r.get("Call-ID").unwrap(), REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("INVITE did not reach the phone; log:\n{}", k.log_tail(20)));
    assert!(
        got.start_line
            .starts_with("INVITE sip:alice@192.168.0.103:5060 "),
        "{}",
        got.start_line
    );

    // fix_nated_contact before save: the rewritten Contact is what gets stored.
    let c = UdpClient::bind("127.0.0.4:0", k.port);
    let r = Req::new("REGISTER", &format!("sip:127.0.0.1:{}", k.port), c.addr())
        .set("From", &format!("<sip:carol@localhost>;tag={}", uniq("t")))
        .set("To", "<sip:carol@localhost>")
        .set("Contact", "<sip:carol@10.1.1.1:5060>")
        .set("X-Do", "save-fixed");
    let reply = c.request(&r.build());
    assert_eq!(reply.code, 200, "{}", reply.text());
    let s = k.rpc("ul.dump", json!([])).to_string();
    assert!(s.contains(&format!("sip:carol@{}", c.addr())), "{s}");
}

#[test]
fn natping_sends_options_and_udp_pings_and_expires_silent_phones() {
    let k = start(
        "natping_interval = 1\nping_nated_only = 1\nsipping_bflag = 7\n\
         sipping_from = \"sip:pinger@ksrd.test\"\nkeepalive_timeout = 3\n\
         [modparam.usrloc]\nnat_bflag = 6\n",
    );
    // alice answers the OPTIONS pings; bob gets them but stays silent; carol gets 4-byte pings.
    let alice = UdpClient::bind("127.0.0.2:0", k.port);
    let bob = UdpClient::bind("127.0.0.3:0", k.port);
    let carol = UdpClient::bind("127.0.0.4:0", k.port);
    register(&k, &alice, "alice", true);
    register(&k, &bob, "bob", true);
    register(&k, &carol, "carol", false);

    let mut alice_pings = 0;
    let mut carol_pings = 0;
    let registered = |user: &str| {
        k.rpc("ul.dump", json!([]))
            .to_string()
            .contains(&format!("{user}@192.168.0.103"))
    };
    let gone = wait_until(Duration::from_secs(15), || {
        if let Some((data, from)) = alice.recv(Duration::from_millis(100)) {
            let m = SipMsg::parse(&data).expect("a SIP ping");
            assert!(
                m.start_line
                    .starts_with("OPTIONS sip:alice@192.168.0.103:5060 "),
                "{}",
                m.start_line
            );
            assert!(m
                .header("From")
                .unwrap()
                .starts_with("sip:pinger@ksrd.test;tag="));
            alice_pings += 1;
            let ok = make_response(&m, 200, "OK", "pt", &[]);
            alice.sock.send_to(&ok, from).unwrap();
        }
        if let Some((data, _)) = carol.recv(Duration::from_millis(10)) {
            assert_eq!(data, [0, 0, 0, 0], "carol has no sipping flag: 4-byte ping");
            carol_pings += 1;
        }
        !registered("bob")
    });
    assert!(
        gone,
        "bob never answered but stayed registered; log:\n{}",
        k.log_tail(30)
    );
    assert!(alice_pings >= 2, "alice pinged {alice_pings} times");
    assert!(carol_pings >= 2, "carol pinged {carol_pings} times");
    assert!(
        registered("alice"),
        "alice answered her pings and must stay registered"
    );
    assert!(registered("carol"), "4-byte pings expect no answer");
    // The replies were absorbed, not routed: no reply route ran, nothing forwarded.
    assert!(
        !k.log().contains("dropping invalid reply"),
        "{}",
        k.log_tail(20)
    );

    // Pinging can be switched off over RPC.
    k.rpc("nathelper.enable_ping", json!([0]));
    while alice.recv(Duration::from_millis(1500)).is_some() {}
    alice.expect_silence(Duration::from_millis(2500));
}

#[test]
fn config_errors_name_the_nathelper_key() {
    for (toml, key) in [
        (
            "[modparam.nathelper]\nsipping_bflag = 7\n",
            "modparam.nathelper.sipping_from",
        ),
        (
            "[modparam.nathelper]\nsipping_bflag = 70\n",
            "modparam.nathelper.sipping_bflag",
        ),
        (
            "[modparam.nathelper]\nnat_addr_mode = 3\n",
            "modparam.nathelper.nat_addr_mode",
        ),
        ("[modparam.nathelper]\nno_such_param = 1\n", "no_such_param"),
    ] {
        assert_config_error(toml, key);
    }
}
