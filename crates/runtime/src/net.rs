//! The private network of a container (Docker's default "bridge" mode, without a bridge):
//! the child joins a new network namespace and [pasta](https://passt.top) (the
//! `passt` package, as Podman uses) connects it to the host's network with user-mode
//! networking: outbound TCP, UDP and ICMP through ordinary host sockets, DNS through pasta's
//! forwarding address, published ports (`-p`) as host listening sockets spliced into the
//! namespace. Nothing is created on the host: no bridge, no route, no firewall rule.
//!
//! Isolation from the host: pasta runs with `--no-map-gw` (the gateway address is *not*
//! the host's loopback) and `-T none -U none` (no port of the host's loopback is reachable
//! from the namespace), and `-t none -u none` unless ports are published (pasta's default
//! would publish every port the container binds).
//!
//! Life cycle: [`PrivateNetwork::start`] makes the namespace (on a short-lived thread) before
//! the container's process exists, so that pasta's start-up overlaps the mount of the root
//! filesystem and the process's own set-up (the process joins the namespace first thing).
//! pasta runs in the foreground (our own child) against the namespace through a descriptor
//! (`--netns /proc/self/fd/3`; as root, pasta keeps only a few capabilities and could not
//! open `/proc/PID/ns/net` of a more privileged process). The child execs once the network
//! can be used: without published
//! ports, when a netlink socket in the namespace sees pasta add the IPv4 default route
//! (interface, addresses and routes come first; pasta's socket and pipe pools, as long
//! again, need nothing of the container, and packets sent meanwhile wait in the tap queue);
//! with ports, when pasta writes its PID file, which it does once every forward is bound.
//! pasta does not notice when a namespace given this way goes away, so a small watcher
//! process (forked, raw system calls only) kills it as soon as the strata process that
//! started it closes the watcher's pipe: when the container ends ([`Pasta::stop`]) or when
//! strata itself dies, however it dies.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The address in a container's namespace that pasta answers DNS queries on, forwarding
/// them to the host's resolver (which may be on the host's loopback).
pub const DNS_FORWARD_ADDRESS: &str = "169.254.1.1";

/// The interface name in the container (Docker's).
pub const INTERFACE: &str = "eth0";

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port: `host_ip:host_port` on the host forwards to `container_port` in the
/// container (`-p`). The host port is concrete (the caller picks free ones for `-P`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortMapping {
    /// The host address to listen on; None: every address (IPv4 and IPv6).
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: u16,
    /// The port in the container.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl PortMapping {
    /// pasta's `-t`/`-u` spec: `[ADDR/]HOST_PORT:CONTAINER_PORT`.
    fn pasta_spec(&self) -> String {
        match self.host_ip {
            Some(ip) => format!("{ip}/{}:{}", self.host_port, self.container_port),
            None => format!("{}:{}", self.host_port, self.container_port),
        }
    }
}

/// The addresses a container gets on the private network. pasta copies the host's: the
/// IPv4 address and gateway of the interface with the default route.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addresses {
    /// The container's IPv4 address (None when the host has no IPv4 default route).
    pub ipv4: Option<Ipv4Addr>,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The gateway (an address of the host's network; pasta does not map it to the host).
    pub gateway: Option<Ipv4Addr>,
    /// The MAC address strata gives the container's interface (Docker's `02:42:` + IPv4).
    pub mac: String,
}

impl Addresses {
    /// What the container will get, from the host's routing table (`/proc/net/route`) and
    /// interface addresses.
    pub fn detect() -> Addresses {
        let Some((ifname, gateway)) = default_route_v4() else {
            return Addresses {
                mac: mac_for(None),
                ..Default::default()
            };
        };
        let (ipv4, prefix_len) = interface_v4(&ifname).map_or((None, 0), |(a, p)| (Some(a), p));
        Addresses {
            ipv4,
            prefix_len,
            gateway: Some(gateway),
            mac: mac_for(ipv4),
        }
    }
}

fn mac_for(ip: Option<Ipv4Addr>) -> String {
    let o = ip.map_or([0, 0, 0, 2], |i| i.octets());
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// The interface and gateway of the host's IPv4 default route.
fn default_route_v4() -> Option<(String, Ipv4Addr)> {
    let text = fs::read_to_string("/proc/net/route").ok()?;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[1] != "00000000" {
            continue;
        }
        let flags = u32::from_str_radix(f[3], 16).ok()?;
        if flags & 0x1 == 0 {
            continue; // not up
        }
        let gw = u32::from_str_radix(f[2], 16).ok()?;
        return Some((f[0].to_string(), Ipv4Addr::from(gw.to_le_bytes())));
    }
    None
}

