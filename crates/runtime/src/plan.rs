//! Everything a container's child process needs, prepared in the parent before `clone`:
//! mount operations with their targets resolved inside the root filesystem by
//! [`resolve_in_root`] (symlink-free paths relative to the root; mount points created through
//! directory descriptors only when missing, and recorded), argv/envp as C strings, the `PATH`
//! directories, credentials and capabilities. The child (see `child.rs`) only walks this data.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::child::{
    MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_STRICTATIME,
};
use crate::devices::Node;
use crate::error::{Error, IoContext, Result};
use crate::etc::ETC_FILES;
use crate::process::SpawnOptions;
use crate::scope::{open_root, resolve_in_root, Leaf};
use crate::spec::{MountKind, Network, Process, Spec};

/// What [`Op::MountAt`] mounts.
pub(crate) enum MountSrc {
    /// A clone of the host's tree at `path` (`open_tree(OPEN_TREE_CLONE)`), with its
    /// submounts when `recursive`, read-only all the way down when `readonly`.
    Tree {
        path: CString,
        recursive: bool,
        readonly: bool,
    },
    /// A new filesystem (`fsopen`, `fsconfig` with `params`, `fsmount` with `attrs`).
    Fs {
        fstype: CString,
        params: Vec<(CString, Option<CString>)>,
        attrs: u64,
    },
}

/// One prepared step of the child's setup.
pub(crate) enum Op {
    /// A mount onto `rel` (relative to the root, symlink-free) through descriptors.
    MountAt {
        rel: CString,
        src: MountSrc,
    },
    /// mount(2); `optional` failures with ENOENT are ignored.
    Mount {
        src: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// A device node (`mode` has the type and permission bits), bind-mounted from the host
    /// when mknod is not allowed, then owned by `uid:gid`.
    Device {
        path: CString,
        host: CString,
        mode: libc::mode_t,
        dev: libc::dev_t,
        uid: u32,
        gid: u32,
    },
    Mkdir {
        path: CString,
        mode: libc::mode_t,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// Docker's masked path: /dev/null over a file, an empty read-only tmpfs over a directory.
    Mask {
        path: CString,
    },
    /// Docker's read-only path: bind over itself, then remount read-only.
    Readonly {
        path: CString,
    },
}

/// Everything the child needs, prepared before clone.
pub(crate) struct Plan {
    pub(crate) rootfs: CString,
    pub(crate) pre: Vec<(Op, usize)>,
    pub(crate) post: Vec<(Op, usize)>,
    pub(crate) descs: Vec<String>,
    pub(crate) readonly_root: bool,
    pub(crate) hostname: CString,
    /// A new network namespace (`none` or private): bring up `lo`.
    pub(crate) new_net: bool,
    /// Private network: the child blocks on this pipe's read end until the parent has
    /// connected its namespace (one byte: go; end of file: give up); -1 otherwise.
    pub(crate) net_wait: RawFd,
    /// The parent's end of that pipe, which the child closes first (-1: none).
    pub(crate) net_release: RawFd,
    /// Private network: the namespace the child joins before anything else (-1: none; with
    /// `--network none` the child is cloned into a new one).
    pub(crate) netns: RawFd,
    pub(crate) tail: Tail,
    /// Descriptors the child keeps after taking its standard streams (sorted; set by
    /// `spawn`): the status pipe, the terminal socket, the cgroup files.
    pub(crate) keep_fds: Vec<RawFd>,
    /// The child's end of the socket the terminal master is sent over (-1: no terminal).
    pub(crate) tty_sock: RawFd,
    pub(crate) stdio: [RawFd; 3],
    pub(crate) cgroup_fds: Vec<RawFd>,
    pub(crate) kill_with_parent: bool,
}

/// The part of the setup shared by new containers and `exec`: working directory,
/// credentials, capabilities and the exec itself.
pub(crate) struct Tail {
    /// Directories to create on the way to the working directory (empty for `exec`).
    pub(crate) cwd_prefixes: Vec<CString>,
    pub(crate) cwd: CString,
    pub(crate) caps: u64,
    pub(crate) last_cap: u32,
    pub(crate) nnp: bool,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) groups: Vec<libc::gid_t>,
    /// False in a user namespace whose `setgroups` is denied (rootless with one ID), where
    /// the supplementary groups cannot be changed (and no other group is mapped anyway).
    pub(crate) setgroups: bool,
    pub(crate) argv0: CString,
    pub(crate) argv0_has_slash: bool,
    /// Owns the strings `argv_ptrs` points to.
    pub(crate) _argv: Vec<CString>,
    pub(crate) argv_ptrs: Vec<*const libc::c_char>,
    /// Owns the strings `envp_ptrs` points to.
    pub(crate) _envp: Vec<CString>,
    pub(crate) envp_ptrs: Vec<*const libc::c_char>,
    pub(crate) path_dirs: Vec<CString>,
    /// The compiled seccomp filter (None: unconfined).
    pub(crate) seccomp: Option<crate::seccomp::Program>,
    /// `--ulimit`s: (resource, soft, hard).
    pub(crate) rlimits: Vec<(u32, u64, u64)>,
}

/// Where `--init`'s binary is mounted in the container, as Docker does.
pub(crate) const INIT_TARGET: &str = "/sbin/docker-init";

pub(crate) fn tail_plan(
    p: &Process,
    create_cwd: bool,
    init: bool,
    cache: Option<&Path>,
) -> Result<Tail> {
    if p.args.is_empty() {
        return Err(Error::NoCommand);
    }
    let env = p.full_env();
    let mut args: Vec<&str> = Vec::new();
    if init {
        args.extend([INIT_TARGET, "--"]);
    }
    args.extend(p.args.iter().map(String::as_str));
    let argv: Vec<CString> = args.iter().map(cs).collect::<Result<_>>()?;
    let envp: Vec<CString> = env.iter().map(cs).collect::<Result<_>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    let path_dirs = p
        .env_value("PATH")
        .unwrap_or("")
        .split(':')
        .map(|d| if d.is_empty() { "." } else { d })
        .map(cs)
        .collect::<Result<_>>()?;
    let mut cwd_prefixes = Vec::new();
    if create_cwd {
        let mut acc = String::new();
        for comp in p.cwd.split('/').filter(|c| !c.is_empty()) {
            acc.push('/');
            acc.push_str(comp);
            cwd_prefixes.push(cs(&acc)?);
        }
    }
    let seccomp = crate::seccomp::program(&p.seccomp, p.capabilities, cache)?;
    let last_cap = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    Ok(Tail {
        rlimits: p
            .rlimits
            .iter()
            .map(|r| (r.resource, r.soft, r.hard))
            .collect(),
        cwd_prefixes,
        cwd: cs(&p.cwd)?,
        caps: p.capabilities,
        last_cap,
        nnp: p.no_new_privileges,
        uid: p.uid,
        gid: p.gid,
        groups: p.additional_gids.clone(),
        setgroups: crate::rootless::setgroups_allowed(),
        argv0: argv[0].clone(),
        argv0_has_slash: args[0].contains('/'),
        _argv: argv,
        argv_ptrs,
        _envp: envp,
        envp_ptrs,
        path_dirs,
        seccomp,
    })
}

pub(crate) fn cs(s: impl AsRef<OsStr>) -> Result<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| Error::InvalidOption {
        what: "string",
        value: s.as_ref().to_string_lossy().into_owned(),
        reason: "contains a NUL byte".into(),
    })
}

