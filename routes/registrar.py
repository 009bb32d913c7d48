"""Registrar with digest authentication (the seed's REGISTRAR, AUTH and LOCATION routes).

Phones REGISTER with the password of their `subscriber` row (db_url; add users with
`ksrd subscriber add alice@example.com secret`) and can then be called: a request to one of our
users goes to the contacts that user registered (several phones ring at once).
"""
import KSR


def mod_init():
    return kamailio()


class kamailio:
    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if KSR.siputils.has_totag() > 0:
            self.within_dialog()
            return 1
        if KSR.tm.t_check_trans() == 0:
            return 1
        if KSR.is_ACK():
            return 1
        if not self.authenticated():
            return 1
        if KSR.is_REGISTER():
            if KSR.registrar.save("location", 0) < 0:
                KSR.sl.sl_reply_error()
            return 1
        if not KSR.is_myself_ruri():
            KSR.sl.sl_send_reply(403, "Relaying Forbidden")
            return 1
        if KSR.registrar.lookup("location") < 0:
            KSR.sl.send_reply(404, "Not Found")
            return 1
        if KSR.is_INVITE():
            KSR.rr.record_route()
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return 1

    def authenticated(self):
        # REGISTERs and requests from our own users must prove who they are (seed AUTH route).
        if not (KSR.is_REGISTER() or KSR.is_myself_furi()):
            return True
        realm = KSR.pv.get("$fd")
        if KSR.auth_db.auth_check(realm, "subscriber", 1) < 0:
            KSR.auth.auth_challenge(realm, 0)
            return False
        if not KSR.is_method_in("RP"):
            KSR.auth.consume_credentials()
        return True

    def within_dialog(self):
        if KSR.rr.loose_route() > 0:
            KSR.tm.t_relay()
            return
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return
        KSR.sl.sl_send_reply(404, "Not here")