/// The first IPv4 address of interface `name` and its prefix length.
fn interface_v4(name: &str) -> Option<(Ipv4Addr, u8)> {
    let mut out = None;
    // SAFETY: getifaddrs allocates a list we walk read-only and free once.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut list) != 0 {
            return None;
        }
        let mut cur = list;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() {
                continue;
            }
            if i32::from((*ifa.ifa_addr).sa_family) != libc::AF_INET {
                continue;
            }
            if std::ffi::CStr::from_ptr(ifa.ifa_name).to_bytes() != name.as_bytes() {
                continue;
            }
            let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
            let addr = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            let prefix = u32::from_be(m.sin_addr.s_addr).count_ones() as u8;
            out = Some((addr, prefix));
            break;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// pasta's arguments for a namespace on descriptor 3 and a PID file on descriptor 4.
pub(crate) fn pasta_args(ports: &[PortMapping], mac: &str, ifname: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "--config-net",
        "--quiet",
        // Our own child for its whole life: ended at any moment, start-up included.
        "--foreground",
        // As root, pasta would switch to nobody and lose the capabilities it needs to join
        // the namespace; it still drops every capability but NET_ADMIN, NET_BIND_SERVICE
        // and SYS_ADMIN, and sandboxes itself.
        "--runas",
        "0",
        // The gateway is not the host: the host's loopback stays out of reach.
        "--no-map-gw",
        "--ns-ifname",
        ifname,
        "--ns-mac-addr",
        mac,
        "--dns-forward",
        DNS_FORWARD_ADDRESS,
        // Nothing of the host's loopback is forwarded into the namespace.
        "--tcp-ns",
        "none",
        "--udp-ns",
        "none",
        "--pid",
        "/proc/self/fd/4",
        "--netns",
        "/proc/self/fd/3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for proto in [Protocol::Tcp, Protocol::Udp] {
        let flag = match proto {
            Protocol::Tcp => "--tcp-ports",
            Protocol::Udp => "--udp-ports",
        };
        let specs: Vec<String> = ports
            .iter()
            .filter(|p| p.protocol == proto)
            .map(|p| p.pasta_spec())
            .collect();
        if specs.is_empty() {
            a.push(flag.into());
            a.push("none".into());
        }
        for s in specs {
            a.push(flag.into());
            a.push(s);
        }
    }
    a
}

/// pasta connected to a container's namespace: our own child, run in the foreground
/// (`--foreground`), so that it can be ended at any moment, its start-up included.
#[derive(Debug)]
pub(crate) struct Pasta {
    child: std::process::Child,
    /// A pidfd of pasta.
    pidfd: OwnedFd,
    /// Read end of pasta's PID file, kept open for pasta's life (it writes to it once set
    /// up; a closed pipe would kill it with SIGPIPE).
    pid_rd: OwnedFd,
    /// pasta's standard error, read when it fails.
    stderr: Option<std::process::ChildStderr>,
    /// The watcher that kills pasta when this end closes.
    watcher_pipe: Option<OwnedFd>,
    watcher: i32,
    /// Wait for pasta's exit in [`Pasta::stop`], so that published host ports are free
    /// again when the container's end is reported (tearing its interface down takes the
    /// kernel some 40 ms, not worth waiting for without ports).
    wait_on_stop: bool,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: freshly created descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn net_error(detail: impl Into<String>) -> Error {
    Error::Network(detail.into())
}

/// `RTMGRP_IPV4_ROUTE`: the multicast group of IPv4 route changes.
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTM_NEWROUTE: u16 = 24;

/// A new network namespace, and a netlink socket in it that is told about IPv4 route
/// changes. Both are made on a thread of their own (`unshare` moves only the calling
/// thread, and a socket belongs to the namespace it was made in), which then ends.
fn new_namespace() -> io::Result<(OwnedFd, OwnedFd)> {
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<(OwnedFd, OwnedFd)> {
            // SAFETY: plain system calls on descriptors we own; unshare moves this thread only.
            unsafe {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                let ns = libc::open(
                    c"/proc/thread-self/ns/net".as_ptr(),
                    libc::O_RDONLY | libc::O_CLOEXEC,
                );
                if ns < 0 {
                    return Err(io::Error::last_os_error());
                }
                let ns = OwnedFd::from_raw_fd(ns);
                let fd = libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    libc::NETLINK_ROUTE,
                );
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let fd = OwnedFd::from_raw_fd(fd);
                let mut addr: libc::sockaddr_nl = std::mem::zeroed();
                addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
                addr.nl_groups = RTMGRP_IPV4_ROUTE;
                if libc::bind(
                    fd.as_raw_fd(),
                    (&addr as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok((ns, fd))
            }
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("network namespace thread panicked")))
    })
}

