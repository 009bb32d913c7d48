//! routes/forking.py against the real ksrd with Rust UAS peers: parallel forking (every phone
//! rings, the first 200 wins, the others are cancelled) and serial forking by q (one phone at a
//! time, highest q first, the best reply over all of them when every one fails). Also branch
//! routes (t_on_branch): once per branch, per-branch header changes, dropped branches.
mod common;
use common::*;
use std::time::Duration;

const WAIT: Duration = REPLY_TIMEOUT;
const QUIET: Duration = Duration::from_millis(300);

fn forking(defines: &str) -> Ksrd {
    Ksrd::start_with_route_file(
        "routes/forking.py",
        &format!(
            "[define]\n{defines}\n[modparam.tm]\ncontacts_avp = \"tm_contacts\"\nfr_timer = 4000\nfr_inv_timer = 6000\n"
        ),
    )
}

fn invite_to(k: &Ksrd, caller: &SipPeer, user: &str) -> Req {
    let r = Req::invite(&format!("sip:{user}@127.0.0.1:{}", k.port), caller.addr());
    caller.send_to(&r.build(), k.sip_addr());
    r
}

fn got(p: &SipPeer, method: &str) -> SipMsg {
    p.recv_method(method, WAIT)
        .unwrap_or_else(|| panic!("peer {} got no {method}", p.addr()))
}

fn final_code(p: &SipPeer) -> u16 {
    p.recv_final(WAIT).expect("final reply").code
}

#[test]
fn parallel_rings_every_phone_first_200_wins_others_cancelled() {
    let phones = [SipPeer::new(), SipPeer::new(), SipPeer::new()];
    let list: Vec<String> = phones.iter().map(|p| p.uri()).collect();
    let k = forking(&format!("PARALLEL_TARGETS = \"{}\"", list.join(",")));
    let caller = SipPeer::new();
    invite_to(&k, &caller, "parallel");
    let invs: Vec<SipMsg> = phones.iter().map(|p| got(p, "INVITE")).collect();
    // Three branches of one transaction: distinct branch parameters, same Call-ID.
    let branches: std::collections::HashSet<String> = invs.iter().map(top_branch).collect();
    assert_eq!(branches.len(), 3);
    for (p, inv) in phones.iter().zip(&invs) {
        p.reply(inv, 180, "Ringing", &[]);
    }
    phones[1].reply(&invs[1], 200, "OK", &[("Contact", &phones[1].uri())]);
    for i in [0, 2] {
        let c = got(&phones[i], "CANCEL");
        assert_eq!(top_branch(&c), top_branch(&invs[i]));
        phones[i].reply(&c, 200, "OK", &[]);
        phones[i].reply(&invs[i], 487, "Request Terminated", &[]);
        let ack = got(&phones[i], "ACK");
        assert_eq!(top_branch(&ack), top_branch(&invs[i]));
    }
    assert_eq!(final_code(&caller), 200);
    phones[1].expect_silence(QUIET);
    // The 487s of the cancelled phones never reach the caller.
    for m in caller.drain(QUIET, WAIT) {
        assert_ne!(m.code, 487, "a cancelled branch's 487 was relayed");
    }
}

#[test]
fn serial_tries_phones_by_q_and_stops_at_the_first_answer() {
    let (a, b, c) = (SipPeer::new(), SipPeer::new(), SipPeer::new());
    // Listed out of order on purpose: the route orders by q.
    let k = forking(&format!(
        "SERIAL_TARGETS = \"{} 0.2,{} 1.0,{} 0.5\"",
        c.uri(),
        a.uri(),
        b.uri()
    ));
    let caller = SipPeer::new();
    invite_to(&k, &caller, "serial");
    let inv_a = got(&a, "INVITE");
    b.expect_silence(QUIET);
    c.expect_silence(Duration::ZERO);
    a.reply(&inv_a, 486, "Busy Here", &[]);
    got(&a, "ACK");
    let inv_b = got(&b, "INVITE");
    assert_ne!(top_branch(&inv_b), top_branch(&inv_a));
    c.expect_silence(QUIET);
    b.reply(&inv_b, 200, "OK", &[("Contact", &b.uri())]);
    assert_eq!(final_code(&caller), 200);
    c.expect_silence(QUIET);
}

#[test]
fn serial_all_fail_relays_the_best_reply_of_every_round() {
    let (a, b) = (SipPeer::new(), SipPeer::new());
    let k = forking(&format!(
        "SERIAL_TARGETS = \"{} 1.0,{} 0.5\"",
        a.uri(),
        b.uri()
    ));
    let caller = SipPeer::new();
    invite_to(&k, &caller, "serial");
    let inv_a = got(&a, "INVITE");
    a.reply(&inv_a, 486, "Busy Here", &[]);
    let inv_b = got(&b, "INVITE");
    b.reply(&inv_b, 503, "Service Unavailable", &[]);
    // RFC 3261 §16.7 over both rounds (kamailio-defects.md): 486, not the last leg's 503.
    assert_eq!(final_code(&caller), 486);
}