const NOSUID: libc::c_ulong = libc::MS_NOSUID;
const NODEV: libc::c_ulong = libc::MS_NODEV;
const NOEXEC: libc::c_ulong = libc::MS_NOEXEC;

struct Builder {
    ops: Vec<(Op, usize)>,
    descs: Vec<String>,
}

impl Builder {
    fn push(&mut self, desc: String, op: Op) {
        self.descs.push(desc);
        self.ops.push((op, self.descs.len() - 1));
    }

    fn mount(
        &mut self,
        desc: String,
        src: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> Result<()> {
        let op = Op::Mount {
            src: src.map(cs).transpose()?,
            target: cs(target)?,
            fstype: fstype.map(cs).transpose()?,
            flags,
            data: data.map(cs).transpose()?,
        };
        self.push(desc, op);
        Ok(())
    }
}

/// tmpfs data options (`size=64m,mode=1777`) as fsconfig parameters.
fn fs_params(data: &str) -> Result<Vec<(CString, Option<CString>)>> {
    data.split(',')
        .filter(|o| !o.is_empty())
        .map(|o| match o.split_once('=') {
            Some((k, v)) => Ok((cs(k)?, Some(cs(v)?))),
            None => Ok((cs(o)?, None)),
        })
        .collect()
}

/// A new filesystem of type `fstype` with data options `data` and mount attributes.
fn new_fs(fstype: &str, data: &str, attrs: u64) -> Result<MountSrc> {
    // The source mountinfo shows, as mount(2) would with the type as source.
    let mut params = vec![(cs("source")?, Some(cs(fstype)?))];
    params.extend(fs_params(data)?);
    Ok(MountSrc::Fs {
        fstype: cs(fstype)?,
        params,
        attrs,
    })
}

/// Mount targets resolved in one root filesystem.
struct Targets<'a> {
    root: &'a Path,
    fd: std::os::fd::OwnedFd,
    created: Vec<PathBuf>,
}

impl Targets<'_> {
    /// `dest` resolved inside the root (created as `leaf` when missing): relative, without
    /// symlinks. `what` names the mount in the error.
    fn resolve(&mut self, what: &str, dest: &str, leaf: Leaf) -> Result<PathBuf> {
        resolve_in_root(self.root, &self.fd, dest, leaf, &mut self.created).map_err(|e| {
            Error::MountTarget {
                source_path: what.to_string(),
                target: dest.to_string(),
                reason: format!("{}: {}", e.reason, errno_text(&e.source)),
            }
        })
    }
}

fn errno_text(e: &io::Error) -> String {
    e.raw_os_error()
        .map(crate::error::errno_text)
        .unwrap_or_else(|| e.to_string())
}

