//! registrar + usrloc (memory, db_mode 0) against the real ksrd: REGISTER with several contacts
//! and q-values, refresh and Call-ID/CSeq ordering, removal (expires=0, `Contact: *`), 423 for a
//! too short interval, max_contacts, lookup into the R-URI and branches, and the ul.* RPC shapes.
mod common;
use common::*;
use std::time::Duration;

const ROUTE: &str = r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        if KSR.is_REGISTER():
            KSR.info("save rc=%d\n" % KSR.registrar.save("location", 0))
            return 1
        if KSR.tm.t_check_trans() == 0 or KSR.is_ACK():
            return 1
        reg = KSR.registrar.registered("location")
        rc = KSR.registrar.lookup("location")
        KSR.info("lookup rc=%d registered=%d\n" % (rc, reg))
        if rc < 0:
            KSR.sl.send_reply(404, "Not Found")
            return 1
        KSR.tm.t_relay()
        return 1
"#;

fn start(extra: &str) -> Ksrd {
    Ksrd::start(ROUTE, extra)
}

fn register(k: &Ksrd, c: &UdpClient, user: &str, contacts: &[&str]) -> Req {
    let mut r = Req::new("REGISTER", &format!("sip:127.0.0.1:{}", k.port), c.addr())
        .set("From", &format!("<sip:{user}@127.0.0.1>;tag=r1"))
        .set("To", &format!("<sip:{user}@127.0.0.1>"));
    for ct in contacts {
        r = r.add("Contact", ct);
    }
    r
}

/// The bound contact URIs and their expires, from a 200's Contact header(s).
fn bindings(m: &SipMsg) -> Vec<(String, u64)> {
    m.headers_all("contact")
        .iter()
        .flat_map(|h| h.split(", "))
        .map(|c| {
            let uri = c
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_string();
            let exp = param(c, "expires")
                .and_then(|e| e.parse().ok())
                .unwrap_or(0);
            (uri, exp)
        })
        .collect()
}

#[test]
fn register_two_contacts_then_refresh_remove_and_star() {
    let k = start("");
    let c = k.udp();
    let r = register(
        &k,
        &c,
        "alice",
        &[
            "<sip:alice@192.0.2.1:5060>;q=0.5",
            "<sip:alice@192.0.2.2:5060>;q=1.0;expires=120",
        ],
    )
    .set("Expires", "600");
    let ok = c.request(&r.build());
    assert_eq!(ok.code, 200, "{}", ok.text());
    let b = bindings(&ok);
    assert_eq!(b.len(), 2, "{}", ok.text());
    assert_eq!(
        b[0].0,
        "sip:alice@192.0.2.2:5060",
        "highest q first: {}",
        ok.text()
    );
    assert!(b[0].1 <= 120 && b[0].1 >= 118, "{b:?}");
    assert!(b[1].1 <= 600 && b[1].1 >= 598, "{b:?}");
    // ul.lookup shape (Kamailio ul_rpc.c).
    let l = k.rpc("ul.lookup", json!(["location", "alice"]));
    assert_eq!(l["result"]["AoR"], "alice", "{l}");
    let cs = l["result"]["Contacts"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["Contact"]["Q"], 1.0);
    assert_eq!(cs[0]["Contact"]["Call-ID"], r.get("Call-ID").unwrap());
    // The same REGISTER again (same Call-ID and CSeq) changes nothing.
    let again = c.request(&r.clone().next_transaction(1).build());
    assert_eq!(again.code, 200);
    // expires=0 on one contact removes it.
    let rm = register(&k, &c, "alice", &["<sip:alice@192.0.2.1:5060>;expires=0"])
        .set("Call-ID", r.get("Call-ID").unwrap())
        .next_transaction(2);
    let ok = c.request(&rm.build());
    assert_eq!(bindings(&ok).len(), 1, "{}", ok.text());
    // Contact: * needs Expires: 0.
    let star = register(&k, &c, "alice", &["*"]).set("Expires", "3600");
    assert_eq!(c.request(&star.build()).code, 400);
    let star = register(&k, &c, "alice", &["*"]).set("Expires", "0");
    let ok = c.request(&star.build());
    assert_eq!(ok.code, 200);
    assert!(bindings(&ok).is_empty(), "{}", ok.text());
    let l = k.rpc("ul.lookup", json!(["location", "alice"]));
    assert_eq!(
        l["error"]["message"], "AOR not found in location table",
        "{l}"
    );
}