const BRANCH_ROUTE: &str = r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        if KSR.tm.t_check_trans() == 0:
            return 1
        if KSR.is_ACK():
            return 1
        targets = KSR.kx.get_def("TARGETS").split(",")
        KSR.seturi(targets[0])
        for t in targets[1:]:
            KSR.corex.append_branch_uri(t)
        KSR.hdr.append("X-All: yes\r\n")
        KSR.rr.record_route()
        KSR.tm.t_on_branch("ksr_branch")
        KSR.info("t_relay=%d\n" % KSR.tm.t_relay())
        return 1

    def ksr_branch(self, msg):
        idx = KSR.pv.get("$T_branch_idx")
        KSR.info("branch %d %s route=%d\n" % (idx, KSR.pv.get("$ru"), KSR.tmx.t_is_branch_route()))
        if KSR.pv.get("$ru") == KSR.kx.get_def("DROP"):
            KSR.set_drop()
            return 1
        KSR.hdr.append("X-Branch: %d\r\n" % idx)
        if idx == 1:
            KSR.rr.add_rr_param(";b1=yes")
        return 1
"#;

#[test]
fn branch_route_runs_once_per_branch_and_can_edit_or_drop_it() {
    let phones = [SipPeer::new(), SipPeer::new(), SipPeer::new()];
    let list: Vec<String> = phones.iter().map(|p| p.uri()).collect();
    let k = Ksrd::start(
        BRANCH_ROUTE,
        &format!(
            "[define]\nTARGETS = \"{}\"\nDROP = \"{}\"\n",
            list.join(","),
            list[1]
        ),
    );
    let caller = SipPeer::new();
    invite_to(&k, &caller, "fork");
    let inv0 = got(&phones[0], "INVITE");
    let inv2 = got(&phones[2], "INVITE");
    phones[1].expect_silence(QUIET);
    // The request route's header reaches every branch; the branch route's only its own.
    assert_eq!(inv0.header("x-all"), Some("yes"));
    assert_eq!(inv2.header("x-all"), Some("yes"));
    assert_eq!(inv0.headers_all("x-branch"), vec!["0"]);
    assert_eq!(inv2.headers_all("x-branch"), vec!["1"]);
    // Record-Route on both; the parameter added in branch 1's route only on branch 1.
    let rr0 = inv0
        .header("record-route")
        .expect("Record-Route on branch 0");
    let rr2 = inv2
        .header("record-route")
        .expect("Record-Route on branch 1");
    assert!(!rr0.contains("b1=yes"), "{rr0}");
    assert!(rr2.contains("b1=yes"), "{rr2}");
    // Only the INVITE's lines: the harness's readiness OPTIONS goes through this route too.
    let invite_lines = |needle: &str| {
        k.log()
            .lines()
            .filter(|l| l.contains("method=\"INVITE\"") && l.contains(needle))
            .count()
    };
    assert!(
        wait_until(WAIT, || invite_lines("t_relay=1") == 1),
        "{}",
        k.log()
    );
    assert_eq!(invite_lines("route=1"), 3, "{}", k.log());
    phones[0].reply(&inv0, 404, "Not Found", &[]);
    phones[2].reply(&inv2, 480, "Temporarily Unavailable", &[]);
    assert_eq!(final_code(&caller), 404);
}

#[test]
fn every_branch_dropped_makes_t_relay_fail() {
    let phone = SipPeer::new();
    let k = Ksrd::start(
        BRANCH_ROUTE,
        &format!(
            "[define]\nTARGETS = \"{}\"\nDROP = \"{}\"\n",
            phone.uri(),
            phone.uri()
        ),
    );
    let caller = SipPeer::new();
    invite_to(&k, &caller, "fork");
    assert!(
        k.wait_log("method=\"INVITE\"}: t_relay=-1", WAIT),
        "{}",
        k.log()
    );
    phone.expect_silence(QUIET);
}

const BRANCH_FAILURE_ROUTE: &str = r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        if KSR.tm.t_check_trans() == 0 or KSR.is_ACK():
            return 1
        targets = KSR.kx.get_def("TARGETS").split(",")
        KSR.seturi(targets[0])
        for t in targets[1:]:
            KSR.corex.append_branch_uri(t)
        KSR.tm.t_on_branch_failure("ksr_branch_failure")
        KSR.tm.t_relay()
        return 1

    def ksr_branch_failure(self, msg):
        KSR.info("bfail idx=%d rs=%d\n" % (KSR.pv.get("$T_branch_idx"), KSR.pv.get("$T_reply_code")))
        return 1
"#;

#[test]
fn branch_failure_route_runs_for_each_failed_branch() {
    let phones = [SipPeer::new(), SipPeer::new()];
    let list: Vec<String> = phones.iter().map(|p| p.uri()).collect();
    let k = Ksrd::start(
        BRANCH_FAILURE_ROUTE,
        &format!("[define]\nTARGETS = \"{}\"\n", list.join(",")),
    );
    let caller = SipPeer::new();
    invite_to(&k, &caller, "fork");
    let inv0 = got(&phones[0], "INVITE");
    let inv1 = got(&phones[1], "INVITE");
    phones[1].reply(&inv1, 486, "Busy Here", &[]);
    assert!(k.wait_log("bfail idx=1 rs=486", WAIT), "{}", k.log());
    phones[0].reply(&inv0, 200, "OK", &[("Contact", &phones[0].uri())]);
    assert_eq!(final_code(&caller), 200);
    assert_eq!(k.log_count("bfail"), 1, "{}", k.log());
}