/// `/sys/fs/cgroup` as Docker shows it, read-only: on v2 the container's cgroup directory; on
/// v1 a tmpfs with one directory per controller, each the container's cgroup of that
/// controller. Only when the container has cgroups (resource limits).
fn cgroup_mounts(b: &mut Builder, target: &Path, dirs: &[PathBuf]) -> Result<()> {
    let ro_bind = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | NOSUID | NODEV | NOEXEC;
    if dirs.is_empty() {
        return Ok(());
    }
    if crate::cgroup::is_v2() {
        let dir = &dirs[0];
        b.push(
            format!("bind {} to /sys/fs/cgroup", dir.display()),
            Op::Mount {
                src: Some(cs(dir)?),
                target: cs(target)?,
                fstype: None,
                flags: libc::MS_BIND,
                data: None,
            },
        );
        b.push(
            "make /sys/fs/cgroup read-only".into(),
            Op::Mount {
                src: None,
                target: cs(target)?,
                fstype: None,
                flags: ro_bind,
                data: None,
            },
        );
        return Ok(());
    }
    b.mount(
        "mount tmpfs to /sys/fs/cgroup".into(),
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        NOSUID | NODEV | NOEXEC,
        Some("mode=755"),
    )?;
    for dir in dirs {
        // /sys/fs/cgroup/<controller>/strata/<id>
        let Some(ctrl) = dir.components().nth(4) else {
            continue;
        };
        let sub = target.join(ctrl);
        let desc = format!(
            "bind {} to /sys/fs/cgroup/{}",
            dir.display(),
            ctrl.as_os_str().to_string_lossy()
        );
        b.push(
            desc.clone(),
            Op::Mkdir {
                path: cs(&sub)?,
                mode: 0o755,
            },
        );
        b.push(
            desc.clone(),
            Op::Mount {
                src: Some(cs(dir)?),
                target: cs(&sub)?,
                fstype: None,
                flags: libc::MS_BIND,
                data: None,
            },
        );
        b.push(
            desc,
            Op::Mount {
                src: None,
                target: cs(&sub)?,
                fstype: None,
                flags: ro_bind,
                data: None,
            },
        );
    }
    b.mount(
        "make /sys/fs/cgroup read-only".into(),
        None,
        target,
        None,
        libc::MS_REMOUNT | libc::MS_RDONLY | NOSUID | NODEV | NOEXEC,
        Some("mode=755"),
    )?;
    Ok(())
}

