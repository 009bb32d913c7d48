//! Transaction matching keys: RFC 3261 §17.2.3 (server) and §17.1.3 (client), with the RFC 2543
//! fallback for requests whose top Via branch lacks the magic cookie.
//!
//! A key is an exact, canonical byte string (length-prefixed fields) in one boxed slice, plus a
//! 64-bit hash of it computed once at construction with a process-wide *keyed* SipHash. `Hash`
//! feeds only that cached word to the map's hasher (cheap inserts, lookups and rehashes), and `Eq`
//! compares the cached hash first and the bytes last, so a match is always exact: no digest
//! collision can merge two transactions. Keying the cached hash keeps a peer from choosing
//! branches that all fall into one bucket (hash flooding), which an unkeyed hash would allow since
//! the map only ever sees the cached word. `size_of::<ServerKey>()` is 32 bytes, plus one heap
//! block of branch + host + 5 bytes for RFC 3261 keys.
//!
//! Comparison rules: the branch is compared exactly (as Kamailio does; RFC 3261 only says
//! "equal"), the sent-by host case-insensitively with IPv6 references compared as addresses, and a
//! missing sent-by port equals the transport's default port. Call-ID is byte-exact (RFC 3261
//! §20.8); tags and the Request-URI are compared as written, which is what a retransmission
//! carries.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::Ipv6Addr;
use std::sync::OnceLock;

use crate::sip::{Method, SipMsg, Via};

/// The RFC 3261 branch prefix that marks RFC 3261 transaction matching (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Which matching rule produced a server key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Matching {
    /// Top Via branch with the magic cookie: branch + sent-by + method (§17.2.3).
    Rfc3261,
    /// No usable branch: Request-URI, tags, Call-ID, CSeq and top Via (§17.2.3, RFC 2543 §17).
    Rfc2543,
}

/// Key of a server transaction, built from a received request.
///
/// ACK keys are INVITE keys (an ACK for a non-2xx final belongs to the INVITE transaction). For
/// RFC 2543 INVITE keys the To tag is left out of the key, because an ACK carries the tag of our
/// reply while the INVITE carried none: after a lookup finds a transaction, call
/// [`ServerKey::to_tag_matches`] to finish the comparison.
#[derive(Clone)]
pub struct ServerKey {
    hash: u64,
    bytes: Box<[u8]>,
    method: Method,
    matching: Matching,
}

/// Key of a client transaction: top Via branch and CSeq method (§17.1.3).
#[derive(Clone)]
pub struct ClientKey {
    hash: u64,
    bytes: Box<[u8]>,
    method: Method,
}

/// One process-wide secret hash key, so cached hashes are comparable across keys.
fn hasher() -> &'static RandomState {
    static STATE: OnceLock<RandomState> = OnceLock::new();
    STATE.get_or_init(RandomState::new)
}

/// Where canonical key bytes go: a counter first (exact capacity), then the buffer.
trait Sink {
    fn put(&mut self, b: &[u8]);
    fn put_lower(&mut self, b: &[u8]);
}

struct Count(usize);

impl Sink for Count {
    fn put(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
    fn put_lower(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
    fn put_lower(&mut self, b: &[u8]) {
        self.extend(b.iter().map(u8::to_ascii_lowercase));
    }
}

/// LEB128 length prefix: fields are self-delimiting whatever bytes they hold.
fn put_len(s: &mut dyn Sink, mut n: usize) {
    let mut buf = [0u8; 10];
    let mut i = 0;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[i] = low;
            i += 1;
            break;
        }
        buf[i] = low | 0x80;
        i += 1;
    }
    s.put(&buf[..i]);
}

fn field(s: &mut dyn Sink, b: &[u8]) {
    put_len(s, b.len());
    s.put(b);
}

/// An optional field; absent and empty stay distinct.
fn opt_field(s: &mut dyn Sink, b: Option<&[u8]>) {
    match b {
        None => s.put(&[0]),
        Some(b) => {
            s.put(&[1]);
            field(s, b);
        }
    }
}

/// Host, case-folded; an IPv6 reference is written as its 16 octets so `[::1]` equals `[0::1]`.
fn host_field(s: &mut dyn Sink, host: &str) {
    let v6 = host
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<Ipv6Addr>().ok());
    match v6 {
        Some(a) => {
            s.put(&[6]);
            s.put(&a.octets());
        }
        None => {
            s.put(&[0]);
            put_len(s, host.len());
            s.put_lower(host.as_bytes());
        }
    }
}

