//! What an image says about itself: the manifest's `annotations` and the image config's
//! `config.Labels`, merged into one map of OCI labels (`org.opencontainers.image.source`,
//! `…description`, `…licenses`).
//!
//! Pure functions over bytes already stored; the registry reads the config blob
//! ([`crate::registry::Registry::image_labels`]). Nothing here fails: a document that is not
//! the expected JSON simply says nothing.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::Digest;

/// The URL of the source repository an image was built from.
pub const SOURCE: &str = "org.opencontainers.image.source";

/// The image's description, shown on its package page.
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
/// The image's licenses, an SPDX expression.
pub const LICENSES: &str = "org.opencontainers.image.licenses";
/// The source revision (commit) the image was built from.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// The image's version.
pub const VERSION: &str = "org.opencontainers.image.version";
/// When the image was built.
pub const CREATED: &str = "org.opencontainers.image.created";

/// Labels with a length limit, and the limit in characters (GHCR's: a description of at most
/// 512 characters, licenses of at most 256).
pub const LIMITS: [(&str, usize); 2] = [(DESCRIPTION, 512), (LICENSES, 256)];

/// The first label of `labels` longer than its limit, as a message naming the key and the
/// limit.
pub fn over_limit(labels: &Labels) -> Option<String> {
    LIMITS.iter().find_map(|(key, limit)| {
        let value = labels.get(*key)?;
        let length = value.chars().count();
        (length > *limit).then(|| {
            format!(
                "{key} is {length} characters long; at most {limit} are allowed \
                 (shorten the annotation or the image's LABEL)"
            )
        })
    })
}

/// Largest image config read for its labels, in bytes. Real configs are a few KiB; a larger
/// one is not read (its labels are ignored).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Labels by key.
pub type Labels = BTreeMap<String, String>;

/// A manifest's config blob, as its descriptor names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size as the descriptor states it.
    pub size: u64,
}

/// What a manifest holds about its labels: its own annotations, and for an image manifest the
/// config blob whose `config.Labels` complete them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestLabels {
    /// The manifest's `annotations` (string values only).
    pub annotations: Labels,
    /// The config blob of an image manifest; `None` for an index.
    pub config: Option<ConfigBlob>,
}