pub(crate) fn plan(
    rootfs: &Path,
    spec: &Spec,
    opts: &SpawnOptions,
    stdio: [RawFd; 3],
    cgroup_dirs: &[PathBuf],
    nodes: &[Node],
) -> Result<(Plan, Vec<PathBuf>)> {
    let root = fs::canonicalize(rootfs).ctx("resolve root filesystem", rootfs)?;
    if !root.is_dir() {
        return Err(Error::Io {
            op: "use root filesystem",
            path: root,
            source: io::Error::from_raw_os_error(libc::ENOTDIR),
        });
    }
    let mut t = Targets {
        root: &root,
        fd: open_root(&root).ctx("open root filesystem", &root)?,
        created: Vec::new(),
    };
    let mut b = Builder {
        ops: Vec::new(),
        descs: FIXED_STEPS.iter().map(|s| s.to_string()).collect(),
    };
    let at = |rel: &Path, src: MountSrc| -> Result<Op> {
        Ok(Op::MountAt {
            rel: cs(if rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                rel
            })?,
            src,
        })
    };
    let fs_attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

    let proc_ = t.resolve("proc", "/proc", Leaf::Dir)?;
    b.push(
        "mount proc to /proc".into(),
        at(&proc_, new_fs("proc", "", fs_attrs)?)?,
    );

    let dev_rel = t.resolve("tmpfs", "/dev", Leaf::Dir)?;
    let dev = root.join(&dev_rel);
    b.push(
        "mount tmpfs to /dev".into(),
        at(
            &dev_rel,
            new_fs(
                "tmpfs",
                "mode=755,size=65536k",
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_STRICTATIME,
            )?,
        )?,
    );
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        if nodes.iter().any(|n| n.path == format!("/dev/{name}")) {
            continue;
        }
        b.push(
            format!("create device /dev/{name}"),
            Op::Device {
                path: cs(dev.join(name))?,
                host: cs(format!("/dev/{name}"))?,
                mode: libc::S_IFCHR | 0o666,
                dev: libc::makedev(major, minor),
                uid: 0,
                gid: 0,
            },
        );
    }
    // --device and --privileged nodes: under /dev in the new tmpfs (directories made on the
    // way), elsewhere in the root filesystem (parents created and recorded).
    for n in nodes {
        // The symbolic links made below win over host nodes of the same name (runc replaces
        // /dev/ptmx by a link to the container's own devpts).
        if [
            "/dev/ptmx",
            "/dev/fd",
            "/dev/stdin",
            "/dev/stdout",
            "/dev/stderr",
        ]
        .contains(&n.path.as_str())
        {
            continue;
        }
        let desc = format!("create device {}", n.path);
        let target = match n.path.strip_prefix("/dev/") {
            Some(rel) => {
                let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
                let mut acc = dev.clone();
                for c in comps.iter().take(comps.len().saturating_sub(1)) {
                    acc.push(c);
                    b.push(
                        desc.clone(),
                        Op::Mkdir {
                            path: cs(&acc)?,
                            mode: 0o755,
                        },
                    );
                }
                dev.join(rel)
            }
            None => {
                // The parent is resolved (and made) inside the root like a mount target; the
                // node itself is made by the child, which records nothing on the host.
                let path = Path::new(&n.path);
                let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                    return Err(Error::Device(format!("invalid device path {}", n.path)));
                };
                let parent = t.resolve(
                    &n.host.to_string_lossy(),
                    &parent.to_string_lossy(),
                    Leaf::Dir,
                )?;
                let target = root.join(parent).join(name);
                if fs::symlink_metadata(&target).is_err() {
                    t.created.push(target.clone());
                }
                target
            }
        };
        b.push(
            desc,
            Op::Device {
                path: cs(&target)?,
                host: cs(&n.host)?,
                mode: n.mode,
                dev: n.rdev,
                uid: n.uid,
                gid: n.gid,
            },
        );
    }
    for (name, mode) in [("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o1777)] {
        b.push(
            format!("create /dev/{name}"),
            Op::Mkdir {
                path: cs(dev.join(name))?,
                mode,
            },
        );
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        b.push(
            format!("create /dev/{link}"),
            Op::Symlink {
                target: cs(target)?,
                link: cs(dev.join(link))?,
            },
        );
    }
    b.mount(
        "mount devpts to /dev/pts".into(),
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        NOSUID | NOEXEC,
        Some(if crate::rootless::gid_mapped(5) {
            "newinstance,ptmxmode=0666,mode=0620,gid=5"
        } else {
            // A user namespace without group 5 (`tty`): devpts refuses the option, so the
            // terminals keep the creator's group, as rootless runc leaves them.
            "newinstance,ptmxmode=0666,mode=0620"
        }),
    )?;
    let shm = format!("mode=1777,size={}k", spec.shm_size.div_ceil(1024));
    b.mount(
        "mount shm to /dev/shm".into(),
        Some("shm"),
        &dev.join("shm"),
        Some("tmpfs"),
        NOSUID | NODEV | NOEXEC,
        Some(&shm),
    )?;
    b.mount(
        "mount mqueue to /dev/mqueue".into(),
        Some("mqueue"),
        &dev.join("mqueue"),
        Some("mqueue"),
        NOSUID | NODEV | NOEXEC,
        None,
    )?;

    let sys_rel = t.resolve("sysfs", "/sys", Leaf::Dir)?;
    let ro = if spec.privileged {
        0
    } else {
        MOUNT_ATTR_RDONLY
    };
    if crate::rootless::active() && spec.network == Network::Host {
        // A user namespace may mount sysfs only for a network namespace it owns; with the
        // host's network the host's /sys is bound instead, as rootless runc does.
        b.push(
            "bind /sys to /sys".into(),
            at(
                &sys_rel,
                MountSrc::Tree {
                    path: cs("/sys")?,
                    recursive: true,
                    readonly: !spec.privileged,
                },
            )?,
        );
    } else {
        b.push(
            "mount sysfs to /sys".into(),
            at(&sys_rel, new_fs("sysfs", "", fs_attrs | ro)?)?,
        );
    }
    cgroup_mounts(&mut b, &root.join(&sys_rel).join("fs/cgroup"), cgroup_dirs)?;

    if let Some(state) = &opts.state_dir {
        for name in ETC_FILES {
            let src = state.join(name);
            if !src.exists() {
                continue;
            }
            let dest = format!("/etc/{name}");
            let rel = t.resolve(&src.to_string_lossy(), &dest, Leaf::File)?;
            b.push(
                format!("error mounting {:?} to rootfs at {dest:?}", src.display()),
                at(
                    &rel,
                    MountSrc::Tree {
                        path: cs(&src)?,
                        recursive: false,
                        readonly: false,
                    },
                )?,
            );
        }
    }

    if spec.init {
        let init = opts.init_path.as_ref().ok_or(Error::NoInit)?;
        let rel = t.resolve(&init.to_string_lossy(), INIT_TARGET, Leaf::File)?;
        b.push(
            format!(
                "error mounting {:?} to rootfs at {INIT_TARGET:?}",
                init.display()
            ),
            at(
                &rel,
                MountSrc::Tree {
                    path: cs(init)?,
                    recursive: false,
                    readonly: true,
                },
            )?,
        );
    }

    for m in &spec.mounts {
        match &m.kind {
            MountKind::Bind { source } => {
                let meta = fs::metadata(source).map_err(|_| Error::BindSource(source.clone()))?;
                let leaf = if meta.is_dir() { Leaf::Dir } else { Leaf::File };
                let what = source.to_string_lossy();
                let rel = t.resolve(&what, &m.destination, leaf)?;
                // Docker's binds are recursive (rbind); read-only applies to every submount.
                b.push(
                    format!("error mounting {what:?} to rootfs at {:?}", m.destination),
                    at(
                        &rel,
                        MountSrc::Tree {
                            path: cs(source)?,
                            recursive: true,
                            readonly: m.readonly,
                        },
                    )?,
                );
            }
            MountKind::Tmpfs { options } => {
                let rel = t.resolve("tmpfs", &m.destination, Leaf::Dir)?;
                let data = if options.split(',').any(|o| o.starts_with("mode=")) {
                    options.clone()
                } else if options.is_empty() {
                    "mode=1777".to_string()
                } else {
                    format!("{options},mode=1777")
                };
                let ro = if m.readonly { MOUNT_ATTR_RDONLY } else { 0 };
                b.push(
                    format!("error mounting \"tmpfs\" to rootfs at {:?}", m.destination),
                    at(&rel, new_fs("tmpfs", &data, fs_attrs | ro)?)?,
                );
            }
        }
    }
    let pre = std::mem::take(&mut b.ops);
    for p in &spec.masked_paths {
        b.push(format!("mask {p}"), Op::Mask { path: cs(p)? });
    }
    for p in &spec.readonly_paths {
        b.push(format!("make {p} read-only"), Op::Readonly { path: cs(p)? });
    }
    let post = std::mem::take(&mut b.ops);

    let tail = tail_plan(
        &spec.process,
        true,
        spec.init,
        opts.seccomp_cache.as_deref(),
    )?;
    Ok((
        Plan {
            rootfs: cs(&root)?,
            pre,
            post,
            descs: b.descs,
            readonly_root: spec.readonly_rootfs,
            hostname: cs(&spec.hostname)?,
            new_net: spec.network != Network::Host,
            net_wait: -1,
            net_release: -1,
            netns: -1,
            tail,
            keep_fds: Vec::new(),
            tty_sock: -1,
            stdio,
            cgroup_fds: Vec::new(),
            kill_with_parent: opts.kill_with_parent,
        },
        t.created,
    ))
}

