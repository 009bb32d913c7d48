//! registrar + usrloc against the real ksrd: REGISTER with several contacts
//! and q-values, refresh and Call-ID/CSeq ordering, removal (expires=0, `Contact: *`), 423 for a
//! too short interval, max_contacts, lookup into the R-URI and branches, and the ul.* RPC shapes.
//! Every scenario runs on three stores: memory, SQLite write-through, PostgreSQL DB-only.
mod common;
use common::*;
use std::time::Duration;

const ROUTE: &str = r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS() and KSR.pv.get("$rU") == "fetch":
            rc = KSR.registrar.reg_fetch_contacts("location", KSR.pv.get("$hdr(X-AoR)"), "p")
            out = [("Rc", rc)]
            for n in ("count", "aor", "(ulc(p=>addr)[0])", "(ulc(p=>addr)[1])",
                      "(ulc(p=>q)[0])", "(ulc(p=>expires)[0])", "(ulc(p=>callid)[1])",
                      "(ulc(p=>addr)[5])"):
                pv = "$" + n if n.startswith("(") else "$ulc(p=>" + n + ")"
                out.append((n, KSR.pv.get(pv)))
            out.append(("rget", KSR.registrar.reg_ulc_rget("p", "count")))
            out.append(("cget", KSR.registrar.reg_ulc_cget("p", "addr", 1)))
            KSR.registrar.reg_free_contacts("p")
            out.append(("freed", KSR.pv.get("$ulc(p=>count)")))
            for i, (n, v) in enumerate(out):
                KSR.hdr.append_to_reply("X-%d: %s=%r\r\n" % (i, n, v))
            KSR.sl.send_reply(200, "Fetched")
            return 1
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

/// Where usrloc keeps the bindings: every test runs on each.
#[derive(Clone, Copy)]
enum Store {
    /// db_mode 0.
    Memory,
    /// db_mode 1 on the harness's SQLite file.
    SqliteWriteThrough,
    /// db_mode 3 on a fresh PostgreSQL database.
    PostgresDbOnly,
}

fn start(store: Store, extra: &str) -> Ksrd {
    let (top, mode) = match store {
        Store::Memory => (String::new(), 0),
        Store::SqliteWriteThrough => (String::new(), 1),
        Store::PostgresDbOnly => {
            let (pg, name) = common::pg::shared_db("registrar");
            let url = pg.url(&name);
            db_init(&url);
            (format!("db_url = \"{url}\"\n"), 3)
        }
    };
    let extra = match extra.find("[modparam.usrloc]\n") {
        Some(i) => {
            let at = i + "[modparam.usrloc]\n".len();
            format!("{}db_mode = {mode}\n{}", &extra[..at], &extra[at..])
        }
        None => format!("{extra}\n[modparam.usrloc]\ndb_mode = {mode}\n"),
    };
    Ksrd::start(ROUTE, &format!("{top}{extra}"))
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

fn register_two_contacts_then_refresh_remove_and_star(store: Store) {
    let k = start(store, "");
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

fn too_short_interval_gets_423_with_min_expires(store: Store) {
    let k = start(store, "[modparam.registrar]\nmin_expires = 60\n");
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
    let k2 = start(
        store,
        "[modparam.registrar]\nmin_expires = 60\nmin_expires_mode = 0\n",
    );
    let c2 = k2.udp();
    let m = c2.request(
        &register(&k2, &c2, "bob", &["<sip:bob@192.0.2.9>"])
            .set("Expires", "10")
            .build(),
    );
    assert_eq!(m.code, 200);
    assert_eq!(bindings(&m)[0].1, 60, "{}", m.text());
}

fn max_contacts_refuses_one_more_and_keeps_the_others(store: Store) {
    let k = start(store, "[modparam.registrar]\nmax_contacts = 1\n");
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

fn lookup_forks_to_every_contact_and_unknown_users_get_404(store: Store) {
    let (p1, p2) = (SipPeer::new(), SipPeer::new());
    let k = start(store, "");
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

fn expired_bindings_disappear_and_ul_rpc_adds_and_removes(store: Store) {
    let k = start(
        store,
        "[modparam.registrar]\nmin_expires = 0\n[modparam.usrloc]\ntimer_interval = 1\n",
    );
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

/// `reg_fetch_contacts` + `$ulc` (registrar/regpv.c): the bindings of an AoR, q-ordered, read
/// attribute by attribute; nothing after `reg_free_contacts`; `-1` and $null for an unknown AoR.
fn fetched_contacts_read_through_ulc(store: Store) {
    let k = start(store, "");
    let c = k.udp();
    let r = register(
        &k,
        &c,
        "alice",
        &["<sip:alice@192.0.2.1>;q=0.5", "<sip:alice@192.0.2.2>;q=1"],
    )
    .set("Expires", "600");
    assert_eq!(c.request(&r.build()).code, 200);
    let fetch = |aor: &str| {
        let m = c.request(
            &Req::new(
                "OPTIONS",
                &format!("sip:fetch@127.0.0.1:{}", k.port),
                c.addr(),
            )
            .set("X-AoR", aor)
            .build(),
        );
        assert_eq!(m.code, 200, "{}", m.text());
        (0..20)
            .map_while(|i| m.header(&format!("x-{i}")).map(str::to_string))
            .collect::<Vec<_>>()
    };
    let got = fetch("sip:alice@127.0.0.1");
    let expires: i64 = got[6]
        .strip_prefix("(ulc(p=>expires)[0])=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{got:?}"));
    let left = expires - ksrd::modules::usrloc::now();
    assert!((590..=600).contains(&left), "absolute expiry: {got:?}");
    let callid = r.get("Call-ID").unwrap();
    assert_eq!(
        got,
        [
            "Rc=1".to_string(),
            "count=2".into(),
            "aor='alice'".into(),
            "(ulc(p=>addr)[0])='sip:alice@192.0.2.2'".into(),
            "(ulc(p=>addr)[1])='sip:alice@192.0.2.1'".into(),
            "(ulc(p=>q)[0])=1000".into(),
            got[6].clone(),
            format!("(ulc(p=>callid)[1])='{callid}'"),
            "(ulc(p=>addr)[5])=None".into(),
            "rget=2".into(),
            "cget='sip:alice@192.0.2.1'".into(),
            "freed=None".into(),
        ]
    );
    let none = fetch("sip:nobody@127.0.0.1");
    assert_eq!(&none[..3], ["Rc=-1", "count=None", "aor=None"], "{none:?}");
    assert_eq!(none[9], "rget=0", "{none:?}");
}

/// Each scenario as a test per store.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $name() { super::$name(super::Store::Memory) } )*
        }
        mod sqlite_write_through {
            $( #[test] fn $name() { super::$name(super::Store::SqliteWriteThrough) } )*
        }
        mod postgres_db_only {
            $( #[test] fn $name() { super::$name(super::Store::PostgresDbOnly) } )*
        }
    };
}

on_every_store!(
    register_two_contacts_then_refresh_remove_and_star,
    too_short_interval_gets_423_with_min_expires,
    max_contacts_refuses_one_more_and_keeps_the_others,
    lookup_forks_to_every_contact_and_unknown_users_get_404,
    expired_bindings_disappear_and_ul_rpc_adds_and_removes,
    fetched_contacts_read_through_ulc,
);
