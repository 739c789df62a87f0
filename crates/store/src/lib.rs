//! The content store (blobs by digest, verified, published by rename) and the metadata database.
