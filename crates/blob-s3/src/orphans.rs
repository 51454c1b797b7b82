//! Multipart uploads nothing names any more. A writer aborts the multipart upload it opened
//! when it is dropped unfinished, but a node killed mid-request leaves its multipart upload
//! open, holding its parts' bytes (the bucket bills them, and listings of objects do not show
//! them). The upload purge finds them with a signed `ListMultipartUploads` (`object_store` has
//! no call for it) and aborts those started before its cutoff: every session that old was
//! discarded first, so none of them is still written to.

use berth_core::StoreError;
use berth_core::ports::{Millis, StoreResult};
use object_store::ClientOptions;
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{HttpClient, HttpConnector, HttpRequest, HttpRequestBody};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use serde::Deserialize;

use crate::{Inner, S3Settings, failed};

/// Lists a bucket's open multipart uploads with the store's own credentials.
pub(crate) struct Lister {
    client: HttpClient,
    /// The bucket's URL: `{endpoint}/{bucket}` (path-style) with an endpoint, the bucket's
    /// virtual host (`https://{bucket}.s3.{region}.amazonaws.com/`) on AWS.
    bucket_url: String,
    credential: AwsCredential,
    region: String,
}

/// One page of `ListMultipartUploads`' answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listing {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_key_marker: Option<String>,
    #[serde(default)]
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<Open>,
}

/// An open multipart upload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Open {
    key: String,
    upload_id: String,
    /// RFC 3339, e.g. `2026-12-02T06:00:00.000Z`.
    initiated: String,
}

impl Lister {
    pub(crate) fn new(settings: &S3Settings, options: &ClientOptions) -> Result<Self, String> {
        let bucket_url = match &settings.endpoint {
            Some(endpoint) => format!("{}/{}", endpoint.trim_end_matches('/'), settings.bucket),
            None => format!(
                "https://{}.s3.{}.amazonaws.com/",
                settings.bucket, settings.region
            ),
        };
        let client = object_store::client::ReqwestConnector::default()
            .connect(options)
            .map_err(|e| e.to_string())?;
        Ok(Lister {
            client,
            bucket_url,
            credential: AwsCredential {
                key_id: settings.access_key_id.clone(),
                secret_key: settings.secret_access_key.clone(),
                token: None,
            },
            region: settings.region.clone(),
        })
    }

    /// One page of the multipart uploads open under `prefix`, after the markers.
    async fn page(&self, prefix: &str, after: Option<(&str, &str)>) -> StoreResult<Listing> {
        const DOING: &str = "listing the open multipart uploads";
        let escape = berth_core::uri::escape_component;
        let mut url = format!("{}?uploads=&prefix={}", self.bucket_url, escape(prefix));
        if let Some((key, upload)) = after {
            url.push_str(&format!(
                "&key-marker={}&upload-id-marker={}",
                escape(key),
                escape(upload)
            ));
        }
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.uri_mut() = url
            .parse()
            .map_err(|e| StoreError::new(DOING, format!("the URL `{url}`: {e}")))?;
        AwsAuthorizer::new(&self.credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| StoreError::new(DOING, e))?;
        let response =
            self.client.execute(request).await.map_err(|e| {
                StoreError::of_kind(berth_core::StoreErrorKind::Unavailable, DOING, e)
            })?;
        let status = response.status();
        let body =
            response.into_body().bytes().await.map_err(|e| {
                StoreError::of_kind(berth_core::StoreErrorKind::Unavailable, DOING, e)
            })?;
        if !status.is_success() {
            return Err(StoreError::new(
                DOING,
                format!(
                    "the store answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(500)])
                ),
            ));
        }
        quick_xml::de::from_reader(body.as_ref()).map_err(|e| StoreError::new(DOING, e))
    }
}

impl Inner {
    /// Aborts the multipart uploads of `data/` started before `started_before`; returns how
    /// many. Only keys this store writes (`data/{upload id}`) are touched.
    pub(crate) async fn abort_orphans(&self, started_before: Millis) -> StoreResult<usize> {
        let data = self.keys.data_prefix();
        let mut aborted = 0;
        let mut after: Option<(String, String)> = None;
        loop {
            let after_marks = after.as_ref().map(|(k, u)| (k.as_str(), u.as_str()));
            let page = self.lister.page(&data, after_marks).await?;
            for open in &page.uploads {
                let Some(id) = open.key.strip_prefix(&data) else {
                    continue;
                };
                let ours = crate::check_id(id).is_ok();
                let started = chrono::DateTime::parse_from_rfc3339(&open.initiated)
                    .map(|t| t.timestamp_millis())
                    .ok();
                if !ours || started.is_none_or(|t| t >= started_before) {
                    continue;
                }
                let key = Path::from(open.key.as_str());
                match self.s3.abort_multipart(&key, &open.upload_id).await {
                    Ok(()) => aborted += 1,
                    // Completed or aborted meanwhile.
                    Err(err) if crate::is_not_found(&err) => {}
                    Err(err) => {
                        return Err(failed(format!(
                            "aborting the abandoned multipart upload of `{id}`"
                        ))(err));
                    }
                }
            }
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(key), Some(upload)) => after = Some((key, upload)),
                _ => break,
            }
        }
        Ok(aborted)
    }
}
