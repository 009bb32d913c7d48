//! geoip2 (`KSR.geoip2.*`, `$gip2(container=>key)`, Kamailio src/modules/geoip2): where an IP
//! address is, from a MaxMind DB file (GeoIP2/GeoLite2 City or Country layout).
//!
//! A match fills a named container of the worker (Kamailio: of the process); `$gip2` reads it.
//! Unlike Kamailio, a KEMI script needs no `resid` to pre-create containers: `match` creates them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::json;

use crate::core::Core;
use crate::modules::modparam::{ModParams, ModuleParams, ParamKind};
use crate::modules::pv::PvVal;
use crate::rpc::{Registry, RpcError};
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};

/// Kamailio's EARTH_RADIUS: geoip2.distance answers in miles.
const EARTH_RADIUS_MILES: f64 = 6371.0072 * 0.6214;

/// The open database (replaced whole by `geoip2.reload`).
#[derive(Default)]
pub struct Geoip2 {
    path: Option<String>,
    reader: RwLock<Option<Arc<maxminddb::Reader<Vec<u8>>>>>,
}

/// What one match found, as `$gip2` keys read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    cc: Option<String>,
    tz: Option<String>,
    zip: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    contc: Option<String>,
    city: Option<String>,
    regc: Option<String>,
    regn: Option<String>,
    metro: Option<u16>,
    nmask: u8,
}

/// `$gip2(container=>key)` keys (geoip2_pv.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Country ISO code (registered country when missing; "A1" for anonymous proxies).
    Cc,
    /// Time zone.
    Tz,
    /// Postal code.
    Zip,
    /// Latitude.
    Lat,
    /// Longitude.
    Lon,
    /// Continent code.
    Contc,
    /// City name (English).
    City,
    /// First subdivision ISO code.
    Regc,
    /// First subdivision name (English).
    Regn,
    /// Metro code.
    Metro,
    /// Prefix length of the matched network.
    Nmask,
}

/// A parsed `$gip2` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gip2Name {
    /// Container.
    pub container: String,
    /// Key.
    pub key: Key,
}

impl Gip2Name {
    /// `container=>key`.
    pub fn parse(s: &str) -> Option<Gip2Name> {
        let (c, k) = s.split_once("=>")?;
        let key = match k.trim() {
            "cc" => Key::Cc,
            "tz" => Key::Tz,
            "zip" => Key::Zip,
            "lat" => Key::Lat,
            "lon" => Key::Lon,
            "contc" => Key::Contc,
            "city" => Key::City,
            "regc" => Key::Regc,
            "regn" => Key::Regn,
            "metro" => Key::Metro,
            "nmask" => Key::Nmask,
            _ => return None,
        };
        let container = c.trim();
        (!container.is_empty()).then(|| Gip2Name {
            container: container.to_string(),
            key,
        })
    }
}

thread_local! {
    /// The containers of this worker: the last match of each (None: it matched nothing).
    static CONTAINERS: RefCell<HashMap<String, Option<Record>>> = RefCell::new(HashMap::new());
}

/// Read `$gip2(container=>key)`: None ($null) when nothing matched or the field is missing.
pub fn get(n: &Gip2Name) -> Option<PvVal> {
    CONTAINERS.with(|c| {
        let c = c.borrow();
        let r = c.get(&n.container)?.as_ref()?;
        let s = |v: &Option<String>| v.clone().map(PvVal::Str);
        match n.key {
            Key::Cc => s(&r.cc),
            Key::Tz => s(&r.tz),
            Key::Zip => s(&r.zip),
            Key::Lat => r.lat.map(|x| PvVal::Str(format!("{x:.6}"))),
            Key::Lon => r.lon.map(|x| PvVal::Str(format!("{x:.6}"))),
            Key::Contc => s(&r.contc),
            Key::City => s(&r.city),
            Key::Regc => s(&r.regc),
            Key::Regn => s(&r.regn),
            Key::Metro => r.metro.map(|m| PvVal::Str(m.to_string())),
            Key::Nmask => Some(PvVal::Str(r.nmask.to_string())),
        }
    })
}

