//! usrloc `db_mode` against real databases (SQLite files, a throwaway PostgreSQL): write-through
//! (1) writes every change before the 200 and the bindings survive a restart, so a call after
//! the restart reaches the phones; write-back (2) writes on `ul.flush` and at shutdown; DB-only
//! (3) reads and writes the table on every call; a database that is down makes a write-through
//! REGISTER fail with 500 (nothing half-stored) until it is back (Kamailio usrloc/urecord.c),
//! and a restart while idle costs no failed REGISTER.
mod common;
use common::pg::{self, PgCluster};
use common::*;
use ksrd::db::{Db, DbConfig, DbUrl, Location};
use std::time::Duration;

const ROUTE: &str = r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        if KSR.is_REGISTER():
            KSR.registrar.save("location", 0)
            return 1
        if KSR.tm.t_check_trans() == 0 or KSR.is_ACK():
            return 1
        if KSR.registrar.lookup("location") < 0:
            KSR.sl.send_reply(404, "Not Found")
            return 1
        KSR.tm.t_relay()
        return 1
"#;

fn start(db_url: &str, mode: u8) -> Ksrd {
    Ksrd::start(
        ROUTE,
        &format!("db_url = \"{db_url}\"\n[modparam.usrloc]\ndb_mode = {mode}\n"),
    )
}

/// The test's own handle on the database, to see what ksrd wrote.
struct Direct {
    rt: tokio::runtime::Runtime,
    db: Db,
}

impl Direct {
    fn open(url: &str, base: &TempDir) -> Direct {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cfg = DbConfig {
            url: Some(DbUrl::parse(url, base.path()).unwrap()),
            ..DbConfig::default()
        };
        let db = rt.block_on(Db::open(&cfg)).unwrap();
        rt.block_on(db.init_schema(true)).unwrap();
        Direct { rt, db }
    }

    /// The rows of one user, by contact URI.
    fn rows(&self, user: &str) -> Vec<Location> {
        let mut v: Vec<Location> = self
            .rt
            .block_on(self.db.location_load("location"))
            .unwrap()
            .into_iter()
            .filter(|l| l.username == user)
            .collect();
        v.sort_by(|a, b| a.contact.cmp(&b.contact));
        v
    }
}

fn register(k: &Ksrd, from: std::net::SocketAddr, user: &str, contacts: &[String]) -> Req {
    let mut r = Req::new("REGISTER", &format!("sip:127.0.0.1:{}", k.port), from)
        .set("From", &format!("<sip:{user}@127.0.0.1>;tag=r1"))
        .set("To", &format!("<sip:{user}@127.0.0.1>"))
        .set("Expires", "600");
    for ct in contacts {
        r = r.add("Contact", ct);
    }
    r
}

