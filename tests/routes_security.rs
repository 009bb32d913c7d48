//! routes/security.py against the real ksrd and a real attack tool: SIPVicious svcrack guessing
//! a subscriber's password (its `friendly-scanner` REGISTERs are dropped and the source banned,
//! so it finds nothing), and a phone-like client with wrong passwords (after MAX_FAILURES = 3 the
//! source gets no answer at all, other sources still register, `htable.delete ipban IP` lifts it).
mod common;
use common::digest::answer;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRET: &str = "Zebra-77-secret";
const QUIET: Duration = Duration::from_millis(400);

fn start() -> (Ksrd, TempDir) {
    let dir = TempDir::new("security");
    let url = format!("sqlite://{}", dir.path().join("sec.db").display());
    let cfg = dir.path().join("cli.toml");
    std::fs::write(&cfg, format!("db_url = \"{url}\"\n")).unwrap();
    let out = ksrd_cmd()
        .arg("--config")
        .arg(&cfg)
        .args(["subscriber", "add", "1000@127.0.0.1", SECRET])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let k = Ksrd::start_with_route_file(
        "routes/security.py",
        &format!(
            "db_url = \"{url}\"\n[modparam.htable]\nhtable = [\"ipban=>size=8;autoexpire=300;initval=0\", \"wrongpass=>size=8;autoexpire=900;initval=0\"]\n"
        ),
    );
    (k, dir)
}

fn options_from(k: &Ksrd, ip: &str) -> Option<SipMsg> {
    let c = UdpClient::bind(&format!("{ip}:0"), k.port);
    c.send(&options(k.port, c.addr()).build());
    c.recv_final(QUIET)
}