/// Default sent-by port per transport (RFC 3261 §18.1/§18.2; RFC 6455 ports for WebSockets).
fn default_port(transport: &str) -> u16 {
    match transport {
        "TLS" | "TLS-SCTP" => 5061,
        "WS" => 80,
        "WSS" => 443,
        _ => 5060,
    }
}

/// sent-by = host + port with the default filled in.
fn sent_by(s: &mut dyn Sink, via: &Via) {
    host_field(s, &via.host);
    let port = via.port.unwrap_or_else(|| default_port(&via.transport));
    s.put(&port.to_be_bytes());
}

/// Extension methods all classify as `Method::Other`, so their text goes into the bytes.
fn other_method(s: &mut dyn Sink, method: Method, text: &str) {
    if method == Method::Other {
        field(s, text.as_bytes());
    }
}

/// Runs `write` twice (count, then fill) so the box is allocated once at its exact size.
fn build(write: impl Fn(&mut dyn Sink)) -> Box<[u8]> {
    let mut n = Count(0);
    write(&mut n);
    let mut v = Vec::with_capacity(n.0);
    write(&mut v);
    debug_assert_eq!(v.len(), n.0);
    v.into_boxed_slice()
}

/// The top Via branch when it is an RFC 3261 one: the cookie followed by at least one more
/// character (RFC 4475 badbranch, a bare cookie, falls back to RFC 2543 matching).
fn rfc3261_branch(via: &Via) -> Option<&str> {
    via.branch()
        .filter(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
}

/// Reads the first length-prefixed field back (the branch, in RFC 3261 and client keys).
fn first_field(bytes: &[u8]) -> Option<&[u8]> {
    let mut len = 0usize;
    let mut shift = 0;
    for (i, &b) in bytes.iter().enumerate() {
        len |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            return bytes.get(i + 1..i + 1 + len);
        }
        shift += 7;
        if shift >= usize::BITS {
            return None;
        }
    }
    None
}

fn escaped(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

impl ServerKey {
    /// The key a received request is matched by: its own transaction's key, except that an ACK
    /// yields the INVITE key it may belong to. None for replies or when needed headers are bad.
    pub fn from_request(msg: &SipMsg) -> Option<ServerKey> {
        let method = msg.method();
        let key_method = if method == Method::Ack {
            Method::Invite
        } else {
            method
        };
        ServerKey::build(msg, key_method)
    }

    /// Key of the INVITE transaction an INVITE, ACK or CANCEL refers to (RFC 3261 §9.2: a CANCEL
    /// is matched as if it were the request it cancels). None for other methods.
    pub fn invite_of(msg: &SipMsg) -> Option<ServerKey> {
        match msg.method() {
            Method::Invite | Method::Ack | Method::Cancel => ServerKey::build(msg, Method::Invite),
            _ => None,
        }
    }

    fn build(msg: &SipMsg, key_method: Method) -> Option<ServerKey> {
        if !msg.is_request() {
            return None;
        }
        let via = msg.vias().ok()?.first()?;
        let text = msg.method_str();
        match rfc3261_branch(via) {
            Some(branch) => {
                let bytes = build(|s| {
                    field(s, branch.as_bytes());
                    sent_by(s, via);
                    other_method(s, key_method, text);
                });
                Some(ServerKey::finish(bytes, key_method, Matching::Rfc3261))
            }
            None => ServerKey::rfc2543(msg, via, key_method, text),
        }
    }

    /// RFC 2543 §17 / RFC 3261 §17.2.3 fallback key.
    fn rfc2543(msg: &SipMsg, via: &Via, key_method: Method, text: &str) -> Option<ServerKey> {
        let ruri = msg.ruri_bytes();
        let call_id = msg.call_id()?;
        let cseq = msg.cseq().ok()?.num;
        let from_tag = msg.from_hdr().ok()?.tag();
        // INVITE keys leave the To tag to `to_tag_matches` (the ACK has the reply's tag); every
        // other request, CANCEL's own transaction included, compares it in the key.
        let to_tag = if key_method == Method::Invite {
            None
        } else {
            Some(msg.to_hdr().ok()?.tag())
        };
        if ruri.is_empty() {
            return None;
        }
        // Parameter order carries no meaning; names are case-insensitive, values kept as written.
        let mut params: Vec<(String, Option<&str>)> = via
            .params
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_deref()))
            .collect();
        params.sort();
        let bytes = build(|s| {
            field(s, ruri);
            opt_field(s, from_tag.map(str::as_bytes));
            field(s, call_id.as_bytes());
            s.put(&cseq.to_be_bytes());
            if let Some(t) = to_tag {
                opt_field(s, t.map(str::as_bytes));
            }
            other_method(s, key_method, text);
            field(s, via.protocol.to_ascii_uppercase().as_bytes());
            field(s, via.transport.as_bytes());
            sent_by(s, via);
            put_len(s, params.len());
            for (n, v) in &params {
                field(s, n.as_bytes());
                opt_field(s, v.map(str::as_bytes));
            }
        });
        Some(ServerKey::finish(bytes, key_method, Matching::Rfc2543))
    }

    fn finish(bytes: Box<[u8]>, method: Method, matching: Matching) -> ServerKey {
        let hash = hasher().hash_one((matching, method, &*bytes));
        ServerKey {
            hash,
            bytes,
            method,
            matching,
        }
    }

    /// The transaction method the key stands for (INVITE for ACK).
    pub fn method(&self) -> Method {
        self.method
    }

    /// Which rule built the key.
    pub fn matching(&self) -> Matching {
        self.matching
    }

    /// The branch of an RFC 3261 key (None for RFC 2543 keys).
    pub fn branch(&self) -> Option<&str> {
        match self.matching {
            Matching::Rfc3261 => first_field(&self.bytes).and_then(|b| std::str::from_utf8(b).ok()),
            Matching::Rfc2543 => None,
        }
    }

    /// Finishes an RFC 2543 INVITE-key match after the lookup by `self` (built from `req`) found a
    /// transaction: an ACK's To tag must equal the tag of the final reply the transaction sent
    /// (`reply_to_tag`), an INVITE retransmission's or CANCEL's the To tag of the original INVITE
    /// (`invite_to_tag`). True for every key whose To tag is already in the key.
    pub fn to_tag_matches(
        &self,
        req: &SipMsg,
        invite_to_tag: Option<&str>,
        reply_to_tag: Option<&str>,
    ) -> bool {
        if self.matching == Matching::Rfc3261 || self.method != Method::Invite {
            return true;
        }
        let Ok(to) = req.to_hdr() else {
            return false;
        };
        if req.method() == Method::Ack {
            to.tag() == reply_to_tag
        } else {
            to.tag() == invite_to_tag
        }
    }

    /// Heap bytes held by the key (for sizing reports).
    pub fn heap_len(&self) -> usize {
        self.bytes.len()
    }
}

