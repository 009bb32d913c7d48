//! KSR.tm / KSR.tmx functions not covered by the call-flow tests (tests/tm.rs), each through a
//! small inline route against the real ksrd: explicit destinations (t_relay_to_proto_addr,
//! t_relay_to_proxy), t_newtran + t_reply, t_send_reply, t_is_set, route-type tests, reply-code
//! tests in a failure route (t_check_status, t_get_status_code, t_grep_status, t_any_replied),
//! per-transaction timers (t_set_fr) and t_precheck_trans.
mod common;
use common::*;
use std::time::Duration;

const WAIT: Duration = REPLY_TIMEOUT;
const QUIET: Duration = Duration::from_millis(300);

/// A route file whose request route body is `body` (8 spaces indent) plus optional extra methods.
fn route(body: &str, extra: &str) -> String {
    format!(
        "import KSR\n\ndef mod_init():\n    return kamailio()\n\nclass kamailio:\n    def ksr_request_route(self, msg):\n        if KSR.is_ACK():\n            return 1\n{body}\n        return 1\n{extra}\n"
    )
}

fn invite(k: &Ksrd, caller: &SipPeer) -> Req {
    let r = Req::invite(&format!("sip:bob@127.0.0.1:{}", k.port), caller.addr());
    caller.send_to(&r.build(), k.sip_addr());
    r
}

fn got(p: &SipPeer, method: &str) -> SipMsg {
    p.recv_method(method, WAIT)
        .unwrap_or_else(|| panic!("peer {} got no {method}", p.addr()))
}

fn defines(pairs: &[(&str, String)]) -> String {
    let mut s = String::from("[define]\n");
    for (k, v) in pairs {
        s.push_str(&format!("{k} = \"{v}\"\n"));
    }
    s
}

#[test]
fn t_relay_to_proto_addr_and_t_relay_to_proxy_send_where_told() {
    let (a, b) = (SipPeer::new(), SipPeer::new());
    let k = Ksrd::start(
        &route(
            "        if KSR.pv.get(\"$hdr(X-Via)\") == \"proxy\":\n            KSR.info(\"rc=%d\\n\" % KSR.tm.t_relay_to_proxy(\"udp:127.0.0.1:\" + KSR.kx.get_def(\"B\")))\n        else:\n            KSR.info(\"rc=%d\\n\" % KSR.tm.t_relay_to_proto_addr(\"UDP\", \"127.0.0.1\", int(KSR.kx.get_def(\"A\"))))",
            "",
        ),
        &defines(&[("A", a.port().to_string()), ("B", b.port().to_string())]),
    );
    let caller = SipPeer::new();
    invite(&k, &caller);
    got(&a, "INVITE");
    let r =
        Req::invite(&format!("sip:bob@127.0.0.1:{}", k.port), caller.addr()).set("X-Via", "proxy");
    caller.send_to(&r.build(), k.sip_addr());
    got(&b, "INVITE");
    // The route logs after t_relay returned, so the line may follow the packet.
    assert!(
        wait_until(WAIT, || k.log_count("\"INVITE\"}: rc=1") == 2),
        "{}",
        k.log()
    );
}

#[test]
fn t_newtran_then_t_reply_answers_statefully_and_absorbs_retransmissions() {
    let k = Ksrd::start(
        &route(
            "        KSR.info(\"newtran=%d\\n\" % KSR.tm.t_newtran())\n        KSR.info(\"reply=%d\\n\" % KSR.tm.t_reply(486, \"Busy Here\"))\n        KSR.info(\"again=%d\\n\" % KSR.tm.t_reply(404, \"Not Found\"))",
            "",
        ),
        "",
    );
    let caller = SipPeer::new();
    let r = invite(&k, &caller);
    let trying = caller.recv_response(WAIT).expect("100");
    assert_eq!(trying.code, 100);
    let fin = caller.recv_final(WAIT).expect("final");
    assert_eq!(fin.code, 486);
    assert!(fin.to_tag().is_some());
    assert!(k.wait_log("\"INVITE\"}: again=-1", WAIT), "{}", k.log());
    assert_eq!(k.log_count("\"INVITE\"}: newtran=1"), 1, "{}", k.log());
    assert_eq!(k.log_count("\"INVITE\"}: reply=1"), 1, "{}", k.log());
    // A retransmission gets the same 486 without running the route again.
    caller.send_to(&r.build(), k.sip_addr());
    let again = caller.recv_final(WAIT).expect("486 again");
    assert_eq!(again.raw, fin.raw);
    // (The harness's readiness OPTIONS runs the route too: count the INVITE's runs.)
    assert_eq!(k.log_count("\"INVITE\"}: newtran="), 1, "{}", k.log());
    // The ACK confirms the transaction: no more 486 retransmissions.
    caller.send_to(&r.ack_non2xx(&fin).build(), k.sip_addr());
    caller.expect_silence(Duration::from_millis(800));
}