#[test]
fn too_short_interval_gets_423_with_min_expires() {
    let k = start("[modparam.registrar]\nmin_expires = 60\n");
    let c = k.udp();
    let r = register(&k, &c, "bob", &["<sip:bob@192.0.2.9>"]).set("Expires", "10");
    let m = c.request(&r.build());
    assert_eq!(
        (m.code, m.reason.as_str()),
        (423, "Interval Too Brief"),
        "{}",
        m.text()
    );
    assert_eq!(m.header("min-expires"), Some("60"));
    // Kamailio's own behaviour on request: raise the interval instead.
    let k2 = start("[modparam.registrar]\nmin_expires = 60\nmin_expires_mode = 0\n");
    let c2 = k2.udp();
    let m = c2.request(
        &register(&k2, &c2, "bob", &["<sip:bob@192.0.2.9>"])
            .set("Expires", "10")
            .build(),
    );
    assert_eq!(m.code, 200);
    assert_eq!(bindings(&m)[0].1, 60, "{}", m.text());
}

#[test]
fn max_contacts_refuses_one_more_and_keeps_the_others() {
    let k = start("[modparam.registrar]\nmax_contacts = 1\n");
    let c = k.udp();
    assert_eq!(
        c.request(&register(&k, &c, "carol", &["<sip:carol@192.0.2.1>"]).build())
            .code,
        200
    );
    let m = c.request(&register(&k, &c, "carol", &["<sip:carol@192.0.2.2>"]).build());
    assert_eq!(m.code, 503, "{}", m.text());
    assert_eq!(
        m.header("p-registrar-error"),
        Some("Too many registered contacts")
    );
    let l = k.rpc("ul.lookup", json!(["location", "carol"]));
    assert_eq!(
        l["result"]["Contacts"].as_array().map(|a| a.len()),
        Some(1),
        "{l}"
    );
}

#[test]
fn lookup_forks_to_every_contact_and_unknown_users_get_404() {
    let (p1, p2) = (SipPeer::new(), SipPeer::new());
    let k = start("");
    let c = k.udp();
    let r = register(
        &k,
        &c,
        "dave",
        &[
            &format!("<{}>;q=0.2", p1.uri()),
            &format!("<{}>;q=0.9", p2.uri()),
        ],
    );
    assert_eq!(c.request(&r.build()).code, 200);
    let caller = SipPeer::new();
    let inv = Req::invite(&format!("sip:dave@127.0.0.1:{}", k.port), caller.addr());
    caller.send_to(&inv.build(), k.sip_addr());
    let i2 = p2
        .recv_method("INVITE", REPLY_TIMEOUT)
        .expect("INVITE at the q=0.9 contact");
    let i1 = p1
        .recv_method("INVITE", REPLY_TIMEOUT)
        .expect("INVITE at the q=0.2 contact (branch)");
    assert!(
        i2.text()
            .starts_with(&format!("INVITE {} SIP/2.0", p2.uri())),
        "{}",
        i2.text()
    );
    assert!(
        i1.text()
            .starts_with(&format!("INVITE {} SIP/2.0", p1.uri())),
        "{}",
        i1.text()
    );
    assert!(
        k.wait_log("lookup rc=1 registered=1", REPLY_TIMEOUT),
        "{}",
        k.log()
    );
    let nobody = Req::invite(&format!("sip:nobody@127.0.0.1:{}", k.port), caller.addr());
    caller.send_to(&nobody.build(), k.sip_addr());
    let m = caller.recv_final(REPLY_TIMEOUT).expect("404");
    assert_eq!(m.code, 404);
}

#[test]
fn expired_bindings_disappear_and_ul_rpc_adds_and_removes() {
    let k = start("[modparam.registrar]\nmin_expires = 0\n[modparam.usrloc]\ntimer_interval = 1\n");
    let c = k.udp();
    let r = register(&k, &c, "erin", &["<sip:erin@192.0.2.5>"]).set("Expires", "1");
    assert_eq!(c.request(&r.build()).code, 200);
    assert!(
        wait_until(Duration::from_secs(5), || k
            .rpc("ul.lookup", json!(["location", "erin"]))["error"]
            .is_object()),
        "binding did not expire"
    );
    let add = k.rpc(
        "ul.add",
        json!([
            "location",
            "frank",
            "sip:frank@192.0.2.7",
            3600,
            1.0,
            ".",
            0,
            0,
            4294967295u64
        ]),
    );
    assert_eq!(add["result"], json!({}), "{add}");
    let dump = k.rpc("ul.dump", json!([]));
    let domains = dump["result"]["Domains"].as_array().unwrap();
    let loc = &domains[0]["Domain"];
    assert_eq!(loc["Domain"], "location", "{dump}");
    assert_eq!(loc["AoRs"][0]["Info"]["AoR"], "frank", "{dump}");
    assert_eq!(
        loc["AoRs"][0]["Info"]["Contacts"][0]["Contact"]["Address"],
        "sip:frank@192.0.2.7"
    );
    assert_eq!(
        k.rpc("ul.rm", json!(["location", "frank"]))["result"],
        json!({})
    );
    assert!(k.rpc("ul.lookup", json!(["location", "frank"]))["error"].is_object());
}
