//! The per-worker routing context: the message being routed and everything KSR calls change about it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::Core;
use crate::modules::pv::{PvCache, PvVal};
use crate::sip::{Edits, SipMsg, Span};
use crate::transport::{Endpoint, Proto};

/// Which kind of route is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// No message: `mod_init`, `child_init`, reload.
    None,
    /// `ksr_request_route`.
    Request,
    /// `ksr_reply_route` or a transaction's onreply route.
    Reply,
    /// A failure route (`t_on_failure`).
    Failure,
    /// A branch route (`t_on_branch`).
    Branch,
    /// A branch-failure route (`t_on_branch_failure`).
    BranchFailure,
}

impl RouteKind {
    /// Failure and branch-failure routes run on the request but are about a reply (`$rs`).
    pub fn on_request_after_reply(self) -> bool {
        matches!(self, RouteKind::Failure | RouteKind::BranchFailure)
    }
}

/// What a worker knows while a route runs; lives as long as the worker, reset per message.
pub struct RouteCtx {
    /// Shared server state.
    pub core: Arc<Core>,
    /// Route kind.
    pub kind: RouteKind,
    /// The message (None outside routes).
    pub msg: Option<SipMsg>,
    /// Where it came from.
    pub ep: Endpoint,
    /// Pending changes applied when the message is forwarded.
    pub edits: Edits,
    /// New Request-URI (`$ru` written), Kamailio's `new_uri`.
    pub new_ruri: Option<String>,
    /// Destination URI (`$du`).
    pub dst_uri: Option<String>,
    /// Message flags (0..=63).
    pub flags: u64,
    /// Branch flags of branch 0.
    pub bflags: u64,
    /// A final reply has been sent for this request.
    pub replied: bool,
    /// `KSR.set_drop()` was called.
    pub drop: bool,
    /// `force_rport()` was called.
    pub force_rport: bool,
    /// Header lines for the next local reply (`KSR.hdr.append_to_reply`).
    pub reply_hdrs: Vec<u8>,
    /// `$avp(name)` stacks for this message (newest last).
    pub avps: HashMap<String, Vec<PvVal>>,
    /// `$xavp(name)` items for this message (newest last): values (`KSR.pvx.xavp_*`) and rows
    /// (`KSR.sqlops.sql_xquery`).
    pub xavps: crate::modules::pv::Xavps,
    /// `$var(name)`: per worker, kept across messages (Kamailio semantics).
    pub vars: HashMap<String, PvVal>,
    /// Parsed pseudo-variable names.
    pub pv_cache: PvCache,
    /// `$Ts`, fixed for the message.
    pub msg_time: i64,
    /// Messages routed by this worker (for `msg` handle validity).
    pub msg_seq: u64,
    /// Scratch buffer for building outgoing messages.
    pub out: Vec<u8>,
    /// Rewritten header values (From/To set through PVs), applied when forwarding.
    pub hdr_overrides: Vec<(Span, String)>,
    /// The script generation running this route (for `ksr_onsend_route`).
    pub gen: Option<std::sync::Arc<super::host::Generation>>,
    /// Requests waiting for `ksr_onsend_route` before they go out.
    pub pending_sends: Vec<PendingSend>,
    /// `ksr_onsend_route` is running.
    pub in_onsend: bool,
    /// Retransmission key of the current request (computed once on receipt).
    pub req_key: Option<u64>,
    /// Transaction state of this route (tm).
    pub tm: crate::tm::route_state::TmCtx,
    /// Digest auth state of this message.
    pub auth: crate::modules::auth::check::AuthCtx,
    /// rr module state of this message: Record-Route to add when sending, Route params seen.
    pub rr: Option<crate::rr::RrState>,
    /// nathelper state of this message (the rewritten Contact).
    pub nat: crate::modules::nathelper::NatCtx,
    /// htable iterators and slot locks of this worker (`KSR.htable.sht_iterator_*`, `sht_lock`).
    pub htable: crate::modules::htable::HtCtx,
}

/// A forwarded request held until `ksr_onsend_route` has seen it.
pub struct PendingSend {
    /// Transport.
    pub proto: Proto,
    /// Destination.
    pub dest: std::net::SocketAddr,
    /// Local socket.
    pub local: Option<std::net::SocketAddr>,
    /// The bytes to send.
    pub data: bytes::Bytes,
    /// Retransmission-cache key of the request, if any.
    pub key: Option<u64>,
}

