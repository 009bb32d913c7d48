//! The transaction layer (src/tm) against the real ksrd, with Rust UDP peers as caller and
//! UASes: stateful INVITE relay, retransmission absorption, hop-by-hop ACK, failure routes and
//! failover (reply and timeout), transaction AVPs, parallel forking with CANCEL, CANCEL from
//! the caller, foreign replies, 6xx and 401/407 challenge merging.
//!
//! Route: tests/data/tm/proxy.py (its docstring lists the log lines the tests look for).
//! Each test runs its own ksrd (its own defines and tm timers) and its own peers.
mod common;
use common::*;
use std::time::{Duration, Instant};

const ROUTE: &str = "tests/data/tm/proxy.py";
/// How long a message that must come may take.
const WAIT: Duration = REPLY_TIMEOUT;
/// Bounded wait for "nothing more arrives" checks, always after the event that would have
/// caused the unwanted message.
const QUIET: Duration = Duration::from_millis(300);
/// Timers for tests that do not test timers: long enough not to fire during a test.
const TM_DEFAULT: &str = "fr_timer = 4000\nfr_inv_timer = 6000\n";

/// ksrd on tests/data/tm/proxy.py with these `[define]`s and `[modparam.tm]` lines.
fn start(defines: &[(&str, String)], tm: &str) -> Ksrd {
    let mut t = String::from("[define]\n");
    for (k, v) in defines {
        t.push_str(&format!("{k} = \"{v}\"\n"));
    }
    t.push_str("\n[modparam.tm]\n");
    t.push_str(tm);
    Ksrd::start_with_route_file(ROUTE, &t)
}

fn ruri(k: &Ksrd, user: &str) -> String {
    format!("sip:{user}@127.0.0.1:{}", k.port)
}

fn send(from: &SipPeer, k: &Ksrd, r: &Req) {
    from.send_to(&r.build(), k.sip_addr());
}

/// The next response at `p` (any code); panics after WAIT.
fn resp(p: &SipPeer, what: &str) -> SipMsg {
    p.recv_response(WAIT)
        .unwrap_or_else(|| panic!("no response within {WAIT:?}: expected {what}"))
}

/// The next final response at `p`; panics after WAIT.
fn final_resp(p: &SipPeer, what: &str) -> SipMsg {
    p.recv_final(WAIT)
        .unwrap_or_else(|| panic!("no final response within {WAIT:?}: expected {what}"))
}

/// The next `method` request at `p` within `wait` (other methods skipped); panics otherwise.
fn req_within(p: &SipPeer, method: &str, wait: Duration) -> SipMsg {
    p.recv_method(method, wait)
        .unwrap_or_else(|| panic!("peer {} got no {method} within {wait:?}", p.addr()))
}

fn req(p: &SipPeer, method: &str) -> SipMsg {
    req_within(p, method, WAIT)
}

fn call_id(r: &Req) -> String {
    r.get("Call-ID").unwrap().to_string()
}

fn wait_log(k: &Ksrd, needle: &str) {
    assert!(
        k.wait_log(needle, WAIT),
        "log line {needle:?} not written within {WAIT:?}"
    );
}

fn wait_stat(k: &Ksrd, name: &str, want: u64) {
    let mut last = None;
    let ok = wait_until(WAIT, || {
        last = ksrd_stat(k, name);
        last == Some(want)
    });
    assert!(ok, "statistic {name}: want {want}, have {last:?}");
}

/// ksrd's top Via on a relayed request: sent-by is ksrd, RFC 3261 branch, and the caller's
/// Via (with `caller_branch`) right below it.
fn assert_one_ksrd_via(k: &Ksrd, f: &SipMsg, caller_branch: &str) {
    let vias = f.vias();
    assert_eq!(
        vias.len(),
        2,
        "exactly ksrd's Via on top of the caller's: {vias:?}"
    );
    assert_eq!(
        via_dest(&vias[0]),
        Some(k.sip_addr()),
        "top Via is ksrd's: {}",
        vias[0]
    );
    let b = param(&vias[0], "branch").unwrap_or_default();
    assert!(
        b.starts_with("z9hG4bK") && b.len() > 7,
        "RFC 3261 branch: {}",
        vias[0]
    );
    assert_ne!(b, caller_branch, "ksrd's own branch");
    assert_eq!(
        param(&vias[1], "branch").as_deref(),
        Some(caller_branch),
        "caller's Via second: {}",
        vias[1]
    );
}

/// A relayed response at the caller: ksrd's Via removed.
fn assert_caller_via_only(r: &SipMsg, caller_branch: &str) {
    let vias = r.vias();
    assert_eq!(vias.len(), 1, "only the caller's Via: {}", r.text());
    assert_eq!(param(&vias[0], "branch").as_deref(), Some(caller_branch));
}

/// The hop-by-hop ACK ksrd sends for a negative final reply `neg` to `inv` (RFC 3261
/// §17.1.1.3): same R-URI, only ksrd's Via with the INVITE's branch, CSeq method ACK, the
/// reply's To (with its tag).
fn assert_hop_ack(ack: &SipMsg, inv: &SipMsg, neg_tag: &str) {
    assert_eq!(ack.reason, "ACK", "{}", ack.text());
    assert_eq!(
        ack.start_line.split(' ').nth(1),
        inv.start_line.split(' ').nth(1),
        "ACK R-URI is the INVITE's"
    );
    assert_eq!(ack.vias().len(), 1, "only ksrd's Via: {}", ack.text());
    assert_eq!(
        top_branch(ack),
        top_branch(inv),
        "ACK for a non-2xx has the INVITE's branch"
    );
    assert_eq!(cseq(ack), (cseq(inv).0, "ACK".to_string()));
    assert_eq!(
        ack.to_tag().as_deref(),
        Some(neg_tag),
        "To tag of the reply"
    );
    assert_eq!(ack.header("call-id"), inv.header("call-id"));
    assert_eq!(ack.header("from"), inv.header("from"));
}

// ------------------------------------------------------------------------------------------------
// 1. stateful relay

#[test]
fn invite_relayed_statefully_with_100_trying_180_200_ack_and_bye() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);

    // ksrd's own 100 comes before the UAS said anything (the UAS has not answered yet)
    let r = resp(&caller, "100 Trying from ksrd");
    assert_eq!(
        (r.code, r.reason.as_str()),
        (100, "trying -- your call is important to us"),
        "{}",
        r.text()
    );
    assert_eq!(r.to_tag(), None, "100 Trying has no To tag");
    assert_caller_via_only(&r, &inv.branch());

    let f = req(&uas, "INVITE");
    assert_one_ksrd_via(&k, &f, &inv.branch());
    assert_eq!(f.header("call-id"), inv.get("Call-ID"));
    assert_eq!(f.header("cseq"), Some("1 INVITE"));
    assert_eq!(f.body, inv.body, "SDP relayed unchanged");
    assert_eq!(
        f.header("x-tm-test"),
        inv.get("Call-ID"),
        "the request route's header edit"
    );
    assert_eq!(
        f.start_line,
        format!("INVITE {} SIP/2.0", inv.ruri),
        "R-URI kept ($du only sets the next hop)"
    );

    uas.reply(&f, 180, "Ringing", &[]);
    let r = resp(&caller, "180 relayed");
    assert_eq!(
        (r.code, r.reason.as_str()),
        (180, "Ringing"),
        "{}",
        r.text()
    );
    assert_caller_via_only(&r, &inv.branch());
    assert_eq!(r.to_tag().as_deref(), Some(uas.tag.as_str()));

    let contact = format!("<sip:uas@{}>", uas.addr());
    uas.reply(&f, 200, "OK", &[("Contact", &contact)]);
    let ok = resp(&caller, "200 relayed");
    assert_eq!((ok.code, ok.reason.as_str()), (200, "OK"), "{}", ok.text());
    assert_caller_via_only(&ok, &inv.branch());
    assert_eq!(ok.to_tag().as_deref(), Some(uas.tag.as_str()));
    assert_eq!(ok.header("contact"), Some(contact.as_str()));

    // the end-to-end ACK and the BYE go through the request route to the UAS
    let ack = inv.in_dialog("ACK", 1, &ok, caller.addr());
    send(&caller, &k, &ack);
    let a = uas
        .recv_request(WAIT)
        .expect("the 2xx ACK is relayed to the UAS");
    assert_eq!(a.reason, "ACK", "nothing between 200 and ACK: {}", a.text());
    assert_eq!(a.to_tag().as_deref(), Some(uas.tag.as_str()));
    assert_eq!(
        param(&a.vias()[1], "branch"),
        Some(ack.branch()),
        "2xx ACK is relayed with the caller's Via below ksrd's"
    );

    let bye = inv.in_dialog("BYE", 2, &ok, caller.addr());
    send(&caller, &k, &bye);
    let b = uas.recv_request(WAIT).expect("BYE relayed");
    assert_eq!(b.reason, "BYE", "{}", b.text());
    assert_one_ksrd_via(&k, &b, &bye.branch());
    uas.reply(&b, 200, "OK", &[]);
    let r = final_resp(&caller, "200 for the BYE");
    assert_eq!(r.code, 200);
    assert_eq!(cseq(&r), (2, "BYE".to_string()));

    // nothing else: no 200 retransmitted by ksrd, no stray request to the UAS
    caller.expect_silence(QUIET);
    uas.expect_silence(Duration::from_millis(50));
    assert_eq!(k.log_count(&format!("RUN INVITE {}", call_id(&inv))), 1);
}