#[test]
fn svcrack_finds_nothing_and_its_source_is_banned() {
    let (k, dir) = start();
    let dict = dir.path().join("dict");
    let mut words: Vec<String> = (1..=40).map(|i| format!("guess{i}")).collect();
    words.push(SECRET.into());
    std::fs::write(&dict, words.join("\n") + "\n").unwrap();
    // svcrack 0.3.3 sends from 127.0.0.1 whatever -b says; its own port is a free one.
    let out = Command::new("svcrack")
        .args(["-u", "1000", "-d"])
        .arg(&dict)
        .args([
            "-p",
            &k.port.to_string(),
            "-P",
            &free_port().to_string(),
            "-t",
            "0.05",
        ])
        .arg("127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .expect("svcrack (Debian sipvicious; scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(SECRET),
        "svcrack found the password:\n{text}"
    );
    assert!(
        k.log().contains("Attack attempt! IP:127.0.0.1:"),
        "{}",
        k.log_tail(20)
    );
    let ban = k.rpc("htable.get", json!(["ipban", "127.0.0.1"]));
    assert!(ban["result"]["item"]["value"].as_i64() > Some(3), "{ban}");
    // The banned source gets nothing, even a harmless OPTIONS; another source is served.
    assert!(options_from(&k, "127.0.0.1").is_none());
    assert_eq!(options_from(&k, "127.0.0.2").expect("answered").code, 200);
    // The operator lifts the ban.
    let del = k.rpc("htable.delete", json!(["ipban", "127.0.0.1"]));
    assert_eq!(del["result"], "Ok. Key deleted.", "{del}");
    assert_eq!(
        options_from(&k, "127.0.0.1").expect("answered again").code,
        200
    );
}

#[test]
fn wrong_passwords_ban_the_source_but_not_the_others() {
    let (k, _dir) = start();
    let uri = format!("sip:127.0.0.1:{}", k.port);
    let reg = |c: &UdpClient| {
        Req::new("REGISTER", &uri, c.addr())
            .set("From", "<sip:1000@127.0.0.1>;tag=s1")
            .set("To", "<sip:1000@127.0.0.1>")
            .set("Contact", &format!("<sip:1000@{}>", c.addr()))
    };
    let attacker = UdpClient::bind("127.0.0.3:0", k.port);
    let first = attacker.request(&reg(&attacker).build());
    assert_eq!(first.code, 401);
    let mut www = first.header("www-authenticate").unwrap().to_string();
    for n in 1..=3 {
        let bad = reg(&attacker)
            .set(
                "Authorization",
                &answer(&www, "1000", "wrong", "REGISTER", &uri, None),
            )
            .next_transaction(n + 1);
        let r = attacker.request(&bad.build());
        assert_eq!(r.code, 401, "failure {n} is still challenged");
        www = r.header("www-authenticate").unwrap().to_string();
    }
    // The fourth failure, and anything after it, gets no answer at all.
    let bad = reg(&attacker)
        .set(
            "Authorization",
            &answer(&www, "1000", "wrong", "REGISTER", &uri, None),
        )
        .next_transaction(5);
    attacker.send(&bad.build());
    assert!(attacker.recv_final(QUIET).is_none());
    let right = reg(&attacker)
        .set(
            "Authorization",
            &answer(&www, "1000", SECRET, "REGISTER", &uri, None),
        )
        .next_transaction(6);
    attacker.send(&right.build());
    assert!(
        attacker.recv_final(QUIET).is_none(),
        "even the right password"
    );
    // The real phone elsewhere registers.
    let phone = UdpClient::bind("127.0.0.2:0", k.port);
    let ch = phone.request(&reg(&phone).build());
    assert_eq!(ch.code, 401);
    let ok = reg(&phone)
        .set(
            "Authorization",
            &answer(
                ch.header("www-authenticate").unwrap(),
                "1000",
                SECRET,
                "REGISTER",
                &uri,
                None,
            ),
        )
        .next_transaction(2);
    assert_eq!(phone.request(&ok.build()).code, 200);
    k.rpc("htable.delete", json!(["ipban", "127.0.0.3"]));
    assert_eq!(
        options_from(&k, "127.0.0.3").expect("answered again").code,
        200
    );
}

/// A REGISTER for `user` from `c`, with an answer to `www` made with `pass` when given.
fn register(k: &Ksrd, c: &UdpClient, user: &str, auth: Option<(&str, &str)>, cseq: u32) -> SipMsg {
    let uri = format!("sip:127.0.0.1:{}", k.port);
    let mut r = Req::new("REGISTER", &uri, c.addr())
        .set("From", &format!("<sip:{user}@127.0.0.1>;tag=s{cseq}"))
        .set("To", &format!("<sip:{user}@127.0.0.1>"))
        .set("Contact", &format!("<sip:{user}@{}>", c.addr()))
        .next_transaction(cseq);
    if let Some((www, pass)) = auth {
        r = r.set(
            "Authorization",
            &answer(www, user, pass, "REGISTER", &uri, None),
        );
    }
    c.request(&r.build())
}

/// `n` wrong passwords for `user` from `c`; the last challenge.
fn fail(k: &Ksrd, c: &UdpClient, user: &str, n: u32) -> SipMsg {
    let mut r = register(k, c, user, None, 1);
    for i in 0..n {
        assert_eq!(r.code, 401, "{user} failure {i}: {}", r.text());
        let www = r.header("www-authenticate").unwrap().to_string();
        r = register(k, c, user, Some((&www, "wrong")), i + 2);
    }
    r
}

#[test]
fn guessing_from_many_addresses_blocks_the_user_and_tells_nothing_about_who_exists() {
    let (k, _dir) = start();
    // 3 + 2 wrong passwords for 1000 from two addresses (each stays under its own ban).
    for (ip, n) in [("127.0.0.3", 3), ("127.0.0.4", 2)] {
        let c = UdpClient::bind(&format!("{ip}:0"), k.port);
        assert_eq!(fail(&k, &c, "1000", n).code, 401);
    }
    // The same for a user that does not exist.
    for (ip, n) in [("127.0.0.5", 3), ("127.0.0.6", 2)] {
        let c = UdpClient::bind(&format!("{ip}:0"), k.port);
        assert_eq!(fail(&k, &c, "nobody", n).code, 401);
    }
    // Now even the right password from a fresh address is refused for 1000, and "nobody" gets
    // exactly the same answer: an attacker cannot tell which one exists.
    let phone = UdpClient::bind("127.0.0.2:0", k.port);
    let ch = register(&k, &phone, "1000", None, 1);
    assert_eq!(ch.code, 401);
    let www = ch.header("www-authenticate").unwrap().to_string();
    let blocked = register(&k, &phone, "1000", Some((&www, SECRET)), 2);
    assert_eq!((blocked.code, blocked.reason.as_str()), (403, "Try later"));
    let other = UdpClient::bind("127.0.0.7:0", k.port);
    let ch = register(&k, &other, "nobody", None, 1);
    let www2 = ch.header("www-authenticate").unwrap().to_string();
    let nobody = register(&k, &other, "nobody", Some((&www2, "x")), 2);
    assert_eq!((nobody.code, nobody.reason.as_str()), (403, "Try later"));
    assert!(
        k.log().contains("user 1000 from 127.0.0.2 blocked"),
        "{}",
        k.log_tail(10)
    );
    // The operator lifts the block; the phone registers.
    let del = k.rpc("htable.delete", json!(["wrongpass", "1000::auth_count"]));
    assert_eq!(del["result"], "Ok. Key deleted.", "{del}");
    let ok = register(&k, &phone, "1000", Some((&www, SECRET)), 3);
    assert_eq!(ok.code, 200, "{}", ok.text());
}

fn run_tool(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("SIPVicious (Debian sipvicious; scripts/test.sh installs it)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn svwar_finds_no_extension_and_svmap_no_server() {
    let (k, _dir) = start();
    let port = k.port.to_string();
    let war = run_tool(
        Command::new("svwar")
            .args(["-e", "990-1010", "-m", "REGISTER", "-p", &port])
            .args(["-P", &free_port().to_string(), "-t", "0.02", "--force"])
            .arg("127.0.0.1"),
    );
    // svwar prints a table of the extensions it told apart; 1000 must not be in it.
    assert!(
        !war.lines()
            .any(|l| l.contains("| 1000 ") || l.trim_start().starts_with("1000")),
        "svwar told the existing user apart:\n{war}"
    );
    assert!(war.contains("found nothing"), "{war}");
    let map = run_tool(
        Command::new("svmap")
            .args(["-p", &port, "-P", &free_port().to_string(), "-t", "0.02"])
            .arg("127.0.0.1"),
    );
    assert!(
        !map.contains(&format!("127.0.0.1:{port}")),
        "svmap fingerprinted ksrd:\n{map}"
    );
    assert!(map.contains("found nothing"), "{map}");
    assert!(
        k.log().contains("Attack attempt! IP:127.0.0.1:"),
        "{}",
        k.log_tail(10)
    );
    // And the scanning address is banned.
    assert!(options_from(&k, "127.0.0.1").is_none());
}

/// BLACKLIST_DB: sources the honeypot recorded (the `baddies` table) get nothing.
#[test]
fn sources_in_the_honeypot_table_are_dropped() {
    let dir = TempDir::new("security-bl");
    let db = dir.path().join("honeypot.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&std::fs::read_to_string(repo_path("routes/sql/baddies.sql")).unwrap())
        .unwrap();
    conn.execute(
        "INSERT INTO baddies (ip, hits, last_seen, ua) VALUES ('127.0.0.4', 17, 0, 'sipvicious')",
        [],
    )
    .unwrap();
    let k = Ksrd::start_with_route_file(
        "routes/security.py",
        &format!(
            "[define]\nBLACKLIST_DB = \"honeypot\"\n[modparam.sqlops]\nsqlcon = \"honeypot=>sqlite://{}\"\n\
             [modparam.htable]\nhtable = [\"ipban=>size=8;autoexpire=300;initval=0\", \"wrongpass=>size=8;autoexpire=900;initval=0\"]\n",
            db.display()
        ),
    );
    assert!(
        options_from(&k, "127.0.0.4").is_none(),
        "a listed source was answered"
    );
    assert!(
        k.log().contains("blacklisted source 127.0.0.4 dropped"),
        "{}",
        k.log_tail(10)
    );
    assert_eq!(options_from(&k, "127.0.0.2").expect("answered").code, 200);
}
