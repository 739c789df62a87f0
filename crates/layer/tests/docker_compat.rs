//! Byte-for-byte compatibility with Docker 20.10: `fixtures/docker-20.10-commit-layer.tar` is
//! a layer dockerd wrote for `docker commit` (see `fixtures/docker-20.10-commit.sh`): shared
//! whiteout inodes, an opaque directory, PAX names and link targets, a USTAR prefix, a file
//! capability, hardlinked files, fifos and symlinks, setuid/setgid/sticky bits, a uid that
//! needs PAX, and mtimes before 1970 and after 2242. Unpacked as an overlay lower directory
//! and written again, it must give the very same bytes, so the same diff_id.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{require_root, tar_names, xattrs};
use layer::{apply_layer, write_layer, Compression};

fn fixture() -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker-20.10-commit-layer.tar"),
    )
    .unwrap()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn docker_layer_unpacks_and_rewrites_identically() {
    if !require_root() {
        return;
    }
    let docker = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let report = apply_layer(&docker[..], dir).unwrap();
    assert_eq!(report.diff_id, oci::Digest::of(&docker));
    assert_eq!(report.entries as usize, tar_names(&docker).len());

    // What the layer holds, as overlayfs expects it.
    let wo_a = fs::symlink_metadata(dir.join("d1/a")).unwrap();
    let wo_old = fs::symlink_metadata(dir.join("etc/old")).unwrap();
    assert!(wo_a.file_type().is_char_device() && wo_a.rdev() == 0);
    assert_eq!(
        wo_a.ino(),
        wo_old.ino(),
        "whiteouts share an inode, as the kernel made them"
    );
    assert_eq!(
        xattrs(&dir.join("d2"))
            .get(&b"trusted.overlay.opaque"[..])
            .map(Vec::as_slice),
        Some(&b"y"[..])
    );
    let cap = xattrs(&dir.join("capped"));
    assert!(cap.contains_key(&b"security.capability"[..]), "{cap:?}");
    assert_eq!(
        fs::symlink_metadata(dir.join("suid")).unwrap().mode(),
        0o104755
    );
    assert_eq!(
        fs::symlink_metadata(dir.join("sticky")).unwrap().mode(),
        0o041777
    );
    assert_eq!(
        fs::symlink_metadata(dir.join("sg")).unwrap().mode(),
        0o042775
    );
    assert_eq!(
        fs::symlink_metadata(dir.join("bigid")).unwrap().uid(),
        3_000_000
    );
    assert_eq!(
        fs::symlink_metadata(dir.join("ancient")).unwrap().mtime(),
        -(1i64 << 31)
    );
    assert!(fs::symlink_metadata(dir.join("future")).unwrap().mtime() > 8_589_934_591);
    assert_eq!(fs::read(dir.join("caf\u{e9}")).unwrap(), b"utf\n");
    assert_eq!(
        fs::read_link(dir.join("longlink"))
            .unwrap()
            .as_os_str()
            .len(),
        200
    );
    let fifo = fs::symlink_metadata(dir.join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(
        fifo.ino(),
        fs::symlink_metadata(dir.join("fifo2")).unwrap().ino()
    );
    assert_eq!(
        fs::symlink_metadata(dir.join("s1")).unwrap().ino(),
        fs::symlink_metadata(dir.join("s2")).unwrap().ino()
    );

    // Written again: Docker's exact bytes.
    let mut ours = Vec::new();
    let digests = write_layer(dir, &mut ours, Compression::None).unwrap();
    assert_eq!(tar_names(&ours), tar_names(&docker));
    assert!(
        ours == docker,
        "rewritten layer differs from Docker's at byte {:?}",
        first_difference(&ours, &docker)
    );
    assert_eq!(digests.diff_id, report.diff_id);
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then_some(a.len().min(b.len())))
}