/// Descriptions of the child's fixed steps; their indices are the `S_*` constants.
pub(crate) const FIXED_STEPS: [&str; 17] = [
    "set up standard streams",
    "join cgroup",
    "pivot_root into the root filesystem",
    "remount the root filesystem read-only",
    "set hostname",
    "bring up the loopback interface",
    "change to the working directory",
    "set user and groups",
    "set capabilities",
    "set no_new_privs",
    "set up the terminal",
    "make mounts private",
    "bind the root filesystem",
    "leave the caller's session keyring and become non-dumpable",
    "wait for the network",
    "load the seccomp filter",
    "set the ulimits",
];
pub(crate) const S_STDIO: usize = 0;
pub(crate) const S_CGROUP: usize = 1;
pub(crate) const S_PIVOT: usize = 2;
pub(crate) const S_RO_ROOT: usize = 3;
pub(crate) const S_HOSTNAME: usize = 4;
pub(crate) const S_LO: usize = 5;
pub(crate) const S_CWD: usize = 6;
pub(crate) const S_USER: usize = 7;
pub(crate) const S_CAPS: usize = 8;
pub(crate) const S_NNP: usize = 9;
pub(crate) const S_TTY: usize = 10;
pub(crate) const S_PRIVATE: usize = 11;
pub(crate) const S_ROOT_BIND: usize = 12;
pub(crate) const S_ISOLATE: usize = 13;
pub(crate) const S_NET: usize = 14;
pub(crate) const S_SECCOMP: usize = 15;
pub(crate) const S_RLIMIT: usize = 16;

/// Failure kinds the child reports.
pub(crate) const K_SETUP: u32 = 0;
pub(crate) const K_NOT_IN_PATH: u32 = 1;
pub(crate) const K_STAT: u32 = 2;
pub(crate) const K_EXEC: u32 = 3;
pub(crate) const K_CWD: u32 = 4;