#[test]
fn non_invite_is_relayed_statefully_without_100() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let m = Req::new("MESSAGE", &ruri(&k, "bob"), caller.addr()).body("text/plain", b"hi");
    send(&caller, &k, &m);
    let f = req(&uas, "MESSAGE");
    assert_one_ksrd_via(&k, &f, &m.branch());
    uas.reply(&f, 202, "Accepted", &[]);
    let r = resp(&caller, "202 (no 100 for a non-INVITE)");
    assert_eq!(r.code, 202, "{}", r.text());
    assert_caller_via_only(&r, &m.branch());
    // a retransmission after the final reply gets the same reply, not the route again
    send(&caller, &k, &m);
    let again = resp(&caller, "202 again for the retransmission");
    assert_eq!(again.raw, r.raw, "the same reply resent");
    uas.expect_silence(QUIET);
    assert_eq!(k.log_count(&format!("RUN MESSAGE {}", call_id(&m))), 1);
}

// ------------------------------------------------------------------------------------------------
// 2. retransmissions

#[test]
fn invite_retransmission_is_absorbed_and_ksrd_retransmits_on_its_own_timer() {
    let uas = SipPeer::new();
    // T1 = 1 s: ksrd's own first retransmission comes 1 s after the INVITE, well apart from
    // the caller's retransmission that follows the INVITE within milliseconds
    let k = start(
        &[("UAS", uas.uri())],
        "fr_timer = 8000\nfr_inv_timer = 8000\nretr_timer1 = 1000\n",
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let t100 = resp(&caller, "100 Trying");
    assert_eq!(t100.code, 100);
    let f = req(&uas, "INVITE");
    let first_at = Instant::now();

    // the caller retransmits (same branch) before the UAS answers
    send(&caller, &k, &inv);
    let again = resp(&caller, "100 Trying resent for the retransmission");
    assert_eq!(again.code, 100, "{}", again.text());
    // the retransmission is not relayed: nothing at the UAS until ksrd's own timer (1 s)
    if let Some(m) = uas.recv_request(QUIET) {
        assert!(
            first_at.elapsed() >= Duration::from_millis(900),
            "the caller's retransmission was relayed ({:?} after the INVITE):\n{}",
            first_at.elapsed(),
            m.text()
        );
    }
    // ksrd's timer A retransmission: the very same request
    let r = uas
        .recv_request(Duration::from_millis(2500))
        .expect("ksrd retransmits the INVITE after T1");
    assert!(
        first_at.elapsed() >= Duration::from_millis(900),
        "retransmitted after T1 = 1 s, not after {:?}",
        first_at.elapsed()
    );
    assert_eq!(r.raw, f.raw, "a retransmission is the same request");
    assert_eq!(
        k.log_count(&format!("RUN INVITE {ci}")),
        1,
        "route ran once"
    );

    // after the final reply a retransmitted INVITE gets that final reply again
    uas.reply(&f, 486, "Busy Here", &[]);
    let busy = final_resp(&caller, "486");
    assert_eq!(busy.code, 486);
    send(&caller, &k, &inv);
    let busy2 = final_resp(&caller, "486 again");
    assert_eq!(busy2.code, 486);
    assert_eq!(busy2.to_tag(), busy.to_tag());
    assert_eq!(
        busy2.header("cseq"),
        busy.header("cseq"),
        "same final reply resent"
    );
    assert_eq!(
        k.log_count(&format!("RUN INVITE {ci}")),
        1,
        "route ran once"
    );
    assert_eq!(
        ksrd_stat(&k, "tm:absorbed_request_retransmissions"),
        Some(2),
        "both retransmissions absorbed by the transaction"
    );
    // the UAS got only its hop-by-hop ACK, nothing for the caller's retransmission
    let ack = req(&uas, "ACK");
    assert_hop_ack(&ack, &f, &uas.tag);
    let rest: Vec<String> = uas
        .drain(QUIET, Duration::from_secs(1))
        .iter()
        .map(|m| m.start_line.clone())
        .collect();
    assert!(
        rest.iter().all(|l| l.starts_with("ACK ")),
        "only ACK retransmissions may follow: {rest:?}"
    );
}

#[test]
fn invite_retransmission_after_180_gets_the_180() {
    // RFC 3261 §17.2.1: in Proceeding a request retransmission gets the most recent
    // provisional response (Kamailio keeps every relayed reply in the UAS buffer).
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    assert_eq!(resp(&caller, "100").code, 100);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 180, "Ringing", &[]);
    let ringing = resp(&caller, "180");
    assert_eq!(ringing.code, 180);

    send(&caller, &k, &inv);
    let r = resp(&caller, "the last provisional reply again");
    assert_eq!(
        (r.code, r.reason.as_str()),
        (180, "Ringing"),
        "retransmitted INVITE in Proceeding must get the 180 that was relayed, got:\n{}",
        r.text()
    );
    assert_eq!(r.to_tag().as_deref(), Some(uas.tag.as_str()));
    uas.expect_silence(QUIET);
    // finish the call attempt
    uas.reply(&f, 486, "Busy Here", &[]);
    assert_eq!(final_resp(&caller, "486").code, 486);
}

// ------------------------------------------------------------------------------------------------
// 3. hop-by-hop ACK

#[test]
fn negative_reply_is_acked_hop_by_hop_relayed_and_callers_ack_absorbed() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 486, "Busy Here", &[("X-Uas", "busy")]);

    let ack = req(&uas, "ACK");
    assert_hop_ack(&ack, &f, &uas.tag);

    let busy = final_resp(&caller, "486 relayed");
    assert_eq!(
        (busy.code, busy.reason.as_str()),
        (486, "Busy Here"),
        "{}",
        busy.text()
    );
    assert_caller_via_only(&busy, &inv.branch());
    assert_eq!(busy.to_tag().as_deref(), Some(uas.tag.as_str()));
    assert_eq!(busy.header("x-uas"), Some("busy"), "the UAS's reply itself");
    wait_log(&k, &format!("ONREPLY 486 x=inv-{ci} T=486 {ci}"));
    wait_log(
        &k,
        &format!("FAILURE code=486 timeout=-1 replied=1 x=inv-{ci} {ci}"),
    );

    // the caller's ACK for the 486 belongs to ksrd's transaction: absorbed
    assert_eq!(ksrd_stat(&k, "tm:absorbed_acks"), Some(0));
    send(&caller, &k, &inv.ack_non2xx(&busy));
    wait_stat(&k, "tm:absorbed_acks", 1);
    uas.expect_silence(QUIET);
    assert_eq!(k.log_count(&format!("RUN ACK {ci}")), 0, "no route for it");
}

