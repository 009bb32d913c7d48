//! KSR.rr over real sockets: record_route() on an initial INVITE (one Record-Route, or two when
//! ksrd forwards from UDP to TCP), and loose_route() on in-dialog requests (Kamailio
//! src/modules/rr/record.c and loose.c), with check_route_param / is_direction /
//! next_hop_route reported in a header the route adds.
mod common;
use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::OnceLock;
use std::time::Duration;

const ROUTE: &str = r#"import KSR

def mod_init():
    return kamailio()

class kamailio:
    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "OK")
            return 1
        if KSR.siputils.has_totag() > 0 or KSR.hdr.is_present("Route") > 0:
            rc = KSR.rr.loose_route()
            KSR.hdr.append("X-RR: lr=%d up=%d crp=%d nhr=%d\r\n" % (
                rc, KSR.rr.is_direction("upstream"), KSR.rr.check_route_param(";foo=bar"),
                KSR.rr.next_hop_route()))
            if rc == 1:
                KSR.forward()
            else:
                KSR.sl.sl_send_reply(404, "loose_route %d" % rc)
            return 1
        KSR.rr.add_rr_param(";foo=bar")
        if KSR.rr.record_route() != 1 or KSR.rr.record_route() != -1:
            KSR.sl.sl_send_reply(500, "record_route")
            return 1
        KSR.forward()
        return 1
"#;

static SERVER: OnceLock<Ksrd> = OnceLock::new();

fn server() -> &'static Ksrd {
    shared(&SERVER, || Ksrd::start(ROUTE, ""))
}

/// A UDP UAS of the test.
fn uas() -> UdpClient {
    let k = server();
    UdpClient::bind("127.0.0.1:0", k.port)
}

fn recv(u: &UdpClient, call_id: &str) -> SipMsg {
    u.recv_call(call_id, REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("{call_id} not forwarded; log:\n{}", server().log_tail(30)))
}

fn from_tag(r: &Req) -> String {
    param(r.get("From").unwrap(), "tag").expect("From tag")
}

/// ksrd's Record-Route URI for a socket on port `p` (5060 is left out, as Kamailio does).
fn our_rr(p: u16, extra: &str, ftag: &str) -> String {
    format!("<sip:127.0.0.1:{p}{extra};lr;ftag={ftag};foo=bar>")
}

#[test]
fn initial_invite_gets_one_record_route_on_top_with_ftag_and_params() {
    let k = server();
    let c = k.udp();
    let b = uas();
    let req = Req::new(
        "INVITE",
        &format!("sip:bob@127.0.0.1:{}", b.addr().port()),
        c.addr(),
    )
    .add("Record-Route", "<sip:upstream.example;lr>");
    c.send(&req.build());
    let f = recv(&b, req.get("Call-ID").unwrap());
    assert_eq!(f.reason, "INVITE", "{}", f.text());
    assert_eq!(
        f.headers_all("Record-Route"),
        vec![
            our_rr(k.port, "", &from_tag(&req)).as_str(),
            "<sip:upstream.example;lr>"
        ],
        "ours first, the upstream one kept:\n{}",
        f.text()
    );
    assert_eq!(
        f.headers[0].0,
        "Record-Route",
        "record.c anchors at the first header:\n{}",
        f.text()
    );
}

#[test]
fn bye_with_our_route_is_loose_routed_to_the_ruri() {
    let k = server();
    let c = k.udp();
    let b = uas();
    let ruri = format!("sip:bob@127.0.0.1:{}", b.addr().port());
    let req = Req::new("BYE", &ruri, c.addr());
    let ftag = from_tag(&req);
    let req = req
        .set("To", &format!("<{ruri}>;tag=callee1"))
        .add("Route", &our_rr(k.port, "", &ftag));
    c.send(&req.build());
    let f = recv(&b, req.get("Call-ID").unwrap());
    assert_eq!(f.start_line, format!("BYE {ruri} SIP/2.0"));
    assert!(
        f.headers_all("Route").is_empty(),
        "our Route removed:\n{}",
        f.text()
    );
    assert_eq!(
        f.header("X-RR"),
        Some("lr=1 up=-1 crp=1 nhr=-1"),
        "downstream (ftag is the From tag), ;foo=bar seen, next hop is the R-URI"
    );
}

#[test]
fn callee_bye_is_upstream_and_goes_to_the_next_route() {
    let k = server();
    let c = k.udp();
    let next = uas();
    // The callee's BYE: From is the callee, To carries the caller's tag (= our ftag).
    let ruri = "sip:alice@192.0.2.1:5060";
    let next_route = format!("<sip:127.0.0.1:{};lr>", next.addr().port());
    let req = Req::new("BYE", ruri, c.addr())
        .set("To", &format!("<{ruri}>;tag=caller1"))
        .add(
            "Route",
            &format!(
                "<sip:localhost:{};lr;ftag=caller1;foo=bar>, {next_route}",
                k.port
            ),
        );
    c.send(&req.build());
    let f = recv(&next, req.get("Call-ID").unwrap());
    assert_eq!(f.start_line, format!("BYE {ruri} SIP/2.0"), "R-URI kept");
    assert_eq!(
        f.headers_all("Route"),
        vec![next_route.as_str()],
        "{}",
        f.text()
    );
    assert_eq!(f.header("X-RR"), Some("lr=1 up=1 crp=1 nhr=1"));
}

