//! An upload's state as this store records it with the upload's session: the multipart
//! upload its parts went to, those parts, and the staged pieces too small to be a part yet.

use object_store::multipart::PartId;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use berth_core::StoreError;

/// One uploaded part: how S3 named it and the bytes it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Part {
    /// `object_store`'s id of the part: its ETag, or for a part sent with a checksum its ETag
    /// and checksum (what completing the multipart upload names it by; see
    /// [`UploadState::completing`]).
    pub etag: String,
    /// Its length.
    pub len: u64,
}

/// What the store knows of an upload between requests. Bytes go, in order: every part, then
/// every staged piece. Staged pieces are objects of their own (`uploads/{id}/{start}`) holding
/// the bytes of requests that did not fill a part; they are folded into the next part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadState {
    /// The multipart upload (to `data/{id}`), once the upload's bytes filled a part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<String>,
    /// The parts uploaded so far, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// The lengths of the staged pieces after the parts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staged: Vec<u64>,
    /// Where the staged pieces already folded into a part start. Their objects outlive the
    /// fold (the state recorded before it names them, until the new one is recorded) and go
    /// with the upload's other objects when it ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<u64>,
    /// Whether the multipart upload was opened asking for CRC-64/NVME checksums, as this
    /// version opens them. One opened by an earlier version (before bodies carried their
    /// CRC) and still open across the upgrade keeps no checksum for its parts, so completing
    /// it names every part by its ETag alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checksummed: bool,
}

impl UploadState {
    /// Reads recorded state; empty is a new upload.
    pub fn decode(id: &str, state: &[u8]) -> Result<Self, StoreError> {
        if state.is_empty() {
            return Ok(UploadState::default());
        }
        serde_json::from_slice(state)
            .map_err(|e| StoreError::new(format!("reading the state of upload `{id}`"), e))
    }

    /// The state to record: empty for an upload that holds nothing.
    pub fn encode(&self) -> Vec<u8> {
        if *self == UploadState::default() {
            return Vec::new();
        }
        serde_json::to_vec(self).expect("upload state serializes")
    }

    /// Bytes in parts.
    pub fn parts_len(&self) -> u64 {
        self.parts.iter().map(|p| p.len).sum()
    }

    /// Bytes in staged pieces.
    pub fn staged_len(&self) -> u64 {
        self.staged.iter().sum()
    }

    /// Every byte the upload holds.
    pub fn len(&self) -> u64 {
        self.parts_len() + self.staged_len()
    }

    /// Whether the upload holds no bytes and has no multipart upload open.
    pub fn is_empty(&self) -> bool {
        *self == UploadState::default()
    }

    /// Where the staged pieces start, in order.
    pub fn staged_starts(&self) -> Vec<u64> {
        let mut start = self.parts_len();
        self.staged
            .iter()
            .map(|len| {
                let at = start;
                start += len;
                at
            })
            .collect()
    }

    /// The keys of the staged pieces, in order.
    pub fn staged_keys(&self, keys: &super::Keys, id: &str) -> Vec<Path> {
        self.staged_starts()
            .into_iter()
            .map(|start| keys.staged(id, start))
            .collect()
    }

    /// The keys of the staged pieces folded into parts.
    pub fn folded_keys(&self, keys: &super::Keys, id: &str) -> Vec<Path> {
        self.folded
            .iter()
            .map(|&start| keys.staged(id, start))
            .collect()
    }

    /// The part ids to complete the multipart upload with.
    pub fn part_ids(&self) -> Vec<PartId> {
        self.parts
            .iter()
            .map(|p| self.completing(&p.etag))
            .collect()
    }

    /// How completing the multipart upload names a part S3 answered `content_id` for: as it
    /// is, or by its ETag alone when the upload was not opened for checksums (`object_store`
    /// gives a checksummed part's ETag and checksum as a small XML document; S3 refuses to
    /// complete an upload whose parts are named with a checksum they were not stored with).
    pub fn completing(&self, content_id: &str) -> PartId {
        /// The part of `object_store`'s document that names the part.
        #[derive(Deserialize)]
        struct Named {
            e_tag: String,
        }
        let named = (!self.checksummed)
            .then(|| quick_xml::de::from_str::<Named>(content_id).ok())
            .flatten();
        PartId {
            content_id: named.map_or_else(|| content_id.to_owned(), |n| n.e_tag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_state_is_no_bytes_and_round_trips() {
        assert_eq!(
            UploadState::decode("u", &[]).unwrap(),
            UploadState::default()
        );
        assert!(UploadState::default().encode().is_empty());
        let state = UploadState {
            multipart: Some("mp".into()),
            parts: vec![Part {
                etag: "\"e1\"".into(),
                len: 8,
            }],
            staged: vec![3, 2],
            folded: vec![0],
            checksummed: true,
        };
        assert_eq!(state.len(), 13);
        let back = UploadState::decode("u", &state.encode()).unwrap();
        assert_eq!(back, state);
        assert!(UploadState::decode("u", b"not json").is_err());
    }

    #[test]
    fn staged_keys_start_where_the_bytes_before_them_end() {
        let keys = super::super::Keys::new("p");
        let state = UploadState {
            multipart: Some("mp".into()),
            parts: vec![Part {
                etag: "e".into(),
                len: 10,
            }],
            staged: vec![3, 2],
            folded: vec![4],
            checksummed: false,
        };
        let names: Vec<String> = state
            .staged_keys(&keys, "u")
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "p/uploads/u/00000000000000000010",
                "p/uploads/u/00000000000000000013"
            ]
        );
        let folded: Vec<String> = state
            .folded_keys(&keys, "u")
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(folded, ["p/uploads/u/00000000000000000004"]);
    }

    #[test]
    fn parts_of_an_upload_opened_without_checksums_are_named_by_etag_alone() {
        let xml = "<PartMetadata><e_tag>\"abc\"</e_tag>\
                   <checksum_crc64nvme>AAAAAAAAAAA=</checksum_crc64nvme></PartMetadata>";
        let mut state = UploadState {
            multipart: Some("mp".into()),
            parts: vec![
                Part {
                    etag: "\"old\"".into(),
                    len: 5,
                },
                Part {
                    etag: xml.into(),
                    len: 5,
                },
            ],
            ..UploadState::default()
        };
        let named = |state: &UploadState| -> Vec<String> {
            state.part_ids().into_iter().map(|p| p.content_id).collect()
        };
        assert_eq!(named(&state), ["\"old\"", "\"abc\""]);
        state.checksummed = true;
        assert_eq!(named(&state), ["\"old\"", xml]);
        // A state recorded before the flag existed reads as not checksummed.
        let old = br#"{"multipart":"mp","parts":[{"etag":"\"e\"","len":5}]}"#;
        assert!(!UploadState::decode("u", old).unwrap().checksummed);
    }
}
