//! `build --output`/`-o`: BuildKit's exporters. `type=image` (the default: the store),
//! `type=local,dest=DIR` (the final image's root filesystem), `type=tar,dest=FILE|-` (the same
//! as one tar), `type=oci|docker,dest=FILE|-` (an archive `load` and `docker load` read;
//! `tar=false` writes the layout as a directory), and `-o DIR` (`type=local`), `-o -`
//! (`type=tar`). The specs and their errors are buildx's (`ParseExports`, `CreateExports`).

use std::fs;
use std::io::{self, Write};
use std::os::fd::FromRawFd;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use oci::{Digest, Reference};

use crate::Failure;

/// Where an archive goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dest {
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// The store (`type=image`, and `type=docker` without `dest`).
    Image,
    Local(PathBuf),
    Tar(Dest),
    /// `type=oci` or `type=docker` (the archive `save` writes is both).
    Archive(Dest),
    /// `type=oci|docker,tar=false`: the OCI layout as a directory.
    Layout(PathBuf),
}

/// One `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Output {
    pub kind: Kind,
    /// `name=`: the image's names (tags in the store, names in an archive).
    pub names: Vec<Reference>,
}

fn error(msg: impl Into<String>) -> anyhow::Error {
    Failure::new(1, msg).into()
}

/// Parses every `--output`, checking destinations as buildx does before the build starts.
pub(super) fn parse_outputs(specs: &[String]) -> Result<Vec<Output>> {
    let mut out = Vec::new();
    let mut stdout_used = false;
    for s in specs {
        let o = parse_output(s)?;
        if matches!(
            &o.kind,
            Kind::Tar(Dest::Stdout) | Kind::Archive(Dest::Stdout)
        ) {
            if stdout_used {
                return Err(error("multiple outputs configured to write to stdout"));
            }
            stdout_used = true;
        }
        out.push(o);
    }
    Ok(out)
}

fn parse_output(s: &str) -> Result<Output> {
    let fields = dockerfile::csv_fields(s).map_err(error)?;
    // A lone path (no `type=`): a directory, or `-` for a tar on standard output.
    if fields.len() == 1 && fields[0] == s && !s.starts_with("type=") {
        let kind = if s == "-" {
            Kind::Tar(file_dest("tar", Some(s))?)
        } else {
            Kind::Local(dir_dest("local", Some(s))?)
        };
        return Ok(Output {
            kind,
            names: Vec::new(),
        });
    }
    let mut kind = None;
    let mut dest = None;
    let mut names = Vec::new();
    let mut tar = true;
    for field in &fields {
        let Some((key, value)) = field.split_once('=') else {
            return Err(error(format!("invalid value {field}")));
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "type" => kind = Some(value.to_string()),
            "dest" => dest = Some(value.to_string()),
            "name" => {
                for n in value.split(',').filter(|n| !n.is_empty()) {
                    names.push(image::parse_name(n).map_err(|e| error(e.to_string()))?);
                }
            }
            "tar" => tar = value.parse::<bool>().unwrap_or(true),
            "push" if value.parse::<bool>().unwrap_or(false) => {
                return Err(error(
                    "type=registry (push=true) is not supported: build, then push the image with strata push",
                ))
            }
            // BuildKit keeps options it does not know (and the ones that change nothing
            // here: compression, rewrite-timestamp, …) without complaint.
            _ => {}
        }
    }
    let kind = match kind.as_deref() {
        None | Some("") => return Err(error("type is required for output")),
        Some("image") => Kind::Image,
        // BuildKit's `type=image,push=true`.
        Some("registry") => {
            return Err(error(
                "type=registry (push=true) is not supported: build, then push the image with strata push",
            ))
        }
        Some("local") => Kind::Local(dir_dest("local", dest.as_deref())?),
        Some("tar") => Kind::Tar(file_dest("tar", Some(dest.as_deref().unwrap_or("-")))?),
        Some(t @ ("oci" | "docker")) if !tar => Kind::Layout(dir_dest(t, dest.as_deref())?),
        Some("docker") if dest.is_none() => Kind::Image,
        Some("oci") => Kind::Archive(file_dest("oci", Some(dest.as_deref().unwrap_or("-")))?),
        Some("docker") => Kind::Archive(file_dest("docker", dest.as_deref())?),
        Some(other) => return Err(error(format!("exporter {other:?} could not be found"))),
    };
    Ok(Output { kind, names })
}

