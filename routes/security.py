"""An edge registrar that protects itself (the seed's security blocks): scanners (SIPVicious and
friends, recognised by their User-Agent) are dropped and their source banned at once; wrong
passwords are counted per source IP in $sht(ipban=>$si) and after MAX_FAILURES the source gets no
answer at all, whatever it sends, until the entry expires (300 s) or an operator lifts it with
`htable.delete ipban IP`. A successful authentication resets the counter.

    [modparam.htable]
    htable = "ipban=>size=8;autoexpire=300;initval=0"
"""
import KSR

MAX_FAILURES = 3
BANNED = 1000  # the counter value of a banned source (any value above MAX_FAILURES)
SCANNERS = ("friendly-scanner", "sipvicious", "sipcli", "vaxsipuseragent", "sip-scan", "sundayddr", "iwar", "sipsak")


def mod_init():
    return kamailio()


class kamailio:
    def ksr_request_route(self, msg):
        si = KSR.pv.get("$si")
        if KSR.htable.sht_get("ipban", si) > MAX_FAILURES:
            KSR.set_drop()
            return 1
        ua = (KSR.pv.get("$ua") or "").lower()
        if any(s in ua for s in SCANNERS):
            KSR.htable.sht_seti("ipban", si, BANNED)
            KSR.warn("scanner %s (%s) dropped and banned\n" % (si, ua))
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

    def authenticated(self):
        si = KSR.pv.get("$si")
        realm = KSR.pv.get("$fd")
        rc = KSR.auth_db.auth_check(realm, "subscriber", 1)
        if rc > 0:
            KSR.htable.sht_rm("ipban", si)
            return True
        # Wrong password, unknown user or forged nonce: one more strike for this source.
        if rc in (-1, -2, -3, -8) and KSR.htable.sht_inc("ipban", si) > MAX_FAILURES:
            KSR.warn("banning %s after repeated failed authentications\n" % si)
            KSR.set_drop()
            return False
        KSR.auth.auth_challenge(realm, 0)
        return False
