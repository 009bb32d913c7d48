//! SIPp through ksrd's transaction layer (tests/data/tm/proxy.py): full calls with SIPp's
//! built-in `uac` against its built-in `uas`, and calls cancelled while ringing
//! (tests/sipp/tm_uac_cancel.xml against tests/sipp/tm_uas_cancel.xml). Needs `sipp`.
//! The tests run one at a time.
mod common;
use common::sipp::*;
use common::*;
use std::path::Path;
use std::time::Duration;

const ROUTE: &str = "tests/data/tm/proxy.py";

/// ksrd on the tm test route, `workers` SIP workers, UAS = the SIPp UAS port.
fn ksrd(uas_port: u16, workers: u32) -> Ksrd {
    Ksrd::start_with_route_file(
        ROUTE,
        &format!(
            "workers = {workers}\n[define]\nUAS = \"sip:127.0.0.1:{uas_port}\"\n\n[modparam.tm]\nfr_timer = 5000\nfr_inv_timer = 10000\n"
        ),
    )
}

/// Run a SIPp UAS and UAC for `calls` calls at `rate` calls/s through ksrd; both must exit 0.
fn run_calls(
    k: &Ksrd,
    dir: &Path,
    uas_port: u16,
    uas_args: &[&str],
    uac_args: &[&str],
    calls: u32,
    rate: u32,
) {
    let m = calls.to_string();
    let r = rate.to_string();
    let mut ua = uas_args.to_vec();
    ua.extend_from_slice(&["-m", &m, "-timeout", "40s"]);
    let uas = sipp(dir, "uas", uas_port, &ua);
    assert!(
        wait_until(Duration::from_secs(10), || udp_port_bound(uas_port)),
        "SIPp UAS did not bind {uas_port}"
    );
    let target = format!("127.0.0.1:{}", k.port);
    let mut ca = vec![target.as_str()];
    ca.extend_from_slice(uac_args);
    ca.extend_from_slice(&["-s", "bob", "-m", &m, "-r", &r, "-timeout", "30s"]);
    let uac = sipp(dir, "uac", free_port(), &ca);
    let (uac_code, uac_report) = uac.wait(Duration::from_secs(45));
    let (uas_code, uas_report) = uas.wait(Duration::from_secs(20));
    assert_eq!(
        uac_code,
        0,
        "{uac_report}\n{uas_report}\nksrd log:\n{}",
        k.log_tail(30)
    );
    assert_eq!(
        uas_code,
        0,
        "{uas_report}\n{uac_report}\nksrd log:\n{}",
        k.log_tail(30)
    );
    assert!(k.is_running());
}

#[test]
fn sipp_uac_calls_sipp_uas_through_t_relay() {
    let _g = serial();
    let dir = TempDir::new("tm-sipp");
    let uas_port = free_port();
    let k = ksrd(uas_port, 4);
    let calls = 40;
    run_calls(
        &k,
        dir.path(),
        uas_port,
        &["-sn", "uas"],
        &["-sn", "uac"],
        calls,
        20,
    );
    // retransmissions (SIPp resends the INVITE every 500 ms without a reply) never re-run the
    // request route: exactly one run per INVITE, ACK and BYE
    for m in ["INVITE", "ACK", "BYE"] {
        let n = k
            .log()
            .lines()
            .filter(|l| l.contains(&format!("RUN {m} ")))
            .count();
        assert_eq!(n, calls as usize, "{m} request route runs");
    }
    let uas_tx = ksrd_stat(&k, "tmx:UAS_transactions").expect("tmx:UAS_transactions");
    assert_eq!(
        uas_tx,
        2 * calls as u64,
        "one transaction per INVITE and per BYE"
    );
}

#[test]
fn sipp_calls_cancelled_while_ringing() {
    let _g = serial();
    let dir = TempDir::new("tm-sipp");
    let uas_port = free_port();
    let k = ksrd(uas_port, 4);
    let calls = 30;
    run_calls(
        &k,
        dir.path(),
        uas_port,
        &["-sf", &scenario("tm_uas_cancel.xml")],
        &["-sf", &scenario("tm_uac_cancel.xml")],
        calls,
        15,
    );
    let n = k
        .log()
        .lines()
        .filter(|l| l.contains("CANCEL-CHECK 1 "))
        .count();
    assert_eq!(n, calls as usize, "every CANCEL found its INVITE");
    assert_eq!(
        ksrd_stat(&k, "tm:absorbed_acks"),
        Some(calls as u64),
        "every caller ACK for the 487 absorbed"
    );
}
