//! User-defined networks (Docker's `bridge` driver) without touching the host: each network
//! is a network namespace of its own, kept without a daemon as an nsfs bind mount on a file
//! under the store (as `ip netns add` keeps one), holding a bridge (`br0`) with the
//! network's gateway address. A container joins it through a veth pair: one end on the
//! bridge, the other made directly in the container's namespace with its address, MAC and
//! name (`eth0`, `eth1`, ...). Networks reach nothing else: namespaces of two networks share
//! no interface, and a network's namespace has no route out (outbound traffic and published
//! ports stay with each container's own pasta). When a container's namespace goes away, the
//! kernel deletes its veth pair, so a stopped container holds nothing on the bridge.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::error::{Error, Result};
use crate::netlink::{index_of, Netlink};

/// The bridge in every network's namespace.
pub const BRIDGE: &str = "br0";

fn net_error(detail: impl Into<String>) -> Error {
    Error::Network(detail.into())
}

/// Runs `f` on a thread of its own that first joins the network namespace `ns` (setns moves
/// only the calling thread; sockets made there belong to that namespace).
fn in_namespace<T: Send>(ns: RawFd, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on a namespace descriptor; affects this thread only.
            if unsafe { libc::setns(ns, libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("network namespace thread panicked")))
    })
}

fn open_ns(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: a valid C string; the descriptor is ours.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `path` is a network namespace kept by [`create_network_namespace`] (its bind mount
/// is gone after a reboot, leaving an empty file).
pub fn network_namespace_exists(path: &Path) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    let Ok(fd) = open_ns(path) else {
        return false;
    };
    // SAFETY: fstatfs into a zeroed struct on our descriptor.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    st.f_type as i64 == NSFS_MAGIC
}

/// Makes a network's namespace and keeps it at `path` (a bind mount on a new file; its
/// directory must exist): `lo` and a bridge with `gateway/prefix`, both up.
pub fn create_network_namespace(path: &Path, gateway: Ipv4Addr, prefix: u8) -> Result<()> {
    let ctx = |what: &str, e: io::Error| net_error(format!("{what} {}: {e}", path.display()));
    if !path.exists() {
        fs::write(path, b"").map_err(|e| ctx("create", e))?;
    }
    let made = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            // SAFETY: unshare moves this thread only, which ends afterwards.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let nl = Netlink::open()?;
            nl.set_up(index_of("lo")?)?;
            nl.add_bridge(BRIDGE)?;
            let br = index_of(BRIDGE)?;
            nl.add_address(br, gateway, prefix)?;
            nl.set_up(br)?;
            bind_namespace(path)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("network namespace thread panicked")))
    });
    made.map_err(|e| {
        let _ = fs::remove_file(path);
        ctx("make network namespace at", e)
    })
}

/// Binds the calling thread's network namespace onto `path`.
fn bind_namespace(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let target = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: valid C strings; a plain bind mount.
    let r = unsafe {
        libc::mount(
            c"/proc/thread-self/ns/net".as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes a network's namespace kept at `path` (unmounted and deleted; its bridge and any
/// veth left on it go with it). Missing is fine.
pub fn remove_network_namespace(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
        // SAFETY: a valid C string. EINVAL (not mounted) and ENOENT are fine.
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW);
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(net_error(format!("remove {}: {e}", path.display()))),
    }
}

/// A container's endpoint on a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The interface name in the container (`eth0`).
    pub ifname: String,
    /// The veth end on the network's bridge (unique on that network).
    pub bridge_ifname: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub mac: [u8; 6],
    /// A default route through this gateway (only when nothing else gives the container one).
    pub default_gateway: Option<Ipv4Addr>,
}

/// Docker's MAC address for an IPv4 address: `02:42:` and the address's four bytes.
pub fn mac_for_ipv4(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `02:42:ac:12:00:02`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Connects the container namespace `container_ns` to the network kept at `network_ns`:
/// a veth pair whose bridge end is on the network's bridge and whose other end, with the
/// endpoint's address, is up in the container.
pub fn attach_endpoint(
    network_ns: &Path,
    container_ns: BorrowedFd<'_>,
    ep: &Endpoint,
) -> Result<()> {
    let ctx = |what: &str, e: io::Error| {
        net_error(format!(
            "{what} {} ({}): {e}",
            ep.ifname,
            network_ns.display()
        ))
    };
    let net = open_ns(network_ns).map_err(|e| ctx("open the network of", e))?;
    let cns = container_ns.as_raw_fd();
    in_namespace(net.as_raw_fd(), || {
        let nl = Netlink::open()?;
        let br = index_of(BRIDGE)?;
        nl.add_veth(&ep.bridge_ifname, br, &ep.ifname, ep.mac, cns)?;
        nl.set_up(index_of(&ep.bridge_ifname)?)
    })
    .map_err(|e| ctx("create", e))?;
    in_namespace(cns, || {
        let nl = Netlink::open()?;
        let i = index_of(&ep.ifname)?;
        nl.add_address(i, ep.ip, ep.prefix_len)?;
        nl.set_up(i)?;
        if let Some(gw) = ep.default_gateway {
            nl.add_default_route(i, gw)?;
        }
        Ok(())
    })
    .map_err(|e| ctx("configure", e))
}

/// Disconnects an endpoint: deletes its veth pair from the network's side.
pub fn detach_endpoint(network_ns: &Path, bridge_ifname: &str) -> Result<()> {
    let net = open_ns(network_ns)
        .map_err(|e| net_error(format!("open {}: {e}", network_ns.display())))?;
    in_namespace(net.as_raw_fd(), || {
        let nl = Netlink::open()?;
        match index_of(bridge_ifname) {
            Ok(i) => nl.delete_link(i),
            // Gone with the container's namespace already.
            Err(_) => Ok(()),
        }
    })
    .map_err(|e| net_error(format!("delete {bridge_ifname}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_macs() {
        let ip = Ipv4Addr::new(172, 18, 0, 2);
        assert_eq!(format_mac(mac_for_ipv4(ip)), "02:42:ac:12:00:02");
    }
}
