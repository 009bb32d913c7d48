//! A small MaxMind DB writer for tests (format: maxmind.github.io/MaxMind-DB): an IPv6 search
//! tree with 32-bit records (IPv4 networks live under ::/96), a data section, and metadata.
//! Enough to build GeoIP2-City-shaped test databases without downloading anything.

use std::net::IpAddr;

/// A value in the data section.
#[derive(Clone, Debug)]
pub enum V {
    Str(String),
    Double(f64),
    U16(u16),
    U32(u32),
    U64(u64),
    Bool(bool),
    Map(Vec<(String, V)>),
    Array(Vec<V>),
}

/// `V::Str` shorthand.
pub fn s(x: &str) -> V {
    V::Str(x.to_string())
}

/// `V::Map` shorthand.
pub fn map(kv: &[(&str, V)]) -> V {
    V::Map(kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

fn ctrl(out: &mut Vec<u8>, typ: u8, size: usize) {
    let (t, ext) = if typ > 7 {
        (0u8, Some(typ - 7))
    } else {
        (typ, None)
    };
    let (sz, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 29 + 256 {
        (29, vec![(size - 29) as u8])
    } else if size < 285 + 65536 {
        (30, ((size - 285) as u16).to_be_bytes().to_vec())
    } else {
        let v = (size - 65821) as u32;
        (31, v.to_be_bytes()[1..].to_vec())
    };
    out.push((t << 5) | sz);
    if let Some(e) = ext {
        out.push(e);
    }
    out.extend(extra);
}

fn uint(out: &mut Vec<u8>, typ: u8, v: u64, width: usize) {
    let b = v.to_be_bytes();
    let b = &b[8 - width..];
    let skip = b.iter().take_while(|x| **x == 0).count();
    ctrl(out, typ, b.len() - skip);
    out.extend_from_slice(&b[skip..]);
}

fn encode(out: &mut Vec<u8>, v: &V) {
    match v {
        V::Str(x) => {
            ctrl(out, 2, x.len());
            out.extend_from_slice(x.as_bytes());
        }
        V::Double(d) => {
            ctrl(out, 3, 8);
            out.extend_from_slice(&d.to_be_bytes());
        }
        V::U16(x) => uint(out, 5, *x as u64, 2),
        V::U32(x) => uint(out, 6, *x as u64, 4),
        V::U64(x) => uint(out, 9, *x, 8),
        V::Bool(b) => ctrl(out, 14, *b as usize),
        V::Map(kv) => {
            ctrl(out, 7, kv.len());
            for (k, v) in kv {
                encode(out, &V::Str(k.clone()));
                encode(out, v);
            }
        }
        V::Array(a) => {
            ctrl(out, 11, a.len());
            for v in a {
                encode(out, v);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(usize),
    Data(usize),
}

/// Build a database: (network, prefix length, record). IPv4 networks are given as IPv4.
pub fn build(networks: &[(&str, u8, V)]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
    for (net, len, rec) in networks {
        let off = data.len();
        encode(&mut data, rec);
        let ip: IpAddr = net.parse().expect("network address");
        let (bits, len) = match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 96 + *len as usize),
            IpAddr::V6(v6) => (u128::from(v6), *len as usize),
        };
        let mut n = 0;
        for depth in 0..len {
            let bit = ((bits >> (127 - depth)) & 1) as usize;
            if depth + 1 == len {
                nodes[n][bit] = Rec::Data(off);
            } else {
                n = match nodes[n][bit] {
                    Rec::Node(k) => k,
                    _ => {
                        nodes.push([Rec::Empty, Rec::Empty]);
                        let k = nodes.len() - 1;
                        nodes[n][bit] = Rec::Node(k);
                        k
                    }
                };
            }
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for pair in &nodes {
        for r in pair {
            let v = match *r {
                Rec::Empty => count,
                Rec::Node(k) => k,
                Rec::Data(off) => count + 16 + off,
            };
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let meta = map(&[
        ("binary_format_major_version", V::U16(2)),
        ("binary_format_minor_version", V::U16(0)),
        ("build_epoch", V::U64(1_700_000_000)),
        ("database_type", s("GeoIP2-City")),
        ("description", map(&[("en", s("ksrd test database"))])),
        ("ip_version", V::U16(6)),
        ("languages", V::Array(vec![s("en")])),
        ("node_count", V::U32(count as u32)),
        ("record_size", V::U16(32)),
    ]);
    encode(&mut out, &meta);
    out
}

/// A GeoIP2-City record.
#[allow(clippy::too_many_arguments)]
pub fn city(
    cc: &str,
    continent: &str,
    city: &str,
    lat: f64,
    lon: f64,
    tz: &str,
    sub: (&str, &str),
    zip: &str,
) -> V {
    map(&[
        ("city", map(&[("names", map(&[("en", s(city))]))])),
        ("continent", map(&[("code", s(continent))])),
        ("country", map(&[("iso_code", s(cc))])),
        (
            "location",
            map(&[
                ("latitude", V::Double(lat)),
                ("longitude", V::Double(lon)),
                ("time_zone", s(tz)),
            ]),
        ),
        ("postal", map(&[("code", s(zip))])),
        (
            "subdivisions",
            V::Array(vec![map(&[
                ("iso_code", s(sub.0)),
                ("names", map(&[("en", s(sub.1))])),
            ])]),
        ),
    ])
}

/// The database the tests use: documentation networks, a few 127.0.0.x hosts (so tests can
/// send from a "country"), and an IPv6 network.
pub fn test_db() -> Vec<u8> {
    build(&[
        (
            "192.0.2.0",
            24,
            city(
                "AU",
                "OC",
                "Sydney",
                -33.8688,
                151.2093,
                "Australia/Sydney",
                ("NSW", "New South Wales"),
                "2000",
            ),
        ),
        (
            "198.51.100.0",
            24,
            city(
                "DE",
                "EU",
                "Berlin",
                52.52,
                13.405,
                "Europe/Berlin",
                ("BE", "Land Berlin"),
                "10115",
            ),
        ),
        (
            "2001:db8::",
            32,
            city(
                "JP",
                "AS",
                "Tokyo",
                35.6762,
                139.6503,
                "Asia/Tokyo",
                ("13", "Tokyo"),
                "100-0001",
            ),
        ),
        (
            "127.0.0.5",
            32,
            city(
                "CN",
                "AS",
                "Beijing",
                39.9042,
                116.4074,
                "Asia/Shanghai",
                ("BJ", "Beijing"),
                "100000",
            ),
        ),
        (
            "127.0.0.6",
            32,
            city(
                "AU",
                "OC",
                "Melbourne",
                -37.8136,
                144.9631,
                "Australia/Melbourne",
                ("VIC", "Victoria"),
                "3000",
            ),
        ),
    ])
}