impl Geoip2 {
    /// Open `[modparam.geoip2] path` (nothing configured: the module answers -1).
    pub fn from_modparams(p: &ModParams) -> Geoip2 {
        let path = p.get_str("geoip2", "path").map(str::to_string);
        let reader = path.as_deref().and_then(|f| match open(f) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                // validate() refused this at start-up; only a file removed since gets here.
                tracing::error!(path = f, "geoip2: {e}");
                None
            }
        });
        Geoip2 {
            path,
            reader: RwLock::new(reader),
        }
    }

    fn reader(&self) -> Option<Arc<maxminddb::Reader<Vec<u8>>>> {
        self.reader.read().clone()
    }

    /// Look `ip` up.
    pub fn lookup(&self, ip: IpAddr) -> Result<Option<Record>, String> {
        let r = self
            .reader()
            .ok_or("no GeoIP2 database (modparam geoip2 path)")?;
        let res = r.lookup(ip).map_err(|e| e.to_string())?;
        if !res.has_data() {
            return Ok(None);
        }
        let city: Option<maxminddb::geoip2::City> = res.decode().map_err(|e| e.to_string())?;
        let Some(c) = city else { return Ok(None) };
        let own = |s: Option<&str>| s.map(str::to_string);
        // Deprecated in GeoIP2 and gone from the crate's struct, still read by Kamailio.
        let anonymous = res
            .decode_path::<bool>(&maxminddb::path!["traits", "is_anonymous_proxy"])
            .ok()
            .flatten()
            == Some(true);
        let sub = c.subdivisions.first();
        Ok(Some(Record {
            cc: if anonymous {
                Some("A1".into())
            } else {
                own(c.country.iso_code).or_else(|| own(c.registered_country.iso_code))
            },
            tz: own(c.location.time_zone),
            zip: own(c.postal.code),
            lat: c.location.latitude,
            lon: c.location.longitude,
            contc: own(c.continent.code),
            city: own(c.city.names.english),
            regc: sub.and_then(|s| own(s.iso_code)),
            regn: sub.and_then(|s| own(s.names.english)),
            metro: c.location.metro_code,
            // The prefix of the address's own family (libmaxminddb, and so Kamailio, gives
            // 96 more for an IPv4 address in an IPv6 database).
            nmask: res.network().map(|n| n.prefix()).unwrap_or(0),
        }))
    }

    /// Reopen the file (`geoip2.reload`).
    pub fn reload(&self) -> Result<(), String> {
        let path = self.path.as_deref().ok_or("no path configured")?;
        let r = open(path)?;
        *self.reader.write() = Some(Arc::new(r));
        tracing::info!(path, "geoip2: reloaded");
        Ok(())
    }
}

fn open(path: &str) -> Result<maxminddb::Reader<Vec<u8>>, String> {
    maxminddb::Reader::open_readfile(path).map_err(|e| format!("cannot open {path}: {e}"))
}

/// Module parameters (geoip2_mod.c `params[]`).
pub const PARAMS: ModuleParams = ModuleParams {
    module: "geoip2",
    params: &[("path", ParamKind::Str), ("resid", ParamKind::StrList)],
};

