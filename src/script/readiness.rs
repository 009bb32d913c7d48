//! What a SIP worker sleeps on: the UDP sockets (shared by every worker) and its own eventfd.
//!
//! epoll with `EPOLLEXCLUSIVE` on the shared sockets wakes one waiting worker per arrival, as
//! Kamailio's children blocked in recvfrom() are woken one at a time. With poll() every worker
//! woke for every packet and all but one found nothing to read: with two workers that doubled the
//! wake-ups and system calls per message.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// An epoll set of the worker's sources; source `i` is `udp[i]`, and `udp.len()` is the eventfd.
pub struct Readiness {
    epfd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Readiness {
    /// Watch `udp` (exclusive wake-ups) and `wake` (this worker's own eventfd).
    pub fn new(udp: &[RawFd], wake: RawFd) -> io::Result<Readiness> {
        // SAFETY: plain system call; the descriptor is owned right away.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let add = |src: RawFd, index: usize, flags: u32| {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32 | flags,
                u64: index as u64,
            };
            // SAFETY: both descriptors are open; ev outlives the call.
            if unsafe { libc::epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, src, &mut ev) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        };
        for (i, s) in udp.iter().enumerate() {
            add(*s, i, libc::EPOLLEXCLUSIVE as u32)?;
        }
        add(wake, udp.len(), 0)?;
        Ok(Readiness {
            epfd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; udp.len() + 1],
        })
    }

    /// Wait up to `timeout_ms` and put the indexes of the ready sources in `ready`.
    pub fn wait(&mut self, timeout_ms: i32, ready: &mut Vec<usize>) -> io::Result<()> {
        ready.clear();
        // SAFETY: events has room for events.len() entries.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        ready.extend(self.events[..n as usize].iter().map(|e| e.u64 as usize));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn ready_sources_are_reported_by_index() {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        // SAFETY: plain eventfd creation; closed below.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        assert!(efd >= 0);
        let mut a = Readiness::new(&[sock.as_raw_fd()], efd).unwrap();
        let mut ready = Vec::new();
        a.wait(0, &mut ready).unwrap();
        assert!(ready.is_empty());
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(b"x", sock.local_addr().unwrap())
            .unwrap();
        a.wait(1000, &mut ready).unwrap();
        assert_eq!(ready, [0]);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an open eventfd.
        unsafe { libc::write(efd, &one as *const u64 as *const libc::c_void, 8) };
        a.wait(1000, &mut ready).unwrap();
        ready.sort();
        assert_eq!(
            ready,
            [0, 1],
            "level-triggered: the unread datagram stays ready"
        );
        // SAFETY: efd is open and not used afterwards.
        unsafe { libc::close(efd) };
    }
}
