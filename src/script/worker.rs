//! SIP worker threads: run to completion — read UDP, parse, answer retransmissions, run the Python
//! route, send — with no cross-thread hand-off on the UDP path. TCP messages arrive via a queue.

use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use pyo3::prelude::*;

use super::ctx::{self, RouteCtx, RouteKind};
use super::host::{call_route, Host, RouteOutcome};
use super::msgobj::PyMsg;
use super::readiness::Readiness;
use crate::config::OnException;
use crate::core::forward::forward_reply;
use crate::core::reply::{request_key, send_reply};
use crate::core::stats::Stat;
use crate::core::Core;
use crate::sip::{HdrName, Method, SipMsg};
use crate::transport::{Endpoint, Inbound, Proto};

/// Messages handled per wake-up before looking at the other sources again.
const BATCH: usize = 64;

/// Datagrams read per `recvmmsg` call.
const RECV_BATCH: usize = 16;
/// Largest datagram accepted.
const MAX_DGRAM: usize = 65535;

/// Buffers for reading several datagrams with one `recvmmsg` system call.
struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl RecvBatch {
    fn new() -> Self {
        let mut b = RecvBatch {
            bufs: vec![0u8; RECV_BATCH * MAX_DGRAM],
            addrs: vec![unsafe { std::mem::zeroed() }; RECV_BATCH],
            iovs: Vec::with_capacity(RECV_BATCH),
            hdrs: Vec::with_capacity(RECV_BATCH),
        };
        for i in 0..RECV_BATCH {
            b.iovs.push(libc::iovec {
                iov_base: b.bufs[i * MAX_DGRAM..].as_mut_ptr() as *mut libc::c_void,
                iov_len: MAX_DGRAM,
            });
        }
        for i in 0..RECV_BATCH {
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name =
                &mut b.addrs[i] as *mut libc::sockaddr_storage as *mut libc::c_void;
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut b.iovs[i] as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            b.hdrs.push(h);
        }
        b
    }

    /// Read up to RECV_BATCH datagrams without blocking; returns how many.
    fn recv(&mut self, fd: RawFd) -> usize {
        for h in &mut self.hdrs {
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_len = 0;
        }
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::WouldBlock
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                tracing::debug!(error = %e, "udp recv failed");
            }
            return 0;
        }
        n as usize
    }

    /// Datagram `k` of the last batch.
    fn take(&self, k: usize) -> (Bytes, std::net::SocketAddr) {
        let len = (self.hdrs[k].msg_len as usize).min(MAX_DGRAM);
        let data = Bytes::copy_from_slice(&self.bufs[k * MAX_DGRAM..k * MAX_DGRAM + len]);
        (data, sockaddr_to_std(&self.addrs[k]))
    }
}

