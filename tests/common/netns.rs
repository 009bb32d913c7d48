//! Network namespaces for NAT tests: a "public" namespace (the server and the callers), a
//! router namespace that masquerades, and a "LAN" namespace behind it where the phone lives.
//! Private addresses exist only inside these namespaces; everything is removed on drop.

use std::process::Command;

/// Move the calling thread into a network namespace (sockets it opens afterwards live there).
pub fn enter(name: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/var/run/netns/{name}"))
        .unwrap_or_else(|e| panic!("netns {name}: {e}"));
    // SAFETY: setns on a valid namespace fd affects only this thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {name}: {}", std::io::Error::last_os_error());
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The three namespaces and their links.
pub struct NatLab {
    /// Server side: `PUBLIC_IP` (ksrd) and callers.
    pub public: String,
    /// The NAT router: `ROUTER_IP` outside, 192.168.77.1 inside, MASQUERADE to ports 40000-40999.
    pub router: String,
    /// The phone's LAN: `PHONE_IP`.
    pub lan: String,
}

/// The server's address in the public namespace (TEST-NET-3, never routed anywhere).
pub const PUBLIC_IP: &str = "203.0.113.1";
/// The router's outside address.
pub const ROUTER_IP: &str = "203.0.113.2";
/// The phone's private address.
pub const PHONE_IP: &str = "192.168.77.2";

impl NatLab {
    /// Build it. Err only when this machine cannot make network namespaces at all (no root,
    /// no `ip`); any later failure is a broken test set-up and panics.
    pub fn new() -> Result<NatLab, String> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}x{n}", std::process::id());
        let lab = NatLab {
            public: format!("ksrd-pub-{id}"),
            router: format!("ksrd-nat-{id}"),
            lan: format!("ksrd-lan-{id}"),
        };
        run(&["ip", "netns", "add", &lab.public])?;
        if let Err(e) = lab.build(&id) {
            drop_namespaces(&lab);
            panic!("network namespaces work here but the NAT lab could not be built: {e}");
        }
        Ok(lab)
    }

    fn build(&self, id: &str) -> Result<(), String> {
        let (p, r, l) = (&self.public, &self.router, &self.lan);
        for ns in [r, l] {
            run(&["ip", "netns", "add", ns])?;
        }
        for ns in [p, r, l] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        let (vp, vo) = (format!("kp{id}"), format!("ko{id}"));
        let (vl, vi) = (format!("kl{id}"), format!("ki{id}"));
        run(&[
            "ip", "link", "add", &vp, "netns", p, "type", "veth", "peer", "name", &vo, "netns", r,
        ])?;
        run(&[
            "ip", "link", "add", &vl, "netns", l, "type", "veth", "peer", "name", &vi, "netns", r,
        ])?;
        let addr = |ns: &str, dev: &str, a: &str| -> Result<(), String> {
            run(&["ip", "-n", ns, "addr", "add", a, "dev", dev])?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"])
        };
        addr(p, &vp, &format!("{PUBLIC_IP}/24"))?;
        addr(r, &vo, &format!("{ROUTER_IP}/24"))?;
        addr(r, &vi, "192.168.77.1/24")?;
        addr(l, &vl, &format!("{PHONE_IP}/24"))?;
        run(&[
            "ip",
            "-n",
            l,
            "route",
            "add",
            "default",
            "via",
            "192.168.77.1",
        ])?;
        run(&[
            "ip",
            "netns",
            "exec",
            r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])?;
        // Source ports are mapped too, as home routers do, so the port in the phone's Contact
        // and Via is not where its packets come from.
        let nft = |cmd: &str| run(&["ip", "netns", "exec", r, "nft", cmd]);
        nft("add table ip nat")?;
        nft("add chain ip nat post { type nat hook postrouting priority 100 ; }")?;
        nft(&format!(
            "add rule ip nat post oifname \"{vo}\" meta l4proto udp masquerade to :40000-40999"
        ))
    }
}

fn drop_namespaces(lab: &NatLab) {
    for ns in [&lab.lan, &lab.router, &lab.public] {
        let _ = run(&["ip", "netns", "del", ns]);
    }
}

impl Drop for NatLab {
    fn drop(&mut self) {
        drop_namespaces(self);
    }
}