impl RouteCtx {
    /// A context with no message.
    pub fn new(core: Arc<Core>) -> Self {
        let unspecified = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        RouteCtx {
            core,
            kind: RouteKind::None,
            msg: None,
            ep: Endpoint {
                proto: Proto::Udp,
                remote: unspecified,
                local: unspecified,
            },
            edits: Edits::default(),
            new_ruri: None,
            dst_uri: None,
            flags: 0,
            bflags: 0,
            replied: false,
            drop: false,
            force_rport: false,
            reply_hdrs: Vec::new(),
            avps: HashMap::new(),
            xavps: HashMap::new(),
            vars: HashMap::new(),
            pv_cache: PvCache::default(),
            msg_time: 0,
            msg_seq: 0,
            out: Vec::with_capacity(2048),
            hdr_overrides: Vec::new(),
            gen: None,
            pending_sends: Vec::new(),
            in_onsend: false,
            req_key: None,
            tm: Default::default(),
            auth: Default::default(),
            rr: None,
            nat: Default::default(),
            htable: Default::default(),
        }
    }

    /// Start routing `msg`.
    pub fn begin(&mut self, kind: RouteKind, msg: SipMsg, ep: Endpoint) {
        self.kind = kind;
        self.msg = Some(msg);
        self.ep = ep;
        self.msg_seq = self.msg_seq.wrapping_add(1);
        self.msg_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
    }

    /// Forget the message and its per-message state.
    pub fn end(&mut self) -> Option<SipMsg> {
        self.kind = RouteKind::None;
        self.edits.clear();
        self.new_ruri = None;
        self.dst_uri = None;
        self.flags = 0;
        self.bflags = 0;
        self.replied = false;
        self.drop = false;
        self.force_rport = false;
        self.reply_hdrs.clear();
        self.hdr_overrides.clear();
        self.pending_sends.clear();
        self.gen = None;
        self.req_key = None;
        self.tm.reset();
        self.auth = Default::default();
        self.rr = None;
        self.nat = Default::default();
        // Slot locks are per route run: a forgotten sht_unlock must not block other workers.
        self.htable.release_all();
        if !self.avps.is_empty() {
            self.avps.clear();
        }
        if !self.xavps.is_empty() {
            self.xavps.clear();
        }
        self.msg_seq = self.msg_seq.wrapping_add(1);
        self.msg.take()
    }

    /// A header value rewritten earlier in this route.
    pub fn hdr_override(&self, span: Span) -> Option<&str> {
        self.hdr_overrides
            .iter()
            .find(|(s, _)| *s == span)
            .map(|(_, v)| v.as_str())
    }

    /// Replace a header value when the message is forwarded (last write wins).
    pub fn set_hdr_override(&mut self, span: Span, v: String) {
        match self.hdr_overrides.iter_mut().find(|(s, _)| *s == span) {
            Some(slot) => slot.1 = v,
            None => self.hdr_overrides.push((span, v)),
        }
    }

    /// Edits to apply when forwarding: the route's edits plus rewritten header values.
    pub fn forward_edits(&self) -> Edits {
        let mut e = self.edits.clone();
        for (span, v) in &self.hdr_overrides {
            e.replace(*span, v.as_bytes().to_vec());
        }
        e
    }

    /// The current request, if a request route runs.
    pub fn request(&self) -> Option<&SipMsg> {
        self.msg.as_ref().filter(|m| m.is_request())
    }

    /// The Request-URI as routing sees it: `$ru` if rewritten, else the received one.
    pub fn ruri(&self) -> Option<std::borrow::Cow<'_, str>> {
        if let Some(u) = &self.new_ruri {
            return Some(std::borrow::Cow::Borrowed(u));
        }
        self.request()
            .map(|m| String::from_utf8_lossy(m.ruri_bytes()))
    }
}

thread_local! {
    static CURRENT: std::cell::Cell<*mut RouteCtx> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Make `ctx` the context KSR calls on this thread use. The caller keeps `ctx` alive and pinned
/// until `clear_current` (workers own theirs for their whole life).
pub fn set_current(ctx: &mut RouteCtx) {
    CURRENT.with(|c| c.set(ctx as *mut RouteCtx));
}

/// Detach the thread's context.
pub fn clear_current() {
    CURRENT.with(|c| c.set(std::ptr::null_mut()));
}

/// Run `f` with this thread's context; `None` when the thread has none (a Python thread the
/// script started, for example).
#[inline]
pub fn with_current<R>(f: impl FnOnce(&mut RouteCtx) -> R) -> Option<R> {
    CURRENT.with(|c| {
        let p = c.get();
        if p.is_null() {
            return None;
        }
        // Only one KSR call runs at a time on a thread and none re-enters another, so this is the
        // only live reference; the pointer stays valid while set (see `set_current`).
        let ctx = unsafe { &mut *p };
        c.set(std::ptr::null_mut());
        let r = f(ctx);
        c.set(p);
        Some(r)
    })
}
