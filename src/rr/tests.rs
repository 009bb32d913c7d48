//! rr unit tests: Record-Route rendering (record.c), loose routing (loose.c) and the KSR.rr
//! functions against a routing context.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::loose::{self, Routed, MODE_LOOSE_ONLY, RR_DRIVEN, RR_ERROR, RR_PRELOADED};
use super::*;
use crate::core::Core;
use crate::script::ctx::{RouteCtx, RouteKind};
use crate::script::exports::{Arg, Args, Val};
use crate::sip::{Edits, SipMsg, Uri};
use crate::transport::tcp::TcpHandle;
use crate::transport::{Endpoint, Proto, Sender};

const OURS: &str = "10.0.0.1";

fn msg(head: &str) -> SipMsg {
    let raw = format!(
        "{}\r\nContent-Length: 0\r\n\r\n",
        head.replace('\n', "\r\n")
    );
    SipMsg::parse(Bytes::from(raw)).expect("test message parses")
}

/// An in-dialog request (To tag set) with the given extra header lines.
fn in_dialog(ruri: &str, extra: &str) -> SipMsg {
    msg(&format!(
        "BYE {ruri} SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.8;branch=z9hG4bK1\n{extra}From: <sip:alice@a.example>;tag=FROMTAG\nTo: <sip:bob@b.example>;tag=TOTAG\nCall-ID: c1\nCSeq: 2 BYE"
    ))
}

/// An initial request (no To tag).
fn initial(ruri: &str, extra: &str) -> SipMsg {
    msg(&format!(
        "INVITE {ruri} SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.8;branch=z9hG4bK1\n{extra}From: <sip:alice@a.example>;tag=FROMTAG\nTo: <sip:bob@b.example>\nCall-ID: c1\nCSeq: 1 INVITE"
    ))
}

