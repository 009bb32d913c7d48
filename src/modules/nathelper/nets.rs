//! Private address ranges nathelper treats as "behind a NAT" (nathelper.c `nh_nets_1918`).

use std::net::{IpAddr, Ipv4Addr};

/// RFC 1918, RFC 6598 (carrier-grade NAT) and RFC 7335's /29: always private.
const NETS: &[(u32, u8)] = &[
    (0x0a00_0000, 8),
    (0xac10_0000, 12),
    (0xc0a8_0000, 16),
    (0x6440_0000, 10),
    (0xc000_0000, 29),
];

/// 192.0.0.0/24 (IETF protocol assignments): private only with `nat_addr_mode` 1 (the default).
const EXTRA: &[(u32, u8)] = &[(0xc000_0000, 24)];

fn in_nets(ip: u32, nets: &[(u32, u8)]) -> bool {
    nets.iter()
        .any(|&(net, bits)| ip & (u32::MAX << (32 - bits as u32)) == net)
}

/// True for a private IPv4 address (`nat_addr_mode` 1 adds 192.0.0.0/24).
pub fn is_private_v4(ip: Ipv4Addr, addr_mode: i64) -> bool {
    let n = u32::from(ip);
    in_nets(n, NETS) || (addr_mode == 1 && in_nets(n, EXTRA))
}

/// True for a private address; IPv6 never is (nathelper.c is1918addr_ip checks AF_INET only).
pub fn is_private(ip: IpAddr, addr_mode: i64) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4, addr_mode),
        IpAddr::V6(_) => false,
    }
}

/// `is1918addr` on text: None when the text is not a dotted IPv4 address.
pub fn is_private_text(s: &str, addr_mode: i64) -> Option<bool> {
    s.trim()
        .parse::<Ipv4Addr>()
        .ok()
        .map(|ip| is_private_v4(ip, addr_mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_follow_nathelper_c() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.103",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.7",
        ] {
            assert_eq!(is_private_text(ip, 0), Some(true), "{ip}");
        }
        for ip in [
            "172.32.0.1",
            "8.8.8.8",
            "100.128.0.1",
            "127.0.0.1",
            "203.0.113.5",
        ] {
            assert_eq!(is_private_text(ip, 1), Some(false), "{ip}");
        }
        assert_eq!(is_private_text("192.0.0.100", 1), Some(true));
        assert_eq!(is_private_text("192.0.0.100", 0), Some(false));
        assert_eq!(is_private_text("example.com", 1), None);
        assert!(!is_private("fd00::1".parse().unwrap(), 1));
    }
}