#[derive(Deserialize)]
struct ManifestDoc {
    config: Option<DescriptorDoc>,
    manifests: Option<serde_json::Value>,
    annotations: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct DescriptorDoc {
    digest: String,
    size: i64,
}

#[derive(Deserialize)]
struct ConfigDoc {
    config: Option<ContainerConfigDoc>,
}

#[derive(Deserialize)]
struct ContainerConfigDoc {
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, serde_json::Value>>,
}

fn strings(map: Option<BTreeMap<String, serde_json::Value>>) -> Labels {
    map.unwrap_or_default()
        .into_iter()
        .filter_map(|(key, value)| match value {
            serde_json::Value::String(text) => Some((key, text)),
            _ => None,
        })
        .collect()
}

/// Reads a manifest's (or index's) annotations and config descriptor.
pub fn manifest_labels(manifest: &[u8]) -> ManifestLabels {
    let Ok(doc) = serde_json::from_slice::<ManifestDoc>(manifest) else {
        return ManifestLabels::default();
    };
    let config = match (doc.config, doc.manifests) {
        (Some(config), None) => {
            match (config.digest.parse::<Digest>(), u64::try_from(config.size)) {
                (Ok(digest), Ok(size)) => Some(ConfigBlob { digest, size }),
                _ => None,
            }
        }
        _ => None,
    };
    ManifestLabels {
        annotations: strings(doc.annotations),
        config,
    }
}

/// The `config.Labels` of an image config (Docker's `LABEL`s); empty when it has none or is
/// not a JSON image config.
pub fn config_labels(config: &[u8]) -> Labels {
    serde_json::from_slice::<ConfigDoc>(config)
        .ok()
        .and_then(|doc| doc.config)
        .map(|c| strings(c.labels))
        .unwrap_or_default()
}

/// An image's labels: the config's `config.Labels`, overridden key by key by the manifest's
/// `annotations` (the manifest is what was pushed last and names this very artifact).
/// `config` is the config blob's bytes, when read.
pub fn image_labels(manifest: &[u8], config: Option<&[u8]>) -> Labels {
    let mut labels = config.map(config_labels).unwrap_or_default();
    labels.extend(manifest_labels(manifest).annotations);
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG_DIGEST: &str =
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn image(annotations: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CONFIG_DIGEST}","size":1234}},"layers":[]{annotations}}}"#
        )
    }

    #[test]
    fn an_image_manifest_names_its_config_and_keeps_string_annotations() {
        let manifest = image(
            r#","annotations":{"a":"1","n":2,"org.opencontainers.image.source":"https://github.com/acme/app"}"#,
        );
        let read = manifest_labels(manifest.as_bytes());
        let config = read.config.expect("image manifests have a config");
        assert_eq!(config.digest.as_str(), CONFIG_DIGEST);
        assert_eq!(config.size, 1234);
        assert_eq!(read.annotations.len(), 2, "the number is not a label");
        assert_eq!(read.annotations[SOURCE], "https://github.com/acme/app");
    }

    #[test]
    fn an_index_has_annotations_and_no_config() {
        let index = r#"{"schemaVersion":2,"manifests":[],"annotations":{"org.opencontainers.image.source":"https://github.com/acme/app"}}"#;
        let read = manifest_labels(index.as_bytes());
        assert_eq!(read.config, None);
        assert_eq!(read.annotations[SOURCE], "https://github.com/acme/app");
    }

    #[test]
    fn config_labels_come_from_config_labels() {
        let config = br#"{"architecture":"amd64","config":{"Env":["A=1"],"Labels":{"org.opencontainers.image.source":"https://github.com/acme/app","x":"y"}}}"#;
        let labels = config_labels(config);
        assert_eq!(labels[SOURCE], "https://github.com/acme/app");
        assert_eq!(labels["x"], "y");
        for nothing in [
            &br#"{"config":{"Labels":null}}"#[..],
            br#"{"config":{}}"#,
            br#"{"architecture":"amd64"}"#,
            b"not json",
            b"{}",
            b"[]",
        ] {
            assert!(config_labels(nothing).is_empty());
        }
    }

    #[test]
    fn annotations_override_config_labels() {
        let manifest = image(
            r#","annotations":{"org.opencontainers.image.source":"https://github.com/acme/from-annotation"}"#,
        );
        let config = br#"{"config":{"Labels":{"org.opencontainers.image.source":"https://github.com/acme/from-label","org.opencontainers.image.licenses":"MIT"}}}"#;
        let labels = image_labels(manifest.as_bytes(), Some(config));
        assert_eq!(labels[SOURCE], "https://github.com/acme/from-annotation");
        assert_eq!(labels["org.opencontainers.image.licenses"], "MIT");
        let labels = image_labels(image("").as_bytes(), Some(config));
        assert_eq!(labels[SOURCE], "https://github.com/acme/from-label");
        assert!(image_labels(image("").as_bytes(), None).is_empty());
    }

    #[test]
    fn garbage_says_nothing() {
        assert_eq!(manifest_labels(b"{"), ManifestLabels::default());
        let bad_config = r#"{"schemaVersion":2,"config":{"digest":"nope","size":1},"layers":[]}"#;
        assert_eq!(manifest_labels(bad_config.as_bytes()).config, None);
        let negative = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{CONFIG_DIGEST}","size":-1}},"layers":[]}}"#
        );
        assert_eq!(manifest_labels(negative.as_bytes()).config, None);
    }

    #[test]
    fn limits_count_characters_and_name_the_key() {
        let mut labels = Labels::new();
        labels.insert(DESCRIPTION.into(), "é".repeat(512));
        labels.insert(LICENSES.into(), "MIT".into());
        assert_eq!(
            over_limit(&labels),
            None,
            "512 characters (1,024 bytes) fit"
        );
        labels.insert(LICENSES.into(), "x".repeat(257));
        let message = over_limit(&labels).expect("licenses too long");
        assert!(
            message.contains(LICENSES) && message.contains("256"),
            "{message}"
        );
        labels.insert(DESCRIPTION.into(), "d".repeat(513));
        let message = over_limit(&labels).expect("description too long");
        assert!(
            message.contains(DESCRIPTION) && message.contains("512"),
            "{message}"
        );
    }
}
