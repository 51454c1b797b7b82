//! Label reading from manifests and image configs: any bytes give labels or none, never a
//! panic, and the size check answers for whatever was read.
#![no_main]

use berth_core::labels::{config_labels, image_labels, manifest_labels, over_limit};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (manifest, config) = data.split_at(split);
    let _ = manifest_labels(manifest);
    let labels = config_labels(config);
    let _ = over_limit(&labels);
    let both = image_labels(manifest, Some(config));
    let _ = over_limit(&both);
    let _ = image_labels(data, None);
});
