"""Registrar with brute-force protection (the seed's fail2ban): failed authentications are
counted per source IP in $sht(ipban=>$si); after more than 5 the IP gets no answer at all until
the entry expires (300 s) or an operator lifts it with `htable.delete ipban IP`. A successful
authentication resets the counter. With [define] BAN_REPLY = "429" banned IPs are answered
`429 Rate limiting` instead (the seed's AuthCount variant).

    [modparam.htable]
    htable = "ipban=>size=8;autoexpire=300;initval=0"
"""
import KSR

MAX_FAILURES = 5


def mod_init():
    return kamailio()


class kamailio:
    def ksr_request_route(self, msg):
        si = KSR.pv.get("$si")
        if KSR.htable.sht_get("ipban", si) > MAX_FAILURES:
            if KSR.kx.get_def("BAN_REPLY") == "429":
                KSR.sl.sl_send_reply(429, "Rate limiting")
            else:
                KSR.set_drop()
            return 1
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.tm.t_check_trans() == 0 or KSR.is_ACK():
            return 1
        if not KSR.is_REGISTER():
            KSR.sl.sl_send_reply(405, "Method Not Allowed")
            return 1
        realm = KSR.pv.get("$fd")
        rc = KSR.auth_db.auth_check(realm, "subscriber", 1)
        if rc < 0:
            # Wrong password, unknown user or forged nonce: one more strike for this IP.
            if rc in (-1, -2, -3, -8):
                n = KSR.htable.sht_inc("ipban", si)
                if n > MAX_FAILURES:
                    KSR.warn("banning %s after %d failed authentications\n" % (si, n))
            KSR.auth.auth_challenge(realm, 0)
            return 1
        KSR.htable.sht_rm("ipban", si)
        if KSR.registrar.save("location", 0) < 0:
            KSR.sl.sl_reply_error()
        return 1
