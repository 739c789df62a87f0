//! Docker's containers on strata's libraries, without a daemon.
//!
//! A container is a record in the store (its image, options and run state), a writable
//! snapshot stacked on Docker's `-init` layer and the image's layers, and a state directory
//! (`ROOT/containers/ID`: the `/etc` files, the rootfs mount point, the log of `-d` runs).
//! [`Containers`] holds the store and snapshotter of one strata root and implements the
//! commands: [`Containers::create`], [`Containers::start`] (this process monitors the
//! container until it ends), [`Containers::start_detached`], [`Containers::stop`],
//! [`Containers::kill`], [`Containers::wait`], [`Containers::remove`],
//! [`Containers::prune`], [`Containers::diff`], [`Containers::commit`],
//! [`Containers::export`], and the views [`Containers::inspect`] and [`Containers::summaries`].
//!
//! **Architecture invariant:** nothing outlives its owner unnoticed. A container's process
//! dies with the strata process that monitors it; [`Containers::cleanup`] (run by every
//! container command) turns a `running` record whose process is gone into `exited`,
//! unmounts what is left mounted and removes snapshots no record names.

// `inspect`'s document is one `json!` with every field of Docker's structs.
#![recursion_limit = "512"]

mod attach;
mod changes;
mod config;
mod control;
mod copy;
mod error;
mod lifecycle;
mod logs;
mod mounts;
mod networks;
mod ports;
mod top;
mod views;
mod volumes;

pub use attach::serve_stdin;
pub use changes::{Change, ChangeKind, CommitOptions};
pub use config::{
    check_dns_servers, check_resources, generate_name, new_id, parse_extra_hosts, restart_policy,
    validate_name, CreateOptions, DeviceMapping,
};
pub use control::{StatsSample, UpdateOptions};
pub use copy::{CopyError, CopyOptions, PathStat};
pub use error::{Error, Result};
pub use lifecycle::{signal_number, Containers, ExecRequest, StartIo};
pub use logs::{log_pipes, parse_line, read_entries, LogEntry, LogPump, Stream};
pub use mounts::{parse_mount_flag, validate_volume_name, MountPoint, MountType};
pub use networks::{
    Attachment, CreateNetwork, Network, NetworkConfig, BUILTIN as BUILTIN_NETWORKS,
};
pub use ports::{
    display as ports_column, parse_expose, parse_publish, PortBinding, PortBindings, PublishedPort,
};
pub use store::{ContainerRecord, ContainerState};
pub use top::{parse_ps, Top};
pub use views::Summary;
pub use volumes::{Volume, VolumeRequest};