/// Whether `buf` (netlink messages) announces an IPv4 default route in the main table.
pub(crate) fn announces_default_route(mut buf: &[u8]) -> bool {
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < 16 || len > buf.len() {
            return false;
        }
        // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        let body = &buf[16..len];
        if kind == RTM_NEWROUTE
            && body.len() >= 12
            && body[0] == libc::AF_INET as u8
            && body[1] == 0
            && body[4] == libc::RT_TABLE_MAIN
        {
            return true;
        }
        let next = (len + 3) & !3;
        if next >= buf.len() {
            return false;
        }
        buf = &buf[next..];
    }
    false
}

/// Whether a netlink socket's pending messages announce an IPv4 default route.
fn drain_routes(routes: &OwnedFd, buf: &mut [u8]) -> bool {
    loop {
        // SAFETY: reading into a buffer we own.
        let r = unsafe { libc::recv(routes.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r <= 0 {
            return false;
        }
        if announces_default_route(&buf[..r as usize]) {
            return true;
        }
    }
}

impl Pasta {
    /// Starts pasta at `binary` on the network namespace `ns`, publishing `ports`, and
    /// returns without waiting for it (see [`Pasta::until_ready`]).
    fn launch(
        binary: &Path,
        ns: &OwnedFd,
        ports: &[PortMapping],
        mac: &str,
        ifname: &str,
    ) -> Result<Pasta> {
        let (pid_rd, pid_wr) = pipe().map_err(|e| net_error(format!("pipe: {e}")))?;
        let (ns_fd, pid_fd) = (ns.as_raw_fd(), pid_wr.as_raw_fd());
        let mut cmd = Command::new(binary);
        cmd.args(pasta_args(ports, mac, ifname))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: async-signal-safe calls only: the namespace on 3, the PID pipe on 4, and
        // every other inherited descriptor (store locks, the database) closed on exec.
        unsafe {
            cmd.pre_exec(move || {
                let a = libc::fcntl(ns_fd, libc::F_DUPFD, 10);
                let b = libc::fcntl(pid_fd, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::syscall(
                    libc::SYS_close_range,
                    5u32,
                    u32::MAX,
                    4u32, /* CLOSE_RANGE_CLOEXEC */
                );
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| net_error(format!("cannot run {}: {e}", binary.display())))?;
        drop(pid_wr);
        // SAFETY: plain syscall; pasta is our unreaped child.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as i32, 0) };
        if pidfd < 0 {
            let e = io::Error::last_os_error();
            let _ = child.kill();
            let _ = child.wait();
            return Err(net_error(format!("pidfd_open {}: {e}", child.id())));
        }
        // SAFETY: a new descriptor we own.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
        let (w_rd, w_wr) = pipe().map_err(|e| net_error(format!("pipe: {e}")))?;
        let watcher = spawn_watcher(&pidfd, &w_rd);
        drop(w_rd);
        let stderr = child.stderr.take();
        let mut pasta = Pasta {
            child,
            pidfd,
            pid_rd,
            stderr,
            watcher_pipe: Some(w_wr),
            watcher: -1,
            wait_on_stop: !ports.is_empty(),
        };
        match watcher {
            Ok(w) => pasta.watcher = w,
            Err(e) => return Err(net_error(format!("fork: {e}"))),
        }
        Ok(pasta)
    }

    /// Waits until the container can use its network: pasta has set the namespace's IPv4
    /// default route, seen on `routes` (it sets interface, addresses and routes first; its
    /// socket and pipe pools come after and need nothing of the container; packets sent
    /// meanwhile wait in the tap queue), or pasta reports itself set up (it writes its PID
    /// file when every forward is bound), whichever comes first; pasta ending first is its
    /// failure, told with what it printed.
    fn until_ready(&mut self, routes: Option<&OwnedFd>) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(net_error("pasta did not set up the network in 30 s"));
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.pid_rd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.pidfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: routes.map_or(-1, |r| r.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll on valid descriptors (a negative one is ignored).
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 3, left.as_millis() as i32) };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(net_error(format!("poll: {}", io::Error::last_os_error())));
            }
            if fds[0].revents & libc::POLLIN != 0 {
                return Ok(());
            }
            if fds[1].revents != 0 || fds[0].revents != 0 {
                return Err(self.failure());
            }
            if let Some(r) = routes {
                if fds[2].revents != 0 && drain_routes(r, &mut buf) {
                    return Ok(());
                }
            }
        }
    }

    /// pasta's end before it was set up, as an error with its status and what it printed.
    fn failure(&mut self) -> Error {
        let status = self.child.wait();
        let mut text = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut text);
        }
        let msg: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("Failed to send") && !l.trim().is_empty())
            .collect();
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        net_error(format!("pasta failed ({status}): {}", msg.join("; ")))
    }

    /// Ends pasta (SIGKILL) and reaps it; when it publishes ports, that wait is what frees
    /// them again before the container's end is reported.
    pub(crate) fn stop(&mut self) {
        if self.watcher_pipe.take().is_none() {
            return;
        }
        kill_pidfd(self.pidfd.as_raw_fd());
        let mut status = 0;
        // SAFETY: reaping our own watcher, which exits once its pipe closed.
        unsafe {
            while self.watcher > 0
                && libc::waitpid(self.watcher, &mut status, libc::__WALL) < 0
                && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {}
        }
        if self.wait_on_stop {
            let _ = self.child.wait();
        } else {
            // Reaped later without waiting: the kernel takes a while to tear down the tap.
            let _ = self.child.try_wait();
        }
    }
}

