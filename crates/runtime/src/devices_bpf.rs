//! Device confinement on cgroup v2, where there is no `devices.allow`: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the container's cgroup, built from the same rules
//! the v1 controller gets (runc and crun do the same). The kernel runs it on every open and
//! mknod of a device node; it returns 1 to allow, 0 to refuse (EPERM).
//!
//! The program is a short list of blocks, one per rule, newest rule first (a later rule
//! overrides an earlier one, as in the v1 list): each block compares the device's type,
//! major and minor numbers and checks that the access asked for is within the rule's, and
//! returns the rule's verdict on a match. A rule for every device (`a *:* rwm`) ends the list
//! with its verdict; with none, nothing else matches and the answer is no.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::devices::DeviceRule;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JSET_K: u8 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// `bpf_cgroup_dev_ctx.access_type`: the device type in the low 16 bits...
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
/// ... and the access in the high 16 bits.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |acc, c| {
        acc | match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => 0,
        }
    })
}

/// The program for `rules` (in the order the v1 list would be written: later ones win).
pub(crate) fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        ins(LDX_W, TYPE, R1, 0, 0),
        ins(AND32_K, TYPE, 0, 0, 0xffff),
        ins(LDX_W, ACCESS, R1, 0, 0),
        ins(RSH32_K, ACCESS, 0, 0, 16),
        ins(LDX_W, MAJOR, R1, 4, 0),
        ins(LDX_W, MINOR, R1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let access = access_bits(&rule.access);
        let every = rule.kind == 'a' && rule.major.is_none() && rule.minor.is_none();
        if every && access == ACC_MKNOD | ACC_READ | ACC_WRITE {
            // Nothing older can matter: this is the answer for whatever is left.
            p.push(ins(MOV64_K, R0, 0, 0, rule.allow as i32));
            p.push(ins(EXIT, 0, 0, 0, 0));
            return p;
        }
        // Jumps are written with off = -1 and pointed past the block once it is complete.
        let mut block = Vec::new();
        match rule.kind {
            'c' => block.push(ins(JNE_K, TYPE, 0, -1, DEV_CHAR)),
            'b' => block.push(ins(JNE_K, TYPE, 0, -1, DEV_BLOCK)),
            _ => {}
        }
        // Any access asked for beyond the rule's: not this rule.
        let beyond = !access & (ACC_MKNOD | ACC_READ | ACC_WRITE);
        if beyond != 0 {
            block.push(ins(JSET_K, ACCESS, 0, -1, beyond));
        }
        if let Some(major) = rule.major {
            block.push(ins(JNE_K, MAJOR, 0, -1, major as i32));
        }
        if let Some(minor) = rule.minor {
            block.push(ins(JNE_K, MINOR, 0, -1, minor as i32));
        }
        block.push(ins(MOV64_K, R0, 0, 0, rule.allow as i32));
        block.push(ins(EXIT, 0, 0, 0, 0));
        let n = block.len();
        for (i, b) in block.iter_mut().enumerate() {
            if b.off == -1 {
                b.off = (n - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(ins(MOV64_K, R0, 0, 0, 0));
    p.push(ins(EXIT, 0, 0, 0, 0));
    p
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to the fields used (the rest stays zero).
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    _rest: [u64; 8],
}

/// `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _rest: [u32; 11],
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Loads the program for `rules` and attaches it to the cgroup v2 directory `dir`. The
/// attachment lives as long as the cgroup.
pub(crate) fn attach(dir: &Path, rules: &[DeviceRule]) -> io::Result<()> {
    let insns = program(rules);
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 4096];
    let mut name = [0u8; 16];
    name[..14].copy_from_slice(b"strata_devices");
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    // SAFETY: the attribute points at live buffers of the sizes given.
    let prog = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &load as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    if prog < 0 {
        let e = io::Error::last_os_error();
        let verifier = String::from_utf8_lossy(&log);
        let verifier = verifier.trim_end_matches('\0').trim();
        return Err(io::Error::new(
            e.kind(),
            format!("load the device program: {e} {verifier}"),
        ));
    }
    // SAFETY: a new descriptor we own.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let cgroup = std::fs::File::open(dir)?;
    let at = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    // SAFETY: plain system call on descriptors we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &at as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("attach the device program: {e}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: char,
        major: Option<u32>,
        minor: Option<u32>,
        a: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: a.into(),
        }
    }

    /// Runs the program on one access as the kernel would (a small interpreter of the few
    /// instructions it uses).
    fn verdict(p: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> i64 {
        let ctx = [(kind | (access << 16)) as u32, major, minor];
        let mut r = [0i64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, R1 as usize);
                    r[dst] = ctx[(i.off / 4) as usize] as i64;
                }
                AND32_K => r[dst] = (r[dst] as u32 & i.imm as u32) as i64,
                RSH32_K => r[dst] = ((r[dst] as u32) >> i.imm) as i64,
                MOV64_K => r[dst] = i.imm as i64,
                JNE_K if r[dst] != i.imm as i64 => pc += i.off as usize,
                JSET_K if r[dst] & i.imm as i64 != 0 => pc += i.off as usize,
                JNE_K | JSET_K => {}
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn docker_default_rules_allow_the_usual_nodes_only() {
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', None, None, "m"),
            rule(true, 'b', None, None, "m"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(136), None, "rwm"),
            rule(true, 'b', Some(7), Some(0), "r"),
        ];
        let p = program(&rules);
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(verdict(&p, DEV_CHAR, rw, 1, 3), 1, "/dev/null");
        assert_eq!(verdict(&p, DEV_CHAR, rw, 136, 5), 1, "a pty");
        assert_eq!(
            verdict(&p, DEV_CHAR, rw, 1, 5),
            0,
            "/dev/zero is not listed"
        );
        assert_eq!(verdict(&p, DEV_BLOCK, ACC_READ, 8, 0), 0, "a host disk");
        assert_eq!(
            verdict(&p, DEV_BLOCK, ACC_MKNOD, 8, 0),
            1,
            "mknod of any node"
        );
        assert_eq!(
            verdict(&p, DEV_BLOCK, ACC_READ, 7, 0),
            1,
            "the one granted read"
        );
        assert_eq!(verdict(&p, DEV_BLOCK, rw, 7, 0), 0, "but not write");
        assert_eq!(verdict(&p, DEV_BLOCK, ACC_READ, 1, 3), 0, "type matters");
    }

    #[test]
    fn an_allow_everything_rule_ends_the_program() {
        let p = program(&[rule(true, 'a', None, None, "rwm")]);
        assert_eq!(p.len(), 8);
        assert_eq!(verdict(&p, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 0), 1);
        let p = program(&[
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'b', Some(8), None, "rwm"),
        ]);
        assert_eq!(
            verdict(&p, DEV_BLOCK, ACC_READ, 8, 1),
            0,
            "the later deny wins"
        );
        assert_eq!(verdict(&p, DEV_CHAR, ACC_READ, 1, 5), 1);
    }

    /// Root only: a real cgroup v2 directory (a cgroup2 mount of our own on a v1 or hybrid
    /// machine) with the program attached; a process in it opens /dev/null and is refused
    /// /dev/zero.
    #[test]
    #[cfg_attr(strata_no_root, ignore = "needs root")]
    fn an_attached_program_refuses_unlisted_devices() {
        // SAFETY: trivial syscall.
        if unsafe { libc::geteuid() } != 0 {
            let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
            assert!(!ci, "needs root (cgroup2, bpf), and CI must run it");
            eprintln!("SKIPPED an_attached_program_refuses_unlisted_devices: needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (base, mounted) = if crate::cgroup::is_v2() {
            (std::path::PathBuf::from("/sys/fs/cgroup"), false)
        } else {
            let c = std::ffi::CString::new(t.path().as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: valid strings.
            let r = unsafe {
                libc::mount(
                    c"none".as_ptr(),
                    c.as_ptr(),
                    c"cgroup2".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            };
            assert_eq!(r, 0, "mount cgroup2: {}", io::Error::last_os_error());
            (t.path().to_path_buf(), true)
        };
        let dir = base.join(format!("strata-bpf-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        attach(
            &dir,
            &[
                rule(false, 'a', None, None, "rwm"),
                rule(true, 'c', Some(1), Some(3), "rwm"),
            ],
        )
        .unwrap();
        let procs = std::ffi::CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes())
            .unwrap();
        // SAFETY: the child makes raw system calls only and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    libc::_exit(100);
                }
                let null_ok = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) >= 0;
                let zero = libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY);
                let zero_refused = zero < 0 && *libc::__errno_location() == libc::EPERM;
                libc::_exit(null_ok as i32 | (zero_refused as i32) << 1);
            }
        }
        let mut status = 0;
        // SAFETY: our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let _ = std::fs::remove_dir(&dir);
        if mounted {
            let c = std::ffi::CString::new(t.path().as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: valid string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        assert!(libc::WIFEXITED(status), "status {status}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            3,
            "1: /dev/null opened, 2: /dev/zero refused"
        );
    }
}
