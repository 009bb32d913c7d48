//! Digest answers for tests: what a phone sends back to a challenge (RFC 2617/7616), computed
//! with ksrd's own digest code (checked against the RFC test vectors in src/modules/auth).
use ksrd::modules::auth::digest::{ha1, Alg, Credentials};

/// The Digest parameters of a challenge header value.
pub fn challenge_param(h: &str, name: &str) -> Option<String> {
    let rest = h.strip_prefix("Digest ")?;
    rest.split(", ").find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| v.trim_matches('"').to_string())
    })
}

/// Authorization value answering `challenge` for `user`/`pass`.
pub fn answer(
    challenge: &str,
    user: &str,
    pass: &str,
    method: &str,
    uri: &str,
    nc: Option<u32>,
) -> String {
    let nonce = challenge_param(challenge, "nonce").expect("nonce");
    let realm = challenge_param(challenge, "realm").expect("realm");
    let alg = challenge_param(challenge, "algorithm")
        .map(|a| Alg::parse(&a).expect("known algorithm"))
        .unwrap_or(Alg::Md5);
    let qop = challenge_param(challenge, "qop");
    let mut c = Credentials {
        username: user.into(),
        realm: realm.clone(),
        nonce: nonce.clone(),
        uri: uri.into(),
        algorithm: challenge_param(challenge, "algorithm"),
        ..Default::default()
    };
    if qop.is_some() {
        c.qop = Some("auth".into());
        c.nc = Some(format!("{:08x}", nc.unwrap_or(1)));
        c.cnonce = Some("0a4f113b".into());
    }
    let h = ha1(alg, user, &realm, pass);
    let resp = c.expected_response(alg, &h, method, b"");
    let mut v = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\""
    );
    if let Some(a) = &c.algorithm {
        v.push_str(&format!(", algorithm={a}"));
    }
    if qop.is_some() {
        v.push_str(&format!(
            ", qop=auth, nc={}, cnonce=\"0a4f113b\"",
            c.nc.as_deref().unwrap()
        ));
    }
    v
}