/// A directory destination (buildx's `supportDir`).
fn dir_dest(kind: &str, dest: Option<&str>) -> Result<PathBuf> {
    let dest = match dest {
        None | Some("") => return Err(error(format!("dest is required for {kind} exporter"))),
        Some("-") => return Err(error(format!("dest cannot be stdout for {kind} exporter"))),
        Some(d) => PathBuf::from(d),
    };
    match fs::metadata(&dest) {
        Ok(md) if !md.is_dir() => Err(error(format!(
            "destination directory {} is a file",
            dest.display()
        ))),
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(error(format!(
            "invalid destination directory: {}: {e}",
            dest.display()
        ))),
        _ => Ok(dest),
    }
}

/// A file destination (buildx's `supportFile`): `-` is standard output, refused when it is a
/// terminal.
fn file_dest(kind: &str, dest: Option<&str>) -> Result<Dest> {
    match dest {
        Some("-") => {
            // SAFETY: isatty only reads the descriptor's state.
            if unsafe { libc::isatty(1) } == 1 {
                return Err(error(format!(
                    "dest file is required for {kind} exporter. refusing to write to console"
                )));
            }
            Ok(Dest::Stdout)
        }
        None | Some("") => Err(error(format!("dest is required for {kind} exporter"))),
        Some(d) => {
            let p = PathBuf::from(d);
            match fs::metadata(&p) {
                Ok(md) if md.is_dir() => Err(error(format!(
                    "destination file {} is a directory",
                    p.display()
                ))),
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(error(format!(
                    "invalid destination file: {}: {e}",
                    p.display()
                ))),
                _ => Ok(Dest::File(p)),
            }
        }
    }
}

/// The names the store tags the image with: `-t` and `type=image,name=…`.
pub(super) fn image_names(outputs: &[Output]) -> impl Iterator<Item = &Reference> {
    outputs
        .iter()
        .filter(|o| o.kind == Kind::Image)
        .flat_map(|o| o.names.iter())
}

/// When an output goes to standard output, the build's own output (and its RUN steps') goes
/// to standard error instead, as BuildKit's progress always does: standard output is moved to
/// a new descriptor, returned, and descriptor 1 becomes a copy of standard error.
pub(super) fn take_stdout(outputs: &[Output]) -> Result<Option<fs::File>> {
    let wanted = outputs.iter().any(|o| {
        matches!(
            &o.kind,
            Kind::Tar(Dest::Stdout) | Kind::Archive(Dest::Stdout)
        )
    });
    if !wanted {
        return Ok(None);
    }
    io::stdout().flush()?;
    // SAFETY: plain descriptor calls; the duplicate is owned by the returned File only.
    unsafe {
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("duplicating standard output");
        }
        let file = fs::File::from_raw_fd(fd);
        if libc::dup2(2, 1) < 0 {
            return Err(io::Error::last_os_error()).context("redirecting standard output");
        }
        Ok(Some(file))
    }
}

