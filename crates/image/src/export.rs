//! How layers leave the machine (`push`, `--cache-to`): BuildKit's exporter options
//! (`compression`, `compression-level`, `force-compression`, `oci-mediatypes`), which blob a
//! layer goes out as, and the media types the manifest names it by.

use layer::{CompressOptions, Compression};
use oci::media_type;

/// BuildKit's exporter options for layers that leave the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportOptions {
    /// How a layer with no usable blob is compressed (gzip at the default level unless told).
    pub compress: CompressOptions,
    /// Compress anew every layer whose known blobs are compressed otherwise.
    pub force_compression: bool,
    /// OCI media types in the manifest even with gzip (zstd always has them).
    pub oci_mediatypes: bool,
}

impl ExportOptions {
    /// Whether a blob of a layer, compressed as `media_type` says, goes out as it is rather
    /// than the layer's tar compressed anew: one in the wanted compression always; a gzip or
    /// zstd one unless compression is forced (as BuildKit keeps existing blobs); an
    /// uncompressed one only when uncompressed is wanted.
    pub fn reuses(&self, media_type: &str) -> bool {
        match compression_of(media_type) {
            Some(c) if c == self.compress.compression => true,
            Some(Compression::Gzip | Compression::Zstd) => !self.force_compression,
            _ => false,
        }
    }

    /// Whether `media_type` is the wanted compression (preferred among reusable blobs).
    pub fn wants(&self, media_type: &str) -> bool {
        compression_of(media_type) == Some(self.compress.compression)
    }

    /// Whether a manifest of layers of these media types is an OCI one: when asked, or
    /// when a layer is zstd (which Docker's schema2 cannot name).
    pub fn oci_manifest<'a>(&self, mut layer_types: impl Iterator<Item = &'a str>) -> bool {
        self.oci_mediatypes || layer_types.any(|m| compression_of(m) == Some(Compression::Zstd))
    }
}

/// The compression a layer media type (OCI's or Docker's) names.
pub fn compression_of(media_type: &str) -> Option<Compression> {
    match oci::media_kind(media_type) {
        oci::MediaKind::Layer(oci::Compression::None) => Some(Compression::None),
        oci::MediaKind::Layer(oci::Compression::Gzip) => Some(Compression::Gzip),
        oci::MediaKind::Layer(oci::Compression::Zstd) => Some(Compression::Zstd),
        _ => None,
    }
}

/// The media type a manifest names a layer blob by: OCI's in an OCI manifest, Docker's in
/// schema2 (as Docker writes them).
pub fn manifest_layer_type(compression: Compression, oci: bool) -> &'static str {
    match (oci, compression) {
        (true, Compression::None) => media_type::OCI_LAYER,
        (true, Compression::Gzip) => media_type::OCI_LAYER_GZIP,
        (true, Compression::Zstd) => media_type::OCI_LAYER_ZSTD,
        (false, Compression::None) => media_type::DOCKER_LAYER,
        (false, Compression::Gzip | Compression::Zstd) => media_type::DOCKER_LAYER_GZIP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(c: Compression, force: bool) -> ExportOptions {
        ExportOptions {
            compress: CompressOptions::new(c, None).unwrap(),
            force_compression: force,
            oci_mediatypes: false,
        }
    }

    #[test]
    fn which_blobs_go_out_as_they_are() {
        let gz = media_type::DOCKER_LAYER_GZIP;
        let zst = media_type::OCI_LAYER_ZSTD;
        let tar = media_type::OCI_LAYER;
        let o = opts(Compression::Gzip, false);
        assert!(o.reuses(gz) && o.reuses(zst) && !o.reuses(tar));
        let o = opts(Compression::Gzip, true);
        assert!(o.reuses(gz) && !o.reuses(zst) && !o.reuses(tar));
        let o = opts(Compression::None, false);
        assert!(o.reuses(gz) && o.reuses(tar));
        assert!(!o.reuses("application/json"));
    }

    #[test]
    fn manifests_are_oci_with_zstd_or_when_asked() {
        let o = opts(Compression::Gzip, false);
        assert!(!o.oci_manifest([media_type::OCI_LAYER_GZIP].into_iter()));
        assert!(
            o.oci_manifest([media_type::OCI_LAYER_GZIP, media_type::OCI_LAYER_ZSTD].into_iter())
        );
        let o = ExportOptions {
            oci_mediatypes: true,
            ..o
        };
        assert!(o.oci_manifest([media_type::DOCKER_LAYER_GZIP].into_iter()));
        assert_eq!(
            manifest_layer_type(Compression::Gzip, false),
            media_type::DOCKER_LAYER_GZIP
        );
    }
}