/// (contact, ruid, q, call-id) of `ul.lookup`, sorted by contact.
fn ul_lookup(k: &Ksrd, aor: &str) -> Vec<(String, String, f64, String, i64)> {
    let r = k.rpc("ul.lookup", json!(["location", aor]));
    let mut v: Vec<_> = r["result"]["Contacts"]
        .as_array()
        .unwrap_or_else(|| panic!("ul.lookup {aor}: {r}"))
        .iter()
        .map(|c| {
            let c = &c["Contact"];
            (
                c["Address"].as_str().unwrap().to_string(),
                c["Ruid"].as_str().unwrap().to_string(),
                c["Q"].as_f64().unwrap(),
                c["Call-ID"].as_str().unwrap().to_string(),
                c["Expires"].as_i64().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Register two phones of alice with db_mode 1, check the rows, restart ksrd on the same
/// database, and check the bindings came back and a call forks to both phones.
fn write_through_survives_a_restart(url: &str, dir: &TempDir) {
    let direct = Direct::open(url, dir);
    let (p1, p2) = (SipPeer::new(), SipPeer::new());
    let c1 = format!("sip:alice@127.0.0.1:{}", p1.port());
    let c2 = format!("sip:alice@127.0.0.1:{}", p2.port());
    let mut k = start(url, 1);
    let reg = register(
        &k,
        p1.addr(),
        "alice",
        &[format!("<{c1}>;q=0.5"), format!("<{c2}>")],
    );
    p1.send_to(&reg.build(), k.sip_addr());
    let ok = p1.recv_final(REPLY_TIMEOUT).expect("200");
    assert_eq!(ok.code, 200, "{}", ok.text());
    // Write-through: the rows are there when the 200 is.
    let rows = direct.rows("alice");
    let mut want = vec![c1.as_str(), c2.as_str()];
    want.sort();
    assert_eq!(
        rows.iter().map(|r| r.contact.as_str()).collect::<Vec<_>>(),
        want
    );
    let q_of = |c: &str| rows.iter().find(|r| r.contact == c).map(|r| r.q);
    assert_eq!((q_of(&c1), q_of(&c2)), (Some(0.5), Some(-1.0)));
    assert_eq!(rows[0].domain, None, "use_domain=0 leaves domain NULL");
    assert_eq!(rows[0].callid, reg.get("Call-ID").unwrap());
    let left = rows[0].expires - ksrd::modules::usrloc::now();
    assert!((590..=600).contains(&left), "expires {left}");
    let before = ul_lookup(&k, "alice");
    let mut ruids: Vec<&str> = rows.iter().map(|r| r.ruid.as_str()).collect();
    ruids.sort();
    let mut seen: Vec<&str> = before.iter().map(|c| c.1.as_str()).collect();
    seen.sort();
    assert_eq!(ruids, seen, "the rows are the bindings ksrd holds");

    assert_eq!(k.terminate(), Some(0), "{}", k.log_tail(20));
    let k = start(url, 1);
    assert!(k.log().contains("usrloc: loaded from the database"));
    let after = ul_lookup(&k, "alice");
    assert_eq!(after.len(), 2, "{after:?}");
    for (a, b) in before.iter().zip(&after) {
        assert_eq!((&a.0, &a.1, a.2, &a.3), (&b.0, &b.1, b.2, &b.3));
        assert!(b.4 > 500 && b.4 <= a.4, "expires kept: {a:?} {b:?}");
    }

    // A call after the restart reaches both phones.
    let caller = SipPeer::new();
    let inv = Req::invite(&format!("sip:alice@127.0.0.1:{}", k.port), caller.addr());
    caller.send_to(&inv.build(), k.sip_addr());
    let r1 = p1
        .recv_method("INVITE", REPLY_TIMEOUT)
        .expect("INVITE to phone 1");
    let r2 = p2
        .recv_method("INVITE", REPLY_TIMEOUT)
        .expect("INVITE to phone 2");
    assert!(r1.start_line.contains(&c1), "{}", r1.text());
    assert!(r2.start_line.contains(&c2), "{}", r2.text());
    for (p, r) in [(&p1, &r1), (&p2, &r2)] {
        p.send_to(&p.reply(r, 486, "Busy Here", &[]), k.sip_addr());
    }
    assert_eq!(caller.recv_final(REPLY_TIMEOUT).expect("final").code, 486);

    // Contact: * removes every binding, from the table too.
    let c = k.udp();
    let star = register(&k, c.addr(), "alice", &["*".into()]).set("Expires", "0");
    assert_eq!(c.request(&star.build()).code, 200);
    assert!(direct.rows("alice").is_empty());
}

#[test]
fn sqlite_write_through_survives_a_restart() {
    let dir = TempDir::new("ul-sqlite");
    let url = format!("sqlite://{}", dir.path().join("loc.db").display());
    write_through_survives_a_restart(&url, &dir);
}

#[test]
fn postgres_write_through_survives_a_restart() {
    let (pg, name) = pg::shared_db("ul_wt");
    let dir = TempDir::new("ul-pg");
    write_through_survives_a_restart(&pg.url(&name), &dir);
}

fn write_back_writes_on_flush_and_at_shutdown(url: &str, dir: &TempDir) {
    let direct = Direct::open(url, dir);
    let mut k = start(url, 2);
    let c = k.udp();
    let bob = register(&k, c.addr(), "bob", &["<sip:bob@192.0.2.20>".into()]);
    assert_eq!(c.request(&bob.build()).code, 200);
    // timer_interval is 60 s: nothing is written before the flush.
    assert!(direct.rows("bob").is_empty());
    assert_eq!(k.rpc("ul.flush", json!([]))["result"], json!({}));
    assert_eq!(direct.rows("bob")[0].contact, "sip:bob@192.0.2.20");

    let carol = register(&k, c.addr(), "carol", &["<sip:carol@192.0.2.21>".into()]);
    assert_eq!(c.request(&carol.build()).code, 200);
    // bob unregisters: the queued delete reaches the table at shutdown too.
    let gone = bob.set("Expires", "0").next_transaction(2);
    assert_eq!(c.request(&gone.build()).code, 200);
    assert_eq!(direct.rows("bob").len(), 1, "not written yet");
    assert_eq!(k.terminate(), Some(0));
    assert_eq!(direct.rows("carol")[0].contact, "sip:carol@192.0.2.21");
    assert!(direct.rows("bob").is_empty());
    let k = start(url, 2);
    assert_eq!(ul_lookup(&k, "carol")[0].0, "sip:carol@192.0.2.21");
}

#[test]
fn sqlite_write_back_writes_on_flush_and_at_shutdown() {
    let dir = TempDir::new("ul-wb");
    let url = format!("sqlite://{}", dir.path().join("loc.db").display());
    write_back_writes_on_flush_and_at_shutdown(&url, &dir);
}

#[test]
fn postgres_write_back_writes_on_flush_and_at_shutdown() {
    let (pg, name) = pg::shared_db("ul_wb");
    let dir = TempDir::new("ul-wb-pg");
    write_back_writes_on_flush_and_at_shutdown(&pg.url(&name), &dir);
}

#[test]
fn db_only_reads_the_table_on_every_call() {
    let (pg, name) = pg::shared_db("ul_dbonly");
    let url = pg.url(&name);
    let dir = TempDir::new("ul-db3");
    let direct = Direct::open(&url, &dir);
    let k = start(&url, 3);
    let c = k.udp();
    let phone = SipPeer::new();
    let dave = register(&k, c.addr(), "dave", &[format!("<{}>", phone.uri())]);
    assert_eq!(c.request(&dave.build()).code, 200);
    let rows = direct.rows("dave");
    assert_eq!(rows.len(), 1);
    // A binding written by someone else (another ksrd on the same table) is seen at once.
    let mut other = rows[0].clone();
    other.ruid = "other-ruid".into();
    other.contact = "sip:dave@192.0.2.30".into();
    direct
        .rt
        .block_on(direct.db.location_upsert("location", &[other]))
        .unwrap();
    let seen: Vec<String> = ul_lookup(&k, "dave").into_iter().map(|c| c.0).collect();
    let mut want = vec!["sip:dave@192.0.2.30".to_string(), phone.uri()];
    want.sort();
    assert_eq!(seen, want);
    // ...and one deleted behind its back is gone: the call gets 404.
    let removed = direct
        .rt
        .block_on(direct.db.location_remove_aor("location", "dave", None))
        .unwrap();
    assert_eq!(removed, 2);
    let caller = SipPeer::new();
    let inv = Req::invite(&format!("sip:dave@127.0.0.1:{}", k.port), caller.addr());
    caller.send_to(&inv.build(), k.sip_addr());
    assert_eq!(caller.recv_final(REPLY_TIMEOUT).expect("404").code, 404);
    assert!(phone.recv_request(Duration::from_millis(200)).is_none());
}

#[test]
fn write_through_answers_500_while_the_database_is_down_and_recovers() {
    let pg = PgCluster::start();
    pg.create_db("ul_down");
    let url = pg.url("ul_down");
    let dir = TempDir::new("ul-down");
    let direct = Direct::open(&url, &dir);
    let k = start(&url, 1);
    let c = k.udp();
    // A restart while idle: the worker's connection is dead, and the next REGISTER notices
    // that itself and goes through on a new connection at once.
    let frank = register(&k, c.addr(), "frank", &["<sip:frank@192.0.2.41>".into()]);
    assert_eq!(c.request(&frank.build()).code, 200);
    pg.stop();
    pg.start_server();
    let again = frank.clone().next_transaction(2);
    assert_eq!(c.request(&again.build()).code, 200, "{}", k.log_tail(10));
    let erin = register(&k, c.addr(), "erin", &["<sip:erin@192.0.2.40>".into()]);
    pg.stop();
    let r = c.request(&erin.build());
    assert_eq!(r.code, 500, "{}", r.text());
    assert!(
        k.rpc("ul.lookup", json!(["location", "erin"]))["error"].is_object(),
        "a failed write leaves nothing in memory"
    );
    pg.start_server();
    // The pool reconnects by itself; the phone's next attempt succeeds.
    let mut cseq = 2;
    assert!(
        wait_until(Duration::from_secs(15), || {
            cseq += 1;
            c.request(&erin.clone().next_transaction(cseq).build()).code == 200
        }),
        "{}",
        k.log_tail(20)
    );
    assert_eq!(direct.rows("erin").len(), 1);
}
