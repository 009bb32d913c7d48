//! Digest authentication (KSR.auth.*) against the real ksrd: challenges (401/407, qop, algorithm,
//! stale=true after an expired nonce), responses checked with MD5 and SHA-256, wrong passwords,
//! nonce-count replays, user checks, consume_credentials. Passwords come from the route
//! (pv_auth_check), so no database is needed here.
mod common;
use common::digest::{answer, challenge_param};
use common::*;

const REALM: &str = "127.0.0.1";

/// REGISTER and INVITE checked with pv_auth_check against "pw-" + the auth user; the route logs
/// the return code and answers 200 on success.
const ROUTE: &str = r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        flags = int(KSR.kx.get_def("FLAGS") or "0")
        au = KSR.pv.get("$au")
        passwd = "pw-" + (au or "")
        rc = KSR.auth.pv_auth_check(KSR.pv.get("$fd"), passwd, 0, int(KSR.kx.get_def("CHECKS") or "1"))
        KSR.info("auth rc=%d has=%d Au=%s AU=%s\n" % (rc, KSR.auth.has_credentials(KSR.pv.get("$fd")), KSR.pv.get("$Au"), KSR.pv.get("$AU")))
        if rc < 0:
            KSR.auth.auth_challenge(KSR.pv.get("$fd"), flags)
            return 1
        KSR.auth.consume_credentials()
        if KSR.is_REGISTER():
            KSR.sl.send_reply(200, "OK")
            return 1
        KSR.setdsturi(KSR.kx.get_def("NEXT"))
        KSR.forward()
        return 1
"#;

fn start(extra: &str) -> Ksrd {
    Ksrd::start(ROUTE, extra)
}

fn register(k: &Ksrd, c: &UdpClient, user: &str) -> Req {
    Req::new("REGISTER", &format!("sip:{REALM}:{}", k.port), c.addr())
        .set("From", &format!("<sip:{user}@{REALM}>;tag=f1"))
        .set("To", &format!("<sip:{user}@{REALM}>"))
        .set("Contact", &format!("<sip:{user}@{}>", c.addr()))
}

#[test]
fn register_is_challenged_then_accepted_with_the_right_password() {
    let k = start("");
    let c = k.udp();
    let r = register(&k, &c, "alice");
    let ch = c.request(&r.build());
    assert_eq!(ch.code, 401, "{}", ch.text());
    let www = ch
        .header("www-authenticate")
        .expect("challenge")
        .to_string();
    assert_eq!(challenge_param(&www, "realm").as_deref(), Some(REALM));
    assert!(challenge_param(&www, "stale").is_none(), "{www}");
    assert!(challenge_param(&www, "qop").is_none(), "{www}");
    let uri = format!("sip:{REALM}:{}", k.port);
    let ok = c.request(
        &r.clone()
            .set(
                "Authorization",
                &answer(&www, "alice", "pw-alice", "REGISTER", &uri, None),
            )
            .next_transaction(2)
            .build(),
    );
    assert_eq!(ok.code, 200, "{}", ok.text());
    assert!(
        k.log()
            .contains("auth rc=1 has=1 Au=alice@127.0.0.1 AU=alice"),
        "{}",
        k.log()
    );
    // Without credentials $Au is the From user@host (pv_core.c pv_get_acc_username).
    assert!(
        k.log()
            .contains("auth rc=-5 has=-1 Au=alice@127.0.0.1 AU=alice"),
        "{}",
        k.log()
    );
    // A wrong password: -2 and a new challenge.
    let bad = c.request(
        &r.set(
            "Authorization",
            &answer(&www, "alice", "nope", "REGISTER", &uri, None),
        )
        .next_transaction(3)
        .build(),
    );
    assert_eq!(bad.code, 401, "{}", bad.text());
    assert!(k.wait_log("auth rc=-2", REPLY_TIMEOUT), "{}", k.log());
}

#[test]
fn invite_gets_407_and_credentials_are_consumed_before_forwarding() {
    let next = SipPeer::new();
    let k = start(&format!("[define]\nNEXT = \"{}\"\n", next.uri()));
    let c = k.udp();
    let inv = Req::new("INVITE", &format!("sip:bob@{REALM}:{}", k.port), c.addr())
        .set("From", &format!("<sip:alice@{REALM}>;tag=f1"))
        .set("To", &format!("<sip:bob@{REALM}>"));
    let ch = c.request(&inv.build());
    assert_eq!(ch.code, 407, "{}", ch.text());
    assert_eq!(ch.reason, "Proxy Authentication Required");
    let pa = ch
        .header("proxy-authenticate")
        .expect("challenge")
        .to_string();
    let uri = format!("sip:bob@{REALM}:{}", k.port);
    let authed = inv
        .set(
            "Proxy-Authorization",
            &answer(&pa, "alice", "pw-alice", "INVITE", &uri, None),
        )
        .next_transaction(2);
    c.send(&authed.build());
    let fwd = next.recv_request(REPLY_TIMEOUT).expect("forwarded INVITE");
    assert!(
        fwd.header("proxy-authorization").is_none(),
        "{}",
        fwd.text()
    );
}

