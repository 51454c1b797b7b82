//! Manifest rules: what a pushed manifest must look like, and what Berth learns from it.
//!
//! Berth keeps the pushed bytes verbatim; this module only reads them. It parses the handful
//! of fields the spec's rules need into small serde types rather than the full `oci-spec`
//! structs, because Docker v2 schema 2 and OCI documents share one shape here and every
//! rejection must name the offending field in words a person can act on.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;

use crate::digest::{Algorithm, Digest};
use crate::error::RegistryError;
use crate::ports::{BlobRef, NewManifest};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker v2 schema 2 manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker v2 schema 1 (refused).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Signed Docker v2 schema 1 (refused).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// The empty config of artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Whether a media type is a single-image manifest or an index of manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// Config plus layers.
    Image,
    /// A list of child manifests.
    Index,
}

/// The kind of a supported manifest media type.
pub fn kind_of(media_type: &str) -> Option<ManifestKind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
        OCI_INDEX | DOCKER_LIST => Some(ManifestKind::Index),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Vec<String>,
    platform: Option<Platform>,
    annotations: Option<BTreeMap<String, String>>,
}

/// The annotation buildx puts on the attestation manifests it lists in an index.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// What the platforms of an index call an attestation manifest (buildx lists them with
/// platform `unknown/unknown`), as GHCR's pages do.
pub const ATTESTATION_PLATFORM: &str = "attestation";

#[derive(Deserialize)]
struct Platform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

impl Platform {
    /// `os/architecture[/variant]`, as `docker` and GHCR's package pages print it.
    fn name(&self) -> String {
        let part = |p: &Option<String>| p.clone().unwrap_or_else(|| "unknown".into());
        let mut name = format!("{}/{}", part(&self.os), part(&self.architecture));
        if let Some(variant) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            name.push('/');
            name.push_str(variant);
        }
        name
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(message.into())
}

fn schema1() -> RegistryError {
    invalid(
        "Docker image manifest v2 schema 1 is not supported (deprecated since 2017); \
         push a schema 2 or OCI manifest, e.g. `skopeo copy --format v2s2` or `--format oci`",
    )
}

fn descriptor_digest(field: &str, d: &Descriptor) -> Result<Digest, RegistryError> {
    if d.media_type.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(format!("{field} has no mediaType")));
    }
    if d.size < 0 {
        return Err(invalid(format!("{field} has a negative size ({})", d.size)));
    }
    d.digest
        .parse()
        .map_err(|e| invalid(format!("{field}: {e}")))
}

