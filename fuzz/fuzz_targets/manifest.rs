//! Manifest and index parsing and validation: any bytes under any content type are accepted
//! or refused with an error, never a panic; what is accepted keeps its exact bytes.
#![no_main]

use berth_core::Algorithm;
use berth_core::manifest::{kind_of, parse};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const TYPES: [Option<&str>; 8] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    Some("application/json"),
    Some("text/plain; charset=utf-8"),
    Some(""),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    let content_type = TYPES[usize::from(selector) % TYPES.len()];
    let algorithm = if selector & 0x80 == 0 {
        Algorithm::Sha256
    } else {
        Algorithm::Sha512
    };
    if let Some(ct) = content_type {
        let _ = kind_of(ct);
    }
    let bytes = Bytes::copy_from_slice(content);
    if let Ok(manifest) = parse(bytes.clone(), content_type, algorithm) {
        assert_eq!(
            manifest.content, bytes,
            "a manifest is stored byte for byte"
        );
    }
});
