"""Registrar and proxy for phones behind NAT routers (the seed's NATDETECT, NATMANAGE and DLGURI
routes).

A phone behind a home router registers a private Contact (sip:alice@192.168.0.103:5060) from the
router's public address. nat_uac_test(19) spots that (private Contact, Via not the source
address, source port not the Via port); fix_nated_register() then makes the registrar store the
real source address with the binding, so a call to alice goes to the router's public address
and port, through the NAT binding the REGISTER opened. The NAT branch flag makes nathelper keep
that binding open with OPTIONS pings (see [modparam.nathelper] in the config). Other requests
from a NATed first hop get ;alias=ip~port~proto on their Contact, and requests coming back in
the dialog are sent to that address by handle_ruri_alias().

Authentication is left out to keep the NAT logic visible: put routes/registrar.py's
authenticated() in front of REGISTER and calls from our users in production.
"""
import KSR

FLT_NATS = 5  # the sender is behind a NAT
FLB_NATB = 6  # the callee branch is behind a NAT (usrloc nat_bflag)
FLB_NATSIPPING = 7  # ping this contact with OPTIONS (nathelper sipping_bflag)


def mod_init():
    return kamailio()


class kamailio:
    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.is_OPTIONS() and KSR.is_myself_ruri() and not KSR.siputils.has_totag() > 0:
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        self.nat_detect()
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                self.relay()
            return 1
        if KSR.siputils.has_totag() > 0:
            self.within_dialog()
            return 1
        if KSR.tm.t_check_trans() == 0:
            return 1
        if KSR.is_ACK():
            return 1
        if KSR.is_INVITE() or KSR.is_SUBSCRIBE():
            KSR.rr.record_route()
        if KSR.is_REGISTER():
            if KSR.isflagset(FLT_NATS):
                KSR.setbflag(FLB_NATB)
                KSR.setbflag(FLB_NATSIPPING)
            if KSR.registrar.save("location", 0) < 0:
                KSR.sl.sl_reply_error()
            return 1
        if not KSR.is_myself_ruri():
            KSR.sl.sl_send_reply(403, "Relaying Forbidden")
            return 1
        rc = KSR.registrar.lookup("location")
        if rc < 0:
            KSR.sl.send_reply(404, "Not Found")
            return 1
        self.relay()
        return 1

    def nat_detect(self):
        KSR.force_rport()
        if KSR.nathelper.nat_uac_test(19) > 0:
            if KSR.is_REGISTER():
                KSR.nathelper.fix_nated_register()
            elif KSR.siputils.is_first_hop() > 0:
                KSR.nathelper.set_contact_alias()
            KSR.setflag(FLT_NATS)

    def within_dialog(self):
        if KSR.rr.loose_route() > 0:
            # The R-URI is the callee's Contact: if it carries our ;alias=, send to that address.
            if not KSR.isdsturiset():
                KSR.nathelper.handle_ruri_alias()
            self.relay()
            return
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                self.relay()
            return
        KSR.sl.sl_send_reply(404, "Not here")

    def relay(self):
        if KSR.is_method_in("IBSU"):
            KSR.tm.t_on_branch("ksr_branch_manage")
            KSR.tm.t_on_reply("ksr_onreply_manage")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()

    def ksr_branch_manage(self, msg):
        self.nat_manage()
        return 1

    def ksr_onreply_manage(self, msg):
        code = KSR.pv.get("$rs")
        if 100 < code < 300:
            self.nat_manage()
        return 1

    def nat_manage(self):
        if KSR.siputils.is_request() > 0 and KSR.siputils.has_totag() > 0:
            if KSR.rr.check_route_param("nat=yes") > 0:
                KSR.setbflag(FLB_NATB)
        if not (KSR.isflagset(FLT_NATS) or KSR.isbflagset(FLB_NATB)):
            return
        if KSR.siputils.is_request() > 0 and not KSR.siputils.has_totag() > 0:
            if KSR.tmx.t_is_branch_route() > 0:
                KSR.rr.add_rr_param(";nat=yes")
        if KSR.siputils.is_reply() > 0 and KSR.isbflagset(FLB_NATB):
            KSR.nathelper.set_contact_alias()
