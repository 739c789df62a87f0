//! A small OCI-style container runtime, written for strata's hot path.
//!
//! Two halves. [`compose`] is pure: from an image's config ([`ImageConfig`]) and `docker run`
//! options ([`RunOptions`]) it computes the container's [`Spec`] (argv from ENTRYPOINT and CMD,
//! environment, working directory, capabilities, masked paths, mounts, limits) exactly as Docker
//! composes it; [`resolve_user`] then reads the root filesystem's `/etc/passwd` and
//! `/etc/group` and [`Spec::apply_user`] fills in IDs, groups and `HOME`.
//!
//! [`spawn`] runs a spec on a root filesystem that is already mounted (the snapshotter's
//! overlay): a child in new mount, PID, UTS and IPC namespaces (and a network namespace with
//! only `lo` for [`Network::None`], or one connected by pasta for [`Network::Private`]), `/proc`, `/dev`, `/sys`, the `/etc` files from
//! [`write_etc_files`], pivot_root, Docker's default capabilities and masked paths, cgroup
//! limits (v1 and v2), then exec. Failures to exec carry Docker's message and exit code
//! (127 not found, 126 cannot invoke). [`run`] is the foreground form that forwards SIGINT and
//! SIGTERM; [`run_step`] is what the builder calls for `RUN`; [`exec`] starts another process
//! in a running container (`docker exec`), built with [`Spec::exec_process`].
//!
//! So that mount points never land in a container's writable layer, callers stack
//! [`make_init_layer`]'s directory on top of the image's layers (Docker's `-init` layer);
//! whatever still had to be created is listed by [`Container::created_paths`].
//!
//! ```no_run
//! # fn main() -> Result<(), runtime::Error> {
//! use std::path::Path;
//! let image = runtime::ImageConfig { cmd: Some(vec!["sh".into()]), ..Default::default() };
//! let opts = runtime::RunOptions { id: "0123456789ab".into(), args: vec!["id".into()], ..Default::default() };
//! let rootfs = Path::new("/run/strata/c1/rootfs"); // mounted by the snapshotter
//! let mut spec = runtime::compose(&image, &opts)?;
//! spec.apply_user(&runtime::resolve_user(rootfs, &spec.process.user)?);
//! let code = runtime::run(rootfs, &spec, runtime::SpawnOptions::default())?;
//! # let _ = code; Ok(()) }
//! ```

mod bridge;
mod caps;
mod cgroup;
mod child;
mod devices;
mod devices_bpf;
mod error;
mod etc;
mod net;
mod netlink;
mod plan;
mod process;
pub mod rootless;
mod scope;
mod seccomp;
mod spec;
mod user;

pub use bridge::{
    attach_endpoint, create_network_namespace, detach_endpoint, format_mac, mac_for_ipv4,
    network_namespace_exists, remove_network_namespace, Endpoint, BRIDGE,
};
pub use caps::{
    all_mask as all_capabilities, capability_name, capability_number, DEFAULT_CAPABILITIES,
};
pub use cgroup::{
    is_v2 as cgroup_v2, remove_orphans as remove_orphaned_cgroups,
    remove_stale as remove_stale_cgroups, system_cpu, CgroupStats, ContainerCgroup,
};
pub use devices::{valid_device_mode, DeviceMapping, DeviceRule};
pub use error::{io_text, Error, Phase, Result};
pub use etc::{
    extra_hosts_lines, make_init_layer, write_etc_files, Dns, ETC_FILES, STANDARD_HOSTS,
};
pub use net::{Addresses, PortMapping, PrivateNetwork, Protocol, DNS_FORWARD_ADDRESS, INTERFACE};
pub use process::{
    exec, process_start_time, resize_terminal, run, run_step, spawn, terminal_size, Container,
    ExecOptions, InitProcess, SpawnOptions, Stdio,
};
pub use scope::{bind_in_root, secure_join};
pub use seccomp::{
    validate_profile as validate_seccomp_profile, Seccomp,
    DEFAULT_PROFILE as DEFAULT_SECCOMP_PROFILE,
};
pub use spec::{
    compose, ImageConfig, MountKind, MountSpec, Network, Process, Resources, Rlimit, RunOptions,
    Spec, DEFAULT_PATH, DEFAULT_SHM_SIZE, MASKED_PATHS, READONLY_PATHS,
};
pub use user::{resolve_user, User};