impl ClientKey {
    /// Key for a request we send: its branch and method text (`Method::as_str()` or the token).
    pub fn new(branch: &str, method: &str) -> ClientKey {
        let m = Method::from_bytes(method.as_bytes());
        let bytes = build(|s| {
            field(s, branch.as_bytes());
            other_method(s, m, method);
        });
        ClientKey {
            hash: hasher().hash_one((m, &*bytes)),
            bytes,
            method: m,
        }
    }

    /// Key of the client transaction a response belongs to: top Via branch + CSeq method, so a
    /// 200 to CANCEL and a 487 to INVITE with the same branch find different transactions.
    pub fn from_response(msg: &SipMsg) -> Option<ClientKey> {
        if msg.is_request() {
            return None;
        }
        let branch = msg.vias().ok()?.first()?.branch()?;
        if branch.is_empty() {
            return None;
        }
        Some(ClientKey::new(branch, &msg.cseq().ok()?.method_str))
    }

    /// Key of a request we built and are sending (top Via branch + request method).
    pub fn from_request(msg: &SipMsg) -> Option<ClientKey> {
        if !msg.is_request() {
            return None;
        }
        let branch = msg.vias().ok()?.first()?.branch()?;
        if branch.is_empty() {
            return None;
        }
        Some(ClientKey::new(branch, msg.method_str()))
    }

    /// The transaction's method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The branch the key was built with.
    pub fn branch(&self) -> &str {
        first_field(&self.bytes)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl PartialEq for ServerKey {
    fn eq(&self, o: &Self) -> bool {
        self.hash == o.hash
            && self.method == o.method
            && self.matching == o.matching
            && self.bytes == o.bytes
    }
}

impl Eq for ServerKey {}

impl Hash for ServerKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Covers matching, method and bytes already; Eq stays exact.
        state.write_u64(self.hash);
    }
}

impl PartialEq for ClientKey {
    fn eq(&self, o: &Self) -> bool {
        self.hash == o.hash && self.method == o.method && self.bytes == o.bytes
    }
}

impl Eq for ClientKey {}

