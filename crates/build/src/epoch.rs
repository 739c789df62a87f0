//! `SOURCE_DATE_EPOCH` (BuildKit's reproducible builds): every time a build writes, the
//! config's and history's `created` and the mtimes in its layers, is clamped to it.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};

/// Sets every mtime under `dir` (not `dir` itself, which is no entry of a layer) that is later
/// than `epoch` to `epoch`, as BuildKit's `rewrite-timestamp` does; symlinks are not followed.
pub(crate) fn clamp_mtimes(dir: &Path, epoch: i64) -> io::Result<()> {
    let time = Timespec {
        tv_sec: epoch,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let path = e?.path();
            let md = fs::symlink_metadata(&path)?;
            if md.is_dir() {
                stack.push(path.clone());
            }
            if md.mtime() > epoch || (md.mtime() == epoch && md.mtime_nsec() > 0) {
                rustix::fs::utimensat(CWD, &path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_times_are_clamped_earlier_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        fs::write(&old, "").unwrap();
        let t = Timestamps {
            last_access: Timespec {
                tv_sec: 100,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: 100,
                tv_nsec: 0,
            },
        };
        rustix::fs::utimensat(CWD, &old, &t, AtFlags::empty()).unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/new"), "").unwrap();
        std::os::unix::fs::symlink("/nowhere", dir.path().join("d/link")).unwrap();
        clamp_mtimes(dir.path(), 1000).unwrap();
        let m = |p: &str| fs::symlink_metadata(dir.path().join(p)).unwrap().mtime();
        assert_eq!(m("old"), 100);
        assert_eq!(m("d"), 1000);
        assert_eq!(m("d/new"), 1000);
        assert_eq!(m("d/link"), 1000);
    }
}
