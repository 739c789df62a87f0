//! Telling compressed streams apart by their first bytes, and undoing the compression.

use std::io::{self, BufRead, Read};

/// How a layer stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    /// The OCI media type of a layer blob compressed this way.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            // Not layer formats of the specs; only seen in `import` and `ADD` archives.
            Compression::Bzip2 => "application/x-bzip2",
            Compression::Xz => "application/x-xz",
        }
    }
}

/// Looks at the first bytes of `r` without consuming them.
pub fn detect(r: &mut impl BufRead) -> io::Result<Compression> {
    let buf = r.fill_buf()?;
    Ok(if buf.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if buf.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if buf.starts_with(b"BZh") {
        Compression::Bzip2
    } else if buf.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else {
        Compression::None
    })
}

/// A reader of the uncompressed bytes of `r`, whatever its compression.
pub fn decompress<'a>(mut r: impl BufRead + 'a) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match detect(&mut r)? {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
        Compression::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(r)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_and_undoes_each_compression() {
        let data = b"hello layer".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        for (bytes, kind) in [
            (&data[..], Compression::None),
            (&gz[..], Compression::Gzip),
            (&zs[..], Compression::Zstd),
        ] {
            let mut r = io::BufReader::new(bytes);
            assert_eq!(detect(&mut r).unwrap(), kind);
            let mut out = Vec::new();
            decompress(r).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }
}
