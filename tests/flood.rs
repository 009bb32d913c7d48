//! A flood from one address against routes/security.py while a phone on another address keeps
//! registering: sipsak floods OPTIONS from 127.0.0.1 (bursts paced to about 12k requests/s),
//! SIPp registers with digest auth from 127.0.0.2. pike spots the flooder and the route drops
//! it early; at least 99% of the phone's registrations must succeed. The figures (flood rate,
//! success rate, what ksrd dropped) are printed for the issue note.
mod common;
use common::sipp::{scenario, serial, sipp_at};
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USERS: usize = 20;
/// 20 REGISTER pairs a second: 80 requests per 2 s, under pike's density below.
const REGISTRATIONS: usize = 160;

fn subscribers(dir: &TempDir, url: &str) -> std::path::PathBuf {
    let cfg = dir.path().join("cli.toml");
    std::fs::write(&cfg, format!("db_url = \"{url}\"\n")).unwrap();
    let mut csv = String::from("SEQUENTIAL\n");
    for i in 0..USERS {
        let user = format!("{}", 2000 + i);
        let out = ksrd_cmd()
            .arg("--config")
            .arg(&cfg)
            .args([
                "subscriber",
                "add",
                &format!("{user}@127.0.0.1"),
                &format!("pw-{user}"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        csv.push_str(&format!("{user};pw-{user}\n"));
    }
    let users = dir.path().join("users.csv");
    std::fs::write(&users, csv).unwrap();
    users
}

/// "Successful call" and "Failed call" totals from SIPp's final statistics screen.
fn sipp_counts(report: &str) -> (u64, u64) {
    let total = |name: &str| {
        report
            .lines()
            .rfind(|l| l.contains(name))
            .and_then(|l| l.split('|').nth(2))
            .and_then(|c| c.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no '{name}' line in SIPp's report:\n{report}"))
    };
    (total("Successful call"), total("Failed call"))
}

/// Run the phone's registrations while `burst(n)` floods n requests at a time from 127.0.0.1,
/// paced to about 12k requests/s; asserts the flood rate and the phone's ≥99% success.
fn flood_while_registering(what: &str, mut burst: impl FnMut(&Ksrd, u64)) -> Ksrd {
    let dir = TempDir::new("flood");
    let url = format!("sqlite://{}", dir.path().join("flood.db").display());
    let users = subscribers(&dir, &url);
    let k = Ksrd::start_with_route_file(
        "routes/security.py",
        &format!(
            "db_url = \"{url}\"\n[modparam.htable]\n\
             htable = [\"ipban=>size=8;autoexpire=300;initval=0\", \"wrongpass=>size=8;autoexpire=900;initval=0\"]\n\
             [modparam.pike]\nsampling_time_unit = 2\nreqs_density_per_unit = 100\nremove_latency = 10\n"
        ),
    );
    let server = format!("127.0.0.1:{}", k.port);
    let phone = sipp_at(
        dir.path(),
        "phone",
        None,
        "127.0.0.2",
        free_port(),
        &[
            &server,
            "-sf",
            &scenario("register_auth_uac.xml"),
            "-inf",
            users.to_str().unwrap(),
            "-m",
            &REGISTRATIONS.to_string(),
            "-r",
            "20",
            "-timeout",
            "60s",
        ],
    );
    // Bursts, paced so the average stays about 12k requests/s while the phone registers
    // (REGISTRATIONS / 20 per second = 8 s).
    const BURST: u64 = 250;
    const PER_SEC: u64 = 12_000;
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(8) {
        burst(&k, BURST);
        sent += BURST;
        let due = Duration::from_micros(sent * 1_000_000 / PER_SEC);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let flood_secs = start.elapsed().as_secs_f64();
    let rate = sent as f64 / flood_secs;
    let (code, report) = phone.wait(Duration::from_secs(90));
    let (ok, failed) = sipp_counts(&report);
    let stats = k
        .rpc("stats.get_statistics", serde_json::json!(["core:"]))
        .to_string();
    eprintln!(
        "FLOOD ({what}): {sent} OPTIONS in {flood_secs:.1} s = {rate:.0}/s from 127.0.0.1; \
         phone: {ok} registrations ok, {failed} failed ({:.2}%); sipp exit {code}; {stats}",
        ok as f64 * 100.0 / (ok + failed).max(1) as f64
    );
    assert!(rate >= 10_000.0, "the flood was only {rate:.0}/s");
    assert_eq!(ok + failed, REGISTRATIONS as u64, "{report}");
    assert!(
        ok * 100 >= (REGISTRATIONS as u64) * 99,
        "only {ok} of {REGISTRATIONS} registrations succeeded during the flood:\n{report}\nksrd:\n{}",
        k.log_tail(20)
    );
    let ban = k.rpc("htable.get", serde_json::json!(["ipban", "127.0.0.1"]));
    assert!(
        ban["result"]["item"]["value"].as_i64() > Some(3),
        "flooder not banned: {ban}"
    );
    let phone_ban = k
        .rpc("htable.get", serde_json::json!(["ipban", "127.0.0.2"]))
        .to_string();
    assert!(
        !phone_ban.contains("\"value\":1000"),
        "the phone was banned: {phone_ban}"
    );
    k
}

/// sipsak's flood: it says "User-Agent: sipsak", so the scanner rule bans it on sight.
#[test]
fn a_sipsak_flood_does_not_stop_registrations_from_another_address() {
    let _g = serial();
    let k = flood_while_registering("sipsak", |k, n| {
        let st = Command::new("sipsak")
            .args([
                "-F",
                "-e",
                &n.to_string(),
                "-s",
                &format!("sip:flood@127.0.0.1:{}", k.port),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("sipsak (Debian sipsak; scripts/test.sh installs it)");
        assert!(st.success(), "sipsak failed: {st}");
    });
    assert!(
        k.log().contains("Attack attempt! IP:127.0.0.1:"),
        "{}",
        k.log_tail(10)
    );
}

/// A flood that looks like a phone (its User-Agent is not a scanner's): pike catches it.
#[test]
fn pike_stops_a_flood_that_looks_like_a_phone() {
    let _g = serial();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let src = sock.local_addr().unwrap();
    let mut seq = 0u64;
    let k = flood_while_registering("phone-like", |k, n| {
        for _ in 0..n {
            seq += 1;
            let m = format!(
                "OPTIONS sip:100@127.0.0.1:{p} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{seq}\r\n\
                 From: <sip:100@127.0.0.1>;tag={seq}\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: f{seq}@x\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nUser-Agent: Yealink SIP-T46S\r\nContent-Length: 0\r\n\r\n",
                p = k.port
            );
            let _ = sock.send_to(m.as_bytes(), ("127.0.0.1", k.port));
        }
    });
    assert!(
        k.log()
            .contains("ALERT: pike blocking OPTIONS from sip:100@127.0.0.1 (IP:127.0.0.1:"),
        "{}",
        k.log_tail(10)
    );
}
