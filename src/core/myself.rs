//! "Is this host me?": listen addresses and aliases (Kamailio `check_self`, src/core/forward.c).

use std::net::IpAddr;

use crate::config::Config;

/// Local addresses and alias names.
pub struct Myself {
    /// (host, port) of every listen socket; host lower-case, IPv6 without brackets.
    socks: Vec<(String, u16)>,
    /// Aliases; port None matches any port.
    aliases: Vec<(String, Option<u16>)>,
}

fn norm(host: &str) -> String {
    let h = host.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    match h.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => h.trim_end_matches('.').to_ascii_lowercase(),
    }
}

impl Myself {
    /// From the configured listen sockets (with their bound ports) and aliases.
    pub fn new(cfg: &Config, bound: &[std::net::SocketAddr]) -> Self {
        let mut socks: Vec<(String, u16)> = bound
            .iter()
            .map(|a| (a.ip().to_string(), a.port()))
            .collect();
        for l in &cfg.listen {
            socks.push((l.addr.ip().to_string(), l.addr.port()));
        }
        socks.sort();
        socks.dedup();
        let aliases = cfg.alias.iter().map(|(h, p)| (norm(h), *p)).collect();
        Myself { socks, aliases }
    }

    /// True if host (and port, when given) is one of ours; port None or 0 ignores the port.
    pub fn check(&self, host: &str, port: Option<u16>) -> bool {
        if host.is_empty() {
            return false;
        }
        let h = norm(host);
        let port = port.filter(|p| *p != 0);
        let port_ok = |p: u16| port.is_none_or(|want| want == p);
        self.socks.iter().any(|(sh, sp)| *sh == h && port_ok(*sp))
            || self
                .aliases
                .iter()
                .any(|(ah, ap)| *ah == h && (ap.is_none() || port.is_none() || *ap == port))
    }

    /// A listen socket address string for messages we originate (first one).
    pub fn ports(&self) -> Vec<u16> {
        self.socks.iter().map(|(_, p)| *p).collect()
    }
}
