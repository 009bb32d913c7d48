//! `KSR.xlog.*` (pseudo-variables expanded in log text) and `KSR.pvx.*` ($var, $avp, $shv,
//! single-level $xavp, evalx), driven through the real binary over UDP. Names, parameter and
//! return types follow Kamailio's `sr_kemi_xlog_exports` / `sr_kemi_pvx_exports`.
//!
//! The route runs the Python code carried in the request body and reports values with
//! `R(name, value)`: a reply header `X-R-<name>: repr(value)`.
mod common;
use common::*;
use std::sync::OnceLock;
use std::time::Duration;

const ROUTE: &str = r#"import KSR
import textwrap

def R(name, value):
    return KSR.hdr.append_to_reply("X-R-%s: %s\r\n" % (name, repr(value)))

def mod_init():
    return kamailio()

class kamailio:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.hdr.get("Content-Type") == "application/x-python":
            code = textwrap.dedent(KSR.pv.get("$rb"))
            exec(code, {"KSR": KSR, "R": R})
        KSR.sl.sl_send_reply(200, "OK")
        return 1
"#;

static SERVER: OnceLock<Ksrd> = OnceLock::new();

fn server() -> &'static Ksrd {
    shared(&SERVER, || Ksrd::start(ROUTE, ""))
}

static SHV_SERVER: OnceLock<Ksrd> = OnceLock::new();

/// Several workers and initial `$shv` values from `modparam.pv.shvset`.
fn shv_server() -> &'static Ksrd {
    shared(&SHV_SERVER, || {
        Ksrd::start(
            ROUTE,
            "workers = 4\n\n[modparam.pv]\nshvset = [\"gw=s:sip:gw.example\", \"n=i:7\"]\n\n[modparam.xlog]\nbuf_size = 8192\nprefix = \"<script>: \"\nlog_facility = \"LOG_LOCAL0\"\n",
        )
    })
}

fn req(k: &Ksrd, c: &UdpClient, code: &str) -> Req {
    code_message(k.port, c.addr(), code)
}

fn run_on(k: &Ksrd, code: &str) -> SipMsg {
    let c = k.udp();
    let r = c.request(&req(k, &c, code).build());
    assert_eq!(
        r.code,
        200,
        "reply:\n{}\nlog:\n{}",
        r.text(),
        k.log_tail(30)
    );
    r
}

fn run(code: &str) -> SipMsg {
    run_on(server(), code)
}

