//! Unit tests of the transaction layer's pure parts: reply choice (RFC 3261 §16.7 / Kamailio
//! t_reply.c `get_prio`), branch parameters, CANCEL and ACK construction, the table.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::relay::build_hop_request;
use super::reply::{pick_best, prio};
use super::txn::{Branch, BranchReply, CancelState, UacState};
use super::uas::{new_tran, NewTran};
use super::{Tm, TmParams};
use crate::core::forward::NextHop;
use crate::core::Core;
use crate::sip::SipMsg;
use crate::transport::{Endpoint, Proto, Sender};

fn core() -> Core {
    let cfg = crate::config::Config::from_str(
        crate::config::EMBEDDED_DEFAULT,
        "x",
        std::path::Path::new("."),
    )
    .unwrap();
    Core::new(
        cfg,
        Sender::new(vec![], crate::transport::tcp::TcpHandle::disabled()),
        &[],
    )
}

const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc\r\n\
Route: <sip:p1.example.com;lr>\r\n\
Route: <sip:p2.example.com;lr>\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c1@192.0.2.1\r\n\
CSeq: 7 INVITE\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@192.0.2.1>\r\n\
Content-Length: 0\r\n\r\n";

fn msg(s: &str) -> SipMsg {
    SipMsg::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

fn ep() -> Endpoint {
    Endpoint {
        proto: Proto::Udp,
        remote: "192.0.2.1:5060".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
    }
}

fn branch(reply: Option<BranchReply>) -> Branch {
    Branch {
        uri: "sip:x".into(),
        dst_uri: None,
        hop: NextHop {
            proto: Proto::Udp,
            dest: SocketAddr::from(([127, 0, 0, 1], 1)),
            local: SocketAddr::from(([127, 0, 0, 1], 2)),
        },
        branch_param: "z9hG4bKx".into(),
        request: Bytes::from_static(INVITE.as_bytes()),
        state: UacState::Completed,
        last_code: 0,
        reply,
        bflags: 0,
        timed_out: false,
        reply_dropped: false,
        cancel: CancelState::None,
        cancel_retr: None,
        retr: None,
        retr_interval: std::time::Duration::ZERO,
        fr: None,
    }
}

#[test]
fn prio_prefers_6xx_then_3xx_then_actionable_4xx_then_5xx() {
    assert!(prio(603) < prio(302));
    assert!(prio(302) < prio(486));
    // 401/407/415/420/484 rank first within 4xx: the caller can act on them.
    for c in [401, 407, 415, 420, 484] {
        assert!(prio(c) < prio(404), "{c}");
    }
    assert!(prio(486) < prio(503));
    assert!(
        prio(408) < prio(486),
        "Kamailio: 408 ranks by its number like any 4xx"
    );
}

#[test]
fn best_reply_is_chosen_over_every_branch_of_every_round() {
    let c = core();
    let NewTran::Created(t) = new_tran(&c, &msg(INVITE), &ep(), false, None, Default::default())
    else {
        panic!("no transaction")
    };
    let mut g = t.lock();
    // Serial forking: an earlier round got 486, the last one 503: 486 goes upstream
    // (kamailio-defects.md: not the last leg's reply).
    g.branches.push(branch(Some(BranchReply::Local(486))));
    g.branches.push(branch(Some(BranchReply::Local(503))));
    assert_eq!(pick_best(&g), Some(0));
    g.branches.push(branch(Some(BranchReply::Local(603))));
    assert_eq!(pick_best(&g), Some(2));
}

#[test]
fn branch_parameter_round_trips_and_rejects_foreign_branches() {
    let tm = Tm::new(TmParams::default());
    let b = tm.branch_param(0xdead_beef, 3);
    assert!(b.starts_with("z9hG4bK"), "{b}");
    assert_eq!(tm.parse_branch(&b), Some((0xdead_beef, 3)));
    assert_eq!(tm.parse_branch("z9hG4bKabc.1"), None);
    let other = Tm::new(TmParams::default());
    // Another process (or a restart) has another prefix, so stale replies never match.
    if other.branch_prefix != tm.branch_prefix {
        assert_eq!(other.parse_branch(&b), None);
    }
}

#[test]
fn cancel_copies_request_uri_top_via_route_from_to_callid_and_cseq_number() {
    let c = build_hop_request(&Bytes::from_static(INVITE.as_bytes()), "CANCEL", None).unwrap();
    let m = msg(std::str::from_utf8(&c).unwrap());
    assert_eq!(m.method_str(), "CANCEL");
    assert_eq!(m.ruri_bytes(), b"sip:bob@example.com");
    assert_eq!(m.vias().unwrap().len(), 1);
    assert_eq!(m.vias().unwrap()[0].branch(), Some("z9hG4bKabc"));
    assert_eq!(m.all(crate::sip::HdrName::Route).count(), 2);
    assert_eq!(m.cseq().unwrap().num, 7);
    assert_eq!(m.cseq().unwrap().method_str, "CANCEL");
    assert_eq!(m.to_hdr().unwrap().tag(), None);
    assert_eq!(m.from_hdr().unwrap().tag(), Some("a1"));
}

#[test]
fn ack_for_a_negative_reply_carries_the_reply_to_tag() {
    let a = build_hop_request(
        &Bytes::from_static(INVITE.as_bytes()),
        "ACK",
        Some("<sip:bob@example.com>;tag=b9"),
    )
    .unwrap();
    let m = msg(std::str::from_utf8(&a).unwrap());
    assert_eq!(m.method_str(), "ACK");
    assert_eq!(m.cseq().unwrap().method_str, "ACK");
    assert_eq!(m.cseq().unwrap().num, 7);
    assert_eq!(m.to_hdr().unwrap().tag(), Some("b9"));
    assert_eq!(m.vias().unwrap()[0].branch(), Some("z9hG4bKabc"));
}

#[test]
fn a_retransmitted_request_finds_its_transaction_and_ack_is_not_a_new_one() {
    let c = core();
    let m = msg(INVITE);
    assert!(matches!(
        new_tran(&c, &m, &ep(), false, None, Default::default()),
        NewTran::Created(_)
    ));
    assert!(matches!(
        new_tran(&c, &m, &ep(), false, None, Default::default()),
        NewTran::Retransmission
    ));
    assert_eq!(c.tm.table.len(), 1);
    let ack = INVITE
        .replace("INVITE sip", "ACK sip")
        .replace("7 INVITE", "7 ACK");
    assert!(matches!(
        new_tran(&c, &msg(&ack), &ep(), false, None, Default::default()),
        NewTran::Error
    ));
}

#[test]
fn deleting_removes_the_transaction_from_both_indexes() {
    let c = core();
    let NewTran::Created(t) = new_tran(&c, &msg(INVITE), &ep(), false, None, Default::default())
    else {
        panic!("no transaction")
    };
    let id = t.lock().id;
    assert!(c.tm.table.by_id(id).is_some());
    super::uas::delete(&c, &mut t.lock());
    assert!(c.tm.table.by_id(id).is_none());
    assert!(c.tm.table.is_empty());
    let _ = Arc::strong_count(&t);
}

#[test]
fn a_hundred_thousand_transactions_share_one_timer_wheel() {
    let c = core();
    for i in 0..100_000u32 {
        let m = INVITE.replace("z9hG4bKabc", &format!("z9hG4bK{i}"));
        assert!(matches!(
            new_tran(&c, &msg(&m), &ep(), false, None, Default::default()),
            NewTran::Created(_)
        ));
    }
    assert_eq!(c.tm.table.len(), 100_000);
    // Each transaction armed its lifetime timer in the one wheel: no task or thread each.
    assert_eq!(c.tm.wheel.len(), 100_000);
}
