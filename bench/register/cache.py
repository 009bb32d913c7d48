# bench "register" (htable variant): W2's REGISTER + digest + save, with the seed's credential
# cache: the first successful auth of a user reads the subscriber table and keeps the password in
# $sht(auth=>$Au); later REGISTERs are checked against the cache with pv_auth_check.
# Runs unmodified on Kamailio app_python3 (cache-python.cfg) and ksrd (ksrd-cache.toml).
import KSR


def mod_init():
    return Routes()


class Routes:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if (KSR.is_OPTIONS() and KSR.is_myself_ruri()
                and KSR.corex.has_ruri_user() < 0):
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        if not KSR.is_REGISTER():
            if not KSR.is_ACK():
                KSR.sl.sl_send_reply(405, "Method Not Allowed")
            return 1
        realm = KSR.pv.get("$fd")
        au = KSR.pv.get("$Au")
        if au is not None and KSR.htable.sht_match_name("auth", "eq", au) > 0:
            rc = KSR.auth.pv_auth_check(realm, KSR.pv.get("$sht(auth=>$Au)"), 0, 1)
        else:
            rc = KSR.auth_db.auth_check(realm, "subscriber", 1)
            if rc > 0:
                KSR.pv.sets("$sht(auth=>$Au)", KSR.pv.get("$avp(pass)"))
        if rc < 0:
            KSR.auth.auth_challenge(realm, 0)
            return 1
        if KSR.registrar.save("location", 0) < 0:
            KSR.sl.sl_reply_error()
        return 1