#[test]
fn qop_auth_nonce_count_replay_is_rejected() {
    let k = start("[define]\nFLAGS = \"1\"\n");
    let c = k.udp();
    let r = register(&k, &c, "bob");
    let ch = c.request(&r.build());
    let www = ch.header("www-authenticate").unwrap().to_string();
    assert_eq!(
        challenge_param(&www, "qop").as_deref(),
        Some("auth"),
        "{www}"
    );
    let uri = format!("sip:{REALM}:{}", k.port);
    let first = r
        .clone()
        .set(
            "Authorization",
            &answer(&www, "bob", "pw-bob", "REGISTER", &uri, Some(1)),
        )
        .next_transaction(2);
    assert_eq!(c.request(&first.build()).code, 200);
    // The same nc again (a captured request replayed with a new transaction): -6.
    let replay = first.clone().next_transaction(3);
    let again = c.request(&replay.build());
    assert_eq!(again.code, 401, "{}", again.text());
    assert!(k.wait_log("auth rc=-6", REPLY_TIMEOUT), "{}", k.log());
    // A higher nc with the same nonce is fine.
    let next = r
        .set(
            "Authorization",
            &answer(&www, "bob", "pw-bob", "REGISTER", &uri, Some(2)),
        )
        .next_transaction(4);
    assert_eq!(c.request(&next.build()).code, 200);
}

#[test]
fn expired_nonce_is_challenged_again_with_stale_true() {
    let k = start("[modparam.auth]\nsecret = \"fixed-secret\"\nnonce_expire = 30\n");
    let c = k.udp();
    // A nonce made with the server's secret an hour ago.
    let old = ksrd::modules::auth::nonce::Nonces::new("fixed-secret", 30, 1024).issue_at(
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 3600) as u32,
    );
    let www = format!("Digest realm=\"{REALM}\", nonce=\"{old}\"");
    let uri = format!("sip:{REALM}:{}", k.port);
    let r = register(&k, &c, "carol").set(
        "Authorization",
        &answer(&www, "carol", "pw-carol", "REGISTER", &uri, None),
    );
    let ch = c.request(&r.build());
    assert_eq!(ch.code, 401, "{}", ch.text());
    assert!(k.wait_log("auth rc=-4", REPLY_TIMEOUT), "{}", k.log());
    // RFC 7616 §3.3 (kamailio-defects.md): stale=true, so the phone retries without asking.
    let fresh = ch.header("www-authenticate").unwrap().to_string();
    assert_eq!(
        challenge_param(&fresh, "stale").as_deref(),
        Some("true"),
        "{fresh}"
    );
}

#[test]
fn sha256_challenge_and_response() {
    let k = start("[modparam.auth]\nalgorithm = \"SHA-256\"\n");
    let c = k.udp();
    let r = register(&k, &c, "dave");
    let ch = c.request(&r.build());
    let www = ch.header("www-authenticate").unwrap().to_string();
    assert_eq!(
        challenge_param(&www, "algorithm").as_deref(),
        Some("SHA-256"),
        "{www}"
    );
    let uri = format!("sip:{REALM}:{}", k.port);
    let ok = c.request(
        &r.set(
            "Authorization",
            &answer(&www, "dave", "pw-dave", "REGISTER", &uri, None),
        )
        .next_transaction(2)
        .build(),
    );
    assert_eq!(ok.code, 200, "{}", ok.text());
}

#[test]
fn forged_nonce_and_user_mismatch_fail() {
    let k = start("");
    let c = k.udp();
    let uri = format!("sip:{REALM}:{}", k.port);
    let forged = format!("Digest realm=\"{REALM}\", nonce=\"{}\"", "ab".repeat(20));
    let r = register(&k, &c, "erin").set(
        "Authorization",
        &answer(&forged, "erin", "pw-erin", "REGISTER", &uri, None),
    );
    assert_eq!(c.request(&r.build()).code, 401);
    assert!(k.wait_log("auth rc=-1", REPLY_TIMEOUT), "{}", k.log());
    // Authenticating as mallory while registering erin (checks=1): -8.
    let ch = c.request(&register(&k, &c, "erin").build());
    let www = ch.header("www-authenticate").unwrap().to_string();
    let r = register(&k, &c, "erin")
        .set(
            "Authorization",
            &answer(&www, "mallory", "pw-mallory", "REGISTER", &uri, None),
        )
        .next_transaction(5);
    assert_eq!(c.request(&r.build()).code, 401);
    assert!(k.wait_log("auth rc=-8", REPLY_TIMEOUT), "{}", k.log());
}

/// 1000 SIPp users register with digest credentials (SIPp computes the responses): every one
/// is challenged once and accepted.
#[test]
fn thousand_sipp_users_register_with_digest() {
    use common::sipp::*;
    let _g = serial();
    let k = start("");
    let dir = TempDir::new("sipp-auth");
    let mut csv = String::from("SEQUENTIAL\n");
    for i in 1..=1000 {
        csv.push_str(&format!("user{i:04};pw-user{i:04}\n"));
    }
    let users = dir.path().join("users.csv");
    std::fs::write(&users, csv).unwrap();
    let uac = sipp(
        dir.path(),
        "reg",
        free_port(),
        &[
            &format!("127.0.0.1:{}", k.port),
            "-sf",
            &scenario("register_auth_uac.xml"),
            "-inf",
            users.to_str().unwrap(),
            "-m",
            "1000",
            "-r",
            "250",
            "-timeout",
            "40s",
        ],
    );
    let (code, report) = uac.wait(std::time::Duration::from_secs(60));
    assert_eq!(code, 0, "{report}\nksrd log:\n{}", k.log_tail(20));
    assert_eq!(k.log_count("\"REGISTER\"}: auth rc=1"), 1000);
    assert_eq!(k.log_count("\"REGISTER\"}: auth rc=-5"), 1000);
}
