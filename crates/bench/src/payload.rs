//! What the benchmark pushes: large pseudo-random blobs and small one-layer OCI images, built
//! and hashed up front so that no timed phase hashes or copies on the client.

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

/// Media type of the manifests the benchmark pushes and asks for.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A blob and its `sha256:<hex>` digest.
#[derive(Clone)]
pub struct Blob {
    /// The content; cloned and sliced without copying.
    pub bytes: Bytes,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl Blob {
    /// Wraps `bytes`, computing its digest.
    pub fn new(bytes: impl Into<Bytes>) -> Blob {
        let bytes = bytes.into();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        Blob { bytes, digest }
    }
}

/// A small OCI image ready to push: a unique layer, its config and the manifest naming both.
pub struct SmallImage {
    /// The tag the manifest is pushed under.
    pub tag: String,
    /// A ~1 KiB layer unique to this image.
    pub layer: Blob,
    /// The image config JSON.
    pub config: Blob,
    /// The OCI image manifest JSON.
    pub manifest: Bytes,
}

/// `count` blobs of `size` pseudo-random bytes each, distinct for distinct `seed`s, generated
/// and hashed on all cores.
pub fn random_blobs(count: usize, size: usize, seed: u64) -> Vec<Blob> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..count as u64)
            .map(|index| scope.spawn(move || Blob::new(random_bytes(size, seed + index))))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("blob generator panicked"))
            .collect()
    })
}

/// `size` bytes from a splitmix64 stream seeded with `seed`: incompressible enough for a
/// registry, which never compresses, and fast to produce.
fn random_bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut bytes = vec![0u8; size];
    let mut words = bytes.chunks_exact_mut(8);
    for word in &mut words {
        word.copy_from_slice(&next().to_le_bytes());
    }
    let tail = words.into_remainder();
    let last = next().to_le_bytes();
    tail.copy_from_slice(&last[..tail.len()]);
    bytes
}

/// `count` small images tagged `img-0`, `img-1`, …, each with a unique layer and config.
pub fn small_images(count: usize) -> Vec<SmallImage> {
    (0..count)
        .map(|index| {
            let layer = Blob::new(random_bytes(1024, 1_000_000 + index as u64));
            let config = Blob::new(
                serde_json::json!({
                    "architecture": "amd64",
                    "os": "linux",
                    "config": {"Labels": {"bench.index": index.to_string()}},
                    "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
                })
                .to_string(),
            );
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config.digest,
                    "size": config.bytes.len(),
                },
                "layers": [{
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer.digest,
                    "size": layer.bytes.len(),
                }],
            });
            SmallImage {
                tag: format!("img-{index}"),
                layer,
                config,
                manifest: manifest.to_string().into(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ_by_seed_and_fill_odd_sizes() {
        let a = random_bytes(1001, 1);
        assert_eq!(a.len(), 1001);
        assert_eq!(a, random_bytes(1001, 1));
        assert_ne!(a, random_bytes(1001, 2));
        assert_ne!(a[993..], [0u8; 8]);
    }
}