/// The plan for a few `docker run` option sets, on a fake root filesystem in a temporary
/// directory: no root, no namespaces, nothing mounted. What the child would do is compared as
/// text, one line per operation with the description it reports on failure.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::Seccomp;
    use crate::spec::{compose, ImageConfig, MountSpec, RunOptions};

    /// A root filesystem with a few files, and without `/proc`, `/dev` or `/sys`.
    fn rootfs() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for d in ["bin", "etc", "tmp"] {
            fs::create_dir(t.path().join(d)).unwrap();
        }
        fs::write(t.path().join("bin/sh"), "#!fake\n").unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n",
        )
        .unwrap();
        t
    }

    fn image() -> ImageConfig {
        ImageConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        }
    }

    fn run_opts() -> RunOptions {
        RunOptions {
            id: "0123456789abcdef".into(),
            network: Network::None,
            ..Default::default()
        }
    }

    /// `p` relative to `root` when under it (mount targets are host paths in the root).
    fn rel(root: &Path, p: &CString) -> String {
        let p = Path::new(OsStr::from_bytes(p.as_bytes()));
        match p.strip_prefix(root) {
            Ok(r) => format!("<root>/{}", r.display()),
            Err(_) => p.display().to_string(),
        }
    }

    fn s(c: &CString) -> String {
        c.to_string_lossy().into_owned()
    }

    fn attrs(a: u64) -> String {
        let names = [
            (MOUNT_ATTR_RDONLY, "ro"),
            (MOUNT_ATTR_NOSUID, "nosuid"),
            (MOUNT_ATTR_NODEV, "nodev"),
            (MOUNT_ATTR_NOEXEC, "noexec"),
            (MOUNT_ATTR_STRICTATIME, "strictatime"),
        ];
        let v: Vec<&str> = names
            .iter()
            .filter(|(bit, _)| a & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(
            a & !names.iter().fold(0, |m, (b, _)| m | b),
            0,
            "unknown attrs"
        );
        v.join(",")
    }

    fn flags(f: libc::c_ulong) -> String {
        let names = [
            (libc::MS_BIND, "bind"),
            (libc::MS_REMOUNT, "remount"),
            (libc::MS_RDONLY, "ro"),
            (libc::MS_NOSUID, "nosuid"),
            (libc::MS_NODEV, "nodev"),
            (libc::MS_NOEXEC, "noexec"),
            (libc::MS_REC, "rec"),
        ];
        let v: Vec<&str> = names
            .iter()
            .filter(|(bit, _)| f & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        v.join(",")
    }

    /// One line per operation: `description | operation`.
    fn lines(plan: &Plan, ops: &[(Op, usize)], root: &Path) -> Vec<String> {
        ops.iter()
            .map(|(op, d)| {
                let what = match op {
                    Op::MountAt { rel: r, src } => match src {
                        MountSrc::Tree {
                            path,
                            recursive,
                            readonly,
                        } => format!(
                            "at {}: tree {}{}{}",
                            s(r),
                            rel(root, path),
                            if *recursive { " rec" } else { "" },
                            if *readonly { " ro" } else { "" }
                        ),
                        MountSrc::Fs {
                            fstype,
                            params,
                            attrs: a,
                        } => {
                            let p: Vec<String> = params
                                .iter()
                                .map(|(k, v)| match v {
                                    Some(v) => format!("{}={}", s(k), s(v)),
                                    None => s(k),
                                })
                                .collect();
                            format!("at {}: {} [{}] {}", s(r), s(fstype), p.join(","), attrs(*a))
                        }
                    },
                    Op::Mount {
                        src,
                        target,
                        fstype,
                        flags: f,
                        data,
                    } => format!(
                        "mount {} on {} type {} {} [{}]",
                        src.as_ref().map_or("-".into(), s),
                        rel(root, target),
                        fstype.as_ref().map_or("-".into(), s),
                        flags(*f),
                        data.as_ref().map_or(String::new(), s)
                    ),
                    Op::Device {
                        path,
                        host,
                        mode,
                        dev,
                        uid,
                        gid,
                    } => format!(
                        "device {} from {} {:o} {}:{} {uid}:{gid}",
                        rel(root, path),
                        s(host),
                        mode,
                        libc::major(*dev),
                        libc::minor(*dev)
                    ),
                    Op::Mkdir { path, mode } => format!("mkdir {} {mode:o}", rel(root, path)),
                    Op::Symlink { target, link } => {
                        format!("symlink {} -> {}", rel(root, link), s(target))
                    }
                    Op::Mask { path } => format!("mask {}", s(path)),
                    Op::Readonly { path } => format!("readonly {}", s(path)),
                };
                format!("{} | {what}", plan.descs[*d])
            })
            .collect()
    }

    /// The plan for `opts` (with spawn's options `spawn`) on a fresh fake root filesystem:
    /// the plan, its `pre` and `post` lines, and the paths it created in the root.
    struct Planned {
        plan: Plan,
        pre: Vec<String>,
        post: Vec<String>,
        created: Vec<String>,
        _root: tempfile::TempDir,
    }

    fn planned_with(opts: &RunOptions, spawn: &SpawnOptions, nodes: &[Node]) -> Planned {
        let t = rootfs();
        let root = fs::canonicalize(t.path()).unwrap();
        let spec = compose(&image(), opts).unwrap();
        let (plan, created) = super::plan(&root, &spec, spawn, [0, 1, 2], &[], nodes).unwrap();
        let pre = lines(&plan, &plan.pre, &root);
        let post = lines(&plan, &plan.post, &root);
        let created = created
            .iter()
            .map(|p| match p.strip_prefix(&root) {
                Ok(r) => format!("<root>/{}", r.display()),
                Err(_) => p.display().to_string(),
            })
            .collect();
        Planned {
            plan,
            pre,
            post,
            created,
            _root: t,
        }
    }

    fn planned(opts: &RunOptions) -> Planned {
        planned_with(opts, &SpawnOptions::default(), &[])
    }

    /// What every container gets before its own mounts: /proc, a tmpfs /dev with Docker's
    /// nodes, links and pseudo-filesystems, and sysfs (read-only unless `privileged`).
    fn base(sys_ro: bool) -> Vec<String> {
        let mut v: Vec<String> = [
            "mount proc to /proc | at proc: proc [source=proc] nosuid,nodev,noexec",
            "mount tmpfs to /dev | at dev: tmpfs [source=tmpfs,mode=755,size=65536k] nosuid,strictatime",
            "create device /dev/null | device <root>/dev/null from /dev/null 20666 1:3 0:0",
            "create device /dev/zero | device <root>/dev/zero from /dev/zero 20666 1:5 0:0",
            "create device /dev/full | device <root>/dev/full from /dev/full 20666 1:7 0:0",
            "create device /dev/random | device <root>/dev/random from /dev/random 20666 1:8 0:0",
            "create device /dev/urandom | device <root>/dev/urandom from /dev/urandom 20666 1:9 0:0",
            "create device /dev/tty | device <root>/dev/tty from /dev/tty 20666 5:0 0:0",
            "create /dev/pts | mkdir <root>/dev/pts 755",
            "create /dev/shm | mkdir <root>/dev/shm 1777",
            "create /dev/mqueue | mkdir <root>/dev/mqueue 1777",
            "create /dev/fd | symlink <root>/dev/fd -> /proc/self/fd",
            "create /dev/stdin | symlink <root>/dev/stdin -> /proc/self/fd/0",
            "create /dev/stdout | symlink <root>/dev/stdout -> /proc/self/fd/1",
            "create /dev/stderr | symlink <root>/dev/stderr -> /proc/self/fd/2",
            "create /dev/ptmx | symlink <root>/dev/ptmx -> pts/ptmx",
            "mount devpts to /dev/pts | mount devpts on <root>/dev/pts type devpts nosuid,noexec [newinstance,ptmxmode=0666,mode=0620,gid=5]",
            "mount shm to /dev/shm | mount shm on <root>/dev/shm type tmpfs nosuid,nodev,noexec [mode=1777,size=65536k]",
            "mount mqueue to /dev/mqueue | mount mqueue on <root>/dev/mqueue type mqueue nosuid,nodev,noexec []",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(format!(
            "mount sysfs to /sys | at sys: sysfs [source=sysfs] {}",
            if sys_ro {
                "ro,nosuid,nodev,noexec"
            } else {
                "nosuid,nodev,noexec"
            }
        ));
        v
    }

    /// Docker's masked and read-only paths, in its order.
    fn docker_post() -> Vec<String> {
        let mut v: Vec<String> = crate::spec::MASKED_PATHS
            .iter()
            .map(|p| format!("mask {p} | mask {p}"))
            .collect();
        v.extend(
            crate::spec::READONLY_PATHS
                .iter()
                .map(|p| format!("make {p} read-only | readonly {p}")),
        );
        v
    }

    /// The bit of capability `name`.
    fn cap(name: &str) -> u64 {
        1 << crate::caps::capability_number(name).unwrap()
    }

    fn default_caps() -> u64 {
        crate::caps::effective_mask(false, &[], &[]).unwrap()
    }

    fn argv(t: &Tail) -> Vec<String> {
        t._argv.iter().map(s).collect()
    }

    #[test]
    fn default_container() {
        let p = planned(&run_opts());
        // The child's fixed steps come first, so that their indices are the S_* constants.
        assert_eq!(
            p.plan.descs[..FIXED_STEPS.len()],
            FIXED_STEPS.map(String::from)
        );
        assert_eq!(p.pre, base(true));
        assert_eq!(p.post, docker_post());
        for masked in ["/proc/kcore", "/proc/keys", "/sys/firmware"] {
            assert!(p.post.contains(&format!("mask {masked} | mask {masked}")));
        }
        assert!(p
            .post
            .contains(&"make /proc/sys read-only | readonly /proc/sys".to_string()));
        // The mount points the image lacked were made, and recorded for cleanup.
        assert_eq!(p.created, ["<root>/proc", "<root>/dev", "<root>/sys"]);
        let plan = &p.plan;
        assert!(!plan.readonly_root);
        assert!(plan.new_net, "--network none: a new namespace with lo");
        assert_eq!(s(&plan.hostname), "0123456789ab");
        assert_eq!(plan.stdio, [0, 1, 2]);
        // Descriptors are spawn's business: the plan keeps none and has no terminal, network
        // pipe or cgroup files yet.
        assert!(plan.keep_fds.is_empty());
        assert!(plan.cgroup_fds.is_empty());
        assert_eq!(
            (plan.tty_sock, plan.net_wait, plan.net_release, plan.netns),
            (-1, -1, -1, -1)
        );
        assert!(!plan.kill_with_parent);
        let t = &plan.tail;
        assert_eq!(t.caps, default_caps());
        assert!(t.caps & cap("SYS_ADMIN") == 0);
        assert!(t.caps & cap("CHOWN") != 0);
        assert!(!t.nnp, "no_new_privs only when asked, as Docker");
        assert!(t.seccomp.is_some(), "Docker's default seccomp profile");
        assert_eq!(argv(t), ["sh"]);
        assert!(!t.argv0_has_slash);
        assert_eq!((t.uid, t.gid), (0, 0));
        assert_eq!(s(&t.cwd), "/");
        assert!(t.cwd_prefixes.is_empty());
        assert_eq!(t.argv_ptrs.len(), 2, "argv is NULL-terminated");
        assert!(t.argv_ptrs[1].is_null());
        assert!(t.envp_ptrs.last().unwrap().is_null());
        let dirs: Vec<String> = t.path_dirs.iter().map(s).collect();
        assert_eq!(
            dirs,
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin"
            ]
        );
    }

    #[test]
    fn read_only_root_filesystem() {
        let p = planned(&RunOptions {
            read_only: true,
            ..run_opts()
        });
        assert!(p.plan.readonly_root, "the child remounts / read-only");
        assert_eq!(p.pre, base(true));
        assert_eq!(p.post, docker_post());
    }

    #[test]
    fn read_only_bind_and_a_bind_of_a_file() {
        let host = tempfile::tempdir().unwrap();
        let src = fs::canonicalize(host.path()).unwrap();
        fs::write(src.join("f"), "x").unwrap();
        let p = planned(&RunOptions {
            mounts: vec![
                MountSpec {
                    kind: MountKind::Bind {
                        source: src.clone(),
                    },
                    destination: "/data/in".into(),
                    readonly: true,
                },
                MountSpec {
                    kind: MountKind::Bind {
                        source: src.join("f"),
                    },
                    destination: "/etc/f".into(),
                    readonly: false,
                },
            ],
            ..run_opts()
        });
        let mut want = base(true);
        want.push(format!(
            "error mounting {:?} to rootfs at \"/data/in\" | at data/in: tree {} rec ro",
            src.display(),
            src.display()
        ));
        want.push(format!(
            "error mounting {:?} to rootfs at \"/etc/f\" | at etc/f: tree {} rec",
            src.join("f").display(),
            src.join("f").display()
        ));
        assert_eq!(p.pre, want);
        // The missing directories and the file mount point were made in the root, not on the
        // host's side.
        assert_eq!(
            p.created,
            [
                "<root>/proc",
                "<root>/dev",
                "<root>/sys",
                "<root>/data",
                "<root>/data/in",
                "<root>/etc/f"
            ]
        );
        assert!(p._root.path().join("etc/f").is_file());
    }

    #[test]
    fn a_bind_whose_source_is_missing_is_docker_s_error() {
        let t = rootfs();
        let spec = compose(
            &image(),
            &RunOptions {
                mounts: vec![MountSpec {
                    kind: MountKind::Bind {
                        source: "/nonexistent/strata-test".into(),
                    },
                    destination: "/data".into(),
                    readonly: false,
                }],
                ..run_opts()
            },
        )
        .unwrap();
        let err = super::plan(
            t.path(),
            &spec,
            &SpawnOptions::default(),
            [0, 1, 2],
            &[],
            &[],
        )
        .err()
        .unwrap();
        assert!(matches!(err, Error::BindSource(_)), "{err}");
    }

    #[test]
    fn tmpfs_mounts() {
        let p = planned(&RunOptions {
            mounts: vec![
                MountSpec {
                    kind: MountKind::Tmpfs {
                        options: String::new(),
                    },
                    destination: "/run".into(),
                    readonly: false,
                },
                MountSpec {
                    kind: MountKind::Tmpfs {
                        options: "size=1m,mode=700".into(),
                    },
                    destination: "/tmp".into(),
                    readonly: true,
                },
            ],
            ..run_opts()
        });
        let mut want = base(true);
        want.push(
            "error mounting \"tmpfs\" to rootfs at \"/run\" | at run: tmpfs [source=tmpfs,mode=1777] nosuid,nodev,noexec".into(),
        );
        want.push(
            "error mounting \"tmpfs\" to rootfs at \"/tmp\" | at tmp: tmpfs [source=tmpfs,size=1m,mode=700] ro,nosuid,nodev,noexec".into(),
        );
        assert_eq!(p.pre, want);
        assert!(p.created.contains(&"<root>/run".to_string()));
        assert!(
            !p.created.contains(&"<root>/tmp".to_string()),
            "/tmp was there"
        );
    }

    #[test]
    fn privileged() {
        let node = |path: &str, host: &str, mode, (ma, mi)| Node {
            path: path.into(),
            host: host.into(),
            mode,
            rdev: libc::makedev(ma, mi),
            uid: 0,
            gid: 6,
        };
        // As devices::resolve gives for --privileged: the host's nodes, including those the
        // container makes anyway.
        let nodes = [
            node("/dev/null", "/dev/null", libc::S_IFCHR | 0o666, (1, 3)),
            node("/dev/ptmx", "/dev/ptmx", libc::S_IFCHR | 0o666, (5, 2)),
            node("/dev/loop0", "/dev/loop0", libc::S_IFBLK | 0o660, (7, 0)),
            node(
                "/dev/net/tun",
                "/dev/net/tun",
                libc::S_IFCHR | 0o666,
                (10, 200),
            ),
        ];
        let p = planned_with(
            &RunOptions {
                privileged: true,
                ..run_opts()
            },
            &SpawnOptions::default(),
            &nodes,
        );
        let mut want = base(false);
        // Docker's own /dev/null gives way to the host's node of that name; /dev/ptmx stays the
        // link to the container's devpts.
        want.remove(2);
        want.splice(
            7..7,
            [
                "create device /dev/null | device <root>/dev/null from /dev/null 20666 1:3 0:6",
                "create device /dev/loop0 | device <root>/dev/loop0 from /dev/loop0 60660 7:0 0:6",
                "create device /dev/net/tun | mkdir <root>/dev/net 755",
                "create device /dev/net/tun | device <root>/dev/net/tun from /dev/net/tun 20666 10:200 0:6",
            ]
            .map(String::from),
        );
        assert_eq!(p.pre, want);
        assert_eq!(p.post, Vec::<String>::new(), "nothing masked or read-only");
        let t = &p.plan.tail;
        assert_eq!(t.caps, crate::caps::effective_mask(true, &[], &[]).unwrap());
        assert!(t.caps & cap("SYS_ADMIN") != 0);
        assert!(!t.nnp, "no no_new_privs when privileged");
        assert!(t.seccomp.is_none(), "unconfined when privileged");
    }

    #[test]
    fn networks() {
        let net = |network| {
            planned(&RunOptions {
                network,
                ..run_opts()
            })
            .plan
            .new_net
        };
        assert!(net(Network::None));
        assert!(net(Network::Private));
        assert!(!net(Network::Host), "--network host: the host's namespace");
        let host = planned(&RunOptions {
            network: Network::Host,
            host_hostname: "the-host".into(),
            ..run_opts()
        });
        assert_eq!(s(&host.plan.hostname), "the-host");
    }

    #[test]
    fn init() {
        let dir = tempfile::tempdir().unwrap();
        let tini = fs::canonicalize(dir.path()).unwrap().join("tini-static");
        fs::write(&tini, "#!fake\n").unwrap();
        let opts = RunOptions {
            init: true,
            ..run_opts()
        };
        let p = planned_with(
            &opts,
            &SpawnOptions {
                init_path: Some(tini.clone()),
                ..Default::default()
            },
            &[],
        );
        let mut want = base(true);
        want.push(format!(
            "error mounting {:?} to rootfs at \"/sbin/docker-init\" | at sbin/docker-init: tree {} ro",
            tini.display(),
            tini.display()
        ));
        assert_eq!(p.pre, want);
        assert!(p.created.ends_with(&[
            "<root>/sbin".to_string(),
            "<root>/sbin/docker-init".to_string()
        ]));
        let t = &p.plan.tail;
        assert_eq!(argv(t), ["/sbin/docker-init", "--", "sh"]);
        assert!(t.argv0_has_slash);

        // Without the binary, there is no plan.
        let spec = compose(&image(), &opts).unwrap();
        let r = rootfs();
        let err = super::plan(
            r.path(),
            &spec,
            &SpawnOptions::default(),
            [0, 1, 2],
            &[],
            &[],
        )
        .err()
        .unwrap();
        assert!(matches!(err, Error::NoInit), "{err}");
    }

    #[test]
    fn etc_files_workdir_and_security_options() {
        let state = tempfile::tempdir().unwrap();
        let st = fs::canonicalize(state.path()).unwrap();
        fs::write(st.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        fs::write(st.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        let p = planned_with(
            &RunOptions {
                workdir: Some("/srv/app".into()),
                no_new_privileges: false,
                seccomp: Seccomp::Unconfined,
                cap_drop: vec!["CHOWN".into()],
                ..run_opts()
            },
            &SpawnOptions {
                state_dir: Some(st.clone()),
                kill_with_parent: true,
                ..Default::default()
            },
            &[],
        );
        let etc: Vec<&String> = p.pre.iter().filter(|l| l.contains("/etc/")).collect();
        let want: Vec<String> = ETC_FILES
            .iter()
            .filter(|n| st.join(n).exists())
            .map(|n| {
                format!(
                    "error mounting {:?} to rootfs at \"/etc/{n}\" | at etc/{n}: tree {}",
                    st.join(n).display(),
                    st.join(n).display()
                )
            })
            .collect();
        assert_eq!(etc.len(), 2);
        assert_eq!(etc, want.iter().collect::<Vec<_>>());
        let plan = &p.plan;
        assert!(plan.kill_with_parent);
        let t = &plan.tail;
        let prefixes: Vec<String> = t.cwd_prefixes.iter().map(s).collect();
        assert_eq!(
            prefixes,
            ["/srv", "/srv/app"],
            "made on the way in the child"
        );
        assert_eq!(s(&t.cwd), "/srv/app");
        assert!(!t.nnp);
        assert!(t.seccomp.is_none());
        assert_eq!(t.caps, default_caps() & !cap("CHOWN"));
    }
}
