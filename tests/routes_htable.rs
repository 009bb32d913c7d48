//! The htable example routes against the real ksrd: routes/message_count.py counts requests per
//! source IP in $sht(MessageCount=>$si), readable and writable over RPC.
mod common;
use common::*;

fn count(k: &Ksrd, ip: &str) -> Option<i64> {
    let r = k.rpc("htable.get", json!(["MessageCount", ip]));
    r["result"]["item"]["value"].as_i64()
}

#[test]
fn message_count_counts_requests_per_source_ip() {
    let k = Ksrd::start_with_route_file(
        "routes/message_count.py",
        "[modparam.htable]\nhtable = \"MessageCount=>size=8;autoexpire=3600;initval=0\"\n",
    );
    let c = k.udp();
    let before = count(&k, "127.0.0.1").unwrap_or(0);
    for _ in 0..3 {
        let r = c.request(&options(k.port, c.addr()).build());
        assert_eq!(r.code, 200);
    }
    assert_eq!(count(&k, "127.0.0.1"), Some(before + 3));
    // Operators change counters at run time (htable.seti), and the route carries on from there.
    let set = k.rpc("htable.seti", json!(["MessageCount", "127.0.0.1", 100]));
    assert_eq!(set["result"], "Ok. Key set to new value.", "{set}");
    c.request(&options(k.port, c.addr()).build());
    assert_eq!(count(&k, "127.0.0.1"), Some(101));
    assert!(
        k.wait_log("127.0.0.1 has sent 101 requests", REPLY_TIMEOUT),
        "{}",
        k.log()
    );
    let dump = k.rpc("htable.dump", json!(["MessageCount"]));
    let slots = dump["result"].as_array().expect("dump is a list of slots");
    assert!(
        slots
            .iter()
            .any(|s| s["slot"][0]["name"] == "127.0.0.1" && s["slot"][0]["value"] == 101),
        "{dump}"
    );
}