#[test]
fn t_send_reply_creates_the_transaction_itself() {
    let k = Ksrd::start(
        &route(
            "        KSR.info(\"exists=%d\\n\" % KSR.tm.t_exists())\n        KSR.info(\"send=%d\\n\" % KSR.tm.t_send_reply(404, \"Nobody Here\"))\n        KSR.info(\"exists=%d\\n\" % KSR.tm.t_exists())",
            "",
        ),
        "",
    );
    let caller = SipPeer::new();
    let m = Req::new(
        "MESSAGE",
        &format!("sip:bob@127.0.0.1:{}", k.port),
        caller.addr(),
    );
    caller.send_to(&m.build(), k.sip_addr());
    let fin = caller.recv_final(WAIT).expect("final");
    assert_eq!((fin.code, fin.reason.as_str()), (404, "Nobody Here"));
    assert!(k.wait_log("exists=1", WAIT), "{}", k.log());
    assert!(k.log().contains("exists=-1"));
    assert!(k.log().contains("send=1"));
}

const FAILURE_TESTS: &str = r#"
    def ksr_failure(self, msg):
        KSR.info("F route=%d status=%d get=%d grep486=%d grep404=%d replied=%d timeout=%d code=%s rs=%s\n" % (
            KSR.tmx.t_is_failure_route(), KSR.tm.t_check_status("4[0-9][0-9]"),
            KSR.tm.t_get_status_code(), KSR.tm.t_grep_status(486), KSR.tm.t_grep_status(404),
            KSR.tm.t_any_replied(), KSR.tm.t_any_timeout(), KSR.pv.get("$T_reply_code"),
            KSR.pv.get("$rs")))
        return 1

    def ksr_onreply(self, msg):
        KSR.info("R route=%d request=%d\n" % (KSR.tmx.t_is_reply_route(), KSR.tmx.t_is_request_route()))
        return 1
"#;

#[test]
fn failure_route_sees_the_winning_reply_through_every_accessor() {
    let uas = SipPeer::new();
    let k = Ksrd::start(
        &route(
            "        KSR.setdsturi(KSR.kx.get_def(\"UAS\"))\n        KSR.info(\"set-before=%d\\n\" % KSR.tm.t_is_set(\"failure_route\"))\n        KSR.tm.t_on_failure(\"ksr_failure\")\n        KSR.tm.t_on_reply(\"ksr_onreply\")\n        KSR.info(\"set-after=%d,%d,%d\\n\" % (KSR.tm.t_is_set(\"failure_route\"), KSR.tm.t_is_set(\"onreply_route\"), KSR.tm.t_is_set(\"branch_route\")))\n        KSR.info(\"req route=%d\\n\" % KSR.tmx.t_is_request_route())\n        KSR.tm.t_relay()",
            FAILURE_TESTS,
        ),
        &defines(&[("UAS", uas.uri())]),
    );
    let caller = SipPeer::new();
    invite(&k, &caller);
    let inv = got(&uas, "INVITE");
    uas.reply(&inv, 486, "Busy Here", &[]);
    assert_eq!(caller.recv_final(WAIT).expect("final").code, 486);
    assert!(k.wait_log("F route=", WAIT), "{}", k.log());
    let log = k.log();
    assert!(log.contains("set-before=-1"), "{log}");
    assert!(log.contains("set-after=1,1,-1"), "{log}");
    assert!(log.contains("req route=1"), "{log}");
    assert!(log.contains("R route=1 request=-1"), "{log}");
    assert!(
        log.contains(
            "F route=1 status=1 get=486 grep486=1 grep404=-1 replied=1 timeout=-1 code=486 rs=486"
        ),
        "{log}"
    );
}

