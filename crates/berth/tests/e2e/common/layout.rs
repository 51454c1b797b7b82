//! OCI image layouts on disk for the real clients (skopeo, umoci) to copy in and out, and
//! skopeo run with the current server's credentials.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::{digest, run};

/// Runs skopeo with the current server's admin credentials (`REGISTRY_AUTH_FILE`).
pub fn skopeo(args: &[&str]) -> String {
    run(Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", super::auth_file())
        .args(["--insecure-policy"])
        .args(args))
}

/// `skopeo copy --all` (an index with every platform) from `from` to `to`, each an
/// `oci:<dir>:<tag>` layout or a `docker://` reference to a registry over plain HTTP.
pub fn copy_all(from: &str, to: &str) -> String {
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        from,
        to,
    ])
}

/// The names (hex digests) of a layout's blobs, sorted, each checked to hash to its name.
pub fn layout_blobs(layout: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(
            digest(&std::fs::read(&path).unwrap()),
            format!("sha256:{name}"),
            "blob {name} arrived whole"
        );
        names.push(name);
    }
    names.sort();
    names
}

/// Digest of the manifest a layout's `index.json` tags `tag`.
pub fn layout_manifest_digest(layout: &Path, tag: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"))["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Writes a blob into an OCI layout and returns its descriptor.
pub fn layout_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let d = digest(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    json!({"mediaType": media_type, "digest": d, "size": bytes.len()})
}

/// Writes a new OCI layout at `layout` holding one index tagged `v1` of two platforms
/// (linux/amd64 and linux/arm64), each an image of one uncompressed layer.
pub fn write_two_platform_index(layout: &Path) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = layout_blob(
            layout,
            "application/vnd.oci.image.layer.v1.tar",
            format!("layer for {arch}").repeat(1000).as_bytes(),
        );
        let config = json!({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}});
        let config = layout_blob(
            layout,
            "application/vnd.oci.image.config.v1+json",
            config.to_string().as_bytes(),
        );
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": [layer]});
        let mut descriptor = layout_blob(
            layout,
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().as_bytes(),
        );
        descriptor["platform"] = json!({"architecture": arch, "os": "linux"});
        children.push(descriptor);
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children,
        "annotations": {"org.opencontainers.image.description": "two platforms"}});
    let mut index_descriptor = layout_blob(
        layout,
        "application/vnd.oci.image.index.v1+json",
        index.to_string().as_bytes(),
    );
    index_descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
    std::fs::write(
        layout.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [index_descriptor]}).to_string(),
    )
    .unwrap();
}