#[test]
fn negative_final_is_retransmitted_until_the_ack() {
    // timer G: with T1 = 100 ms and T2 = 200 ms the 486 is resent every 100..200 ms
    let uas = SipPeer::new();
    let k = start(
        &[("UAS", uas.uri())],
        "fr_timer = 4000\nfr_inv_timer = 6000\nretr_timer1 = 100\nretr_timer2 = 200\n",
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 486, "Busy Here", &[]);
    let busy = final_resp(&caller, "486");
    let again = caller
        .recv_final(Duration::from_secs(1))
        .expect("486 resent while no ACK comes (timer G)");
    assert_eq!(again.raw, busy.raw);
    send(&caller, &k, &inv.ack_non2xx(&busy));
    wait_stat(&k, "tm:absorbed_acks", 1);
    // at most one resend that was already on its way when the ACK arrived
    let late = caller.drain(Duration::from_millis(500), Duration::from_millis(500));
    assert!(
        late.len() <= 1,
        "timer G stops on the ACK; got {} more: {:?}",
        late.len(),
        late.iter()
            .map(|m| m.start_line.clone())
            .collect::<Vec<_>>()
    );
}

// ------------------------------------------------------------------------------------------------
// 4. failure route and failover

#[test]
fn failover_on_503_to_backup() {
    let primary = SipPeer::new();
    let backup = SipPeer::new();
    let k = start(
        &[("UAS", primary.uri()), ("BACKUP", backup.uri())],
        TM_DEFAULT,
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f1 = req(&primary, "INVITE");
    primary.reply(&f1, 503, "Service Unavailable", &[]);
    assert_hop_ack(&req(&primary, "ACK"), &f1, &primary.tag);

    let f2 = req(&backup, "INVITE");
    assert_one_ksrd_via(&k, &f2, &inv.branch());
    assert_ne!(
        top_branch(&f2),
        top_branch(&f1),
        "a new branch for the backup"
    );
    assert_eq!(f2.body, inv.body);
    // the request route's edits stay on every branch; the failure route's only on its own
    assert_eq!(f1.header("x-tm-test"), Some(ci.as_str()));
    assert_eq!(f2.header("x-tm-test"), Some(ci.as_str()), "{}", f2.text());
    assert_eq!(f1.header("x-failover"), None);
    assert_eq!(f2.header("x-failover"), Some("503"), "{}", f2.text());
    wait_log(
        &k,
        &format!("FAILURE code=503 timeout=-1 replied=1 x=inv-{ci} {ci}"),
    );
    wait_log(&k, &format!("FAILOVER 1 {ci}"));

    backup.reply(&f2, 200, "OK", &[]);
    let ok = final_resp(&caller, "the backup's 200 (and no 503 before it)");
    assert_eq!(ok.code, 200, "{}", ok.text());
    assert_eq!(ok.to_tag().as_deref(), Some(backup.tag.as_str()));
    assert_caller_via_only(&ok, &inv.branch());
    caller.expect_silence(QUIET);
    assert_eq!(k.log_count(&format!("FAILURE-LAST code=200 {ci}")), 0);
}

#[test]
fn failover_on_timeout_sees_408_and_branch_timeout() {
    let primary = SipPeer::new();
    let backup = SipPeer::new();
    let k = start(
        &[("UAS", primary.uri()), ("BACKUP", backup.uri())],
        "fr_timer = 1000\nfr_inv_timer = 3000\n",
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let t0 = Instant::now();
    let f1 = req(&primary, "INVITE");
    // the primary never answers; after fr_timer (1 s) the backup gets the INVITE
    let f2 = req_within(&backup, "INVITE", Duration::from_secs(5));
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "failover only after fr_timer, was {:?}",
        t0.elapsed()
    );
    assert_one_ksrd_via(&k, &f2, &inv.branch());
    assert_eq!(f2.header("x-tm-test"), Some(ci.as_str()), "{}", f2.text());
    assert_eq!(f2.header("x-failover"), Some("408"), "{}", f2.text());
    wait_log(
        &k,
        &format!("FAILURE code=408 timeout=1 replied=-1 x=inv-{ci} {ci}"),
    );
    backup.reply(&f2, 200, "OK", &[]);
    let ok = final_resp(&caller, "the backup's 200");
    assert_eq!(ok.code, 200, "{}", ok.text());
    assert_eq!(ok.to_tag().as_deref(), Some(backup.tag.as_str()));
    // the primary never sent a provisional: no CANCEL (RFC 3261 §9.1), only INVITE resends
    for m in primary.drain(QUIET, Duration::from_secs(2)) {
        assert_eq!(m.reason, "INVITE", "{}", m.text());
        assert_eq!(m.raw, f1.raw, "only retransmissions of the INVITE");
    }
}

#[test]
fn ringing_branch_times_out_on_fr_inv_timer_and_is_cancelled() {
    let primary = SipPeer::new();
    let k = start(
        &[("UAS", primary.uri())],
        "fr_timer = 500\nfr_inv_timer = 1000\n",
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f = req(&primary, "INVITE");
    primary.reply(&f, 180, "Ringing", &[]);
    let t0 = Instant::now();
    // 180 restarts the branch on fr_inv_timer; then ksrd cancels it and answers 408
    let cancel = req_within(&primary, "CANCEL", Duration::from_secs(4));
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "fr_inv_timer (1 s) applies after a provisional, not fr_timer: {:?}",
        t0.elapsed()
    );
    assert_eq!(top_branch(&cancel), top_branch(&f));
    assert_eq!(cseq(&cancel), (1, "CANCEL".to_string()));
    let r = final_resp(&caller, "408 after fr_inv_timer");
    assert_eq!(
        (r.code, r.reason.as_str()),
        (408, "Request Timeout"),
        "{}",
        r.text()
    );
    wait_log(
        &k,
        &format!("FAILURE code=408 timeout=1 replied=1 x=inv-{ci} {ci}"),
    );
    primary.reply(&cancel, 200, "OK", &[]);
    primary.reply(&f, 487, "Request Terminated", &[]);
    assert_hop_ack(&req(&primary, "ACK"), &f, &primary.tag);
    // the late 487 is not relayed after the 408
    for m in caller.drain(QUIET, Duration::from_secs(1)) {
        assert_eq!(
            m.code,
            408,
            "only 408 (resends) reach the caller: {}",
            m.text()
        );
    }
}

#[test]
fn non_invite_timeout_gets_a_local_408() {
    let uas = SipPeer::new();
    let k = start(
        &[("UAS", uas.uri())],
        "fr_timer = 700\nfr_inv_timer = 2000\n",
    );
    let caller = SipPeer::new();
    let m = Req::new("MESSAGE", &ruri(&k, "bob"), caller.addr()).body("text/plain", b"x");
    let ci = call_id(&m);
    send(&caller, &k, &m);
    let t0 = Instant::now();
    let f = req(&uas, "MESSAGE");
    let r = caller
        .recv_final(Duration::from_secs(4))
        .expect("408 after fr_timer");
    assert!(
        t0.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!((r.code, r.reason.as_str()), (408, "Request Timeout"));
    assert!(r.to_tag().is_some(), "a local final reply has a To tag");
    assert_eq!(r.header("call-id"), Some(ci.as_str()));
    wait_log(
        &k,
        &format!("FAILURE code=408 timeout=1 replied=-1 x=<null> {ci}"),
    );
    // timer E resent the MESSAGE meanwhile (same bytes), nothing else
    for x in uas.drain(QUIET, Duration::from_secs(1)) {
        assert_eq!(x.raw, f.raw, "{}", x.text());
    }
}

// ------------------------------------------------------------------------------------------------
// 5. AVP scope

#[test]
fn avp_lives_with_its_transaction() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();

    // call 1: onreply routes see $avp(x) set by the INVITE's request route; the BYE does not
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 180, "Ringing", &[]);
    uas.reply(&f, 200, "OK", &[]);
    let ok = final_resp(&caller, "200");
    assert_eq!(ok.code, 200);
    wait_log(&k, &format!("ONREPLY 180 x=inv-{ci} T=180 {ci}"));
    wait_log(&k, &format!("ONREPLY 200 x=inv-{ci} T=200 {ci}"));
    assert_eq!(
        k.log_count(&format!("AVP-REQ INVITE x=<null> {ci}")),
        1,
        "the INVITE's route starts without it"
    );
    send(&caller, &k, &inv.in_dialog("ACK", 1, &ok, caller.addr()));
    let bye = inv.in_dialog("BYE", 2, &ok, caller.addr());
    send(&caller, &k, &bye);
    let b = req(&uas, "BYE");
    uas.reply(&b, 200, "OK", &[]);
    assert_eq!(final_resp(&caller, "200 for BYE").code, 200);
    wait_log(&k, &format!("AVP-REQ BYE x=<null> {ci}"));
    wait_log(&k, &format!("ONREPLY 200 x=<null> T=200 {ci}"));
    assert_eq!(k.log_count(&format!("AVP-REQ BYE x=inv-{ci}")), 0);
    assert_eq!(k.log_count(&format!("AVP-REQ ACK x=inv-{ci}")), 0);

    // call 2: the failure route sees it too
    let inv2 = Req::invite(&ruri(&k, "carol"), caller.addr());
    let ci2 = call_id(&inv2);
    send(&caller, &k, &inv2);
    let f2 = req(&uas, "INVITE");
    uas.reply(&f2, 404, "Not Found", &[]);
    assert_eq!(final_resp(&caller, "404").code, 404);
    wait_log(
        &k,
        &format!("FAILURE code=404 timeout=-1 replied=1 x=inv-{ci2} {ci2}"),
    );
    // and the AVP of one transaction is not seen by another
    assert_eq!(k.log_count(&format!("x=inv-{ci} {ci2}")), 0);
}

