use super::error::ParseError;
use super::hdrname::HdrName;
use super::msg::SipMsg;

impl SipMsg {
    /// The core's receive check before routing (see RFC 4475 for the cases it rejects).
    ///
    /// Only the Vias (needed by every request for transaction matching) are built and cached
    /// here; CSeq, From, To and the Request-URI are checked by borrowing scanners that report
    /// exactly what their accessors would, and are built on first use.
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
        const ONE: [HdrName; 4] = [HdrName::From, HdrName::To, HdrName::CallId, HdrName::CSeq];
        let mut counts = [0u32; 4];
        for h in self.headers() {
            if let Some(k) = ONE.iter().position(|&n| n == h.name) {
                counts[k] += 1;
            }
        }
        for (n, c) in ONE.into_iter().zip(counts) {
            match c {
                0 => return Err(ParseError::Missing(n.canonical())),
                1 => {}
                _ => return Err(ParseError::Duplicate(n.canonical())),
            }
        }
        if self.call_id().is_none_or(str::is_empty) {
            return Err(ParseError::BadValue("Call-ID", "empty or not UTF-8"));
        }
        let cseq_method = self.cseq_method_checked()?;
        self.check_name_addr(HdrName::From)?;
        self.check_name_addr(HdrName::To)?;
        if self.vias()?.is_empty() {
            return Err(ParseError::Missing("Via"));
        }
        if cseq_method != self.method_str().as_bytes() {
            return Err(ParseError::MethodMismatch);
        }
        self.check_ruri()?;
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