#[test]
fn t_set_fr_shortens_this_transaction_only() {
    let uas = SipPeer::new();
    // fr_timer is long; the route sets 300 ms for calls to "short" only.
    let k = Ksrd::start(
        &route(
            "        KSR.setdsturi(KSR.kx.get_def(\"UAS\"))\n        if KSR.pv.get(\"$rU\") == \"short\":\n            KSR.tm.t_set_fr(0, 300)\n        KSR.tm.t_relay()",
            "",
        ),
        &format!(
            "{}\n[modparam.tm]\nfr_timer = 20000\n",
            defines(&[("UAS", uas.uri())])
        ),
    );
    let caller = SipPeer::new();
    let m = Req::new(
        "MESSAGE",
        &format!("sip:short@127.0.0.1:{}", k.port),
        caller.addr(),
    );
    caller.send_to(&m.build(), k.sip_addr());
    got(&uas, "MESSAGE");
    let fin = caller
        .recv_final(Duration::from_secs(3))
        .expect("408 after ~300 ms");
    assert_eq!(fin.code, 408);
    let m = Req::new(
        "MESSAGE",
        &format!("sip:long@127.0.0.1:{}", k.port),
        caller.addr(),
    );
    caller.send_to(&m.build(), k.sip_addr());
    got(&uas, "MESSAGE");
    // The other transaction keeps the 20 s timer: nothing final in a second.
    assert!(caller.recv_final(Duration::from_secs(1)).is_none());
}

#[test]
fn t_precheck_trans_sees_a_transaction_in_progress() {
    let uas = SipPeer::new();
    let k = Ksrd::start(
        &route(
            "        KSR.info(\"pre=%d\\n\" % KSR.tmx.t_precheck_trans())\n        KSR.setdsturi(KSR.kx.get_def(\"UAS\"))\n        KSR.tm.t_relay()\n        KSR.info(\"post=%d\\n\" % KSR.tmx.t_precheck_trans())",
            "",
        ),
        &defines(&[("UAS", uas.uri())]),
    );
    let caller = SipPeer::new();
    invite(&k, &caller);
    got(&uas, "INVITE");
    assert!(k.wait_log("post=1", WAIT), "{}", k.log());
    assert!(k.log().contains("pre=-1"), "{}", k.log());
    uas.expect_silence(QUIET);
}

/// Routes armed with t_on_failure are looked up when the failure happens, in the script current
/// then: a reload between the INVITE and the 486 runs the new failure route (Kamailio semantics).
#[test]
fn failure_route_name_is_resolved_against_the_reloaded_script() {
    let uas = SipPeer::new();
    let body = "        KSR.setdsturi(KSR.kx.get_def(\"UAS\"))\n        KSR.tm.t_on_failure(\"ksr_failure\")\n        KSR.tm.t_relay()";
    let version = |v: &str| {
        route(
            body,
            &format!(
                "\n    def ksr_failure(self, msg):\n        KSR.info(\"failure route {v}\\n\")\n        return 1\n"
            ),
        )
    };
    let k = Ksrd::start(&version("v1"), &defines(&[("UAS", uas.uri())]));
    let caller = SipPeer::new();
    invite(&k, &caller);
    let inv = got(&uas, "INVITE");
    k.rewrite_route(&version("v2"));
    let r = k.rpc("app_python.reload", json!([]));
    assert!(r["result"].is_object(), "{r}");
    uas.reply(&inv, 486, "Busy Here", &[]);
    assert_eq!(caller.recv_final(WAIT).expect("final").code, 486);
    assert!(k.wait_log("failure route v2", WAIT), "{}", k.log());
    assert_eq!(k.log_count("failure route v1"), 0, "{}", k.log());
}