// ------------------------------------------------------------------------------------------------
// 6. parallel forking

#[test]
fn parallel_fork_200_wins_others_cancelled_and_their_487_absorbed() {
    let u1 = SipPeer::new();
    let u2 = SipPeer::new();
    let u3 = SipPeer::new();
    let k = start(
        &[("UAS", u1.uri()), ("FORK2", u2.uri()), ("FORK3", u3.uri())],
        TM_DEFAULT,
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f1 = req(&u1, "INVITE");
    let f2 = req(&u2, "INVITE");
    let f3 = req(&u3, "INVITE");
    for f in [&f1, &f2, &f3] {
        assert_one_ksrd_via(&k, f, &inv.branch());
        assert_eq!(f.header("call-id"), Some(ci.as_str()));
        assert_eq!(f.header("x-tm-test"), Some(ci.as_str()), "{}", f.text());
    }
    let branches = [top_branch(&f1), top_branch(&f2), top_branch(&f3)];
    assert!(
        branches[0] != branches[1] && branches[1] != branches[2] && branches[0] != branches[2],
        "one branch per fork: {branches:?}"
    );
    assert_eq!(
        f2.start_line,
        format!("INVITE {} SIP/2.0", u2.uri()),
        "appended branch's R-URI"
    );
    assert_eq!(f3.start_line, format!("INVITE {} SIP/2.0", u3.uri()));

    u1.reply(&f1, 180, "Ringing", &[]);
    u2.reply(&f2, 180, "Ringing", &[]);
    let mut ring_tags = Vec::new();
    while ring_tags.len() < 2 {
        let r = resp(&caller, "two 180s");
        if r.code == 100 {
            continue;
        }
        assert_eq!(r.code, 180, "{}", r.text());
        ring_tags.push(r.to_tag().unwrap_or_default());
    }
    ring_tags.sort();
    let mut want = vec![u1.tag.clone(), u2.tag.clone()];
    want.sort();
    assert_eq!(ring_tags, want);

    u3.reply(&f3, 200, "OK", &[]);
    let ok = final_resp(&caller, "200 from the third branch");
    assert_eq!(ok.code, 200, "{}", ok.text());
    assert_eq!(ok.to_tag().as_deref(), Some(u3.tag.as_str()));

    // the two ringing branches are cancelled; they answer 200 + 487, ksrd ACKs the 487
    for (u, f) in [(&u1, &f1), (&u2, &f2)] {
        let c = req(u, "CANCEL");
        assert_eq!(
            top_branch(&c),
            top_branch(f),
            "CANCEL has its INVITE's branch"
        );
        assert_eq!(c.vias().len(), 1, "only ksrd's Via: {}", c.text());
        assert_eq!(cseq(&c), (1, "CANCEL".to_string()));
        assert_eq!(
            c.start_line.split(' ').nth(1),
            f.start_line.split(' ').nth(1),
            "CANCEL R-URI is the INVITE's"
        );
        assert_eq!(c.header("call-id"), f.header("call-id"));
        assert_eq!(c.header("from"), f.header("from"));
        assert_eq!(c.header("to"), f.header("to"));
        u.reply(&c, 200, "OK", &[]);
        u.reply(f, 487, "Request Terminated", &[]);
        assert_hop_ack(&req(u, "ACK"), f, &u.tag);
    }
    // the winner is not cancelled
    for m in u3.drain(QUIET, Duration::from_secs(1)) {
        assert_ne!(m.reason, "CANCEL", "the answering branch is not cancelled");
    }
    // the caller gets no 487 (nor anything else) after its 200
    let more: Vec<String> = caller
        .drain(QUIET, Duration::from_secs(1))
        .iter()
        .map(SipMsg::text)
        .collect();
    assert!(more.is_empty(), "caller got more after the 200: {more:#?}");
    assert_eq!(
        k.log_count(&format!("FAILURE code=487 timeout=-1 replied=1 x=inv-{ci}")),
        0
    );
}

// ------------------------------------------------------------------------------------------------
// 7. CANCEL from the caller

#[test]
fn cancel_while_ringing_is_answered_forwarded_and_487_relayed() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 180, "Ringing", &[]);
    loop {
        let r = resp(&caller, "180");
        if r.code == 180 {
            break;
        }
        assert_eq!(r.code, 100, "{}", r.text());
    }

    send(&caller, &k, &inv.cancel());
    let r = resp(&caller, "200 for the CANCEL");
    assert_eq!(r.code, 200, "{}", r.text());
    assert_eq!(cseq(&r), (1, "CANCEL".to_string()));
    assert_caller_via_only(&r, &inv.branch());
    wait_log(&k, &format!("CANCEL-CHECK 1 {ci}"));

    let c = req(&uas, "CANCEL");
    assert_eq!(top_branch(&c), top_branch(&f), "same branch as the INVITE");
    assert_eq!(cseq(&c), (1, "CANCEL".to_string()));
    assert_eq!(c.vias().len(), 1, "hop-by-hop CANCEL: {}", c.text());
    uas.reply(&c, 200, "OK", &[]);
    uas.reply(&f, 487, "Request Terminated", &[]);
    assert_hop_ack(&req(&uas, "ACK"), &f, &uas.tag);

    let t = final_resp(&caller, "487 for the INVITE");
    assert_eq!(
        (t.code, t.reason.as_str()),
        (487, "Request Terminated"),
        "{}",
        t.text()
    );
    assert_eq!(cseq(&t), (1, "INVITE".to_string()));
    assert_caller_via_only(&t, &inv.branch());
    // the failure route sees the cancelled transaction, no failover
    wait_log(
        &k,
        &format!("FAILURE code=487 timeout=-1 replied=1 x=inv-{ci} {ci}"),
    );
    send(&caller, &k, &inv.ack_non2xx(&t));
    wait_stat(&k, "tm:absorbed_acks", 1);
    uas.expect_silence(QUIET);
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    // RFC 3261 §9.1: no CANCEL on a branch that has not answered; sent once it rings
    let uas = SipPeer::new();
    let k = start(
        &[("UAS", uas.uri())],
        "fr_timer = 4000\nfr_inv_timer = 6000\nretr_timer1 = 2000\n",
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    send(&caller, &k, &inv.cancel());
    let r = final_resp(&caller, "200 for the CANCEL");
    assert_eq!(
        (r.code, cseq(&r).1.as_str()),
        (200, "CANCEL"),
        "{}",
        r.text()
    );
    uas.expect_silence(QUIET);
    uas.reply(&f, 180, "Ringing", &[]);
    let c = req(&uas, "CANCEL");
    assert_eq!(top_branch(&c), top_branch(&f));
    uas.reply(&c, 200, "OK", &[]);
    uas.reply(&f, 487, "Request Terminated", &[]);
    assert_hop_ack(&req(&uas, "ACK"), &f, &uas.tag);
    let t = final_resp(&caller, "487");
    assert_eq!(t.code, 487, "{}", t.text());
}

