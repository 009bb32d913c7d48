//! geoip2 over real sockets with a MaxMind DB the test writes itself (tests/common/mmdb.rs):
//! KSR.geoip2.match and $gip2(container=>key) for IPv4 and IPv6, not-found and bad addresses,
//! containers kept apart, distance, geoip2.reload, config errors, and routes/security.py's
//! country block (BLOCKED_COUNTRIES).
mod common;
use common::mmdb::{build, city, test_db};
use common::*;
use serde_json::json;

const ROUTE: &str = r#"
import KSR

KEYS = ["cc", "city", "contc", "tz", "zip", "lat", "lon", "regc", "regn", "nmask", "metro"]

def mod_init():
    return R()

class R:
    def ksr_request_route(self, msg):
        ip = KSR.hdr.get("X-IP")
        rc = KSR.geoip2.match(ip, "src")
        KSR.geoip2.match("198.51.100.7", "other")
        vals = ["%s=%s" % (k, KSR.pv.get("$gip2(src=>%s)" % k)) for k in KEYS]
        KSR.hdr.append_to_reply("X-Rc: %d\r\n" % rc)
        KSR.hdr.append_to_reply("X-Geo: %s\r\n" % ";".join(vals))
        KSR.hdr.append_to_reply("X-Other: %s\r\n" % KSR.pv.get("$gip2(other=>city)"))
        KSR.hdr.append_to_reply("X-Dist: %d\r\n" % KSR.geoip2.distance(ip, "-33.8688", "151.2093"))
        KSR.sl.sl_send_reply(200, "OK")
        return 1
"#;

fn start(dir: &TempDir) -> Ksrd {
    let db = dir.path().join("city.mmdb");
    std::fs::write(&db, test_db()).unwrap();
    Ksrd::start(
        ROUTE,
        &format!("[modparam.geoip2]\npath = \"{}\"\n", db.display()),
    )
}

fn ask(k: &Ksrd, ip: &str) -> SipMsg {
    let c = k.udp();
    c.request(&options(k.port, c.addr()).set("X-IP", ip).build())
}

fn geo(r: &SipMsg) -> String {
    r.header("X-Geo")
        .unwrap_or_else(|| panic!("{}", r.text()))
        .to_string()
}

#[test]
fn match_fills_the_container_for_ipv4_and_ipv6() {
    let dir = TempDir::new("geoip2");
    let k = start(&dir);
    let r = ask(&k, "192.0.2.77");
    assert_eq!(r.header("X-Rc"), Some("1"));
    assert_eq!(
        geo(&r),
        "cc=AU;city=Sydney;contc=OC;tz=Australia/Sydney;zip=2000;lat=-33.868800;\
         lon=151.209300;regc=NSW;regn=New South Wales;nmask=24;metro=None"
    );
    assert_eq!(
        r.header("X-Other"),
        Some("Berlin"),
        "containers are separate"
    );
    assert_eq!(r.header("X-Dist"), Some("0"));

    let r = ask(&k, "2001:db8:1::5");
    assert_eq!(r.header("X-Rc"), Some("1"));
    assert!(
        geo(&r).starts_with("cc=JP;city=Tokyo;contc=AS"),
        "{}",
        geo(&r)
    );
    assert!(geo(&r).contains("nmask=32"), "{}", geo(&r));
    let miles: i64 = r.header("X-Dist").unwrap().parse().unwrap();
    assert!(
        (4800..4900).contains(&miles),
        "Sydney to Tokyo in miles: {miles}"
    );
}

#[test]
fn unknown_and_bad_addresses_do_not_match_and_clear_the_container() {
    let dir = TempDir::new("geoip2");
    let k = start(&dir);
    for ip in ["203.0.113.9", "not-an-ip", "2001:db9::1"] {
        let r = ask(&k, ip);
        assert_eq!(r.header("X-Rc"), Some("-2"), "{ip}: {}", k.log_tail(5));
        assert!(
            geo(&r).starts_with("cc=None;city=None"),
            "{ip}: {}",
            geo(&r)
        );
        assert_eq!(r.header("X-Dist"), Some("-2"));
    }
    let long = "1".repeat(300);
    assert_eq!(ask(&k, &long).header("X-Rc"), Some("-3"));
}