const OPTS_ROUTE: &str = "        KSR.setdsturi(KSR.kx.get_def(\"UAS\"))\n        u = KSR.pv.get(\"$rU\")\n        if u == \"no100\":\n            KSR.tm.t_set_auto_inv_100(0)\n        if u == \"nofailover\":\n            KSR.tm.t_set_disable_failover(1)\n        if u == \"fast\":\n            KSR.tm.t_set_retr(100, 200)\n        KSR.tm.t_on_failure(\"ksr_failure\")\n        KSR.tm.t_relay()";

const OPTS_FAILURE: &str = r#"
    def ksr_failure(self, msg):
        KSR.info("failure route ran\n")
        if KSR.pv.get("$rU") == "drop":
            KSR.tm.t_drop_replies("a")
            KSR.setdsturi(KSR.kx.get_def("BACKUP"))
            KSR.tm.t_relay()
        return 1
"#;

fn opts_ksrd(uas: &SipPeer, backup: &SipPeer) -> Ksrd {
    Ksrd::start(
        &route(OPTS_ROUTE, OPTS_FAILURE),
        &defines(&[("UAS", uas.uri()), ("BACKUP", backup.uri())]),
    )
}

fn invite_user(k: &Ksrd, caller: &SipPeer, user: &str) {
    let r = Req::invite(&format!("sip:{user}@127.0.0.1:{}", k.port), caller.addr());
    caller.send_to(&r.build(), k.sip_addr());
}

#[test]
fn t_set_auto_inv_100_off_sends_no_100() {
    let (uas, backup) = (SipPeer::new(), SipPeer::new());
    let k = opts_ksrd(&uas, &backup);
    let caller = SipPeer::new();
    invite_user(&k, &caller, "no100");
    let inv = got(&uas, "INVITE");
    uas.reply(&inv, 180, "Ringing", &[]);
    // The first thing the caller hears is the relayed 180, not ksrd's 100.
    assert_eq!(caller.recv_response(WAIT).expect("180").code, 180);
    invite_user(&k, &caller, "bob");
    got(&uas, "INVITE");
    assert_eq!(caller.recv_response(WAIT).expect("100").code, 100);
}

#[test]
fn t_set_disable_failover_skips_the_failure_route() {
    let (uas, backup) = (SipPeer::new(), SipPeer::new());
    let k = opts_ksrd(&uas, &backup);
    let caller = SipPeer::new();
    invite_user(&k, &caller, "nofailover");
    let inv = got(&uas, "INVITE");
    uas.reply(&inv, 486, "Busy Here", &[]);
    assert_eq!(caller.recv_final(WAIT).expect("486").code, 486);
    invite_user(&k, &caller, "bob");
    let inv = got(&uas, "INVITE");
    uas.reply(&inv, 486, "Busy Here", &[]);
    assert_eq!(caller.recv_final(WAIT).expect("486").code, 486);
    assert_eq!(k.log_count("failure route ran"), 1, "{}", k.log());
}

#[test]
fn t_drop_replies_leaves_earlier_replies_out_of_the_final_choice() {
    let (uas, backup) = (SipPeer::new(), SipPeer::new());
    let k = opts_ksrd(&uas, &backup);
    let caller = SipPeer::new();
    invite_user(&k, &caller, "drop");
    let inv = got(&uas, "INVITE");
    uas.reply(&inv, 486, "Busy Here", &[]);
    let inv2 = got(&backup, "INVITE");
    backup.reply(&inv2, 503, "Service Unavailable", &[]);
    // Without t_drop_replies the 486 would win (RFC 3261 §16.7); dropped, the 503 is all there is.
    assert_eq!(caller.recv_final(WAIT).expect("final").code, 503);
}

#[test]
fn t_set_retr_changes_this_transactions_retransmission_interval() {
    let (uas, backup) = (SipPeer::new(), SipPeer::new());
    let k = opts_ksrd(&uas, &backup);
    let caller = SipPeer::new();
    invite_user(&k, &caller, "fast");
    let first = got(&uas, "INVITE");
    // T1 = 100 ms: a retransmission comes well before the default T1 (500 ms) would send one.
    let again = uas
        .recv_method("INVITE", Duration::from_millis(450))
        .expect("retransmission with T1 = 100 ms");
    assert_eq!(again.raw, first.raw);
}
