//! routes/nat.py end to end with the phone really behind a NAT: SIPp in its own network
//! namespace behind a router that masquerades (source addresses and ports rewritten), ksrd and
//! the caller in a "public" namespace. The phone registers its private Contact, a call from
//! outside reaches it through the NAT binding, the in-dialog ACK and BYE find it through the
//! ;alias= ksrd put on its Contact, and NAT keepalives reach it. Where network namespaces cannot
//! be made (no root), the test falls back to a phone on 127.0.0.2 advertising a private Contact.
mod common;
use common::netns::{enter, NatLab, PHONE_IP, PUBLIC_IP, ROUTER_IP};
use common::sipp::{scenario, serial, sipp_at};
use common::*;
use serde_json::json;
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

const NAT_CONFIG: &str = "\
[modparam.nathelper]
natping_interval = 1
ping_nated_only = 1
sipping_bflag = 7
sipping_from = \"sip:pinger@ksrd.test\"
received_avp = \"$avp(RECEIVED)\"
[modparam.registrar]
received_avp = \"$avp(RECEIVED)\"
[modparam.usrloc]
nat_bflag = 6
";

fn udp_bound_in(ns: &str, port: u16) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "ss",
            "-Hlun",
            &format!("sport = :{port}"),
        ])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false)
}

#[test]
fn a_phone_behind_a_masquerading_router_registers_and_is_called() {
    let _g = serial();
    let lab = match NatLab::new() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("network namespaces unavailable ({e}): running the 127.0.0.2 fallback");
            return fallback();
        }
    };
    let k = Ksrd::start_opts(StartOpts {
        route_file: Some(repo_path("routes/nat.py")),
        netns: Some(lab.public.clone()),
        extra_toml: format!(
            "listen = [\"udp:127.0.0.1:{{port}}\", \"udp:{PUBLIC_IP}:5060\"]\n{NAT_CONFIG}"
        ),
        ..Default::default()
    });
    // Pings stay off until the call is over (SIPp's callee would take them for a new call).
    k.rpc_unix("nathelper.enable_ping", json!([0]));
    let dir = TempDir::new("nat-netns");
    let server = format!("{PUBLIC_IP}:5060");

    // 1. The phone registers sip:phone@192.168.77.2:5060 from behind the router.
    let reg = sipp_at(
        dir.path(),
        "register",
        Some(&lab.lan),
        PHONE_IP,
        5060,
        &[
            "-sf",
            &scenario("nat_register.xml"),
            "-s",
            "phone",
            "-m",
            "1",
            "-timeout",
            "10",
            &server,
        ],
    );
    let (code, out) = reg.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{out}\nksrd:\n{}", k.log_tail(20));

    // ksrd stored the private Contact with where it really came from: the router's address
    // and a masqueraded port.
    let dump = k.rpc_unix("ul.dump", json!([])).to_string();
    assert!(
        dump.contains(&format!("sip:phone@{PHONE_IP}:5060")),
        "{dump}"
    );
    let received = dump
        .split(&format!("sip:{ROUTER_IP}:"))
        .nth(1)
        .and_then(|r| r.get(..5))
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no received address of the router: {dump}"));
    assert!(
        (40000..41000).contains(&received),
        "masqueraded port {received}: {dump}"
    );

    // 2. The phone waits for a call on the port it registered from; a caller outside calls it.
    let callee = sipp_at(
        dir.path(),
        "callee",
        Some(&lab.lan),
        PHONE_IP,
        5060,
        &[
            "-sf",
            &scenario("call_rr_uas.xml"),
            "-m",
            "1",
            "-timeout",
            "20",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(5), || udp_bound_in(&lab.lan, 5060)),
        "the callee SIPp did not bind"
    );
    let caller = sipp_at(
        dir.path(),
        "caller",
        Some(&lab.public),
        PUBLIC_IP,
        5070,
        &[
            "-sf",
            &scenario("call_rr_uac.xml"),
            "-s",
            "phone",
            "-m",
            "1",
            "-timeout",
            "15",
            &server,
        ],
    );
    let (code, out) = caller.wait(Duration::from_secs(25));
    assert_eq!(code, 0, "caller: {out}\nksrd:\n{}", k.log_tail(40));
    let (code, out) = callee.wait(Duration::from_secs(10));
    assert_eq!(
        code, 0,
        "the INVITE, ACK and BYE must reach the phone: {out}"
    );

    // 3. NAT keepalives go through the router to the phone.
    k.rpc_unix("nathelper.enable_ping", json!([1]));
    let lan = lab.lan.clone();
    let ping = std::thread::spawn(move || {
        enter(&lan);
        let s = UdpSocket::bind((PHONE_IP, 5060)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let (n, from) = s.recv_from(&mut buf).ok()?;
        let m = SipMsg::parse(&buf[..n])?;
        let ok = make_response(&m, 200, "OK", "ph", &[]);
        s.send_to(&ok, from).ok()?;
        Some((m.start_line, from))
    });
    let (line, from) = ping
        .join()
        .unwrap()
        .unwrap_or_else(|| panic!("no keepalive reached the phone; log:\n{}", k.log_tail(20)));
    assert!(
        line.starts_with(&format!("OPTIONS sip:phone@{PHONE_IP}:5060 ")),
        "{line}"
    );
    assert_eq!(from.to_string(), format!("{PUBLIC_IP}:5060"));
}

/// No namespaces: a phone on 127.0.0.2 that advertises a private Contact.
fn fallback() {
    let k = Ksrd::start_with_route_file("routes/nat.py", NAT_CONFIG);
    let phone = UdpClient::bind("127.0.0.2:0", k.port);
    let r = Req::new(
        "REGISTER",
        &format!("sip:127.0.0.1:{}", k.port),
        phone.addr(),
    )
    .set(
        "Via",
        &format!("SIP/2.0/UDP 192.168.0.103:5060;branch={};rport", branch()),
    )
    .set("From", &format!("<sip:phone@127.0.0.1>;tag={}", uniq("t")))
    .set("To", "<sip:phone@127.0.0.1>")
    .set("Contact", "<sip:phone@192.168.0.103:5060>");
    assert_eq!(phone.request(&r.build()).code, 200);
    let caller = UdpClient::bind("127.0.0.3:0", k.port);
    let inv = Req::new(
        "INVITE",
        &format!("sip:phone@127.0.0.1:{}", k.port),
        caller.addr(),
    );
    caller.send(&inv.build());
    let got = phone
        .recv_call(inv.get("Call-ID").unwrap(), REPLY_TIMEOUT)
        .unwrap_or_else(|| panic!("INVITE did not reach the phone; log:\n{}", k.log_tail(20)));
    assert!(got
        .start_line
        .starts_with("INVITE sip:phone@192.168.0.103:5060 "));
}