fn sockaddr_to_std(s: &libc::sockaddr_storage) -> std::net::SocketAddr {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            let a = unsafe { &*(s as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            SocketAddr::from((
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            let a = unsafe { &*(s as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            SocketAddr::from((
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
            ))
        }
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    }
}

/// Work for a worker besides its UDP sockets.
pub enum Job {
    /// A message from a stream connection.
    Sip(Inbound),
    /// A transaction's final-response timer ran out.
    Timeout(crate::tm::Timeout),
}

/// Hands stream messages and transaction timeouts to one worker and wakes it.
#[derive(Clone)]
pub struct WorkerQueue {
    tx: mpsc::Sender<Job>,
    efd: Arc<EventFd>,
}

/// A Linux eventfd used to wake a worker waiting for its sockets.
pub struct EventFd(RawFd);

impl EventFd {
    fn new() -> std::io::Result<Self> {
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EventFd(fd))
    }
    fn wake(&self) {
        let one: u64 = 1;
        unsafe { libc::write(self.0, &one as *const u64 as *const libc::c_void, 8) };
    }
    fn drain(&self) {
        let mut v: u64 = 0;
        unsafe { libc::read(self.0, &mut v as *mut u64 as *mut libc::c_void, 8) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        unsafe { libc::close(self.0) };
    }
}

impl WorkerQueue {
    /// Queue a message and wake the worker.
    pub fn push(&self, m: Inbound) {
        self.push_job(Job::Sip(m));
    }

    /// Queue any job and wake the worker.
    pub fn push_job(&self, j: Job) {
        if self.tx.send(j).is_ok() {
            self.efd.wake();
        }
    }
}

/// One worker's receiving side.
pub struct WorkerInput {
    rx: mpsc::Receiver<Job>,
    efd: Arc<EventFd>,
}

/// A queue pair for one worker.
pub fn queue() -> std::io::Result<(WorkerQueue, WorkerInput)> {
    let (tx, rx) = mpsc::channel();
    let efd = Arc::new(EventFd::new()?);
    Ok((
        WorkerQueue {
            tx,
            efd: efd.clone(),
        },
        WorkerInput { rx, efd },
    ))
}

/// A running worker's state.
pub struct Worker {
    core: Arc<Core>,
    host: Arc<Host>,
    udp: Vec<Arc<UdpSocket>>,
    input: WorkerInput,
    ctx: Box<RouteCtx>,
}

impl Worker {
    /// A worker reading these UDP sockets and this queue.
    pub fn new(
        core: Arc<Core>,
        host: Arc<Host>,
        udp: Vec<Arc<UdpSocket>>,
        input: WorkerInput,
    ) -> Self {
        let ctx = Box::new(RouteCtx::new(core.clone()));
        Worker {
            core,
            host,
            udp,
            input,
            ctx,
        }
    }

    /// Serve forever.
    pub fn run(self) {
        // Keep one Python thread state for the thread's life: without this outer attach every
        // message would create and destroy a thread state (and mmap/munmap its frame stack).
        Python::attach(|py| py.detach(move || self.serve()));
    }

    fn serve(mut self) {
        ctx::set_current(&mut self.ctx);
        let mut rx = RecvBatch::new();
        let udp_fds: Vec<RawFd> = self.udp.iter().map(|s| s.as_raw_fd()).collect();
        let mut sources = match Readiness::new(&udp_fds, self.input.efd.0) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "worker cannot wait for its sockets; it stops");
                return;
            }
        };
        let mut ready = Vec::with_capacity(udp_fds.len() + 1);
        let locals: Vec<_> = self.udp.iter().map(|s| s.local_addr().ok()).collect();
        loop {
            if let Err(e) = sources.wait(1000, &mut ready) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "epoll_wait failed");
                }
                continue;
            }
            for &i in &ready {
                if i == self.udp.len() {
                    self.input.efd.drain();
                    continue;
                }
                let Some(local) = locals[i] else { continue };
                loop {
                    let fd = self.udp[i].as_raw_fd();
                    let n = rx.recv(fd);
                    for k in 0..n {
                        let (data, remote) = rx.take(k);
                        self.handle_guarded(
                            data,
                            Endpoint {
                                proto: Proto::Udp,
                                remote,
                                local,
                            },
                        );
                    }
                    // A short batch means the socket queue was empty: back to poll.
                    if n < RECV_BATCH {
                        break;
                    }
                }
            }
            for _ in 0..BATCH {
                match self.input.rx.try_recv() {
                    Ok(Job::Sip(m)) => self.handle_guarded(m.data, m.ep),
                    Ok(Job::Timeout(t)) => self.timeout_guarded(t),
                    Err(_) => break,
                }
            }
        }
    }

    /// `handle`, but a bug that panics costs only this message, never the worker.
    fn handle_guarded(&mut self, data: Bytes, ep: Endpoint) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(data, ep)));
        if r.is_err() {
            tracing::error!(src = %ep.remote, "internal error while handling a message; message dropped");
            self.ctx.end();
        }
    }

    /// `timeout`, with the same panic guard as messages.
    fn timeout_guarded(&mut self, t: crate::tm::Timeout) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.timeout(t)));
        if r.is_err() {
            tracing::error!(
                id = t.id,
                "internal error while handling a transaction timeout"
            );
            self.ctx.tm.tx = None;
            self.ctx.end();
        }
    }

    /// A branch's final-response timer ran out: 408 (or 487) on that branch, maybe a failure route.
    fn timeout(&mut self, t: crate::tm::Timeout) {
        let core = self.core.clone();
        let Some(tx) = core.tm.table.by_id(t.id) else {
            return;
        };
        let gen = self.host.current();
        let mut run = route_runner(&core, gen);
        crate::tm::reply::on_timeout(&core, &mut self.ctx, tx, t.branch as usize, &mut run);
    }

    /// Route one received message.
    pub fn handle(&mut self, data: Bytes, ep: Endpoint) {
        let msg = match SipMsg::parse(data.clone()) {
            Ok(m) => m,
            Err(e) => {
                self.core.stats.inc(Stat::BadMsgHdr);
                // The body framing was wrong but the headers may still give us somewhere to answer.
                let answer = e
                    .reply_status()
                    .and_then(|st| SipMsg::parse_ignoring_body(data).ok().map(|m| (st, m)));
                match answer {
                    Some((st, m)) if m.is_request() => self.reject(&m, &ep, st, &e.to_string()),
                    _ => {
                        tracing::debug!(src = %ep.remote, error = %e, "dropping unparseable message")
                    }
                }
                return;
            }
        };
        if let Err(e) = msg.validate() {
            if msg.is_request() {
                self.core.stats.inc(Stat::ErrRequests);
                match e.reply_status() {
                    Some(st) => self.reject(&msg, &ep, st, &e.to_string()),
                    None => {
                        tracing::debug!(src = %ep.remote, error = %e, "dropping invalid request")
                    }
                }
            } else {
                self.core.stats.inc(Stat::ErrReplies);
                tracing::debug!(src = %ep.remote, error = %e, "dropping invalid reply");
            }
            return;
        }
        if msg.is_request() {
            self.request(msg, ep);
        } else {
            self.reply(msg, ep);
        }
    }

    fn reject(
        &mut self,
        m: &SipMsg,
        ep: &Endpoint,
        (code, reason): (u16, &'static str),
        why: &str,
    ) {
        if m.method() == Method::Ack || m.first(HdrName::Via).is_none() {
            tracing::debug!(src = %ep.remote, error = why, "dropping malformed request that cannot be answered");
            return;
        }
        tracing::info!(src = %ep.remote, error = why, code, "rejecting malformed request");
        let warn = format!(
            "Warning: 399 ksrd \"{}\"\r\n",
            why.replace(['"', '\r', '\n'], "'")
        );
        // The Via of a malformed request cannot be trusted: answer where it came from.
        let _ = send_reply(
            &self.core,
            m,
            ep,
            code,
            reason,
            warn.as_bytes(),
            b"",
            true,
            request_key(&self.core, m, ep),
            &mut self.ctx.out,
        );
    }

    fn request(&mut self, msg: SipMsg, ep: Endpoint) {
        let core = self.core.clone();
        core.stats.inc(Stat::RcvRequests);
        // Transaction first: an ACK to a reply tm generated carries our tag too, and must
        // confirm its transaction (stop timer G), not be taken for a stateless one.
        if let crate::tm::uas::Absorbed::Yes = crate::tm::uas::absorb(&core, &msg) {
            return;
        }
        // ACK to a reply we generated statelessly: absorbed, as Kamailio's sl module does.
        if msg.method() == Method::Ack {
            if let Ok(to) = msg.to_hdr() {
                if to.tag().is_some_and(|t| core.is_our_tag(t)) {
                    core.stats.inc(Stat::SlReceivedAcks);
                    return;
                }
            }
        }
        let req_key = request_key(&core, &msg, &ep);
        if let Some(key) = req_key {
            let hit = core.retrans.lock().get(key, Instant::now()).cloned();
            if let Some(r) = hit {
                core.stats.inc(Stat::SlRetransmissions);
                if let Err(e) = core.sender.send(r.proto, r.dest, r.local, &r.data) {
                    tracing::debug!(error = %e, "resend failed");
                }
                return;
            }
        }
        let Some(gen) = self.host.current() else {
            return;
        };
        let span = tracing::info_span!(
            "sip",
            call_id = msg.call_id().unwrap_or(""),
            method = msg.method_str()
        );
        let _g = span.enter();
        let is_ack = msg.method() == Method::Ack;
        self.ctx.begin(RouteKind::Request, msg, ep);
        self.ctx.gen = Some(gen.clone());
        self.ctx.req_key = req_key;
        let seq = self.ctx.msg_seq;
        let outcome = Python::attach(|py| {
            let name = pyo3::intern!(py, "ksr_request_route");
            let pm = Bound::new(py, PyMsg::new(seq)).ok().map(|b| b.into_any());
            call_route(py, &gen, name, pm)
        });
        match outcome {
            RouteOutcome::Done | RouteOutcome::Exit => {}
            RouteOutcome::Missing => tracing::error!("ksr_request_route not found or not callable"),
            RouteOutcome::Error(tb) => {
                core.stats.inc(Stat::ScriptErrors);
                tracing::error!("exception in ksr_request_route:\n{tb}");
                if core.cfg.on_exception == OnException::Reply && !self.ctx.replied && !is_ack {
                    if self.ctx.tm.t.is_some() {
                        crate::tm::kemi::t_reply_code(&mut self.ctx, 500, "Server Internal Error");
                    } else {
                        crate::modules::sl::reply(&mut self.ctx, 500, "Server Internal Error");
                    }
                }
            }
        }
        crate::tm::uas::end_request_route(&core, &mut self.ctx);
        if self.ctx.drop {
            core.stats.inc(Stat::DropRequests);
        }
        self.ctx.end();
    }

    fn reply(&mut self, msg: SipMsg, ep: Endpoint) {
        let core = self.core.clone();
        core.stats.inc(Stat::RcvReplies);
        if core.nathelper.ping.absorb(&msg) {
            return;
        }
        let gen = self.host.current();
        let span = tracing::info_span!(
            "sip",
            call_id = msg.call_id().unwrap_or(""),
            method = msg.method_str()
        );
        let _g = span.enter();
        if let Some((tx, idx)) = crate::tm::reply::lookup(&core, &msg) {
            let has_reply_route = gen.as_ref().is_some_and(|g| g.has_reply_route);
            let mut run = route_runner(&core, gen);
            crate::tm::reply::on_reply(
                &core,
                &mut self.ctx,
                tx,
                idx,
                msg,
                ep,
                has_reply_route,
                &mut run,
            );
            return;
        }
        self.ctx.begin(RouteKind::Reply, msg, ep);
        if let Some(gen) = gen.filter(|g| g.has_reply_route) {
            let seq = self.ctx.msg_seq;
            let outcome = Python::attach(|py| {
                let name = pyo3::intern!(py, "ksr_reply_route");
                let pm = Bound::new(py, PyMsg::new(seq)).ok().map(|b| b.into_any());
                call_route(py, &gen, name, pm)
            });
            if let RouteOutcome::Error(tb) = outcome {
                core.stats.inc(Stat::ScriptErrors);
                tracing::error!("exception in ksr_reply_route:\n{tb}");
            }
        }
        let drop = self.ctx.drop;
        let edits = std::mem::take(&mut self.ctx.edits);
        let msg = self.ctx.end();
        if let Some(msg) = msg {
            if drop {
                core.stats.inc(Stat::DropReplies);
            } else if let Err(e) = forward_reply(&core, &msg, &edits, &mut self.ctx.out) {
                core.stats.inc(Stat::DropReplies);
                tracing::debug!(error = %e, "reply not forwarded");
            }
        }
        self.ctx.edits = edits;
        self.ctx.edits.clear();
    }
}

/// Runs transaction routes (core reply route, onreply, failure) by name against the script
/// generation current when the callback fires (reload-safe, as Kamailio resolves route names).
fn route_runner(
    core: &Arc<Core>,
    gen: Option<Arc<super::host::Generation>>,
) -> impl FnMut(&mut RouteCtx, &str) {
    let core = core.clone();
    move |ctx: &mut RouteCtx, name: &str| {
        let Some(gen) = gen.as_ref() else { return };
        ctx.gen = Some(gen.clone());
        let seq = ctx.msg_seq;
        let outcome = Python::attach(|py| {
            let n = pyo3::types::PyString::new(py, name);
            let pm = Bound::new(py, PyMsg::new(seq)).ok().map(|b| b.into_any());
            call_route(py, gen, &n, pm)
        });
        match outcome {
            RouteOutcome::Done | RouteOutcome::Exit => {}
            RouteOutcome::Missing => {
                tracing::error!(route = name, "route function not found or not callable")
            }
            RouteOutcome::Error(tb) => {
                core.stats.inc(Stat::ScriptErrors);
                tracing::error!("exception in {name}:\n{tb}");
            }
        }
    }
}