/// A missing or unreadable database stops start-up, as in Kamailio.
pub fn validate(p: &ModParams) -> Result<(), (String, String)> {
    if let Some(path) = p.get_str("geoip2", "path") {
        open(path)
            .map(|_| ())
            .map_err(|e| ("modparam.geoip2.path".to_string(), e))?;
    }
    Ok(())
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// `match(ip, container)`: 1 found, -2 not found or not an IP, -3 too long, -1 no database.
fn geoip2_match(ctx: &mut RouteCtx, a: &Args) -> Val {
    let (target, container) = (a.str(0), a.str(1));
    if target.len() > 255 {
        tracing::error!("geoip2.match: target too long (max 255)");
        return Val::Int(-3);
    }
    let found = match parse_ip(target) {
        None => Ok(None),
        Some(ip) => ctx.core.geoip2.lookup(ip),
    };
    let (rc, rec) = match found {
        Ok(Some(r)) => (1, Some(r)),
        Ok(None) => (-2, None),
        Err(e) => {
            // Without a configured database every call would say so: once is enough.
            if ctx.core.geoip2.path.is_some() {
                tracing::error!("geoip2.match: {e}");
            } else {
                tracing::debug!("geoip2.match: {e}");
            }
            (-1, None)
        }
    };
    CONTAINERS.with(|c| {
        let mut c = c.borrow_mut();
        match c.get_mut(container) {
            Some(slot) => *slot = rec,
            None => {
                c.insert(container.to_string(), rec);
            }
        }
    });
    Val::Int(rc)
}

/// `distance(ip, lat, lon)`: miles from the given point to where `ip` is (Kamailio's units);
/// -2 not found, -1 bad coordinates.
fn geoip2_distance(ctx: &mut RouteCtx, a: &Args) -> Val {
    let (Ok(lat), Ok(lon)) = (
        a.str(1).trim().parse::<f64>(),
        a.str(2).trim().parse::<f64>(),
    ) else {
        return Val::Int(-1);
    };
    // Not an address: no match, as libmaxminddb's lookup of a bad string in Kamailio.
    let Some(ip) = parse_ip(a.str(0)) else {
        return Val::Int(-2);
    };
    let Ok(Some(r)) = ctx.core.geoip2.lookup(ip) else {
        return Val::Int(-2);
    };
    let (Some(lat2), Some(lon2)) = (r.lat, r.lon) else {
        return Val::Int(-2);
    };
    let (p1, l1, p2, l2) = (
        lat.to_radians(),
        lon.to_radians(),
        lat2.to_radians(),
        lon2.to_radians(),
    );
    let h = ((p2 - p1) / 2.0).sin().powi(2) + p1.cos() * p2.cos() * ((l2 - l1) / 2.0).sin().powi(2);
    let c = 2.0 * h.sqrt().atan2((1.0 - h).sqrt());
    Val::Int((EARTH_RADIUS_MILES * c) as i64)
}

/// `KSR.geoip2.*` exports (geoip2_mod.c sr_kemi_geoip2_exports).
pub static EXPORTS: &[Export] = &[
    ex(
        "geoip2",
        "match",
        &[("ipaddr", Str), ("container", Str)],
        Int,
        "Look the address up into $gip2(container=>...): 1 found, -2 not found",
        geoip2_match,
    ),
    ex(
        "geoip2",
        "distance",
        &[("ipaddr", Str), ("lat", Str), ("lon", Str)],
        Int,
        "Miles from (lat, lon) to where the address is; -2 not found",
        geoip2_distance,
    ),
];

/// Register `geoip2.reload`.
pub fn register_rpc(reg: &mut Registry, core: Arc<Core>) {
    reg.register_blocking("geoip2.reload", "Reload GeoIP2 database file.", move |_| {
        core.geoip2.reload().map_err(|e| {
            tracing::error!("geoip2: {e}");
            RpcError::new(500, "Reload failed")
        })?;
        Ok(json!(null))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_like_geoip2_pv_c() {
        let n = Gip2Name::parse("src=>cc").unwrap();
        assert_eq!((n.container.as_str(), n.key), ("src", Key::Cc));
        assert_eq!(Gip2Name::parse("x=>nmask").unwrap().key, Key::Nmask);
        assert!(Gip2Name::parse("x=>country").is_none());
        assert!(Gip2Name::parse("=>cc").is_none());
        assert!(Gip2Name::parse("cc").is_none());
    }
}
