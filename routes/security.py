"""An edge registrar that protects itself (the seed's security blocks).

- Scanners (SIPVicious and friends, recognised by their User-Agent) are logged at alert level
  ("Attack attempt! IP:…"), dropped, and their source banned at once.
- Wrong passwords are counted per source IP in $sht(ipban=>$si): after MAX_FAILURES the source
  gets no answer at all, whatever it sends, until the entry expires (300 s) or an operator lifts
  it with `htable.delete ipban IP`. A successful authentication resets the counter.
- Wrong passwords are also counted per user, as the seed does, in
  $sht(wrongpass=>$au::auth_count) and $sht(wrongpass=>$au::last_auth): a user who failed
  WRONGPASS_MAX times is answered "403 Try later" for WRONGPASS_BLOCK seconds, from any source.
  This stops guessing spread over many addresses. The limit is above MAX_FAILURES so that one
  attacking address is banned before it can lock the real user out. Unknown users are counted
  the same way, so the answers never tell which users exist.

- pike watches the request rate of every source; a flooding source is banned like a scanner,
  so one address cannot take the server away from everybody else.
- Optional, switched on by [define] entries: BLACKLIST_DB names an sqlops connection holding
  the honeypot's `baddies` table (routes/honeypot.py): listed sources are dropped.
  BLOCKED_COUNTRIES ("CN,KP") drops sources that GeoIP2 places in those countries
  ([modparam.geoip2] path).

    [modparam.htable]
    htable = ["ipban=>size=8;autoexpire=300;initval=0", "wrongpass=>size=8;autoexpire=900;initval=0"]
"""
import KSR

MAX_FAILURES = 3  # wrong passwords from one source before it is banned
BANNED = 1000  # the counter value of a banned source (any value above MAX_FAILURES)
WRONGPASS_MAX = 5  # wrong passwords for one user, from anywhere, before the user is blocked
WRONGPASS_BLOCK = 900  # seconds
SCANNERS = ("friendly-scanner", "sipvicious", "sipcli", "vaxsipuseragent", "sip-scan", "sundayddr", "iwar", "sipsak")


def mod_init():
    return kamailio()


class kamailio:
    def __init__(self):
        self.blacklist = KSR.kx.get_def("BLACKLIST_DB")
        countries = str(KSR.kx.get_def("BLOCKED_COUNTRIES") or "")
        self.blocked_countries = {c.strip().upper() for c in countries.split(",") if c.strip()}

    def ksr_request_route(self, msg):
        si = KSR.pv.get("$si")
        if KSR.htable.sht_get("ipban", si) > MAX_FAILURES:
            KSR.set_drop()
            return 1
        if KSR.pike.pike_check_req() < 0:
            KSR.htable.sht_seti("ipban", si, BANNED)
            KSR.xlog.xalert("ALERT: pike blocking $rm from $fu (IP:$si:$sp) - banned\n")
            KSR.set_drop()
            return 1
        ua = (KSR.pv.get("$ua") or "").lower()
        if any(s in ua for s in SCANNERS):
            KSR.htable.sht_seti("ipban", si, BANNED)
            KSR.xlog.xalert("Attack attempt! IP:$si:$sp UA:$ua - dropped and banned\n")
            KSR.set_drop()
            return 1
        if self.blacklisted(si) or self.from_blocked_country(si):
            KSR.set_drop()
            return 1
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.is_OPTIONS() and KSR.corex.has_ruri_user() < 0:
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        if KSR.tm.t_check_trans() == 0 or KSR.is_ACK():
            return 1
        if not self.authenticated():
            return 1
        if KSR.is_REGISTER():
            if KSR.registrar.save("location", 0) < 0:
                KSR.sl.sl_reply_error()
            return 1
        KSR.auth.consume_credentials()
        if KSR.registrar.lookup("location") < 0:
            KSR.sl.send_reply(404, "Not Found")
            return 1
        KSR.tm.t_relay()
        return 1

    def blacklisted(self, si):
        if not self.blacklist or KSR.siputils.has_totag() > 0:
            return False
        # A bound parameter, never pasted into the SQL: $si is safe, but keep the habit.
        rc = KSR.sqlops.sql_query_params(self.blacklist, "SELECT 1 FROM baddies WHERE ip = ?", [si], "bl")
        listed = rc >= 0 and KSR.sqlops.sql_num_rows("bl") > 0
        KSR.sqlops.sql_result_free("bl")
        if listed:
            KSR.notice("blacklisted source %s dropped\n" % si)
        return listed

    def from_blocked_country(self, si):
        if not self.blocked_countries or KSR.geoip2.match(si, "src") < 0:
            return False
        cc = KSR.pv.get("$gip2(src=>cc)")
        if cc in self.blocked_countries:
            KSR.notice("source %s from blocked country %s dropped\n" % (si, cc))
            return True
        return False

    def authenticated(self):
        si = KSR.pv.get("$si")
        realm = KSR.pv.get("$fd")
        user = KSR.pv.get("$au")
        if user and self.user_blocked(user):
            KSR.htable.sht_inc("ipban", si)
            KSR.sl.sl_send_reply(403, "Try later")
            return False
        rc = KSR.auth_db.auth_check(realm, "subscriber", 1)
        if rc > 0:
            KSR.htable.sht_rm("ipban", si)
            KSR.htable.sht_rm("wrongpass", user + "::auth_count")
            return True
        # Wrong password, unknown user or forged nonce: one more strike for this source...
        if rc in (-1, -2, -3, -8) and KSR.htable.sht_inc("ipban", si) > MAX_FAILURES:
            KSR.warn("banning %s after repeated failed authentications\n" % si)
            KSR.set_drop()
            return False
        # ...and for this user.
        if rc in (-2, -3) and user:
            KSR.htable.sht_inc("wrongpass", user + "::auth_count")
            KSR.htable.sht_seti("wrongpass", user + "::last_auth", KSR.pv.get("$Ts"))
        KSR.auth.auth_challenge(realm, 0)
        return False

    def user_blocked(self, user):
        if (KSR.htable.sht_get("wrongpass", user + "::auth_count") or 0) < WRONGPASS_MAX:
            return False
        last = KSR.htable.sht_get("wrongpass", user + "::last_auth") or 0
        if last > KSR.pv.get("$Ts") - WRONGPASS_BLOCK:
            KSR.notice("user %s from %s blocked after too many failed logins\n" % (user, KSR.pv.get("$si")))
            return True
        KSR.htable.sht_rm("wrongpass", user + "::auth_count")
        return False