/// Writes the image `id` to every output that is not the store.
pub(super) fn export(
    store: &store::Store,
    id: &Digest,
    outputs: &[Output],
    tags: &[Reference],
    stdout: &mut Option<fs::File>,
) -> Result<()> {
    for o in outputs {
        let names = if o.names.is_empty() {
            tags.to_vec()
        } else {
            o.names.clone()
        };
        let items = [image::SaveItem { id: *id, names }];
        match &o.kind {
            Kind::Image => {}
            Kind::Local(dir) => image::unpack_rootfs(store, id, dir)
                .map_err(|e| error(format!("exporting to {}: {e}", dir.display())))?,
            Kind::Tar(dest) => {
                let staging = store.stage()?;
                let dir = staging.path().join("rootfs");
                image::unpack_rootfs(store, id, &dir)?;
                write_to(dest, stdout, |w| {
                    layer::archive_tree(&dir, w)
                        .map(drop)
                        .map_err(anyhow::Error::from)
                })?;
            }
            Kind::Archive(dest) => write_to(dest, stdout, |w| {
                image::write_archive(store, &items, w).map_err(anyhow::Error::from)
            })?,
            Kind::Layout(dir) => {
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                let opts = layer::ApplyOptions {
                    whiteouts: layer::WhiteoutMode::Delete,
                    ..Default::default()
                };
                // The archive streams through a pipe into the directory, unpacked by a
                // second thread as it is written: no copy of it on disk.
                let (reader, writer) = io::pipe()?;
                std::thread::scope(|s| -> Result<()> {
                    let unpack = s.spawn(|| layer::apply_layer_with(reader, dir, &opts));
                    let written = {
                        let mut w = io::BufWriter::with_capacity(1 << 20, writer);
                        image::write_archive(store, &items, &mut w)
                            .map_err(anyhow::Error::from)
                            .and_then(|()| Ok(w.flush()?))
                    };
                    let unpacked = unpack
                        .join()
                        .map_err(|_| error("the unpacking thread panicked"))?
                        .map_err(|e| error(format!("exporting to {}: {e}", dir.display())));
                    // A write that broke the pipe failed because the unpacking did; an
                    // unpacking that found the archive cut short, because a write failed.
                    let broke_pipe = written.as_ref().is_err_and(|e| {
                        e.chain().any(|c| {
                            c.downcast_ref::<io::Error>()
                                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
                        })
                    });
                    match written {
                        Err(e) if !broke_pipe => Err(e),
                        _ => unpacked.map(drop),
                    }
                })?;
            }
        }
    }
    Ok(())
}

/// Runs `write` on the destination: a new file (removed again if writing fails) or the
/// standard output [`take_stdout`] kept.
fn write_to(
    dest: &Dest,
    stdout: &mut Option<fs::File>,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    match dest {
        Dest::Stdout => {
            let f = stdout
                .as_mut()
                .ok_or_else(|| error("standard output was not kept for the output"))?;
            let mut w = io::BufWriter::new(f);
            write(&mut w)?;
            w.flush()?;
        }
        Dest::File(p) => {
            // As buildx's writer: the file's directory is made when missing.
            if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            // Only a regular file (not `/dev/null` or a FIFO) is removed when the export fails.
            super::write_archive_file(p, |e| error(format!("failed to open {e}")), write)
                .with_context(|| format!("exporting to {}", p.display()))?;
        }
    }
    Ok(())
}

/// `-o` parsing as buildx does it.
#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Kind {
        parse_output(s).unwrap().kind
    }

    fn err(s: &str) -> String {
        parse_output(s).unwrap_err().to_string()
    }

    #[test]
    fn specs_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("out");
        let ds = d.to_str().unwrap();
        assert_eq!(kind(ds), Kind::Local(d.clone()));
        assert_eq!(
            kind(&format!("type=local,dest={ds}")),
            Kind::Local(d.clone())
        );
        assert_eq!(
            kind(&format!("type=tar,dest={ds}")),
            Kind::Tar(Dest::File(d.clone()))
        );
        assert_eq!(
            kind(&format!("type=docker,dest={ds}")),
            Kind::Archive(Dest::File(d.clone()))
        );
        assert_eq!(
            kind(&format!("type=oci,dest={ds},tar=false")),
            Kind::Layout(d.clone())
        );
        assert_eq!(kind("type=docker"), Kind::Image);
        let o = parse_output("type=image,\"name=a:1,b\"").unwrap();
        assert_eq!(o.kind, Kind::Image);
        assert_eq!(o.names.len(), 2);
        assert_eq!(err("dest=x,name=y"), "type is required for output");
        assert_eq!(err("type=local"), "dest is required for local exporter");
        assert_eq!(
            err("type=local,dest=-"),
            "dest cannot be stdout for local exporter"
        );
        assert_eq!(err("type=tar,foo"), "invalid value foo");
        assert_eq!(
            err("type=nope,dest=x"),
            "exporter \"nope\" could not be found"
        );
        for spec in ["type=registry,name=r/x", "type=image,name=r/x,push=true"] {
            assert!(err(spec).contains("build, then push the image with strata push"));
        }
        let file = dir.path().join("f");
        fs::write(&file, "").unwrap();
        assert_eq!(
            err(&format!("type=local,dest={}", file.display())),
            format!("destination directory {} is a file", file.display())
        );
        assert_eq!(
            err(&format!("type=tar,dest={}", dir.path().display())),
            format!("destination file {} is a directory", dir.path().display())
        );
    }
}
