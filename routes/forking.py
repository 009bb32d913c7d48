"""Forking: ring every phone at once (parallel) or one after another by q-value (serial).

A call to user "parallel" rings every URI of [define] PARALLEL_TARGETS at once; the first 2xx
wins and the other phones get a CANCEL. A call to user "serial" tries the URIs of
[define] SERIAL_TARGETS from the highest q down, moving on when one fails or does not answer.

    [define]
    PARALLEL_TARGETS = "sip:10.0.0.1,sip:10.0.0.2,sip:10.0.0.3"
    SERIAL_TARGETS = "sip:10.0.0.1 1.0,sip:10.0.0.2 0.5"
    [modparam.tm]
    contacts_avp = "tm_contacts"
    fr_inv_timer = 20000
"""
import KSR


def mod_init():
    return kamailio()


def targets(name):
    value = KSR.kx.get_def(name) or ""
    return [t.strip() for t in value.split(",") if t.strip()]


class kamailio:
    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if KSR.tm.t_check_trans() == 0:
            return 1
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        user = KSR.pv.get("$rU")
        if user == "parallel":
            self.parallel()
        elif user == "serial":
            self.serial()
        else:
            KSR.sl.sl_send_reply(404, "Not Found")
        return 1

    def parallel(self):
        uris = targets("PARALLEL_TARGETS")
        if not uris:
            KSR.sl.sl_send_reply(404, "No targets")
            return
        KSR.seturi(uris[0])
        for uri in uris[1:]:
            KSR.corex.append_branch_uri(uri)
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()

    def serial(self):
        entries = [t.split() for t in targets("SERIAL_TARGETS")]
        if not entries:
            KSR.sl.sl_send_reply(404, "No targets")
            return
        entries.sort(key=lambda e: float(e[1]), reverse=True)
        # The R-URI has no q of its own here (a registrar lookup would set one), and a contact
        # without q ranks last in t_load_contacts (as in Kamailio): give it the lowest target.
        KSR.seturi(entries[-1][0])
        for uri, q in entries[:-1]:
            KSR.corex.append_branch_uri_q(uri, q)
        KSR.tm.t_load_contacts()
        if KSR.tm.t_next_contacts() < 0:
            KSR.sl.sl_send_reply(404, "No targets")
            return
        KSR.tm.t_on_failure("ksr_failure_serial")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()

    def ksr_failure_serial(self, msg):
        if KSR.tm.t_is_canceled() > 0:
            return 1
        if KSR.tm.t_next_contacts() > 0:
            KSR.tm.t_on_failure("ksr_failure_serial")
            KSR.tm.t_relay()
        return 1