#[test]
fn reload_reads_a_new_file_and_a_bad_path_is_a_config_error() {
    let dir = TempDir::new("geoip2");
    let k = start(&dir);
    assert!(geo(&ask(&k, "192.0.2.1")).contains("city=Sydney"));
    let db = dir.path().join("city.mmdb");
    std::fs::write(
        &db,
        build(&[(
            "192.0.2.0",
            24,
            city(
                "NZ",
                "OC",
                "Auckland",
                -36.85,
                174.76,
                "Pacific/Auckland",
                ("AUK", "Auckland"),
                "1010",
            ),
        )]),
    )
    .unwrap();
    let r = k.rpc("geoip2.reload", json!([]));
    assert!(r.get("error").is_none(), "{r}");
    assert!(geo(&ask(&k, "192.0.2.1")).contains("city=Auckland"));

    let cfg = dir.path().join("ksrd.toml");
    std::fs::write(
        &cfg,
        "listen = [\"udp:127.0.0.1:0\"]\n[modparam.geoip2]\npath = \"/nonexistent/GeoLite2-City.mmdb\"\n",
    )
    .unwrap();
    let out = ksrd_check(&cfg);
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        err.contains("modparam.geoip2.path") && err.contains("ksrd.toml"),
        "{err}"
    );
}

#[test]
fn security_route_drops_sources_from_blocked_countries() {
    let dir = TempDir::new("geoip2-sec");
    let db = dir.path().join("city.mmdb");
    std::fs::write(&db, test_db()).unwrap();
    let k = Ksrd::start_with_route_file(
        "routes/security.py",
        &format!(
            "[define]\nBLOCKED_COUNTRIES = \"CN, KP\"\n[modparam.geoip2]\npath = \"{}\"\n\
             [modparam.htable]\nhtable = [\"ipban=>size=8;autoexpire=300;initval=0\", \"wrongpass=>size=8;autoexpire=900;initval=0\"]\n",
            db.display()
        ),
    );
    let from = |ip: &str| {
        let c = UdpClient::bind(&format!("{ip}:0"), k.port);
        c.send(&options(k.port, c.addr()).build());
        c.recv_final(std::time::Duration::from_millis(400))
    };
    assert!(from("127.0.0.5").is_none(), "CN source answered");
    assert!(
        k.log()
            .contains("source 127.0.0.5 from blocked country CN dropped"),
        "{}",
        k.log_tail(10)
    );
    assert_eq!(from("127.0.0.6").expect("AU source served").code, 200);
    assert_eq!(
        from("127.0.0.2").expect("unknown location served").code,
        200
    );
}

/// routes/honeypot.py records the country and city of each source.
#[test]
fn honeypot_records_where_attackers_are() {
    let dir = TempDir::new("geoip2-honeypot");
    let mmdb = dir.path().join("city.mmdb");
    std::fs::write(&mmdb, test_db()).unwrap();
    let db = dir.path().join("honeypot.db");
    let k = Ksrd::start_with_route_file(
        "routes/honeypot.py",
        &format!(
            "[modparam.sqlops]\nsqlcon = \"honeypot=>sqlite://{}\"\n[modparam.geoip2]\npath = \"{}\"\n",
            db.display(),
            mmdb.display()
        ),
    );
    for ip in ["127.0.0.5", "127.0.0.5", "127.0.0.2"] {
        let c = UdpClient::bind(&format!("{ip}:0"), k.port);
        assert_eq!(c.request(&options(k.port, c.addr()).build()).code, 200);
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let row: (i64, String, String) = conn
        .query_row(
            "SELECT hits, country, city FROM baddies WHERE ip = '127.0.0.5'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(row, (2, "CN".to_string(), "Beijing".to_string()));
    let other: (String, String) = conn
        .query_row(
            "SELECT country, city FROM baddies WHERE ip = '127.0.0.2'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(other, (String::new(), String::new()));
}