/// Parses and checks a pushed manifest. `content_type` is the request's `Content-Type`;
/// `digest_algorithm` is the algorithm the manifest is addressed by.
pub fn parse(
    content: Bytes,
    content_type: Option<&str>,
    digest_algorithm: Algorithm,
) -> Result<NewManifest, RegistryError> {
    if content.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(RegistryError::ManifestTooLarge(
            content.len() as u64,
            MAX_MANIFEST_BYTES,
        ));
    }
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    if matches!(header, Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED)) {
        return Err(schema1());
    }
    let doc: Document = serde_json::from_slice(&content).map_err(|e| {
        invalid(format!(
            "manifest is not a valid JSON manifest document: {e}"
        ))
    })?;
    if doc.schema_version == Some(1) {
        return Err(schema1());
    }
    if doc.schema_version != Some(2) {
        return Err(invalid("manifest must have \"schemaVersion\": 2"));
    }
    let media_type = match (doc.media_type.as_deref(), header) {
        (Some(body), Some(header)) if body != header => {
            return Err(invalid(format!(
                "Content-Type `{header}` does not match the manifest's mediaType `{body}`"
            )));
        }
        (Some(body), _) => body.to_owned(),
        (None, Some(header)) => header.to_owned(),
        (None, None) if doc.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    if media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED {
        return Err(schema1());
    }
    let kind = kind_of(&media_type).ok_or_else(|| {
        invalid(format!(
            "manifest media type `{media_type}` is not supported; use {OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST} or {DOCKER_LIST}"
        ))
    })?;

    let subject = doc
        .subject
        .as_ref()
        .map(|s| descriptor_digest("subject", s))
        .transpose()?;
    let mut blobs = Vec::new();
    let mut required = Vec::new();
    let mut children = Vec::new();
    let mut platforms = Vec::new();
    // The version's size as the Packages API shows it: the manifest and what it references
    // directly (config and layers, or the child manifests of an index).
    let mut total_size = content.len() as u64;
    let artifact_type = match kind {
        ManifestKind::Image => {
            if doc.manifests.is_some() {
                return Err(invalid(format!(
                    "a {media_type} has no \"manifests\"; push it as an index"
                )));
            }
            let config = doc
                .config
                .as_ref()
                .ok_or_else(|| invalid("manifest has no \"config\""))?;
            let config_digest = descriptor_digest("config", config)?;
            required.push(BlobRef {
                digest: config_digest.clone(),
                size: config.size.unsigned_abs(),
            });
            blobs.push(config_digest);
            total_size += config.size.unsigned_abs();
            let layers = doc
                .layers
                .as_ref()
                .ok_or_else(|| invalid("manifest has no \"layers\""))?;
            for (i, layer) in layers.iter().enumerate() {
                let digest = descriptor_digest(&format!("layers[{i}]"), layer)?;
                // Foreign (non-distributable) layers live at their `urls`, not here.
                if layer.urls.is_empty() {
                    required.push(BlobRef {
                        digest: digest.clone(),
                        size: layer.size.unsigned_abs(),
                    });
                }
                total_size += layer.size.unsigned_abs();
                blobs.push(digest);
            }
            doc.artifact_type
                .clone()
                .or_else(|| config.media_type.clone())
        }
        ManifestKind::Index => {
            if doc.config.is_some() || doc.layers.is_some() {
                return Err(invalid(format!(
                    "a {media_type} lists \"manifests\", not config or layers"
                )));
            }
            let manifests = doc
                .manifests
                .as_ref()
                .ok_or_else(|| invalid("index has no \"manifests\""))?;
            for (i, child) in manifests.iter().enumerate() {
                children.push(descriptor_digest(&format!("manifests[{i}]"), child)?);
                total_size += child.size.unsigned_abs();
                let attestation = child
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(REFERENCE_TYPE))
                    .is_some_and(|kind| kind == "attestation-manifest");
                if attestation {
                    platforms.push(ATTESTATION_PLATFORM.to_owned());
                } else if let Some(platform) = &child.platform {
                    platforms.push(platform.name());
                }
            }
            doc.artifact_type.clone()
        }
    };
    let annotations = doc
        .annotations
        .as_ref()
        .filter(|a| !a.is_empty())
        .map(|a| serde_json::to_string(a).expect("string map serializes"));
    required.sort();
    required.dedup();
    let manifest = NewManifest {
        digest: Digest::of(digest_algorithm, &content),
        media_type,
        content,
        artifact_type,
        subject,
        blobs,
        required_blobs: required,
        children,
        annotations,
        total_size,
        platforms,
        labels: Default::default(),
        pushed_by: None,
        tag_immutable: false,
    };
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Digest::sha256(s.as_bytes()).to_string()
    }

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":1}},{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":9,"urls":["https://example.com/x"]}}]{extra}}}"#,
            d("c"),
            d("l"),
            d("foreign")
        )
    }

    #[test]
    fn image_manifest_requires_config_and_local_layers_only() {
        let m = parse(
            Bytes::from(image("")),
            Some(OCI_MANIFEST),
            Algorithm::Sha256,
        )
        .unwrap();
        assert_eq!(m.required_blobs.len(), 2, "foreign layer is not required");
        assert_eq!(m.blobs.len(), 3);
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert_eq!(m.digest, Digest::sha256(image("").as_bytes()));
        assert_eq!(
            m.total_size,
            m.content.len() as u64 + 2 + 1 + 9,
            "manifest, config and layers, foreign ones included"
        );
    }

    #[test]
    fn subject_and_artifact_type_are_read() {
        let extra = format!(
            r#","artifactType":"application/sbom","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5}}"#,
            d("s")
        );
        let m = parse(Bytes::from(image(&extra)), None, Algorithm::Sha256).unwrap();
        assert_eq!(m.artifact_type.as_deref(), Some("application/sbom"));
        assert_eq!(m.subject.unwrap().to_string(), d("s"));
    }

    #[test]
    fn rejects_bad_documents() {
        let cases = [
            ("{", Some(OCI_MANIFEST), "not a valid JSON"),
            (r#"{"schemaVersion":1,"name":"x"}"#, None, "schema 1"),
            ("{}", Some(DOCKER_SCHEMA1_SIGNED), "schema 1"),
            (
                r#"{"schemaVersion":2,"mediaType":"text/plain"}"#,
                None,
                "not supported",
            ),
        ];
        for (body, ct, needle) in cases {
            let err = parse(Bytes::from(body), ct, Algorithm::Sha256).unwrap_err();
            assert!(err.to_string().contains(needle), "{body}: {err}");
        }
        let mismatch = parse(
            Bytes::from(image("")),
            Some(DOCKER_MANIFEST),
            Algorithm::Sha256,
        );
        assert!(mismatch.unwrap_err().to_string().contains("does not match"));
        let big = Bytes::from(vec![b' '; MAX_MANIFEST_BYTES as usize + 1]);
        assert!(matches!(
            parse(big, None, Algorithm::Sha256),
            Err(RegistryError::ManifestTooLarge(..))
        ));
    }

    #[test]
    fn index_lists_children() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"architecture":"amd64","os":"linux"}}}}],"annotations":{{"org.opencontainers.image.description":"x"}}}}"#,
            d("a")
        );
        let m = parse(Bytes::from(body), Some(OCI_INDEX), Algorithm::Sha256).unwrap();
        assert_eq!(m.children.len(), 1);
        assert!(m.required_blobs.is_empty());
        assert!(m.annotations.unwrap().contains("description"));
        assert_eq!(m.platforms, ["linux/amd64"]);
        assert_eq!(m.total_size, m.content.len() as u64 + 3);
    }

    #[test]
    fn attestation_manifests_are_no_platform() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"architecture":"unknown","os":"unknown"}},"annotations":{{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"{}"}}}}]}}"#,
            d("a"),
            d("b"),
            d("a")
        );
        let m = parse(Bytes::from(body), Some(OCI_INDEX), Algorithm::Sha256).unwrap();
        assert_eq!(m.platforms, ["linux/arm64/v8", "attestation"]);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
                                json_like in "\\{[ -~]{0,200}\\}") {
            let _ = parse(Bytes::from(body), None, Algorithm::Sha256);
            let _ = parse(Bytes::from(json_like), Some(OCI_INDEX), Algorithm::Sha512);
        }
    }
}