impl Hash for ClientKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Covers method and bytes already; Eq stays exact.
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerKey")
            .field("matching", &self.matching)
            .field("method", &self.method)
            .field("bytes", &escaped(&self.bytes))
            .finish()
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("method", &self.method)
            .field("branch", &self.branch())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::collections::HashMap;

    fn msg(s: &str) -> SipMsg {
        SipMsg::parse(Bytes::from(s.to_owned())).unwrap_or_else(|e| panic!("parse: {e}\n{s}"))
    }

    fn dat(raw: &'static [u8]) -> SipMsg {
        SipMsg::parse(Bytes::from_static(raw)).unwrap()
    }

    fn skey(s: &str) -> ServerKey {
        ServerKey::from_request(&msg(s)).unwrap_or_else(|| panic!("no key for\n{s}"))
    }

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: Bob <sip:bob@biloxi.example.com>\r\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
        Content-Length: 0\r\n\r\n";

    /// ACK for a non-2xx final: same branch and Via, To tag of the reply (RFC 3261 §17.1.1.3).
    const ACK: &str = "ACK sip:bob@biloxi.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
        CSeq: 314159 ACK\r\n\
        Content-Length: 0\r\n\r\n";

    const CANCEL: &str = "CANCEL sip:bob@biloxi.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: Bob <sip:bob@biloxi.example.com>\r\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
        CSeq: 314159 CANCEL\r\n\
        Content-Length: 0\r\n\r\n";

    /// `INVITE` with the top Via replaced.
    fn invite_via(via: &str) -> String {
        INVITE.replace(
            "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
            &format!("Via: {via}"),
        )
    }

    fn std_hash<T: Hash>(t: &T) -> u64 {
        hasher().hash_one(t)
    }

    #[test]
    fn invite_retransmission_matches() {
        let a = skey(INVITE);
        let b = skey(INVITE);
        assert_eq!(a, b);
        assert_eq!(std_hash(&a), std_hash(&b));
        assert_eq!(a.matching(), Matching::Rfc3261);
        assert_eq!(a.method(), Method::Invite);
        assert_eq!(a.branch(), Some("z9hG4bK776asdhds"));
        // Other Via parameters and other headers do not take part (§17.2.3 lists only three).
        let c = skey(&invite_via(
            "SIP/2.0/UDP pc33.atlanta.example.com;rport;branch=z9hG4bK776asdhds;x=1",
        ));
        assert_eq!(a, c);
        let d = skey(&INVITE.replace("Max-Forwards: 70", "Max-Forwards: 69"));
        assert_eq!(a, d);
    }

    #[test]
    fn ack_for_non_2xx_matches_invite() {
        let inv = skey(INVITE);
        let ack_msg = msg(ACK);
        let ack = ServerKey::from_request(&ack_msg).unwrap();
        assert_eq!(ack, inv);
        assert_eq!(ack.method(), Method::Invite);
        assert_eq!(ServerKey::invite_of(&ack_msg).unwrap(), inv);
        // RFC 3261 keys need no To tag check.
        assert!(ack.to_tag_matches(&ack_msg, None, Some("other")));
        // A 2xx ACK has a new branch: no match (it is end to end).
        let ack2 = skey(&ACK.replace("z9hG4bK776asdhds", "z9hG4bKnew2xxack"));
        assert_ne!(ack2, inv);
    }

    #[test]
    fn cancel_has_own_key_and_finds_invite() {
        let inv = skey(INVITE);
        let cancel_msg = msg(CANCEL);
        let cancel = ServerKey::from_request(&cancel_msg).unwrap();
        assert_ne!(cancel, inv);
        assert_eq!(cancel.method(), Method::Cancel);
        assert_eq!(cancel, skey(CANCEL), "CANCEL retransmission");
        assert_eq!(ServerKey::invite_of(&cancel_msg).unwrap(), inv);
        assert!(ServerKey::invite_of(&msg(&CANCEL.replace("CANCEL", "OPTIONS"))).is_none());

        let mut map = HashMap::new();
        map.insert(inv.clone(), "invite");
        map.insert(cancel.clone(), "cancel");
        assert_eq!(map.get(&skey(ACK)), Some(&"invite"));
        assert_eq!(map.get(&skey(CANCEL)), Some(&"cancel"));
        assert_eq!(
            map.get(&ServerKey::invite_of(&cancel_msg).unwrap()),
            Some(&"invite")
        );
    }

    #[test]
    fn different_branches_do_not_match() {
        let a = skey(INVITE);
        let b = skey(&INVITE.replace("z9hG4bK776asdhds", "z9hG4bK776asdhdt"));
        assert_ne!(a, b);
        // Branch comparison is exact (case-sensitive), unlike the host.
        let c = skey(&INVITE.replace("z9hG4bK776asdhds", "z9hG4bK776ASDHDS"));
        assert_ne!(a, c);
        // A prefix of a branch is another branch.
        let d = skey(&INVITE.replace("z9hG4bK776asdhds", "z9hG4bK776asdhd"));
        assert_ne!(a, d);
    }

    #[test]
    fn sent_by_is_compared_normalised() {
        let b = "branch=z9hG4bK776asdhds";
        let k = |via: &str| skey(&invite_via(via));
        let base = k(&format!("SIP/2.0/UDP pc33.atlanta.example.com;{b}"));
        assert_eq!(base, skey(INVITE));
        // Host case and an explicit default port do not matter...
        assert_eq!(
            base,
            k(&format!("SIP/2.0/UDP PC33.Atlanta.Example.COM;{b}"))
        );
        assert_eq!(
            base,
            k(&format!("SIP/2.0/UDP pc33.atlanta.example.com:5060;{b}"))
        );
        assert_eq!(
            base,
            k(&format!("SIP/2.0/udp pc33.atlanta.example.com;{b}"))
        );
        // ...but another host or port does.
        assert_ne!(
            base,
            k(&format!("SIP/2.0/UDP pc34.atlanta.example.com;{b}"))
        );
        assert_ne!(
            base,
            k(&format!("SIP/2.0/UDP pc33.atlanta.example.com:5070;{b}"))
        );
        assert_ne!(base, k(&format!("SIP/2.0/UDP 192.0.2.1;{b}")));
        // TLS defaults to 5061.
        let tls = k(&format!("SIP/2.0/TLS pc33.atlanta.example.com;{b}"));
        assert_eq!(
            tls,
            k(&format!("SIP/2.0/TLS pc33.atlanta.example.com:5061;{b}"))
        );
        assert_ne!(
            tls,
            k(&format!("SIP/2.0/TLS pc33.atlanta.example.com:5060;{b}"))
        );
        // IPv6 references compare as addresses.
        let v6 = k(&format!("SIP/2.0/UDP [2001:db8::1];{b}"));
        assert_eq!(v6, k(&format!("SIP/2.0/UDP [2001:DB8:0:0::1]:5060;{b}")));
        assert_ne!(v6, k(&format!("SIP/2.0/UDP [2001:db8::2];{b}")));
    }

    #[test]
    fn methods_are_part_of_the_key() {
        let inv = skey(INVITE);
        let opt = skey(&INVITE.replace("INVITE", "OPTIONS"));
        assert_ne!(inv, opt);
        assert_eq!(opt.method(), Method::Options);
        let bye = skey(&INVITE.replace("INVITE", "BYE"));
        assert_ne!(opt, bye);
        // Extension methods all classify as Other: their text must still tell them apart.
        let foo = skey(&INVITE.replace("INVITE", "FOO"));
        let bar = skey(&INVITE.replace("INVITE", "BAR"));
        assert_eq!(foo.method(), Method::Other);
        assert_ne!(foo, bar);
        assert_eq!(foo, skey(&INVITE.replace("INVITE", "FOO")));
    }

    const INV2543: &[u8] = include_bytes!("../../tests/data/rfc4475/inv2543.dat");

    /// inv2543.dat as text with `from` replaced by `to`.
    fn inv2543_with(from: &str, to: &str) -> String {
        std::str::from_utf8(INV2543).unwrap().replace(from, to)
    }

    /// Hand-written ACK for a non-2xx reply to inv2543 (reply To tag "ss1-9834").
    fn ack2543() -> String {
        inv2543_with("INVITE sip:", "ACK sip:")
            .replace("CSeq: 56 INVITE", "CSeq: 56 ACK")
            .replace(
                "user=phone\r\nCall-ID",
                "user=phone;tag=ss1-9834\r\nCall-ID",
            )
    }

    fn cancel2543() -> String {
        inv2543_with("INVITE sip:", "CANCEL sip:").replace("CSeq: 56 INVITE", "CSeq: 56 CANCEL")
    }

    #[test]
    fn rfc2543_invite_ack_cancel_match_by_fallback() {
        let inv_msg = dat(INV2543);
        let inv = ServerKey::from_request(&inv_msg).unwrap();
        assert_eq!(inv.matching(), Matching::Rfc2543);
        assert_eq!(inv.branch(), None);
        assert_eq!(inv, ServerKey::from_request(&dat(INV2543)).unwrap());
        assert!(inv.to_tag_matches(&inv_msg, None, None));
        assert!(!inv.to_tag_matches(&inv_msg, Some("x"), None));

        let ack_text = ack2543();
        assert!(ack_text.contains(";tag=ss1-9834\r\n"), "ACK edit applied");
        let ack_msg = msg(&ack_text);
        let ack = ServerKey::from_request(&ack_msg).unwrap();
        assert_eq!(ack, inv);
        assert_eq!(ServerKey::invite_of(&ack_msg).unwrap(), inv);
        // The ACK's To tag must be the tag of the reply the transaction sent.
        assert!(ack.to_tag_matches(&ack_msg, None, Some("ss1-9834")));
        assert!(!ack.to_tag_matches(&ack_msg, None, Some("other")));
        assert!(!ack.to_tag_matches(&ack_msg, None, None));

        let cancel_msg = msg(&cancel2543());
        let cancel = ServerKey::from_request(&cancel_msg).unwrap();
        assert_eq!(cancel.matching(), Matching::Rfc2543);
        assert_ne!(cancel, inv);
        let target = ServerKey::invite_of(&cancel_msg).unwrap();
        assert_eq!(target, inv);
        assert!(target.to_tag_matches(&cancel_msg, None, Some("ss1-9834")));
    }

    #[test]
    fn rfc2543_fields_each_matter() {
        let inv = ServerKey::from_request(&dat(INV2543)).unwrap();
        let cases = [
            ("Call-ID: inv2543.1717@", "Call-ID: inv2543.1718@"),
            ("CSeq: 56 INVITE", "CSeq: 57 INVITE"),
            ("INVITE sip:UserB@", "INVITE sip:UserC@"),
            ("user=phone>\r\n", "user=phone>;tag=11\r\n"),
            ("UDP iftgw.example.com", "UDP iftgw2.example.com"),
            ("UDP iftgw.example.com", "UDP iftgw.example.com:5070"),
            ("UDP iftgw.example.com", "TCP iftgw.example.com"),
            ("UDP iftgw.example.com", "UDP iftgw.example.com;branch=1"),
        ];
        for (from, to) in cases {
            let text = inv2543_with(from, to);
            assert_ne!(text.as_bytes(), INV2543, "edit {from:?} applied");
            let k = skey(&text);
            assert_eq!(k.matching(), Matching::Rfc2543);
            assert_ne!(k, inv, "{from:?} -> {to:?} must not match");
        }
        // Normalised differences still match: host case, default port, Via param order.
        let same = [
            ("UDP iftgw.example.com", "UDP IFTGW.example.com:5060"),
            ("SIP/2.0/UDP", "SIP / 2.0 / UDP"),
        ];
        for (from, to) in same {
            assert_eq!(skey(&inv2543_with(from, to)), inv, "{from:?} -> {to:?}");
        }
        let p1 = skey(&inv2543_with(
            "iftgw.example.com\r\n",
            "iftgw.example.com;a=1;B=2\r\n",
        ));
        let p2 = skey(&inv2543_with(
            "iftgw.example.com\r\n",
            "iftgw.example.com;b=2;a=1\r\n",
        ));
        assert_eq!(p1, p2);
        assert_ne!(p1, inv);
    }

    #[test]
    fn rfc2543_non_invite_keys_include_to_tag() {
        let opt = |tag: &str| {
            skey(
                &inv2543_with("INVITE sip:", "OPTIONS sip:")
                    .replace("CSeq: 56 INVITE", "CSeq: 56 OPTIONS")
                    .replace(
                        "user=phone\r\nCall-ID",
                        &format!("user=phone{tag}\r\nCall-ID"),
                    ),
            )
        };
        let a = opt(";tag=1");
        assert_eq!(a, opt(";tag=1"));
        assert_ne!(a, opt(";tag=2"));
        assert_ne!(a, opt(""));
        assert!(a.to_tag_matches(&dat(INV2543), Some("zz"), Some("zz")));
    }

    const BADBRANCH: &[u8] = include_bytes!("../../tests/data/rfc4475/badbranch.dat");

    #[test]
    fn bare_cookie_branch_uses_fallback() {
        let k = ServerKey::from_request(&dat(BADBRANCH)).unwrap();
        assert_eq!(k.matching(), Matching::Rfc2543);
        assert_eq!(k, ServerKey::from_request(&dat(BADBRANCH)).unwrap());
        let text = std::str::from_utf8(BADBRANCH).unwrap();
        // Same bare cookie, another Call-ID: a branch-only key would wrongly match.
        let other = skey(&text.replace("badbranch.sadonfo", "badbranch.xadonfo"));
        assert_ne!(k, other);
        // One character after the cookie makes it an RFC 3261 branch.
        let real = skey(&text.replace("branch=z9hG4bK", "branch=z9hG4bKx"));
        assert_eq!(real.matching(), Matching::Rfc3261);
        assert_eq!(real.branch(), Some("z9hG4bKx"));
        // A branch without the cookie (RFC 2543 style) is also the fallback.
        let old = skey(&text.replace("branch=z9hG4bK", "branch=abc"));
        assert_eq!(old.matching(), Matching::Rfc2543);
    }

    fn response(code: &str, cseq: &str, branch: &str) -> String {
        format!(
            "SIP/2.0 {code}\r\n\
             Via: SIP/2.0/UDP proxy.example.com;branch={branch}\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
             To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
             From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
             Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
             CSeq: {cseq}\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn responses_map_to_client_keys() {
        let br = "z9hG4bKprx1";
        let sent = ClientKey::new(br, "INVITE");
        assert_eq!(sent.branch(), br);
        assert_eq!(sent.method(), Method::Invite);
        let ringing = ClientKey::from_response(&msg(&response("180 Ringing", "1 INVITE", br)));
        assert_eq!(ringing.as_ref(), Some(&sent));
        assert_eq!(std_hash(&sent), std_hash(ringing.as_ref().unwrap()));
        let terminated =
            ClientKey::from_response(&msg(&response("487 Request Terminated", "1 INVITE", br)));
        assert_eq!(terminated.as_ref(), Some(&sent));
        // 200 to the CANCEL shares the branch but is another transaction.
        let cancel_ok =
            ClientKey::from_response(&msg(&response("200 OK", "1 CANCEL", br))).unwrap();
        assert_eq!(cancel_ok, ClientKey::new(br, "CANCEL"));
        assert_ne!(cancel_ok, sent);
        // The top Via decides, not the second one.
        let other =
            ClientKey::from_response(&msg(&response("180 Ringing", "1 INVITE", "z9hG4bKprx2")));
        assert_ne!(other.as_ref(), Some(&sent));
        // Extension methods keep their text.
        assert_ne!(ClientKey::new(br, "FOO"), ClientKey::new(br, "BAR"));
        assert_eq!(ClientKey::new(br, "FOO"), ClientKey::new(br, "FOO"));

        // Requests and replies do not cross over.
        assert!(ClientKey::from_response(&msg(INVITE)).is_none());
        assert!(ServerKey::from_request(&msg(&response("180 Ringing", "1 INVITE", br))).is_none());
        // The key of a request we send equals the key its replies produce.
        let out = msg(&invite_via(&format!(
            "SIP/2.0/UDP proxy.example.com;branch={br}"
        )));
        assert_eq!(ClientKey::from_request(&out).unwrap(), sent);
        // No branch: no client key.
        let nb = response("180 Ringing", "1 INVITE", br).replace(&format!(";branch={br}"), "");
        assert!(ClientKey::from_response(&msg(&nb)).is_none());
    }

    #[test]
    fn compact_and_comma_joined_forms_give_the_same_keys() {
        // RFC 3261 request: compact v/t/f/i/l and two Vias joined by a comma.
        let long = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
            Via: SIP/2.0/TCP client.atlanta.example.com:5070;branch=z9hG4bKinner\r\n\
            To: Bob <sip:bob@biloxi.example.com>\r\n\
            From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
            Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
            CSeq: 314159 INVITE\r\n\
            Content-Length: 0\r\n\r\n";
        let compact = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
            v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds ,\r\n \
            SIP/2.0/TCP client.atlanta.example.com:5070;branch=z9hG4bKinner\r\n\
            t: Bob <sip:bob@biloxi.example.com>\r\n\
            f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
            i: a84b4c76e66710@pc33.atlanta.example.com\r\n\
            CSeq: 314159 INVITE\r\n\
            l: 0\r\n\r\n";
        assert_eq!(msg(compact).vias().unwrap().len(), 2);
        assert_eq!(skey(long), skey(compact));
        assert_eq!(skey(long), skey(INVITE));

        // RFC 2543 request: the fallback reads Call-ID, From and To through compact names too.
        let strip = |s: &str| s.replace(";branch=z9hG4bK776asdhds", "");
        let (l2, c2) = (strip(long), strip(compact));
        assert_eq!(skey(&l2).matching(), Matching::Rfc2543);
        assert_eq!(skey(&l2), skey(&c2));
        let ack = |s: &str| {
            s.replace("INVITE sip:", "ACK sip:")
                .replace("314159 INVITE", "314159 ACK")
                .replace("biloxi.example.com>\r\n", "biloxi.example.com>;tag=t1\r\n")
        };
        let (la, ca) = (msg(&ack(&l2)), msg(&ack(&c2)));
        let ka = ServerKey::from_request(&la).unwrap();
        assert_eq!(ka, ServerKey::from_request(&ca).unwrap());
        assert_eq!(ka, skey(&l2));
        assert!(ka.to_tag_matches(&ca, None, Some("t1")));
        let opt = |s: &str| s.replace("INVITE", "OPTIONS");
        assert_eq!(skey(&opt(&l2)), skey(&opt(&c2)));

        // Responses: comma-joined compact Vias.
        let r_long = response("180 Ringing", "1 INVITE", "z9hG4bKprx1");
        let r_compact = r_long
            .replace("\r\nVia: SIP/2.0/UDP pc33", ", SIP/2.0/UDP pc33")
            .replace("Via: ", "v: ");
        assert!(r_compact.contains("v: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKprx1, SIP"));
        assert_eq!(
            ClientKey::from_response(&msg(&r_long)),
            ClientKey::from_response(&msg(&r_compact))
        );
    }

    #[test]
    fn missing_parts_give_no_key() {
        let no_via = INVITE.replace(
            "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n",
            "",
        );
        assert!(ServerKey::from_request(&msg(&no_via)).is_none());
        // RFC 3261 keys need only the top Via...
        let no_callid = INVITE.replace("Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n", "");
        assert!(ServerKey::from_request(&msg(&no_callid)).is_some());
        // ...the fallback needs Call-ID, CSeq and From.
        let text = std::str::from_utf8(INV2543).unwrap();
        let no_callid = text.replace("Call-ID: inv2543.1717@ift.client.example.com\r\n", "");
        assert!(ServerKey::from_request(&msg(&no_callid)).is_none());
        let no_cseq = text.replace("CSeq: 56 INVITE\r\n", "");
        assert!(ServerKey::from_request(&msg(&no_cseq)).is_none());
    }

    #[test]
    fn keys_are_compact() {
        assert_eq!(std::mem::size_of::<ServerKey>(), 32);
        assert_eq!(std::mem::size_of::<ClientKey>(), 32);
        // branch (16) + len + host tag/len + host (24) + port.
        assert_eq!(skey(INVITE).heap_len(), 1 + 16 + 2 + 24 + 2);
        assert_eq!(ClientKey::new("z9hG4bK776asdhds", "INVITE").bytes.len(), 17);
    }

    /// Cost of building keys; run with
    /// `cargo test --release --lib tm::key::tests::key_build_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn key_build_cost() {
        use std::time::Instant;
        const N: u32 = 1_000_000;
        let report = |what: &str, m: &SipMsg, f: &dyn Fn(&SipMsg) -> usize| {
            let _ = f(m);
            let t = Instant::now();
            let mut acc = 0usize;
            for _ in 0..N {
                acc = acc.wrapping_add(f(std::hint::black_box(m)));
            }
            let ns = t.elapsed().as_nanos() as f64 / N as f64;
            println!("{what}: {ns:.1} ns/key (acc {acc})");
        };
        let inv = msg(INVITE);
        let old = dat(INV2543);
        let resp = msg(&response("180 Ringing", "1 INVITE", "z9hG4bKprx1"));
        report("server rfc3261", &inv, &|m| {
            ServerKey::from_request(m).map_or(0, |k| k.heap_len())
        });
        report("server rfc2543", &old, &|m| {
            ServerKey::from_request(m).map_or(0, |k| k.heap_len())
        });
        report("client from response", &resp, &|m| {
            ClientKey::from_response(m).map_or(0, |k| k.bytes.len())
        });
        // Alternatives for comparison: reading the parts only, and a 128-bit keyed digest of the
        // same parts (two SipHash passes, no allocation, but equality would be probabilistic).
        report("parts only (baseline)", &inv, &|m| {
            let via = &m.vias().unwrap()[0];
            via.branch().map_or(0, str::len) + via.host.len() + m.method_str().len()
        });
        let second = RandomState::new();
        report("digest-only u128 alternative", &inv, &|m| {
            let via = &m.vias().unwrap()[0];
            let parts = (
                via.branch(),
                via.host.to_ascii_lowercase(),
                via.port,
                m.method(),
            );
            (hasher().hash_one(&parts) ^ second.hash_one(&parts)) as usize
        });
        let k = skey(INVITE);
        let mut map = HashMap::new();
        for i in 0..100_000u32 {
            let b = format!("z9hG4bK{i:08x}");
            map.insert(skey(&INVITE.replace("z9hG4bK776asdhds", &b)), i);
        }
        map.insert(k.clone(), 0);
        let t = Instant::now();
        let mut hits = 0;
        for _ in 0..N {
            hits += map.contains_key(std::hint::black_box(&k)) as u32;
        }
        println!(
            "lookup in 100k map: {:.1} ns (hits {hits})",
            t.elapsed().as_nanos() as f64 / N as f64
        );
    }
}
