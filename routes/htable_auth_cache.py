"""Registrar whose credentials are cached in an htable (the seed's auth cache): the first
successful authentication of a user reads the subscriber table and keeps the password in
$sht(auth=>$Au); later REGISTERs and calls of that user are checked against the cache
(pv_auth_check) and never touch the database.

    [db]
    store_plaintext_password = true     # the cache needs the password column
    [modparam.auth_db]
    load_credentials = "$avp(pass)=password"
    [modparam.htable]
    htable = "auth=>size=10;autoexpire=3600"
"""
import KSR


def mod_init():
    return kamailio()


class kamailio:
    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.tm.t_check_trans() == 0 or KSR.is_ACK():
            return 1
        if not self.authenticated():
            return 1
        if KSR.is_REGISTER():
            if KSR.registrar.save("location", 0) < 0:
                KSR.sl.sl_reply_error()
            return 1
        if KSR.registrar.lookup("location") < 0:
            KSR.sl.send_reply(404, "Not Found")
            return 1
        KSR.tm.t_relay()
        return 1

    def authenticated(self):
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
            return False
        return True