fn expect(k: &Ksrd, r: &SipMsg, want: &[(&str, &str)]) {
    let mut bad = Vec::new();
    for (n, w) in want {
        let got = r.header(&format!("X-R-{n}"));
        if got != Some(*w) {
            bad.push(format!("  {n}: want {w}, got {got:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "mismatches:\n{}\nreply:\n{}\nlog:\n{}",
        bad.join("\n"),
        r.text(),
        k.log_tail(20)
    );
}

#[test]
fn xlog_expands_pvs() {
    let k = server();
    let c = k.udp();
    let tag = uniq("xl");
    let code = r#"
        KSR.pvx.var_sets("xv", "vv")
        KSR.pvx.avp_sets("xa", "first")
        KSR.pvx.avp_sets("xa", "second")
        R("info", KSR.xlog.xinfo("XL1 si=$si rU=$rU rm=$rm tag=$hdr(X-Tag) a0=$avp(xa) a1=$(avp(xa)[1]) v=$var(xv) cost=$$5 n=$avp(nope) u=$nosuch end\n"))
        R("warn", KSR.xlog.xwarn("XL2 $hdr(X-Tag) warn"))
        R("lvl", KSR.xlog.xlog("L_NOTICE", "XL3 $hdr(X-Tag) $rm"))
        R("badlvl", KSR.xlog.xlog("L_NOPE", "XL4 $hdr(X-Tag)"))
        R("err", KSR.xlog.xerr("XL5 $hdr(X-Tag)"))
        R("crit", KSR.xlog.xcrit("XL6 $hdr(X-Tag)"))
        R("alert", KSR.xlog.xalert("XL7 $hdr(X-Tag)"))
        R("notice", KSR.xlog.xnotice("XL8 $hdr(X-Tag)"))
        R("dbg", KSR.xlog.xdbg("XL9 $hdr(X-Tag)"))
        R("fac", KSR.xlog.xlog_facility("LOG_LOCAL0", "L_INFO", "XL10 $hdr(X-Tag)"))
        R("bad1", KSR.xlog.xinfo("XLBAD $hdr(X-Tag) $"))
        R("bad2", KSR.xlog.xinfo("XLBAD $hdr(X-Tag) $hdr(X-Tag"))
    "#;
    let r = c.request(&req(k, &c, code).set("X-Tag", &tag).build());
    expect(
        k,
        &r,
        &[
            ("info", "1"),
            ("warn", "1"),
            ("lvl", "1"),
            ("badlvl", "1"),
            ("err", "1"),
            ("crit", "1"),
            ("alert", "1"),
            ("notice", "1"),
            ("dbg", "1"),
            ("fac", "1"),
            ("bad1", "-1"),
            ("bad2", "-1"),
        ],
    );
    let want = format!(
        "XL1 si=127.0.0.1 rU=bob rm=MESSAGE tag={tag} a0=second a1=first v=vv cost=$5 n=<null> u=<null> end"
    );
    assert!(
        k.wait_log(&want, Duration::from_secs(3)),
        "missing {want:?} in log:\n{}",
        k.log_tail(30)
    );
    for w in [
        format!("XL2 {tag} warn"),
        format!("XL3 {tag} MESSAGE"),
        format!("XL4 {tag}"),
        format!("XL5 {tag}"),
        format!("XL6 {tag}"),
        format!("XL7 {tag}"),
        format!("XL8 {tag}"),
        format!("XL10 {tag}"),
    ] {
        assert!(
            k.wait_log(&w, Duration::from_secs(3)),
            "missing {w:?} in log:\n{}",
            k.log_tail(30)
        );
    }
    // the trailing "\n" is stripped: the line ends right after "end"
    assert!(k.log().lines().any(|l| l.ends_with(&want)));
    // log level is info: xdbg prints nothing but still answers 1
    assert_eq!(k.log_count(&format!("XL9 {tag}")), 0);
    // an invalid format prints nothing
    assert_eq!(k.log_count(&format!("XLBAD {tag}")), 0);
    // the same format on the next message uses the new values (parsed once, evaluated each time)
    let tag2 = uniq("xl");
    let r = c.request(
        &req(k, &c, "R(\"i\", KSR.xlog.xinfo(\"XL2 $hdr(X-Tag) warn\"))")
            .set("X-Tag", &tag2)
            .build(),
    );
    expect(k, &r, &[("i", "1")]);
    assert!(k.wait_log(&format!("XL2 {tag2} warn"), Duration::from_secs(3)));
}

#[test]
fn pvx_var_persists_across_messages() {
    let name = uniq("v").replace('-', "_");
    let r = run(&format!(
        r#"
        R("seti", KSR.pvx.var_seti("{name}", 5))
        R("sets", KSR.pvx.var_sets("{name}s", "text"))
        R("get", KSR.pvx.var_get("{name}"))
        R("pv", KSR.pv.get("$var({name}s)"))
    "#
    ));
    expect(
        server(),
        &r,
        &[("seti", "1"), ("sets", "1"), ("get", "5"), ("pv", "'text'")],
    );
    let r = run(&format!(
        r#"
        R("i", KSR.pvx.var_get("{name}"))
        R("s", KSR.pvx.var_get("{name}s"))
        R("never", KSR.pvx.var_get("{name}never"))
        KSR.pv.sets("$var({name}p)", "via-pv")
        R("p", KSR.pvx.var_get("{name}p"))
    "#
    ));
    expect(
        server(),
        &r,
        &[
            ("i", "5"),
            ("s", "'text'"),
            ("never", "0"),
            ("p", "'via-pv'"),
        ],
    );
}

#[test]
fn pvx_avp_stack() {
    let r = run(r#"
        R("seti", KSR.pvx.avp_seti("st", 1))
        R("sets", KSR.pvx.avp_sets("st", "two"))
        R("get", KSR.pvx.avp_get("st"))
        R("null1", KSR.pvx.avp_is_null("st"))
        R("get2", KSR.pvx.avp_get("st"))
        R("idx1", KSR.pv.get("$(avp(st)[1])"))
        R("pvavp", KSR.pv.get("$avp(st)"))
        R("rm", KSR.pvx.avp_rm("st"))
        R("null2", KSR.pvx.avp_is_null("st"))
        R("get3", KSR.pvx.avp_get("st"))
        R("gete", KSR.pvx.avp_gete("st"))
        R("getw", KSR.pvx.avp_getw("st"))
        R("rm2", KSR.pvx.avp_rm("st"))
        KSR.pvx.avp_sets("keep", "k")
    "#);
    expect(
        server(),
        &r,
        &[
            ("seti", "1"),
            ("sets", "1"),
            ("get", "'two'"),
            ("null1", "-1"),
            ("get2", "'two'"),
            ("idx1", "1"),
            ("pvavp", "'two'"),
            ("rm", "1"),
            ("null2", "1"),
            ("get3", "None"),
            ("gete", "''"),
            ("getw", "'<<null>>'"),
            ("rm2", "1"),
        ],
    );
    // AVPs are per message
    let r = run(r#"R("keep", KSR.pvx.avp_get("keep")); R("n", KSR.pvx.avp_is_null("keep"))"#);
    expect(server(), &r, &[("keep", "None"), ("n", "1")]);
}

#[test]
fn pvx_xavp_per_message() {
    let r = run(r#"
        R("null0", KSR.pvx.xavp_is_null("xx"))
        R("sets", KSR.pvx.xavp_sets("xx", "a"))
        R("seti", KSR.pvx.xavp_seti("xx", 2))
        R("get", KSR.pvx.xavp_get("xx"))
        R("null1", KSR.pvx.xavp_is_null("xx"))
        R("rm", KSR.pvx.xavp_rm("xx"))
        R("get2", KSR.pvx.xavp_get("xx"))
        R("gete", KSR.pvx.xavp_gete("xx"))
        R("rm2", KSR.pvx.xavp_rm("xx"))
        R("get3", KSR.pvx.xavp_get("xx"))
        R("rm3", KSR.pvx.xavp_rm("xx"))
        KSR.pvx.xavp_sets("yy", "1"); KSR.pvx.xavp_sets("yy", "2"); KSR.pvx.xavp_sets("yy", "3")
        R("rmall", KSR.pvx.xavp_rm_all("yy"))
        R("rmall0", KSR.pvx.xavp_rm_all("yy"))
        KSR.pvx.xavp_sets("keep", "k")
        KSR.pvx.xavp_sets("keep", "k2")
        R("ev", KSR.pvx.evalx("$var(xk)", "$xavp(keep)/$xavp(keep[1])"))
        R("evv", KSR.pvx.var_get("xk"))
    "#);
    expect(
        server(),
        &r,
        &[
            ("null0", "1"),
            ("sets", "1"),
            ("seti", "1"),
            ("get", "2"),
            ("null1", "-1"),
            ("rm", "1"),
            ("get2", "'a'"),
            ("gete", "'a'"),
            ("rm2", "1"),
            ("get3", "None"),
            ("rm3", "1"),
            ("rmall", "3"),
            ("rmall0", "1"),
            ("ev", "1"),
            ("evv", "'k2/k'"),
        ],
    );
    // cleared when the message is done
    let r = run(r#"
        R("get", KSR.pvx.xavp_get("keep"))
        R("gete", KSR.pvx.xavp_gete("keep"))
        R("getw", KSR.pvx.xavp_getw("keep"))
        R("null", KSR.pvx.xavp_is_null("keep"))
    "#);
    expect(
        server(),
        &r,
        &[
            ("get", "None"),
            ("gete", "''"),
            ("getw", "'<<null>>'"),
            ("null", "1"),
        ],
    );
}

#[test]
fn pvx_evalx() {
    let r = run(r#"
        R("e1", KSR.pvx.evalx("$var(ev)", "from $si to $rU via $rm cost $$3"))
        R("v1", KSR.pvx.var_get("ev"))
        R("e2", KSR.pvx.evalx("$avp(ea)", "$rU-$var(ev)"))
        R("a2", KSR.pvx.avp_get("ea"))
        R("e3", KSR.pvx.evalx("$du", "sip:$rU@127.0.0.1:9"))
        R("du", KSR.pv.get("$du"))
        R("e4", KSR.pvx.evalx("$si", "x"))
        R("e5", KSR.pvx.evalx("$var(ev)", "bad $(var(x)"))
        R("v5", KSR.pvx.var_get("ev"))
        R("e6", KSR.pvx.evalx("$nosuch", "x"))
        R("e7", KSR.pvx.evalx("$var(e7)", "n=$avp(none)"))
        R("v7", KSR.pvx.var_get("e7"))
        R("e8", KSR.pvx.evalx("$xavp(ex)", "$rm"))
        R("x8", KSR.pvx.xavp_get("ex"))
    "#);
    expect(
        server(),
        &r,
        &[
            ("e1", "1"),
            ("v1", "'from 127.0.0.1 to bob via MESSAGE cost $3'"),
            ("e2", "1"),
            ("a2", "'bob-from 127.0.0.1 to bob via MESSAGE cost $3'"),
            ("e3", "1"),
            ("du", "'sip:bob@127.0.0.1:9'"),
            ("e4", "-1"),
            ("e5", "-1"),
            ("v5", "'from 127.0.0.1 to bob via MESSAGE cost $3'"),
            ("e6", "-1"),
            ("e7", "1"),
            ("v7", "'n=<null>'"),
            ("e8", "1"),
            ("x8", "'MESSAGE'"),
        ],
    );
}

#[test]
fn pvx_shv_shared_between_workers() {
    let k = shv_server();
    let name = uniq("shv").replace('-', "_");
    let r = run_on(
        k,
        &format!(
            r#"
        R("gw", KSR.pvx.shv_get("gw"))
        R("n", KSR.pvx.shv_get("n"))
        R("undef", KSR.pvx.shv_get("{name}_undef"))
        R("seti", KSR.pvx.shv_seti("{name}", 42))
        R("sets", KSR.pvx.shv_sets("{name}s", "shared"))
        R("ev", KSR.pvx.evalx("$shv({name}e)", "e-$shv({name})"))
    "#
        ),
    );
    expect(
        k,
        &r,
        &[
            ("gw", "'sip:gw.example'"),
            ("n", "7"),
            ("undef", "0"),
            ("seti", "1"),
            ("sets", "1"),
            ("ev", "1"),
        ],
    );
    // every later message, whichever of the 4 workers routes it, sees the values
    for i in 0..12 {
        let r = run_on(
            k,
            &format!(
                r#"
            R("i", KSR.pvx.shv_get("{name}"))
            R("s", KSR.pvx.shv_get("{name}s"))
            R("e", KSR.pvx.shv_get("{name}e"))
            R("x", KSR.xlog.xinfo("SHV-{name}-{i} $shv({name}) $shv({name}s)"))
        "#
            ),
        );
        expect(
            k,
            &r,
            &[("i", "42"), ("s", "'shared'"), ("e", "'e-42'"), ("x", "1")],
        );
        assert!(k.wait_log(&format!("SHV-{name}-{i} 42 shared"), Duration::from_secs(3)));
    }
}
