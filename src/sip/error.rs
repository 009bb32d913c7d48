/// Why a message (or one of its header values) could not be parsed or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message too large")]
    TooLarge,
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    #[error("unsupported SIP version")]
    Version,
    #[error("malformed header line at byte {0}: {1}")]
    HeaderLine(u32, &'static str),
    #[error("bad Content-Length: {0}")]
    ContentLength(&'static str),
    #[error("Content-Length {cl} exceeds the {avail} body bytes available")]
    Truncated { cl: u32, avail: u32 },
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("more than one {0} header")]
    Duplicate(&'static str),
    #[error("bad {0} header: {1}")]
    BadValue(&'static str, &'static str),
    #[error("bad URI: {0}")]
    Uri(&'static str),
    #[error("CSeq method does not match the request method")]
    MethodMismatch,
    #[error("status code out of range")]
    Status,
    #[error("not a request")]
    NotRequest,
    /// Errors found in a response: a response is never answered, only dropped.
    #[error("{0} (in a response)")]
    InResponse(Box<ParseError>),
}

impl ParseError {
    /// For a request that can still be answered: the status to answer with; None when unanswerable.
    pub fn reply_status(&self) -> Option<(u16, &'static str)> {
        match self {
            // Without a parsed request line there is nothing to address a reply to.
            ParseError::Empty
            | ParseError::TooLarge
            | ParseError::StartLine(_)
            | ParseError::NotRequest
            | ParseError::Status
            | ParseError::InResponse(_) => None,
            ParseError::Version => Some((505, "Version Not Supported")),
            _ => Some((400, "Bad Request")),
        }
    }

    /// Marks an error as belonging to a response (so it is never answered).
    pub(crate) fn in_msg(self, is_request: bool) -> ParseError {
        if is_request || matches!(self, ParseError::InResponse(_)) {
            self
        } else {
            ParseError::InResponse(Box::new(self))
        }
    }
}