impl Drop for Pasta {
    fn drop(&mut self) {
        self.stop();
    }
}

fn kill_pidfd(fd: RawFd) {
    // SAFETY: plain syscall on a pidfd we own.
    unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, fd, libc::SIGKILL, 0usize, 0u32);
    }
}

/// Forks the watcher: it closes everything but `pidfd` and `pipe`, waits for the pipe to
/// close (every write end gone: [`Pasta::stop`], or strata died) and kills pasta.
fn spawn_watcher(pidfd: &OwnedFd, pipe: &OwnedFd) -> io::Result<i32> {
    let (pfd, rd) = (pidfd.as_raw_fd(), pipe.as_raw_fd());
    // SAFETY: the child makes raw, async-signal-safe system calls only.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            crate::child::reset_signals();
            // Keep the pidfd and the pipe's read end on fixed numbers, close the rest
            // (the store's lock files, the database, the pipe's write end).
            let a = libc::fcntl(pfd, libc::F_DUPFD, 10);
            let b = libc::fcntl(rd, libc::F_DUPFD, 10);
            if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pfd,
                    libc::SIGKILL,
                    0usize,
                    0u32,
                );
                libc::_exit(1);
            }
            libc::syscall(libc::SYS_close_range, 0u32, 2u32, 0u32);
            libc::syscall(libc::SYS_close_range, 5u32, u32::MAX, 0u32);
            libc::setsid();
            let mut byte = [0u8; 1];
            loop {
                let r = libc::read(4, byte.as_mut_ptr().cast(), 1);
                if r < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                break;
            }
            libc::syscall(libc::SYS_pidfd_send_signal, 3, libc::SIGKILL, 0usize, 0u32);
            libc::_exit(0);
        }
    }
    Ok(pid)
}

/// A container's private network, made before the container: a new network namespace
/// that pasta is already connecting while the caller mounts the root filesystem and the
/// container's process sets itself up (pasta's start-up is the longest part of starting a
/// container). [`crate::spawn`] moves the process into the namespace before anything else and
/// lets it exec once pasta is ready; dropping it ends pasta.
#[derive(Debug)]
pub struct PrivateNetwork {
    ns: OwnedFd,
    /// Told about the namespace's routes (None with published ports: pasta's PID file says
    /// when it is ready then).
    routes: Option<OwnedFd>,
    /// None for a namespace that only user-defined `--internal` networks connect.
    pasta: Option<Pasta>,
}

/// Rootless, pasta opens `/dev/net/tun` as the user: says what is missing when it cannot
/// (Debian makes the device 0666; some machines keep it 0600).
fn check_tun() -> Result<()> {
    if !crate::rootless::active() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let mode = std::fs::metadata("/dev/net/tun")
                .map(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    format!(" (mode {:04o})", m.permissions().mode() & 0o7777)
                })
                .unwrap_or_default();
            Err(net_error(format!(
                "rootless: the private network needs /dev/net/tun, which this user cannot open{mode}: {e}; make it usable by every user (`chmod 0666 /dev/net/tun`, Debian's default), or use --network none or --network host"
            )))
        }
    }
}

