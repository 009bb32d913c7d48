use super::error::ParseError;
use super::hdrname::HdrName;
use super::msg::SipMsg;

impl SipMsg {
    fn exactly_one(&self, n: HdrName) -> Result<(), ParseError> {
        match self.all(n).count() {
            0 => Err(ParseError::Missing(n.canonical())),
            1 => Ok(()),
            _ => Err(ParseError::Duplicate(n.canonical())),
        }
    }

    /// The core's receive check before routing (see RFC 4475 for the cases it rejects).
    pub fn validate(&self) -> Result<(), ParseError> {
        if self.is_request() {
            self.validate_request()
        } else {
            self.validate_response().map_err(|e| e.in_msg(false))
        }
    }

    fn validate_request(&self) -> Result<(), ParseError> {
        if !self.version().eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(ParseError::Version);
        }
        for n in [HdrName::From, HdrName::To, HdrName::CallId, HdrName::CSeq] {
            self.exactly_one(n)?;
        }
        if self.call_id().is_none_or(str::is_empty) {
            return Err(ParseError::BadValue("Call-ID", "empty or not UTF-8"));
        }
        let cseq = self.cseq()?;
        self.from_hdr()?;
        self.to_hdr()?;
        if self.vias()?.is_empty() {
            return Err(ParseError::Missing("Via"));
        }
        if cseq.method_str.as_bytes() != self.method_str().as_bytes() {
            return Err(ParseError::MethodMismatch);
        }
        self.ruri()?;
        self.max_forwards()?;
        Ok(())
    }

    fn validate_response(&self) -> Result<(), ParseError> {
        if !self.status().is_some_and(|s| (100..=699).contains(&s)) {
            return Err(ParseError::Status);
        }
        if !self.version().eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(ParseError::Version);
        }
        if self.vias()?.is_empty() {
            return Err(ParseError::Missing("Via"));
        }
        self.cseq()?;
        for n in [HdrName::CallId, HdrName::From, HdrName::To] {
            if self.first(n).is_none() {
                return Err(ParseError::Missing(n.canonical()));
            }
        }
        Ok(())
    }
}