#[test]
fn after_a_strict_router_the_last_route_becomes_the_ruri() {
    let k = server();
    let c = k.udp();
    let b = uas();
    let target = format!("sip:bob@127.0.0.1:{}", b.addr().port());
    // A strict router put our Record-Route URI (no ;lr) in the R-URI and the target in Route.
    let req = Req::new(
        "BYE",
        &format!("sip:127.0.0.1:{};foo=bar", k.port),
        c.addr(),
    )
    .set("To", "<sip:bob@b.example>;tag=callee2")
    .add("Route", &format!("<{target}>"));
    c.send(&req.build());
    let f = recv(&b, req.get("Call-ID").unwrap());
    assert_eq!(
        f.start_line,
        format!("BYE {target} SIP/2.0"),
        "{}",
        f.text()
    );
    assert!(f.headers_all("Route").is_empty(), "{}", f.text());
    assert_eq!(f.header("X-RR"), Some("lr=1 up=-1 crp=1 nhr=-1"));
}

#[test]
fn preloaded_route_to_us_only_returns_minus_three() {
    let k = server();
    let c = k.udp();
    let req = Req::new("INVITE", "sip:bob@192.0.2.1", c.addr())
        .add("Route", &format!("<sip:127.0.0.1:{};lr>", k.port));
    let r = c.request(&req.build());
    assert_eq!((r.code, r.reason.as_str()), (404, "loose_route -3"));
}

#[test]
fn in_dialog_request_without_route_is_minus_one() {
    let k = server();
    let c = k.udp();
    let req = Req::new("BYE", "sip:bob@192.0.2.1", c.addr()).set("To", "<sip:bob@x>;tag=t1");
    let r = c.request(&req.build());
    assert_eq!((r.code, r.reason.as_str()), (404, "loose_route -1"));
}

/// Accept the connection ksrd opens to a TCP UAS of the test.
fn accept(k: &Ksrd, l: &TcpListener) -> TcpStream {
    l.set_nonblocking(true).unwrap();
    let mut got = None;
    let ok = wait_until(REPLY_TIMEOUT, || {
        got = l.accept().ok();
        got.is_some()
    });
    let (s, _) = got
        .filter(|_| ok)
        .unwrap_or_else(|| panic!("ksrd did not connect; log:\n{}", k.log_tail(30)));
    s.set_nonblocking(false).unwrap();
    s
}

#[test]
fn udp_to_tcp_gets_double_record_route_and_both_routes_go_on_the_way_back() {
    let k = server();
    let c = k.udp();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_uas: SocketAddr = l.local_addr().unwrap();
    let req = Req::new(
        "INVITE",
        &format!("sip:bob@{tcp_uas};transport=tcp"),
        c.addr(),
    );
    let ftag = from_tag(&req);
    c.send(&req.build());
    let mut s = accept(k, &l);
    let mut pending = Vec::new();
    let f = read_sip_stream(&mut s, &mut pending, REPLY_TIMEOUT).expect("INVITE over TCP");
    let out_rr = our_rr(k.port, ";transport=tcp;r2=on", &ftag);
    let in_rr = our_rr(k.port, ";r2=on", &ftag);
    assert_eq!(
        f.headers_all("Record-Route"),
        vec![out_rr.as_str(), in_rr.as_str()],
        "outgoing (TCP) interface on top, incoming (UDP) below:\n{}",
        f.text()
    );

    // The callee's BYE follows the route set it learnt (Record-Route order) back over UDP.
    let caller_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let caller_addr = caller_sock.local_addr().unwrap();
    let caller = UdpClient {
        sock: caller_sock,
        target: k.sip_addr(),
    };
    let bye = Req::new("BYE", &format!("sip:alice@{caller_addr}"), c.addr())
        .set("To", &format!("<sip:alice@a.example>;tag={ftag}"))
        .add("Route", &format!("{out_rr}, {in_rr}"));
    c.send(&bye.build());
    let b = caller
        .recv_call(bye.get("Call-ID").unwrap(), REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("BYE not routed to the caller; log:\n{}", k.log_tail(30)));
    assert!(
        b.headers_all("Route").is_empty(),
        "both of ours removed:\n{}",
        b.text()
    );
    assert_eq!(b.header("X-RR"), Some("lr=1 up=1 crp=1 nhr=-1"));
}

#[test]
fn tcp_in_udp_out_is_double_record_routed_too() {
    let k = server();
    let b = uas();
    let mut s = k.tcp_connect();
    let local = s.local_addr().unwrap();
    let req = Req::new(
        "INVITE",
        &format!("sip:bob@127.0.0.1:{}", b.addr().port()),
        local,
    )
    .set(
        "Via",
        &format!("SIP/2.0/TCP {local};branch={};rport", branch()),
    );
    let ftag = from_tag(&req);
    s.write_all(&req.build()).unwrap();
    let f = recv(&b, req.get("Call-ID").unwrap());
    assert_eq!(
        f.headers_all("Record-Route"),
        vec![
            our_rr(k.port, ";r2=on", &ftag).as_str(),
            our_rr(k.port, ";transport=tcp;r2=on", &ftag).as_str()
        ],
        "{}",
        f.text()
    );
}

#[test]
fn modparams_append_fromtag_full_lr_and_no_double_rr() {
    let k = Ksrd::start(
        ROUTE,
        "[modparam.rr]\nappend_fromtag = 0\nenable_full_lr = 1\nenable_double_rr = 0\nenable_socket_mismatch_warning = 0\n",
    );
    let c = k.udp();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let req = Req::new(
        "INVITE",
        &format!("sip:bob@{};transport=tcp", l.local_addr().unwrap()),
        c.addr(),
    );
    c.send(&req.build());
    let mut s = accept(&k, &l);
    let mut pending = Vec::new();
    let f = read_sip_stream(&mut s, &mut pending, Duration::from_secs(3)).expect("INVITE");
    assert_eq!(
        f.headers_all("Record-Route"),
        vec![format!("<sip:127.0.0.1:{};lr=on;foo=bar>", k.port).as_str()],
        "one (inbound) Record-Route, no ftag:\n{}",
        f.text()
    );
}
