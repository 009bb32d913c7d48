//! pike over real sockets: a source faster than reqs_density_per_unit is blocked (route sees
//! -2 once, then -1) while another source is served; it is unblocked when it calms down;
//! IPv6 sources too; `pike.top` lists it as HOT; bad values are config errors.
mod common;
use common::*;
use serde_json::json;
use std::net::UdpSocket;
use std::time::Duration;

const ROUTE: &str = r#"
import KSR

def mod_init():
    return R()

class R:
    def ksr_request_route(self, msg):
        rc = KSR.pike.pike_check_req()
        if rc == -2:
            KSR.warn("pike blocked " + KSR.pv.get("$si") + "\n")
        if rc < 0:
            KSR.set_drop()
            return 1
        KSR.sl.sl_send_reply(200, "OK")
        return 1
"#;

fn start() -> Ksrd {
    Ksrd::start(
        ROUTE,
        "listen = [\"udp:127.0.0.1:{port}\", \"udp:[::1]:{port}\"]\n\
         [modparam.pike]\nsampling_time_unit = 1\nreqs_density_per_unit = 16\nremove_latency = 4\n",
    )
}

/// Send `n` OPTIONS without waiting; then one more and its answer.
fn burst(c: &UdpClient, port: u16, n: usize) -> Option<SipMsg> {
    for _ in 0..n {
        c.send(&options(port, c.addr()).build());
    }
    while c.recv(Duration::from_millis(100)).is_some() {}
    c.send(&options(port, c.addr()).build());
    c.recv_final(Duration::from_millis(400))
}

#[test]
fn a_flooding_source_is_blocked_until_it_calms_down_and_others_are_served() {
    let k = start();
    let flooder = UdpClient::bind("127.0.0.2:0", k.port);
    assert!(
        burst(&flooder, k.port, 100).is_none(),
        "the flooder is still answered"
    );
    assert!(
        k.log().contains("pike blocked 127.0.0.2"),
        "{}",
        k.log_tail(10)
    );
    assert_eq!(
        k.log_count("pike blocked 127.0.0.2"),
        1,
        "-2 only for the request that made it red"
    );
    let other = UdpClient::bind("127.0.0.3:0", k.port);
    assert_eq!(
        other.request(&options(k.port, other.addr()).build()).code,
        200
    );

    let top = k.rpc("pike.top", json!([]));
    let list = top["result"]["list"].as_array().unwrap().clone();
    assert_eq!(top["result"]["max_hits"], 16, "{top}");
    assert_eq!(list.len(), 1, "{top}");
    assert_eq!(list[0]["ip_addr"], "127.0.0.2");
    assert_eq!(list[0]["status"], "HOT");
    assert_eq!(top["result"]["number_of_rows"], 1);
    let all = k.rpc("pike.list", json!(["ALL"])).to_string();
    assert!(all.contains("127.0.0.2"), "{all}");
    let bad = k.try_rpc("pike.top", json!(["COLD"])).unwrap();
    assert_eq!(
        bad["error"]["message"],
        "Bad argument. Select: ALL, HOT or WARM"
    );

    // Quiet for two sampling windows: answered again (each probe is one hit, far below 16).
    let back = wait_until(Duration::from_secs(10), || {
        flooder.send(&options(k.port, flooder.addr()).build());
        flooder.recv_final(Duration::from_millis(500)).is_some()
    });
    assert!(back, "the calmed-down source stayed blocked");
}

#[test]
fn ipv6_sources_are_watched_too() {
    let k = start();
    let s = UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
    let c = UdpClient {
        sock: s,
        target: format!("[::1]:{}", k.port).parse().unwrap(),
    };
    assert!(burst(&c, k.port, 100).is_none());
    assert!(k.log().contains("pike blocked ::1"), "{}", k.log_tail(10));
    let top = k.rpc("pike.top", json!(["HOT"])).to_string();
    assert!(top.contains("\"ip_addr\":\"::1\""), "{top}");
}

#[test]
fn bad_pike_values_are_config_errors() {
    for (toml, key) in [
        ("sampling_time_unit = 0", "modparam.pike.sampling_time_unit"),
        (
            "reqs_density_per_unit = -3",
            "modparam.pike.reqs_density_per_unit",
        ),
        ("nonsense = 1", "nonsense"),
    ] {
        assert_config_error(&format!("[modparam.pike]\n{toml}"), key);
    }
}