fn apply(m: &SipMsg, e: &Edits) -> String {
    let mut out = Vec::new();
    e.apply(m.raw(), &mut out);
    String::from_utf8(out).expect("utf-8")
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn ep(proto: Proto, local: &str) -> Endpoint {
    Endpoint {
        proto,
        remote: sa("10.0.0.8:5060"),
        local: sa(local),
    }
}

// ---------------------------------------------------------------------------------------------
// render (record.c build_rr + msg_translator.c lump conditions)

fn socket_rr() -> RecordRoute {
    RecordRoute {
        kind: RecordKind::Socket,
        user: String::new(),
        tag: "abc".into(),
        sips: false,
        lr: ";lr",
        double_rr: 1,
        params: String::new(),
        late_params: String::new(),
    }
}

fn rendered(rec: RecordRoute, inbound: &Endpoint, proto: Proto, local: &str) -> String {
    let m = initial(
        "sip:bob@b.example",
        "Record-Route: <sip:upstream.example;lr>\n",
    );
    let st = RrState {
        record: Some(rec),
        ..Default::default()
    };
    let mut e = Edits::default();
    render(&st, &m, inbound, proto, sa(local), &mut e);
    let out = apply(&m, &e);
    let start = out.find("\r\n").expect("request line") + 2;
    let end = out.find("Via:").expect("Via kept");
    out[start..end].to_string()
}

#[test]
fn render_single_rr_when_in_and_out_socket_are_the_same() {
    let inb = ep(Proto::Udp, "10.0.0.1:5060");
    assert_eq!(
        rendered(socket_rr(), &inb, Proto::Udp, "10.0.0.1:5060"),
        "Record-Route: <sip:10.0.0.1;lr;ftag=abc>\r\n",
        "port 5060 is left out, as Kamailio's SUBST_RCV_ALL does"
    );
    let inb = ep(Proto::Udp, "10.0.0.1:5070");
    assert_eq!(
        rendered(socket_rr(), &inb, Proto::Udp, "10.0.0.1:5070"),
        "Record-Route: <sip:10.0.0.1:5070;lr;ftag=abc>\r\n"
    );
}

#[test]
fn render_is_above_the_first_header_and_existing_record_routes() {
    let m = initial(
        "sip:bob@b.example",
        "Record-Route: <sip:upstream.example;lr>\n",
    );
    let st = RrState {
        record: Some(socket_rr()),
        ..Default::default()
    };
    let mut e = Edits::default();
    render(
        &st,
        &m,
        &ep(Proto::Udp, "10.0.0.1:5060"),
        Proto::Udp,
        sa("10.0.0.1:5060"),
        &mut e,
    );
    let out = apply(&m, &e);
    assert!(
        out.starts_with(
            "INVITE sip:bob@b.example SIP/2.0\r\nRecord-Route: <sip:10.0.0.1;lr;ftag=abc>\r\nVia:"
        ),
        "{out}"
    );
    assert!(
        out.contains("Record-Route: <sip:upstream.example;lr>\r\n"),
        "{out}"
    );
}

#[test]
fn render_double_rr_on_transport_change_outgoing_first() {
    let inb = ep(Proto::Udp, "10.0.0.1:5060");
    assert_eq!(
        rendered(socket_rr(), &inb, Proto::Tcp, "10.0.0.1:5060"),
        "Record-Route: <sip:10.0.0.1;transport=tcp;r2=on;lr;ftag=abc>\r\n\
         Record-Route: <sip:10.0.0.1;r2=on;lr;ftag=abc>\r\n"
    );
}

#[test]
fn render_double_rr_on_interface_change() {
    let inb = ep(Proto::Udp, "10.0.0.1:5060");
    assert_eq!(
        rendered(socket_rr(), &inb, Proto::Udp, "192.168.1.1:5080"),
        "Record-Route: <sip:192.168.1.1:5080;r2=on;lr;ftag=abc>\r\n\
         Record-Route: <sip:10.0.0.1;r2=on;lr;ftag=abc>\r\n"
    );
}

#[test]
fn render_enable_double_rr_0_and_2() {
    let inb = ep(Proto::Udp, "10.0.0.1:5060");
    let off = RecordRoute {
        double_rr: 0,
        ..socket_rr()
    };
    assert_eq!(
        rendered(off, &inb, Proto::Tcp, "10.0.0.1:5060"),
        "Record-Route: <sip:10.0.0.1;lr;ftag=abc>\r\n",
        "one Record-Route, the inbound one"
    );
    let always = RecordRoute {
        double_rr: 2,
        ..socket_rr()
    };
    assert_eq!(
        rendered(always, &inb, Proto::Udp, "10.0.0.1:5060"),
        "Record-Route: <sip:10.0.0.1;r2=on;lr;ftag=abc>\r\n\
         Record-Route: <sip:10.0.0.1;r2=on;lr;ftag=abc>\r\n"
    );
}

#[test]
fn render_params_full_lr_user_sips_ipv6() {
    let inb = ep(Proto::Tcp, "[2001:db8::1]:5061");
    let rec = RecordRoute {
        user: "bob".into(),
        sips: true,
        lr: ";lr=on",
        params: ";a=1".into(),
        late_params: ";b=2".into(),
        tag: String::new(),
        ..socket_rr()
    };
    assert_eq!(
        rendered(rec, &inb, Proto::Tcp, "[2001:db8::1]:5061"),
        "Record-Route: <sips:bob@[2001:db8::1]:5061;transport=tcp;lr=on;a=1;b=2>\r\n"
    );
}

#[test]
fn render_preset_and_advertised() {
    let inb = ep(Proto::Udp, "10.0.0.1:5060");
    let preset = RecordRoute {
        kind: RecordKind::Preset(vec!["1.2.3.4".into(), "5.6.7.8:5070".into()]),
        params: ";p=1".into(),
        late_params: ";q=2".into(),
        ..socket_rr()
    };
    assert_eq!(
        rendered(preset, &inb, Proto::Udp, "10.0.0.1:5060"),
        "Record-Route: <sip:1.2.3.4;ftag=abc;p=1;lr;q=2>\r\n\
         Record-Route: <sip:5.6.7.8:5070;ftag=abc;p=1;lr;q=2>\r\n"
    );
    let adv = RecordRoute {
        kind: RecordKind::Advertised("pbx.example".into()),
        ..socket_rr()
    };
    assert_eq!(
        rendered(adv.clone(), &inb, Proto::Udp, "192.168.1.1:5060"),
        "Record-Route: <sip:pbx.example;ftag=abc;lr>\r\n",
        "advertised: a second Record-Route only when the transport changes"
    );
    assert_eq!(
        rendered(adv, &inb, Proto::Tcp, "10.0.0.1:5060"),
        "Record-Route: <sip:pbx.example;transport=tcp;r2=on;ftag=abc;lr>\r\n\
         Record-Route: <sip:pbx.example;transport=udp;r2=on;ftag=abc;lr>\r\n"
    );
}

#[test]
fn render_without_record_route_changes_nothing() {
    let m = initial("sip:bob@b.example", "");
    let mut e = Edits::default();
    render(
        &RrState::default(),
        &m,
        &ep(Proto::Udp, "10.0.0.1:5060"),
        Proto::Udp,
        sa("10.0.0.1:5060"),
        &mut e,
    );
    assert!(e.is_empty());
}

// ---------------------------------------------------------------------------------------------
// loose_route (loose.c)

fn is_me(u: &Uri) -> bool {
    u.param("gr").is_none()
        && (u.host == OURS || u.host == "ksrd.example")
        && u.port.unwrap_or(5060) == 5060
}

fn route(m: &SipMsg, mode: i64) -> (Routed, String) {
    let ruri = String::from_utf8_lossy(m.ruri_bytes()).into_owned();
    let mut e = Edits::default();
    let r = loose::loose_route(m, &ruri, mode, true, &is_me, &mut e);
    (r, apply(m, &e))
}

#[test]
fn loose_no_route_is_minus_one() {
    let m = in_dialog("sip:bob@10.0.0.9", "");
    let (r, out) = route(&m, 0);
    assert_eq!(r.code, RR_ERROR);
    assert_eq!(out.as_bytes(), &m.raw()[..], "nothing changed");
}

#[test]
fn loose_our_route_removed_next_route_becomes_du() {
    let m = in_dialog(
        "sip:bob@10.0.0.9",
        "Route: <sip:10.0.0.1;lr;ftag=FROMTAG>, <sip:proxy2.example;lr>\nRoute: <sip:proxy3.example;lr>\n",
    );
    let (r, out) = route(&m, 0);
    assert_eq!(r.code, RR_DRIVEN);
    assert_eq!(r.dst_uri.as_deref(), Some("sip:proxy2.example;lr"));
    assert_eq!(r.new_ruri, None);
    assert_eq!(r.routed_params.as_deref(), Some("lr;ftag=FROMTAG"));
    assert!(r.route_addr, "next hop from the route set");
    assert!(!out.contains("10.0.0.1"), "our Route removed: {out}");
    assert!(
        out.contains("Route: <sip:proxy2.example;lr>\r\nRoute: <sip:proxy3.example;lr>\r\n"),
        "{out}"
    );
}

#[test]
fn loose_only_our_route_in_dialog_goes_to_ruri() {
    let m = in_dialog("sip:bob@10.0.0.9", "Route: <sip:10.0.0.1;lr>\n");
    let (r, out) = route(&m, 0);
    assert_eq!(r.code, RR_DRIVEN);
    assert_eq!((r.dst_uri, r.new_ruri), (None, None));
    assert!(!r.route_addr);
    assert!(!out.contains("Route:"), "{out}");
}

#[test]
fn loose_double_rr_removes_both_of_ours() {
    let m = in_dialog(
        "sip:bob@10.0.0.9",
        "Route: <sip:10.0.0.1;transport=tcp;r2=on;lr>\nRoute: <sip:10.0.0.1;r2=on;lr>, <sip:next.example;lr>\n",
    );
    let (r, out) = route(&m, 0);
    assert_eq!(r.code, RR_DRIVEN);
    assert_eq!(r.dst_uri.as_deref(), Some("sip:next.example;lr"));
    assert!(!out.contains("r2=on"), "{out}");
    assert!(out.contains("Route: <sip:next.example;lr>\r\n"), "{out}");
}

#[test]
fn loose_preloaded_route_to_us_only_is_minus_three() {
    let m = initial("sip:bob@10.0.0.9", "Route: <sip:10.0.0.1;lr>\n");
    let (r, out) = route(&m, 0);
    assert_eq!(r.code, RR_PRELOADED);
    assert!(!out.contains("Route:"), "{out}");
}

#[test]
fn loose_preloaded_route_elsewhere_sets_du() {
    let m = initial("sip:bob@10.0.0.9", "Route: <sip:edge.example;lr>\n");
    let (r, out) = route(&m, 0);
    assert_eq!(r.code, RR_DRIVEN);
    assert_eq!(r.dst_uri.as_deref(), Some("sip:edge.example;lr"));
    assert_eq!(r.routed_params, None, "not our Route");
    assert!(
        out.contains("Route: <sip:edge.example;lr>\r\n"),
        "kept: {out}"
    );
}

#[test]
fn strict_router_before_us_ruri_ours_without_lr_last_route_is_new_ruri() {
    // RFC 3261 16.4: a strict router put our Record-Route URI in the R-URI; the original
    // R-URI is the last Route.
    let m = in_dialog(
        "sip:10.0.0.1;ftag=FROMTAG",
        "Route: <sip:proxy2.example;lr>, <sip:bob@10.0.0.9:5080>\n",
    );
    let (r, out) = route(&m, 0);
    assert_eq!(r.code, RR_DRIVEN);
    assert_eq!(r.dst_uri.as_deref(), Some("sip:proxy2.example;lr"));
    assert_eq!(r.new_ruri.as_deref(), Some("sip:bob@10.0.0.9:5080"));
    assert_eq!(r.routed_params.as_deref(), Some("ftag=FROMTAG"));
    assert!(out.contains("Route: <sip:proxy2.example;lr>\r\n"), "{out}");
    assert!(!out.contains("10.0.0.9:5080>"), "last Route removed: {out}");
}

#[test]
fn strict_router_before_us_and_endpoint_next() {
    let m = in_dialog("sip:10.0.0.1", "Route: <sip:bob@10.0.0.9:5080>\n");
    let (r, out) = route(&m, 0);
    assert_eq!(r.new_ruri.as_deref(), Some("sip:bob@10.0.0.9:5080"));
    assert_eq!(r.dst_uri, None);
    assert!(!out.contains("Route:"), "{out}");
    // loose-only mode does not recover from strict routing: the Route is not ours.
    let (r, _) = route(&m, MODE_LOOSE_ONLY);
    assert_eq!(r.new_ruri.as_deref(), Some("sip:bob@10.0.0.9:5080"));
    assert_eq!(r.routed_params, None);
}

#[test]
fn next_hop_strict_router_gets_the_ruri_and_ruri_goes_last() {
    let m = in_dialog(
        "sip:bob@10.0.0.9",
        "Route: <sip:10.0.0.1;lr>, <sip:strict.example>\n",
    );
    let (r, out) = route(&m, 0);
    assert_eq!(r.code, RR_DRIVEN);
    assert_eq!(r.new_ruri.as_deref(), Some("sip:strict.example"));
    assert_eq!(r.dst_uri, None);
    assert!(
        out.contains("CSeq: 2 BYE\r\nContent-Length: 0\r\nRoute: <sip:bob@10.0.0.9>\r\n\r\n"),
        "R-URI saved as the last Route: {out}"
    );
    assert!(!out.contains("strict.example"), "{out}");
}

#[test]
fn maddr_gr_reply_and_bad_route() {
    let m = in_dialog(
        "sip:bob@10.0.0.9",
        "Route: <sip:10.0.0.1;lr>, <sip:proxy.example:5070;maddr=192.0.2.5;lr>\n",
    );
    assert_eq!(
        route(&m, 0).0.dst_uri.as_deref(),
        Some("sip:192.0.2.5:5070")
    );

    let m = in_dialog("sip:bob@10.0.0.9", "Route: <sip:10.0.0.1;gr=x;lr>\n");
    let (r, _) = route(&m, 0);
    assert_eq!(
        r.dst_uri.as_deref(),
        Some("sip:10.0.0.1;gr=x;lr"),
        "a GRUU of ours is not our Route"
    );

    let m = in_dialog("sip:bob@10.0.0.9", "Route: <sip:10.0.0.1;lr>, <foo\n");
    assert_eq!(route(&m, 0).0.code, RR_ERROR);

    let reply = msg("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.8;branch=z9hG4bK1\nRoute: <sip:10.0.0.1;lr>\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@y>;tag=2\nCall-ID: c\nCSeq: 1 INVITE");
    assert_eq!(route(&reply, 0).0.code, RR_ERROR);
}

// ---------------------------------------------------------------------------------------------
// KSR.rr.* against a routing context

fn ctx_with(modparams: &str, m: SipMsg, inbound: Endpoint) -> RouteCtx {
    let text = format!(
        "listen = [\"udp:10.0.0.1:5060\", \"tcp:10.0.0.1:5060\"]\nalias = [\"ksrd.example\"]\n{modparams}"
    );
    let cfg = crate::config::Config::from_str(&text, "test.toml", std::path::Path::new("."))
        .expect("test config");
    let core = Core::new(cfg, Sender::new(vec![], TcpHandle::disabled()), &[]);
    let mut ctx = RouteCtx::new(Arc::new(core));
    ctx.begin(RouteKind::Request, m, inbound);
    ctx
}

fn ctx(m: SipMsg) -> RouteCtx {
    ctx_with("", m, ep(Proto::Udp, "10.0.0.1:5060"))
}

fn call(ctx: &mut RouteCtx, name: &str, args: &[Arg<'_>]) -> Val {
    let e = EXPORTS
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no KSR.rr.{name}"));
    assert_eq!(e.params.len(), args.len(), "arity of {name}");
    let mut v = [Arg::Str(""); 6];
    v[..args.len()].copy_from_slice(args);
    (e.func)(ctx, &Args { v })
}

fn rr_lines(ctx: &RouteCtx, proto: Proto, local: &str) -> String {
    let st = ctx.rr.clone().unwrap_or_default();
    st.record
        .map(|r| r.lines(&ctx.ep, proto, sa(local)))
        .unwrap_or_default()
}

#[test]
fn record_route_once_with_params_and_remove() {
    let mut c = ctx(initial("sip:bob@b.example", ""));
    assert_eq!(
        call(&mut c, "add_rr_param", &[Arg::Str(";early=1")]),
        Val::Int(1)
    );
    assert_eq!(
        call(&mut c, "record_route_params", &[Arg::Str(";p=x")]),
        Val::Int(1)
    );
    assert_eq!(
        call(&mut c, "add_rr_param", &[Arg::Str(";late=2")]),
        Val::Int(1)
    );
    assert_eq!(
        rr_lines(&c, Proto::Udp, "10.0.0.1:5060"),
        "Record-Route: <sip:10.0.0.1;lr;ftag=FROMTAG;p=x;early=1;late=2>\r\n"
    );
    assert_eq!(
        call(&mut c, "record_route", &[]),
        Val::Int(-1),
        "double attempt"
    );
    assert_eq!(call(&mut c, "remove_record_route", &[]), Val::Int(1));
    assert_eq!(rr_lines(&c, Proto::Udp, "10.0.0.1:5060"), "");
    assert_eq!(
        call(&mut c, "record_route", &[]),
        Val::Int(-1),
        "Kamailio keeps FL_RR_ADDED after remove_record_route"
    );
    c.end();
    assert!(c.rr.is_none(), "reset per message");
}

#[test]
fn record_route_modparams() {
    let m = initial("sip:bob@b.example", "");
    let mut c = ctx_with(
        "[modparam.rr]\nappend_fromtag = 0\nenable_full_lr = 1\nadd_username = 1\nenable_double_rr = 0\n",
        m,
        ep(Proto::Udp, "10.0.0.1:5060"),
    );
    assert_eq!(call(&mut c, "record_route", &[]), Val::Int(1));
    assert_eq!(
        rr_lines(&c, Proto::Tcp, "10.0.0.1:5060"),
        "Record-Route: <sip:bob@10.0.0.1;lr=on>\r\n"
    );
    assert_eq!(
        call(&mut c, "is_direction", &[Arg::Str("downstream")]),
        Val::Int(-6),
        "is_direction needs append_fromtag"
    );
    let mut c = ctx_with(
        "[modparam.rr]\nenable_double_rr = 0\n",
        initial("sip:bob@b.example", ""),
        ep(Proto::Udp, "10.0.0.1:5060"),
    );
    assert_eq!(
        call(
            &mut c,
            "record_route_preset",
            &[Arg::Str("1.2.3.4"), Arg::Str("5.6.7.8")]
        ),
        Val::Int(-1)
    );
    assert_eq!(
        call(
            &mut c,
            "record_route_preset",
            &[Arg::Str("1.2.3.4"), Arg::Str("")]
        ),
        Val::Int(1)
    );
}

#[test]
fn upstream_request_records_the_callers_tag_and_is_upstream() {
    // The callee's re-INVITE: From is the callee (CALLEE), our Route carries the caller's ftag.
    let m = msg("INVITE sip:alice@10.0.0.8 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK2\nRoute: <sip:10.0.0.1;lr;ftag=CALLER;x=1>\nFrom: <sip:bob@b.example>;tag=CALLEE\nTo: <sip:alice@a.example>;tag=CALLER\nCall-ID: c2\nCSeq: 1 INVITE");
    let mut c = ctx(m);
    // before loose_route: the top Route is ours, so its params count (redo_route_params)
    assert_eq!(
        call(&mut c, "is_direction", &[Arg::Str("upstream")]),
        Val::Int(1)
    );
    assert_eq!(
        call(&mut c, "is_direction", &[Arg::Str("downstream")]),
        Val::Int(-1)
    );
    assert_eq!(
        call(&mut c, "is_direction", &[Arg::Str("sideways")]),
        Val::Int(-6)
    );
    assert_eq!(
        call(&mut c, "check_route_param", &[Arg::Str("x=1")]),
        Val::Int(1)
    );
    assert_eq!(call(&mut c, "loose_route", &[]), Val::Int(1));
    assert_eq!(
        call(&mut c, "check_route_param", &[Arg::Str(";ftag=caller")]),
        Val::Int(1)
    );
    assert_eq!(
        call(&mut c, "check_route_param", &[Arg::Str("y=2")]),
        Val::Int(-1)
    );
    assert_eq!(
        call(&mut c, "check_route_param", &[Arg::Str("(")]),
        Val::Int(-1)
    );
    assert_eq!(
        call(&mut c, "is_direction", &[Arg::Str("UPSTREAM")]),
        Val::Int(1)
    );
    assert_eq!(call(&mut c, "next_hop_route", &[]), Val::Int(-1));
    assert_eq!(call(&mut c, "record_route", &[]), Val::Int(1));
    assert_eq!(
        rr_lines(&c, Proto::Udp, "10.0.0.1:5060"),
        "Record-Route: <sip:10.0.0.1;lr;ftag=CALLER>\r\n"
    );
}

#[test]
fn loose_route_sets_du_edits_and_next_hop_route() {
    let m = in_dialog(
        "sip:bob@10.0.0.9",
        "Route: <sip:ksrd.example;lr>, <sip:proxy2.example;lr>\n",
    );
    let mut c = ctx(m);
    assert_eq!(call(&mut c, "loose_route", &[]), Val::Int(1));
    assert_eq!(c.dst_uri.as_deref(), Some("sip:proxy2.example;lr"));
    assert_eq!(call(&mut c, "next_hop_route", &[]), Val::Int(1));
    let out = apply(c.msg.as_ref().expect("msg"), &c.edits);
    assert!(out.contains("Route: <sip:proxy2.example;lr>\r\n") && !out.contains("ksrd.example"));

    let mut c = ctx(in_dialog("sip:bob@10.0.0.9", ""));
    assert_eq!(call(&mut c, "loose_route", &[]), Val::Int(-1));
    assert_eq!(
        call(&mut c, "check_route_param", &[Arg::Str("lr")]),
        Val::Int(-1)
    );
    assert_eq!(c.dst_uri, None);
}

#[test]
fn loose_route_preloaded_and_mode() {
    let mut c = ctx(initial("sip:bob@10.0.0.9", "Route: <sip:10.0.0.1;lr>\n"));
    assert_eq!(call(&mut c, "loose_route_preloaded", &[]), Val::Int(1));
    let mut c = ctx(initial(
        "sip:bob@10.0.0.9",
        "Route: <sip:edge.example;lr>\n",
    ));
    assert_eq!(call(&mut c, "loose_route_preloaded", &[]), Val::Int(-1));
    let mut c = ctx(in_dialog(
        "sip:10.0.0.1",
        "Route: <sip:bob@10.0.0.9:5080>\n",
    ));
    assert_eq!(
        call(&mut c, "loose_route_mode", &[Arg::Int(0)]),
        Val::Int(1)
    );
    assert_eq!(c.new_ruri.as_deref(), Some("sip:bob@10.0.0.9:5080"));
}

#[test]
fn sips_ruri_gives_sips_record_route() {
    let mut c = ctx(initial("sips:bob@b.example", ""));
    assert_eq!(
        call(
            &mut c,
            "record_route_advertised_address",
            &[Arg::Str("pbx.example")]
        ),
        Val::Int(1)
    );
    assert_eq!(
        rr_lines(&c, Proto::Udp, "10.0.0.1:5060"),
        "Record-Route: <sips:pbx.example;ftag=FROMTAG;lr>\r\n"
    );
    let mut c = ctx_with(
        "[modparam.rr]\nignore_sips = 1\n",
        initial("sips:bob@b.example", ""),
        ep(Proto::Udp, "10.0.0.1:5060"),
    );
    assert_eq!(
        call(&mut c, "record_route_preset_one", &[Arg::Str("1.2.3.4")]),
        Val::Int(1)
    );
    assert_eq!(
        rr_lines(&c, Proto::Udp, "10.0.0.1:5060"),
        "Record-Route: <sip:1.2.3.4;ftag=FROMTAG;lr>\r\n"
    );
}

#[test]
fn every_kemi_export_of_rr_mod_c_is_declared() {
    let names: Vec<&str> = EXPORTS.iter().map(|e| e.name).collect();
    for n in [
        "record_route",
        "record_route_params",
        "loose_route",
        "loose_route_preloaded",
        "loose_route_mode",
        "remove_record_route",
        "add_rr_param",
        "check_route_param",
        "is_direction",
        "record_route_preset_one",
        "record_route_preset",
        "record_route_advertised_address",
        "next_hop_route",
    ] {
        assert!(names.contains(&n), "KSR.rr.{n} missing");
    }
    assert!(EXPORTS.iter().all(|e| e.module == "rr"));
}