impl PrivateNetwork {
    /// Makes the namespace and starts pasta (`binary`) on it with `ports` published.
    pub fn start(binary: &Path, ports: &[PortMapping]) -> Result<PrivateNetwork> {
        Self::start_with(Some(binary), ports, INTERFACE)
    }

    /// Makes the namespace and, with a `binary`, starts pasta on it with `ports` published
    /// and its interface called `ifname` (without: a namespace with only `lo`, for the caller
    /// to connect to user-defined networks through [`Self::namespace_fd`]).
    pub fn start_with(
        binary: Option<&Path>,
        ports: &[PortMapping],
        ifname: &str,
    ) -> Result<PrivateNetwork> {
        if binary.is_some() {
            check_tun()?;
        }
        let (ns, routes) =
            new_namespace().map_err(|e| net_error(format!("new network namespace: {e}")))?;
        let pasta = match binary {
            Some(b) => Some(Pasta::launch(
                b,
                &ns,
                ports,
                &Addresses::detect().mac,
                ifname,
            )?),
            None => None,
        };
        Ok(PrivateNetwork {
            ns,
            routes: ports.is_empty().then_some(routes),
            pasta,
        })
    }

    /// The namespace, for the container's process to join.
    pub(crate) fn namespace(&self) -> RawFd {
        self.ns.as_raw_fd()
    }

    /// The namespace, to connect it to networks before the container runs.
    pub fn namespace_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.ns.as_fd()
    }

    /// Waits until the network can be used (see [`Pasta::until_ready`]); returns pasta, which
    /// ends when dropped.
    pub(crate) fn ready(mut self) -> Result<Option<Pasta>> {
        if let Some(p) = self.pasta.as_mut() {
            p.until_ready(self.routes.as_ref())?;
        }
        Ok(self.pasta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasta_arguments_isolate_the_host() {
        let a = pasta_args(&[], "02:42:00:00:00:02", INTERFACE);
        let s = a.join(" ");
        assert!(s.contains("--no-map-gw"));
        assert!(s.contains("--tcp-ns none --udp-ns none"));
        assert!(s.contains("--tcp-ports none --udp-ports none"));
        let a = pasta_args(
            &[
                PortMapping {
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 18080,
                    container_port: 8080,
                    protocol: Protocol::Tcp,
                },
                PortMapping {
                    host_ip: None,
                    host_port: 5353,
                    container_port: 53,
                    protocol: Protocol::Udp,
                },
            ],
            "02:42:00:00:00:02",
            INTERFACE,
        );
        let s = a.join(" ");
        assert!(s.contains("--tcp-ports 127.0.0.1/18080:8080"));
        assert!(s.contains("--udp-ports 5353:53"));
        assert!(!s.contains("--tcp-ports none"));
    }

    /// One netlink message: header, rtmsg, no attributes.
    fn route_msg(kind: u16, family: u8, dst_len: u8, table: u8) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&28u32.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(&[family, dst_len, 0, 0, table, 4, 0, 1]);
        m.extend_from_slice(&0u32.to_ne_bytes());
        m
    }

    #[test]
    fn only_an_ipv4_default_route_of_the_main_table_counts() {
        let inet = libc::AF_INET as u8;
        let main = libc::RT_TABLE_MAIN;
        assert!(announces_default_route(&route_msg(
            RTM_NEWROUTE,
            inet,
            0,
            main
        )));
        assert!(!announces_default_route(&route_msg(
            RTM_NEWROUTE,
            inet,
            24,
            main
        )));
        assert!(!announces_default_route(&route_msg(
            RTM_NEWROUTE,
            libc::AF_INET6 as u8,
            0,
            main
        )));
        assert!(
            !announces_default_route(&route_msg(25, inet, 0, main)),
            "RTM_DELROUTE"
        );
        assert!(
            !announces_default_route(&route_msg(RTM_NEWROUTE, inet, 0, 255)),
            "local table"
        );
        let mut two = route_msg(RTM_NEWROUTE, inet, 24, main);
        two.extend(route_msg(RTM_NEWROUTE, inet, 0, main));
        assert!(announces_default_route(&two), "the second of two messages");
        assert!(!announces_default_route(&two[..30]), "a truncated message");
        assert!(!announces_default_route(&[]));
    }

    #[test]
    fn docker_style_mac() {
        assert_eq!(
            mac_for(Some(Ipv4Addr::new(172, 17, 0, 2))),
            "02:42:ac:11:00:02"
        );
    }
}
