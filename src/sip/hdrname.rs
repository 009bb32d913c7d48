/// Header names the core understands; everything else is `Other` and matched by text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HdrName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    ContentLength,
    ContentType,
    ContentEncoding,
    Route,
    RecordRoute,
    Expires,
    UserAgent,
    Server,
    Allow,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    Event,
    Subject,
    Accept,
    Date,
    Path,
    ReferTo,
    ReferredBy,
    SessionExpires,
    AllowEvents,
    Other,
}

impl HdrName {
    /// Classifies a header name case-insensitively, including compact forms.
    pub fn parse(name: &[u8]) -> HdrName {
        // Longest known name is "Proxy-Authorization" (19); lower-casing into a
        // stack buffer lets one slice match do the work without allocating.
        let mut buf = [0u8; 20];
        if name.is_empty() || name.len() > buf.len() {
            return HdrName::Other;
        }
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        match &buf[..name.len()] {
            b"v" | b"via" => HdrName::Via,
            b"f" | b"from" => HdrName::From,
            b"t" | b"to" => HdrName::To,
            b"i" | b"call-id" => HdrName::CallId,
            b"cseq" => HdrName::CSeq,
            b"m" | b"contact" => HdrName::Contact,
            b"max-forwards" => HdrName::MaxForwards,
            b"l" | b"content-length" => HdrName::ContentLength,
            b"c" | b"content-type" => HdrName::ContentType,
            b"e" | b"content-encoding" => HdrName::ContentEncoding,
            b"route" => HdrName::Route,
            b"record-route" => HdrName::RecordRoute,
            b"expires" => HdrName::Expires,
            b"user-agent" => HdrName::UserAgent,
            b"server" => HdrName::Server,
            b"allow" => HdrName::Allow,
            b"k" | b"supported" => HdrName::Supported,
            b"require" => HdrName::Require,
            b"proxy-require" => HdrName::ProxyRequire,
            b"unsupported" => HdrName::Unsupported,
            b"authorization" => HdrName::Authorization,
            b"proxy-authorization" => HdrName::ProxyAuthorization,
            b"www-authenticate" => HdrName::WwwAuthenticate,
            b"proxy-authenticate" => HdrName::ProxyAuthenticate,
            b"o" | b"event" => HdrName::Event,
            b"s" | b"subject" => HdrName::Subject,
            b"accept" => HdrName::Accept,
            b"date" => HdrName::Date,
            b"path" => HdrName::Path,
            b"r" | b"refer-to" => HdrName::ReferTo,
            b"b" | b"referred-by" => HdrName::ReferredBy,
            b"x" | b"session-expires" => HdrName::SessionExpires,
            b"u" | b"allow-events" => HdrName::AllowEvents,
            _ => HdrName::Other,
        }
    }

    /// Canonical long-form spelling; "" for `Other`.
    pub fn canonical(&self) -> &'static str {
        match self {
            HdrName::Via => "Via",
            HdrName::From => "From",
            HdrName::To => "To",
            HdrName::CallId => "Call-ID",
            HdrName::CSeq => "CSeq",
            HdrName::Contact => "Contact",
            HdrName::MaxForwards => "Max-Forwards",
            HdrName::ContentLength => "Content-Length",
            HdrName::ContentType => "Content-Type",
            HdrName::ContentEncoding => "Content-Encoding",
            HdrName::Route => "Route",
            HdrName::RecordRoute => "Record-Route",
            HdrName::Expires => "Expires",
            HdrName::UserAgent => "User-Agent",
            HdrName::Server => "Server",
            HdrName::Allow => "Allow",
            HdrName::Supported => "Supported",
            HdrName::Require => "Require",
            HdrName::ProxyRequire => "Proxy-Require",
            HdrName::Unsupported => "Unsupported",
            HdrName::Authorization => "Authorization",
            HdrName::ProxyAuthorization => "Proxy-Authorization",
            HdrName::WwwAuthenticate => "WWW-Authenticate",
            HdrName::ProxyAuthenticate => "Proxy-Authenticate",
            HdrName::Event => "Event",
            HdrName::Subject => "Subject",
            HdrName::Accept => "Accept",
            HdrName::Date => "Date",
            HdrName::Path => "Path",
            HdrName::ReferTo => "Refer-To",
            HdrName::ReferredBy => "Referred-By",
            HdrName::SessionExpires => "Session-Expires",
            HdrName::AllowEvents => "Allow-Events",
            HdrName::Other => "",
        }
    }
}
