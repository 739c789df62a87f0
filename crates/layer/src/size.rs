//! Docker's DiffSize of a layer directory: the sizes of every entry that is not a
//! directory (symlinks count their target's length), hardlinked inodes counted once.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{LayerError, Result};

pub fn diff_size(dir: &Path) -> Result<u64> {
    let mut total = 0u64;
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(|e| io_err(&d, e))? {
            let e = e.map_err(|err| io_err(&d, err))?;
            let md = e
                .path()
                .symlink_metadata()
                .map_err(|err| io_err(e.path(), err))?;
            if md.is_dir() {
                stack.push(e.path());
                continue;
            }
            if md.nlink() > 1 && !seen.insert((md.dev(), md.ino())) {
                continue;
            }
            total += md.size();
        }
    }
    Ok(total)
}

fn io_err(path: impl Into<std::path::PathBuf>, err: std::io::Error) -> LayerError {
    LayerError::Source {
        path: path.into(),
        op: "measure",
        err,
    }
}
