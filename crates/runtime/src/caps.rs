//! Linux capability names and numbers, Docker's default set, and `--cap-add`/`--cap-drop`
//! applied the way Docker applies them.

use crate::error::{Error, Result};

/// Capability names in number order (CAP_CHOWN = 0 ...).
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default capabilities (moby `caps.DefaultCapabilities`): mask 0xa80425fb.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// The number of a capability given as `NET_ADMIN`, `CAP_NET_ADMIN` or `net_admin`.
pub fn capability_number(name: &str) -> Option<u32> {
    let up = name.to_ascii_uppercase();
    let bare = up.strip_prefix("CAP_").unwrap_or(&up);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// The `CAP_`-prefixed name of capability `n`.
pub fn capability_name(n: u32) -> Option<String> {
    NAMES.get(n as usize).map(|s| format!("CAP_{s}"))
}

/// Every capability (`--privileged`, `exec --privileged`).
pub fn all_mask() -> u64 {
    (1u64 << NAMES.len()) - 1
}

fn mask_of(names: &[String], field: &'static str) -> Result<u64> {
    let mut m = 0;
    for n in names {
        if n.eq_ignore_ascii_case("ALL") {
            m |= all_mask();
            continue;
        }
        let c = capability_number(n).ok_or_else(|| {
            let up = n.to_ascii_uppercase();
            Error::UnknownCapability {
                field,
                name: if up.starts_with("CAP_") {
                    up
                } else {
                    format!("CAP_{up}")
                },
            }
        })?;
        m |= 1 << c;
    }
    Ok(m)
}

/// The capability mask Docker gives a container: all with `--privileged`; otherwise the
/// default set, where dropping `ALL` starts from nothing, adding `ALL` gives everything, and
/// adds win over drops of the same capability.
pub fn effective_mask(privileged: bool, add: &[String], drop: &[String]) -> Result<u64> {
    let add_m = mask_of(add, "CapAdd")?;
    let drop_m = mask_of(drop, "CapDrop")?;
    if privileged {
        return Ok(all_mask());
    }
    let has_all = |v: &[String]| v.iter().any(|s| s.eq_ignore_ascii_case("ALL"));
    let base = mask_of(
        &DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        "CapAdd",
    )?;
    if has_all(add) {
        return Ok(all_mask() & !(drop_m & !all_mask_if(has_all(drop))));
    }
    if has_all(drop) {
        return Ok(add_m);
    }
    Ok((base & !drop_m) | add_m)
}

fn all_mask_if(b: bool) -> u64 {
    if b {
        all_mask()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_mask_matches_docker() {
        assert_eq!(effective_mask(false, &[], &[]).unwrap(), 0xa80425fb);
    }

    #[test]
    fn add_and_drop_follow_docker() {
        let m = effective_mask(false, &v(&["NET_ADMIN"]), &v(&["cap_chown"])).unwrap();
        assert_eq!(m, (0xa80425fb & !1) | (1 << 12));
        assert_eq!(
            effective_mask(false, &v(&["KILL"]), &v(&["ALL"])).unwrap(),
            1 << 5
        );
        assert_eq!(effective_mask(true, &[], &v(&["ALL"])).unwrap(), all_mask());
        let e = effective_mask(false, &v(&["nope"]), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid CapAdd: unknown capability: \"CAP_NOPE\""
        );
        assert_eq!(capability_name(21).unwrap(), "CAP_SYS_ADMIN");
    }
}
