//! SIP message model: zero-copy index over the raw bytes, lazily parsed typed
//! values, TCP framing, edit lists ("lumps") and stateless replies.
//!
//! Leniency follows Kamailio where RFC 4475 allows a choice: extra SPs in the request line,
//! LF-only line endings, a missing empty line at the end of a datagram, blanks inside `<>`,
//! unquoted display names with commas and `?headers` on a bare addr-spec are all accepted.
//! Max-Forwards above 255 reads as absent. See `tests/torture.rs` for each case.

mod cseq;
mod edit;
mod error;
mod framing;
mod hdrname;
mod header;
mod lex;
mod method;
mod msg;
mod nameaddr;
mod reply;
mod span;
mod uri;
mod validate;
mod via;

#[cfg(test)]
mod tests;

pub use cseq::CSeq;
pub use edit::Edits;
pub use error::ParseError;
pub use framing::{frame, Framing, MAX_HEADER_SECTION, MAX_STREAM_BODY};
pub use hdrname::HdrName;
pub use header::Header;
pub(crate) use lex::for_each_comma;
pub use method::Method;
pub use msg::{SipMsg, StartLine};
pub use nameaddr::{Contacts, NameAddr};
pub use reply::build_reply;
pub use span::Span;
pub use uri::{Scheme, Uri};
pub use via::Via;