#[test]
fn cancel_without_invite_transaction_gets_481() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "nobody"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv.cancel());
    let r = final_resp(&caller, "481");
    assert_eq!(
        (r.code, r.reason.as_str()),
        (481, "Call/Transaction Does Not Exist"),
        "{}",
        r.text()
    );
    assert_eq!(cseq(&r), (1, "CANCEL".to_string()));
    wait_log(&k, &format!("CANCEL-CHECK -1 {ci}"));
    uas.expect_silence(QUIET);
}

// ------------------------------------------------------------------------------------------------
// 8. replies that are not ksrd's

fn reply_with_vias(top: &str, second: &str, call: &str) -> Vec<u8> {
    format!(
        "SIP/2.0 200 OK\r\nVia: {top}\r\nVia: {second}\r\nFrom: <sip:a@127.0.0.1>;tag=f1\r\nTo: <sip:b@127.0.0.1>;tag=t1\r\nCall-ID: {call}\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn reply_with_foreign_top_via_is_dropped() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let sender = SipPeer::new();
    let target = SipPeer::new();
    let second = format!("SIP/2.0/UDP {};branch={}", target.addr(), branch());
    let before = ksrd_stat(&k, "core:drop_replies").expect("core:drop_replies statistic");

    // top Via elsewhere: another host, then ksrd's IP with another port (the sender's)
    let foreign = [
        format!("SIP/2.0/UDP 192.0.2.1:5060;branch={}", branch()),
        format!("SIP/2.0/UDP {};branch={}", sender.addr(), branch()),
    ];
    for (i, top) in foreign.iter().enumerate() {
        let call = uniq("foreign");
        sender.send_to(&reply_with_vias(top, &second, &call), k.sip_addr());
        wait_stat(&k, "core:drop_replies", before + 1 + i as u64);
        target.expect_silence(QUIET);
    }
    sender.expect_silence(Duration::from_millis(50));

    // control: with ksrd's Via on top the same reply is forwarded to the second Via
    let ours = format!("SIP/2.0/UDP {};branch={}", k.sip_addr(), branch());
    let call = uniq("ours");
    sender.send_to(&reply_with_vias(&ours, &second, &call), k.sip_addr());
    let (m, _) = target
        .recv_msg(WAIT)
        .expect("a reply with ksrd's top Via is forwarded by its second Via");
    assert_eq!(m.header("call-id"), Some(call.as_str()));
    assert_eq!(m.vias().len(), 1, "ksrd's Via removed: {}", m.text());
    assert_eq!(ksrd_stat(&k, "core:drop_replies"), Some(before + 2));
}

// ------------------------------------------------------------------------------------------------
// 9. 6xx

#[test]
fn global_failure_6xx_cancels_other_branches_and_wins() {
    let u1 = SipPeer::new();
    let u2 = SipPeer::new();
    let k = start(&[("UAS", u1.uri()), ("FORK2", u2.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f1 = req(&u1, "INVITE");
    let f2 = req(&u2, "INVITE");
    u2.reply(&f2, 180, "Ringing", &[]);
    loop {
        let r = resp(&caller, "180");
        if r.code == 180 {
            break;
        }
    }
    u1.reply(&f1, 603, "Decline", &[]);
    assert_hop_ack(&req(&u1, "ACK"), &f1, &u1.tag);
    let c = req(&u2, "CANCEL");
    assert_eq!(
        top_branch(&c),
        top_branch(&f2),
        "CANCEL of the other branch"
    );
    // no final reply upstream while a branch is still pending
    caller.expect_silence(Duration::from_millis(100));
    u2.reply(&c, 200, "OK", &[]);
    u2.reply(&f2, 487, "Request Terminated", &[]);
    assert_hop_ack(&req(&u2, "ACK"), &f2, &u2.tag);
    let r = final_resp(&caller, "603");
    assert_eq!(
        (r.code, r.reason.as_str()),
        (603, "Decline"),
        "{}",
        r.text()
    );
    assert_eq!(r.to_tag().as_deref(), Some(u1.tag.as_str()));
    wait_log(
        &k,
        &format!("FAILURE code=603 timeout=-1 replied=1 x=inv-{ci} {ci}"),
    );
    for m in caller.drain(QUIET, Duration::from_secs(1)) {
        assert_eq!(
            m.code,
            603,
            "only the 603 (resent) reaches the caller: {}",
            m.text()
        );
    }
}

// ------------------------------------------------------------------------------------------------
// 10. 401/407 challenge merging

fn two_branch_challenge(first: (u16, &str, &str), second: (u16, &str, &str)) -> SipMsg {
    let u1 = SipPeer::new();
    let u2 = SipPeer::new();
    let k = start(&[("UAS", u1.uri()), ("FORK2", u2.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f1 = req(&u1, "INVITE");
    let f2 = req(&u2, "INVITE");
    let reason = |c: u16| {
        if c == 401 {
            "Unauthorized"
        } else {
            "Proxy Authentication Required"
        }
    };
    u1.reply(&f1, first.0, reason(first.0), &[(first.1, first.2)]);
    assert_hop_ack(&req(&u1, "ACK"), &f1, &u1.tag);
    u2.reply(&f2, second.0, reason(second.0), &[(second.1, second.2)]);
    assert_hop_ack(&req(&u2, "ACK"), &f2, &u2.tag);
    let r = final_resp(&caller, "one merged challenge");
    for m in caller.drain(QUIET, Duration::from_secs(1)) {
        assert_eq!(
            m.raw,
            r.raw,
            "one final reply only (resends aside): {}",
            m.text()
        );
    }
    drop(k);
    r
}

#[test]
fn two_407_challenges_are_merged() {
    let a = r#"Digest realm="a.example", nonce="n1", algorithm=MD5"#;
    let b = r#"Digest realm="b.example", nonce="n2", algorithm=MD5"#;
    let r = two_branch_challenge(
        (407, "Proxy-Authenticate", a),
        (407, "Proxy-Authenticate", b),
    );
    assert_eq!(r.code, 407, "{}", r.text());
    let ch = r.headers_all("proxy-authenticate");
    assert_eq!(ch.len(), 2, "both challenges: {}", r.text());
    assert!(ch.contains(&a) && ch.contains(&b), "{ch:?}");
    assert_eq!(r.vias().len(), 1);
    assert_eq!(r.header("content-length"), Some("0"), "{}", r.text());
    assert!(r.body.is_empty(), "{}", r.text());
}

#[test]
fn a_401_and_a_407_are_merged() {
    let a = r#"Digest realm="www.example", nonce="n1""#;
    let b = r#"Digest realm="proxy.example", nonce="n2""#;
    let r = two_branch_challenge((401, "WWW-Authenticate", a), (407, "Proxy-Authenticate", b));
    assert!(matches!(r.code, 401 | 407), "{}", r.text());
    assert_eq!(r.headers_all("www-authenticate"), vec![a], "{}", r.text());
    assert_eq!(r.headers_all("proxy-authenticate"), vec![b], "{}", r.text());
}

// ------------------------------------------------------------------------------------------------
// more corners of the same behaviour

#[test]
fn uas_100_is_hop_by_hop_and_stops_invite_retransmissions() {
    let uas = SipPeer::new();
    // T1 = 150 ms: without a provisional the INVITE would be resent at 150, 450, 1050 ms
    let k = start(
        &[("UAS", uas.uri())],
        "fr_timer = 4000\nfr_inv_timer = 6000\nretr_timer1 = 150\n",
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    assert_eq!(resp(&caller, "ksrd's 100").code, 100);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 100, "Trying", &[]);
    // not relayed: the caller already has ksrd's own 100
    caller.expect_silence(QUIET);
    // and ksrd stopped resending the INVITE (one resend may have crossed the 100)
    let resent = uas.drain(Duration::from_millis(400), Duration::from_millis(400));
    assert!(
        resent.len() <= 1,
        "INVITE retransmissions go on after the UAS's 100: {} more",
        resent.len()
    );
    uas.reply(&f, 486, "Busy Here", &[]);
    assert_eq!(final_resp(&caller, "486").code, 486);
}

#[test]
fn every_2xx_of_a_fork_is_relayed() {
    // RFC 3261 §16.7 step 5: any 2xx is forwarded immediately, also after a first one
    let u1 = SipPeer::new();
    let u2 = SipPeer::new();
    let k = start(&[("UAS", u1.uri()), ("FORK2", u2.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f1 = req(&u1, "INVITE");
    let f2 = req(&u2, "INVITE");
    u2.reply(&f2, 180, "Ringing", &[]);
    u1.reply(&f1, 200, "OK", &[]);
    let first = final_resp(&caller, "first 200");
    assert_eq!(first.code, 200);
    assert_eq!(first.to_tag().as_deref(), Some(u1.tag.as_str()));
    // u2 is cancelled, but its 200 crosses the CANCEL
    let c = req(&u2, "CANCEL");
    u2.reply(&f2, 200, "OK", &[]);
    u2.reply(&c, 200, "OK", &[]);
    let second = final_resp(&caller, "the second branch's 200 as well");
    assert_eq!(second.code, 200, "{}", second.text());
    assert_eq!(second.to_tag().as_deref(), Some(u2.tag.as_str()));
    assert_caller_via_only(&second, &inv.branch());
    // a 2xx is not ACKed by ksrd (the caller does it end to end)
    for m in u1.drain(QUIET, Duration::from_secs(1)) {
        assert_ne!(m.reason, "ACK", "ksrd must not ACK a 2xx: {}", m.text());
    }
}

#[test]
fn retransmitted_2xx_from_the_uas_is_relayed_each_time() {
    // the UAS resends its 2xx until the ACK comes; the proxy passes each one upstream
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    let sent = uas.reply(&f, 200, "OK", &[]);
    let a = final_resp(&caller, "200");
    uas.send_to(&sent, k.sip_addr());
    let b = final_resp(&caller, "the retransmitted 200");
    assert_eq!(a.raw, b.raw);
}

#[test]
fn failover_when_backup_fails_too_relays_the_best_reply() {
    let primary = SipPeer::new();
    let backup = SipPeer::new();
    let k = start(
        &[("UAS", primary.uri()), ("BACKUP", backup.uri())],
        TM_DEFAULT,
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f1 = req(&primary, "INVITE");
    primary.reply(&f1, 503, "Service Unavailable", &[]);
    let f2 = req(&backup, "INVITE");
    backup.reply(&f2, 486, "Busy Here", &[]);
    assert_hop_ack(&req(&backup, "ACK"), &f2, &backup.tag);
    let r = final_resp(&caller, "486 (the better of 503 and 486)");
    assert_eq!(
        (r.code, r.reason.as_str()),
        (486, "Busy Here"),
        "{}",
        r.text()
    );
    assert_eq!(r.to_tag().as_deref(), Some(backup.tag.as_str()));
    wait_log(&k, &format!("FAILURE-LAST code=486 {ci}"));
    assert_eq!(
        k.log_count(&format!(
            "FAILURE code=503 timeout=-1 replied=1 x=inv-{ci} {ci}"
        )),
        1,
        "first failure route once, for the 503"
    );
}

#[test]
fn cancelled_call_does_not_fail_over() {
    let primary = SipPeer::new();
    let backup = SipPeer::new();
    let k = start(
        &[("UAS", primary.uri()), ("BACKUP", backup.uri())],
        TM_DEFAULT,
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f = req(&primary, "INVITE");
    primary.reply(&f, 180, "Ringing", &[]);
    send(&caller, &k, &inv.cancel());
    let c = req(&primary, "CANCEL");
    primary.reply(&c, 200, "OK", &[]);
    primary.reply(&f, 487, "Request Terminated", &[]);
    let mut got = Vec::new();
    while !got.contains(&487) {
        got.push(
            caller
                .recv_response(WAIT)
                .unwrap_or_else(|| panic!("no 487; got {got:?}"))
                .code,
        );
    }
    wait_log(
        &k,
        &format!("FAILURE code=487 timeout=-1 replied=1 x=inv-{ci} {ci}"),
    );
    assert_eq!(
        k.log_count(&format!("FAILOVER 1 {ci}")),
        0,
        "t_is_canceled stopped it"
    );
    backup.expect_silence(QUIET);
}

#[test]
fn cancel_with_another_branch_matches_nothing() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 180, "Ringing", &[]);
    let other = inv.cancel().set(
        "Via",
        &format!("SIP/2.0/UDP {};branch={};rport", caller.addr(), branch()),
    );
    send(&caller, &k, &other);
    let r = final_resp(&caller, "481 for the CANCEL");
    assert_eq!(
        (r.code, cseq(&r).1.as_str()),
        (481, "CANCEL"),
        "{}",
        r.text()
    );
    wait_log(&k, &format!("CANCEL-CHECK -1 {ci}"));
    uas.expect_silence(QUIET);
    // the INVITE goes on
    uas.reply(&f, 200, "OK", &[]);
    assert_eq!(final_resp(&caller, "200").code, 200);
}

#[test]
fn rfc2543_caller_cancel_and_ack_match_the_invite() {
    // no magic cookie: transactions match on R-URI, Call-ID, CSeq, From tag, Via (and To tag
    // of the reply for the ACK)
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let old_via = format!(
        "SIP/2.0/UDP {};branch=old2543x{};rport",
        caller.addr(),
        uniq("b")
    );
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr()).set("Via", &old_via);
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    assert_eq!(f.vias().len(), 2);
    uas.reply(&f, 180, "Ringing", &[]);
    send(&caller, &k, &inv.cancel());
    let r = final_resp(&caller, "200 for the CANCEL");
    assert_eq!(
        (r.code, cseq(&r).1.as_str()),
        (200, "CANCEL"),
        "{}",
        r.text()
    );
    wait_log(&k, &format!("CANCEL-CHECK 1 {ci}"));
    let c = req(&uas, "CANCEL");
    assert_eq!(top_branch(&c), top_branch(&f));
    uas.reply(&c, 200, "OK", &[]);
    uas.reply(&f, 487, "Request Terminated", &[]);
    let t = final_resp(&caller, "487");
    assert_eq!(t.code, 487);
    send(&caller, &k, &inv.ack_non2xx(&t));
    wait_stat(&k, "tm:absorbed_acks", 1);
    assert_eq!(k.log_count(&format!("RUN ACK {ci}")), 0);
}

#[test]
fn invite_from_a_tcp_caller_to_a_udp_uas() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let mut s = k.tcp_connect();
    let local = s.local_addr().unwrap();
    let inv = Req::invite(&ruri(&k, "bob"), local).set(
        "Via",
        &format!("SIP/2.0/TCP {local};branch={};rport", branch()),
    );
    std::io::Write::write_all(&mut s, &inv.build()).unwrap();
    let mut pending = Vec::new();
    let r = read_sip_stream(&mut s, &mut pending, WAIT).expect("100 over TCP");
    assert_eq!(r.code, 100, "{}", r.text());
    let f = req(&uas, "INVITE");
    assert_eq!(f.vias().len(), 2);
    assert!(f.vias()[0].starts_with("SIP/2.0/UDP"), "{}", f.vias()[0]);
    uas.reply(&f, 180, "Ringing", &[]);
    uas.reply(&f, 200, "OK", &[]);
    let r = read_sip_stream(&mut s, &mut pending, WAIT).expect("180 over TCP");
    assert_eq!(r.code, 180, "{}", r.text());
    let r = read_sip_stream(&mut s, &mut pending, WAIT).expect("200 over TCP");
    assert_eq!(r.code, 200, "{}", r.text());
    assert_caller_via_only(&r, &inv.branch());
}

#[test]
fn cancel_is_retransmitted_until_answered() {
    let uas = SipPeer::new();
    let k = start(
        &[("UAS", uas.uri())],
        "fr_timer = 4000\nfr_inv_timer = 6000\nretr_timer1 = 200\n",
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 180, "Ringing", &[]);
    send(&caller, &k, &inv.cancel());
    let c = req(&uas, "CANCEL");
    let t0 = Instant::now();
    // not answered: sent again after T1 (200 ms), the same CANCEL
    let again = req_within(&uas, "CANCEL", Duration::from_secs(2));
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "resent after T1: {:?}",
        t0.elapsed()
    );
    assert_eq!(again.raw, c.raw);
    uas.reply(&c, 200, "OK", &[]);
    uas.reply(&f, 487, "Request Terminated", &[]);
    assert_hop_ack(&req(&uas, "ACK"), &f, &uas.tag);
    // answered: no more CANCELs (one may have crossed the 200)
    let more = uas
        .drain(Duration::from_millis(500), Duration::from_millis(500))
        .into_iter()
        .filter(|m| m.reason == "CANCEL")
        .count();
    assert!(more <= 1, "{more} CANCELs after the 200 for it");
    assert_eq!(final_resp(&caller, "200 for CANCEL").code, 200);
    assert_eq!(final_resp(&caller, "487").code, 487);
}

#[test]
fn each_provisional_restarts_fr_inv_timer() {
    let uas = SipPeer::new();
    let k = start(
        &[("UAS", uas.uri())],
        "fr_timer = 500\nfr_inv_timer = 1000\n",
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 180, "Ringing", &[]);
    // 700 ms later (and nothing from ksrd meanwhile) a 183 restarts the 1 s timer
    uas.expect_silence(Duration::from_millis(700));
    uas.reply(&f, 183, "Session Progress", &[]);
    let t183 = Instant::now();
    let c = req_within(&uas, "CANCEL", Duration::from_secs(4));
    assert!(
        t183.elapsed() >= Duration::from_millis(900),
        "timer restarted by the 183: CANCEL {:?} after it",
        t183.elapsed()
    );
    uas.reply(&c, 200, "OK", &[]);
    uas.reply(&f, 487, "Request Terminated", &[]);
    assert_eq!(final_resp(&caller, "408").code, 408);
}

/// The caller ACKs a final reply ksrd generated itself (To tag is ksrd's): the transaction must
/// take the ACK (RFC 3261 §17.2.1: Confirmed, timer G stops), like for a relayed reply.
fn ack_local_final_stops_timer_g(k: &Ksrd, caller: &SipPeer, inv: &Req, r: &SipMsg) {
    send(caller, k, &inv.ack_non2xx(r));
    let stat = |n: &str| ksrd_stat(k, n).unwrap_or(0);
    assert!(
        wait_until(WAIT, || stat("tm:absorbed_acks") + stat("sl:received_ACKs")
            >= 1),
        "the ACK was not handled at all"
    );
    // T1 = 100 ms, T2 = 200 ms: without the ACK taken the reply comes every 200 ms
    let late = caller.drain(Duration::from_millis(600), Duration::from_millis(600));
    assert!(
        late.len() <= 1,
        "timer G goes on after the caller's ACK: {} more {} replies \
         (tm:absorbed_acks = {}, sl:received_ACKs = {})",
        late.len(),
        r.code,
        stat("tm:absorbed_acks"),
        stat("sl:received_ACKs")
    );
    assert_eq!(
        (stat("tm:absorbed_acks"), stat("sl:received_ACKs")),
        (1, 0),
        "(tm:absorbed_acks, sl:received_ACKs): the transaction's ACK, not a stateless one"
    );
    assert_eq!(k.log_count(&format!("RUN ACK {}", call_id(inv))), 0);
}

const TM_FAST_G: &str =
    "fr_timer = 1000\nfr_inv_timer = 1000\nretr_timer1 = 100\nretr_timer2 = 200\n";

#[test]
fn failure_route_t_reply_replaces_the_reply_and_its_ack_is_absorbed() {
    let uas = SipPeer::new();
    let k = start(
        &[("UAS", uas.uri()), ("FAIL_REPLY", "480".into())],
        TM_FAST_G,
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 486, "Busy Here", &[]);
    assert_hop_ack(&req(&uas, "ACK"), &f, &uas.tag);
    let r = final_resp(&caller, "the failure route's 480");
    assert_eq!(
        (r.code, r.reason.as_str()),
        (480, "Replaced By Failure Route"),
        "{}",
        r.text()
    );
    let tag = r.to_tag().expect("a local reply has ksrd's To tag");
    assert_ne!(tag, uas.tag, "ksrd's own tag, not the UAS's");
    assert_caller_via_only(&r, &inv.branch());
    wait_log(&k, &format!("FAIL-REPLY 1 {ci}"));
    ack_local_final_stops_timer_g(&k, &caller, &inv, &r);
    uas.expect_silence(Duration::from_millis(50));
}

#[test]
fn ack_for_a_local_408_is_absorbed_by_the_transaction() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_FAST_G);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    req(&uas, "INVITE");
    // the UAS stays silent: fr_timer (1 s) ends the branch, ksrd answers 408 itself
    let r = caller
        .recv_final(Duration::from_secs(4))
        .expect("local 408 after fr_timer");
    assert_eq!(r.code, 408, "{}", r.text());
    ack_local_final_stops_timer_g(&k, &caller, &inv, &r);
}

#[test]
fn uas_retransmitting_its_486_is_acked_again_and_not_relayed_twice() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    let busy = uas.reply(&f, 486, "Busy Here", &[]);
    let ack1 = req(&uas, "ACK");
    assert_hop_ack(&ack1, &f, &uas.tag);
    let r = final_resp(&caller, "486");
    send(&caller, &k, &inv.ack_non2xx(&r));
    wait_stat(&k, "tm:absorbed_acks", 1);
    let absorbed = ksrd_stat(&k, "tmx:rpl_absorbed").unwrap_or(0);
    // the UAS did not get the ACK and resends its 486
    uas.send_to(&busy, k.sip_addr());
    let ack2 = req(&uas, "ACK");
    assert_eq!(ack2.raw, ack1.raw, "the same ACK again");
    wait_stat(&k, "tmx:rpl_absorbed", absorbed + 1);
    let relayed = caller.drain(QUIET, Duration::from_secs(1));
    assert!(
        relayed.is_empty(),
        "the resent 486 is not relayed again: {relayed:?}"
    );
}

#[test]
fn invite_retransmission_after_200_gets_the_200_and_cancel_after_200_is_not_forwarded() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    let ci = call_id(&inv);
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 200, "OK", &[]);
    let ok = final_resp(&caller, "200");
    assert_eq!(ok.code, 200);
    send(&caller, &k, &inv);
    let again = final_resp(&caller, "the 200 again for the retransmitted INVITE");
    assert_eq!(again.raw, ok.raw);
    // a CANCEL after the final reply has nothing to cancel
    send(&caller, &k, &inv.cancel());
    let c = final_resp(&caller, "the CANCEL's reply");
    assert_eq!(cseq(&c).1, "CANCEL", "{}", c.text());
    assert!(matches!(c.code, 200 | 481), "{}", c.text());
    uas.expect_silence(QUIET);
    assert_eq!(k.log_count(&format!("RUN INVITE {ci}")), 1);
}

#[test]
fn invite_to_a_tcp_uas() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uas_addr = listener.local_addr().unwrap();
    let k = start(
        &[("UAS", format!("sip:{uas_addr};transport=tcp"))],
        TM_DEFAULT,
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    assert_eq!(resp(&caller, "100").code, 100);
    listener.set_nonblocking(true).unwrap();
    let mut conn = None;
    assert!(
        wait_until(WAIT, || {
            conn = listener.accept().ok().map(|(s, _)| s);
            conn.is_some()
        }),
        "ksrd connects to the TCP UAS"
    );
    let mut s = conn.unwrap();
    s.set_nonblocking(false).unwrap();
    let mut pending = Vec::new();
    let f = read_sip_stream(&mut s, &mut pending, WAIT).expect("INVITE over TCP");
    assert_eq!(f.reason, "INVITE", "{}", f.text());
    let vias = f.vias();
    assert_eq!(vias.len(), 2, "{vias:?}");
    assert!(vias[0].starts_with("SIP/2.0/TCP "), "{}", vias[0]);
    let reply = make_response(&f, 200, "OK", "tcpuas", &[]);
    std::io::Write::write_all(&mut s, &reply).unwrap();
    let ok = final_resp(&caller, "200 from the TCP UAS");
    assert_eq!(ok.code, 200, "{}", ok.text());
    assert_eq!(ok.to_tag().as_deref(), Some("tcpuas"));
    assert_caller_via_only(&ok, &inv.branch());
}

#[test]
fn fork_branch_that_never_rang_is_cancelled_once_it_rings() {
    let u1 = SipPeer::new();
    let u2 = SipPeer::new();
    // T1 = 150 ms: a silent branch would get the INVITE again at 150, 450, 1050 ms
    let k = start(
        &[("UAS", u1.uri()), ("FORK2", u2.uri())],
        "fr_timer = 4000\nfr_inv_timer = 6000\nretr_timer1 = 150\n",
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f1 = req(&u1, "INVITE");
    let f2 = req(&u2, "INVITE");
    u1.reply(&f1, 200, "OK", &[]);
    assert_eq!(final_resp(&caller, "200").code, 200);
    // u2 said nothing: no CANCEL yet (RFC 3261 §9.1) and no more INVITEs either
    let got: Vec<String> = u2
        .drain(Duration::from_millis(500), Duration::from_millis(500))
        .iter()
        .map(|m| m.start_line.clone())
        .collect();
    assert!(
        got.len() <= 1 && got.iter().all(|l| l.starts_with("INVITE ")),
        "a branch cancelled before it rang: at most one INVITE resend in flight, got {got:?}"
    );
    // it rings late: now the CANCEL goes out
    u2.reply(&f2, 180, "Ringing", &[]);
    let c = req(&u2, "CANCEL");
    assert_eq!(top_branch(&c), top_branch(&f2));
    u2.reply(&c, 200, "OK", &[]);
    u2.reply(&f2, 487, "Request Terminated", &[]);
    assert_hop_ack(&req(&u2, "ACK"), &f2, &u2.tag);
    // neither the late 180 nor the 487 reach the caller
    let more: Vec<String> = caller
        .drain(QUIET, Duration::from_secs(1))
        .iter()
        .map(|m| m.start_line.clone())
        .collect();
    assert!(more.is_empty(), "caller got {more:?} after the 200");
}

#[test]
fn late_2xx_after_a_timeout_is_still_relayed() {
    // RFC 3261 §16.7 step 5 / §16.8: a 2xx is always forwarded, also after the 408
    let uas = SipPeer::new();
    let k = start(
        &[("UAS", uas.uri())],
        "fr_timer = 500\nfr_inv_timer = 800\n",
    );
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 180, "Ringing", &[]);
    let cancel = req_within(&uas, "CANCEL", Duration::from_secs(4));
    let r = final_resp(&caller, "408");
    assert_eq!(r.code, 408);
    // the UAS answered the call just before the CANCEL reached it
    uas.reply(&f, 200, "OK", &[]);
    uas.reply(&cancel, 481, "Call/Transaction Does Not Exist", &[]);
    let ok = caller
        .recv_final(WAIT)
        .expect("the late 200 is relayed after the 408");
    let ok = if ok.code == 408 {
        // a resend of the 408 (timer G) may come first
        final_resp(&caller, "the late 200")
    } else {
        ok
    };
    assert_eq!(ok.code, 200, "{}", ok.text());
    assert_eq!(ok.to_tag().as_deref(), Some(uas.tag.as_str()));
}

#[test]
fn retransmitted_cancel_is_answered_again_and_not_forwarded_twice() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let inv = Req::invite(&ruri(&k, "bob"), caller.addr());
    send(&caller, &k, &inv);
    let f = req(&uas, "INVITE");
    uas.reply(&f, 180, "Ringing", &[]);
    let cancel = inv.cancel();
    send(&caller, &k, &cancel);
    let first = final_resp(&caller, "200 for the CANCEL");
    assert_eq!((first.code, cseq(&first).1.as_str()), (200, "CANCEL"));
    let c = req(&uas, "CANCEL");
    uas.reply(&c, 200, "OK", &[]);
    // the caller did not see the 200 in time and resends its CANCEL
    send(&caller, &k, &cancel);
    let again = final_resp(&caller, "200 for the retransmitted CANCEL");
    assert_eq!(
        (again.code, cseq(&again).1.as_str()),
        (200, "CANCEL"),
        "{}",
        again.text()
    );
    assert_eq!(again.to_tag(), first.to_tag(), "the same reply");
    uas.expect_silence(QUIET);
    uas.reply(&f, 487, "Request Terminated", &[]);
    assert_eq!(final_resp(&caller, "487").code, 487);
}

#[test]
fn tm_stats_rpc_counts_transactions_and_replies() {
    let uas = SipPeer::new();
    let k = start(&[("UAS", uas.uri())], TM_DEFAULT);
    let caller = SipPeer::new();
    let m = Req::new("MESSAGE", &ruri(&k, "bob"), caller.addr()).body("text/plain", b"hi");
    send(&caller, &k, &m);
    let f = req(&uas, "MESSAGE");
    uas.reply(&f, 202, "Accepted", &[]);
    assert_eq!(resp(&caller, "202").code, 202);
    let s = k.rpc("tm.stats", json!([]));
    let r = &s["result"];
    assert_eq!(r["total"], 1, "{s}");
    assert_eq!(r["rpl_received"], 1, "{s}");
    assert_eq!(r["rpl_sent"], 1, "{s}");
    // The MESSAGE transaction lingers (timer J) to absorb retransmissions, then goes.
    assert_eq!(r["current"], 1, "{s}");
}
