//! routes/fail2ban.py and routes/htable_auth_cache.py end to end with subscribers in a real
//! database: brute force gets an IP banned (silently, or 429), `htable.delete` lifts the ban;
//! cached credentials mean no database query after a user's first successful authentication
//! (counted in PostgreSQL's statement log).
mod common;
use common::digest::answer;
use common::pg::PgCluster;
use common::*;
use std::time::Duration;

const REALM: &str = "127.0.0.1";

fn cli(db_url: &str, dir: &TempDir, args: &[&str]) {
    let cfg = dir.path().join("cli.toml");
    std::fs::write(
        &cfg,
        format!("db_url = \"{db_url}\"\n[db]\nstore_plaintext_password = true\n"),
    )
    .unwrap();
    let out = ksrd_cmd()
        .arg("--config")
        .arg(&cfg)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn register(k: &Ksrd, p: &SipPeer, user: &str) -> Req {
    Req::new("REGISTER", &format!("sip:{REALM}:{}", k.port), p.addr())
        .set("From", &format!("<sip:{user}@{REALM}>;tag=x"))
        .set("To", &format!("<sip:{user}@{REALM}>"))
        .set("Contact", &format!("<{}>", p.uri()))
}

/// One REGISTER round trip with the password `pass` answering a fresh challenge; the final code.
fn attempt(k: &Ksrd, p: &SipPeer, user: &str, pass: &str) -> Option<u16> {
    let r = register(k, p, user);
    p.send_to(&r.build(), k.sip_addr());
    let ch = p.recv_final(REPLY_TIMEOUT)?;
    if ch.code != 401 {
        return Some(ch.code);
    }
    let www = ch.header("www-authenticate").unwrap().to_string();
    let uri = format!("sip:{REALM}:{}", k.port);
    let r = r
        .set(
            "Authorization",
            &answer(&www, user, pass, "REGISTER", &uri, None),
        )
        .next_transaction(2);
    p.send_to(&r.build(), k.sip_addr());
    p.recv_final(REPLY_TIMEOUT).map(|m| m.code)
}

fn fail2ban(ban_reply: &str) -> (Ksrd, TempDir) {
    let dir = TempDir::new("f2b");
    let url = format!("sqlite://{}", dir.path().join("ksrd.db").display());
    cli(
        &url,
        &dir,
        &["subscriber", "add", &format!("alice@{REALM}"), "secret"],
    );
    let k = Ksrd::start_with_route_file(
        "routes/fail2ban.py",
        &format!(
            "db_url = \"{url}\"\n[define]\nBAN_REPLY = \"{ban_reply}\"\n[modparam.htable]\nhtable = \"ipban=>size=8;autoexpire=300;initval=0\"\n"
        ),
    );
    (k, dir)
}

#[test]
fn brute_force_gets_the_ip_banned_silently_until_htable_delete() {
    let (k, _dir) = fail2ban("");
    let p = SipPeer::new();
    assert_eq!(attempt(&k, &p, "alice", "secret"), Some(200));
    for _ in 0..6 {
        assert_eq!(attempt(&k, &p, "alice", "guess"), Some(401));
    }
    assert!(
        k.wait_log("banning 127.0.0.1 after 6 failed", REPLY_TIMEOUT),
        "{}",
        k.log()
    );
    // Banned: no answer at all, not even to the right password.
    p.send_to(&register(&k, &p, "alice").build(), k.sip_addr());
    p.expect_silence(Duration::from_millis(500));
    let del = k.rpc("htable.delete", json!(["ipban", "127.0.0.1"]));
    assert_eq!(del["result"], "Ok. Key deleted.", "{del}");
    assert_eq!(attempt(&k, &p, "alice", "secret"), Some(200));
}

#[test]
fn auth_count_variant_answers_429() {
    let (k, _dir) = fail2ban("429");
    let p = SipPeer::new();
    for _ in 0..6 {
        assert_eq!(attempt(&k, &p, "alice", "guess"), Some(401));
    }
    p.send_to(&register(&k, &p, "alice").build(), k.sip_addr());
    let m = p.recv_final(REPLY_TIMEOUT).expect("429");
    assert_eq!((m.code, m.reason.as_str()), (429, "Rate limiting"));
}

#[test]
fn cached_credentials_spare_the_database() {
    let pg = PgCluster::start();
    pg.create_db("ksrd_cache");
    let url = pg.url("ksrd_cache");
    let dir = TempDir::new("cache");
    cli(&url, &dir, &["db", "init"]);
    cli(
        &url,
        &dir,
        &["subscriber", "add", &format!("alice@{REALM}"), "secret"],
    );
    pg.psql("ksrd_cache", "ALTER SYSTEM SET log_statement = 'all'");
    pg.psql("ksrd_cache", "SELECT pg_reload_conf()");
    let k = Ksrd::start_with_route_file(
        "routes/htable_auth_cache.py",
        &format!(
            "db_url = \"{url}\"\n[modparam.auth_db]\nload_credentials = \"$avp(pass)=password\"\n[modparam.htable]\nhtable = \"auth=>size=10;autoexpire=3600\"\n"
        ),
    );
    let queries = || {
        pg.log()
            .lines()
            .filter(|l| {
                l.contains("subscriber") && (l.contains("statement:") || l.contains("execute"))
            })
            .count()
    };
    let p = SipPeer::new();
    assert_eq!(attempt(&k, &p, "alice", "secret"), Some(200));
    let after_first = queries();
    assert!(
        after_first >= 1,
        "the first authentication reads the database:\n{}",
        pg.log()
    );
    for _ in 0..3 {
        assert_eq!(attempt(&k, &p, "alice", "secret"), Some(200));
    }
    // A call from alice is authenticated from the cache too (407, then Proxy-Authorization).
    let phone = SipPeer::new();
    let uri = format!("sip:alice@{REALM}:{}", k.port);
    let inv = Req::invite(&uri, phone.addr()).set("From", &format!("<sip:alice@{REALM}>;tag=c"));
    phone.send_to(&inv.build(), k.sip_addr());
    let ch = phone.recv_final(REPLY_TIMEOUT).expect("407");
    assert_eq!(ch.code, 407);
    let pa = ch.header("proxy-authenticate").unwrap().to_string();
    let inv = inv
        .set(
            "Proxy-Authorization",
            &answer(&pa, "alice", "secret", "INVITE", &uri, None),
        )
        .next_transaction(2);
    phone.send_to(&inv.build(), k.sip_addr());
    assert!(
        p.recv_method("INVITE", REPLY_TIMEOUT).is_some(),
        "the call reached alice's phone"
    );
    assert_eq!(
        queries(),
        after_first,
        "no database query after the first:\n{}",
        pg.log()
    );
    // A wrong password is still refused from the cache.
    assert_eq!(attempt(&k, &p, "alice", "wrong"), Some(401));
}
