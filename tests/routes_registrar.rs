//! routes/registrar.py end to end, with subscribers added by `ksrd subscriber add` into a real
//! database (SQLite file, and a throwaway PostgreSQL cluster): REGISTER → 401 → REGISTER with
//! digest → 200, wrong password → 401 again, unknown user → 401; then a call to the registered
//! user reaches the phone that registered.
mod common;
use common::digest::answer;
use common::pg::PgCluster;
use common::*;
use std::process::Stdio;

const REALM: &str = "127.0.0.1";

fn add_subscriber(db_url: &str, dir: &TempDir, user: &str, pass: &str) {
    let cfg = dir.path().join("cli.toml");
    std::fs::write(&cfg, format!("db_url = \"{db_url}\"\n")).unwrap();
    let out = ksrd_cmd()
        .arg("--config")
        .arg(&cfg)
        .args(["subscriber", "add", &format!("{user}@{REALM}"), pass])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn register_and_call(db_url: &str, dir: &TempDir) {
    add_subscriber(db_url, dir, "alice", "secret");
    let k = Ksrd::start_with_route_file("routes/registrar.py", &format!("db_url = \"{db_url}\"\n"));
    let phone = SipPeer::new();
    let uri = format!("sip:{REALM}:{}", k.port);
    let reg = Req::new("REGISTER", &uri, phone.addr())
        .set("From", &format!("<sip:alice@{REALM}>;tag=a"))
        .set("To", &format!("<sip:alice@{REALM}>"))
        .set("Contact", &format!("<{}>", phone.uri()));
    phone.send_to(&reg.build(), k.sip_addr());
    let ch = phone.recv_final(REPLY_TIMEOUT).expect("401");
    assert_eq!(ch.code, 401, "{}", ch.text());
    let www = ch.header("www-authenticate").unwrap().to_string();
    // Wrong password: challenged again.
    let bad = reg
        .clone()
        .set(
            "Authorization",
            &answer(&www, "alice", "nope", "REGISTER", &uri, None),
        )
        .next_transaction(2);
    phone.send_to(&bad.build(), k.sip_addr());
    assert_eq!(phone.recv_final(REPLY_TIMEOUT).unwrap().code, 401);
    // Right password: registered.
    let good = reg
        .clone()
        .set(
            "Authorization",
            &answer(&www, "alice", "secret", "REGISTER", &uri, None),
        )
        .next_transaction(3);
    phone.send_to(&good.build(), k.sip_addr());
    let ok = phone.recv_final(REPLY_TIMEOUT).expect("200");
    assert_eq!(ok.code, 200, "{}", ok.text());
    assert!(
        ok.header("contact").unwrap_or("").contains(&phone.uri()),
        "{}",
        ok.text()
    );
    // Someone unknown to the database is not registered.
    let mallory = Req::new("REGISTER", &uri, phone.addr())
        .set("From", &format!("<sip:mallory@{REALM}>;tag=m"))
        .set("To", &format!("<sip:mallory@{REALM}>"))
        .set(
            "Authorization",
            &answer(&www, "mallory", "x", "REGISTER", &uri, None),
        );
    phone.send_to(&mallory.build(), k.sip_addr());
    assert_eq!(phone.recv_final(REPLY_TIMEOUT).unwrap().code, 401);
    // A caller from outside reaches the registered phone.
    let caller = SipPeer::new();
    let inv = Req::invite(&format!("sip:alice@{REALM}:{}", k.port), caller.addr())
        .set("From", "<sip:bob@example.org>;tag=b");
    caller.send_to(&inv.build(), k.sip_addr());
    let got = phone
        .recv_method("INVITE", REPLY_TIMEOUT)
        .expect("INVITE at alice's phone");
    assert!(
        got.text()
            .starts_with(&format!("INVITE {} SIP/2.0", phone.uri())),
        "{}",
        got.text()
    );
    assert!(got.header("record-route").is_some(), "{}", got.text());
}

#[test]
fn registrar_route_with_sqlite_subscribers() {
    let dir = TempDir::new("reg-sqlite");
    let url = format!("sqlite://{}", dir.path().join("ksrd.db").display());
    register_and_call(&url, &dir);
}

#[test]
fn registrar_route_with_postgresql_subscribers() {
    let pg = PgCluster::start();
    pg.create_db("ksrd_reg");
    let dir = TempDir::new("reg-pg");
    let url = pg.url("ksrd_reg");
    db_init(&url);
    register_and_call(&url, &dir);
}
