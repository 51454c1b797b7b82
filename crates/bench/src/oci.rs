//! A minimal, cheap OCI distribution (v1.1) client: just the calls the phases time.
//!
//! Bodies are sent as `Bytes` (slices share the caller's buffer, nothing is copied) and
//! responses are read chunk by chunk and counted, never collected or hashed. Every call checks
//! the status code the specification requires and fails with the server's answer otherwise.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Client, Response, StatusCode, Url};

use crate::payload::{Blob, MANIFEST_MEDIA_TYPE};

/// One worker's connection to one registry (HTTP/1.1 over plain TCP, connections reused).
pub struct Registry {
    client: Client,
    base: Url,
}

impl Registry {
    /// A client for the registry at `base` (`http://host:port`), sending `authorization`
    /// with every request when given.
    pub fn new(base: &str, authorization: Option<&str>) -> anyhow::Result<Registry> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(reqwest::header::AUTHORIZATION, value.parse()?);
        }
        let client = Client::builder()
            .default_headers(headers)
            .http1_only()
            .no_proxy()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(600))
            .build()?;
        Ok(Registry {
            client,
            base: Url::parse(base)?.join("/v2/")?,
        })
    }

    /// Pushes `blob` to `repo` as `POST` then one `PUT ?digest=` carrying the whole body.
    pub async fn push_monolithic(&self, repo: &str, blob: &Blob) -> anyhow::Result<()> {
        let location = self.start_upload(repo).await?;
        self.finish_upload(location, &blob.digest, blob.bytes.clone())
            .await
    }

    /// Pushes `blob` to `repo` as `POST`, one `PATCH` per `chunk_size` bytes (following each
    /// `Location`), then `PUT ?digest=` with no body.
    pub async fn push_chunked(
        &self,
        repo: &str,
        blob: &Blob,
        chunk_size: usize,
    ) -> anyhow::Result<()> {
        let mut location = self.start_upload(repo).await?;
        let mut start = 0;
        while start < blob.bytes.len() {
            let end = (start + chunk_size).min(blob.bytes.len());
            let response = self
                .client
                .patch(location)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_RANGE, format!("{start}-{}", end - 1))
                .body(blob.bytes.slice(start..end))
                .send()
                .await?;
            location = self
                .next_location(response, StatusCode::ACCEPTED, "PATCH upload chunk")
                .await?;
            start = end;
        }
        self.finish_upload(location, &blob.digest, Bytes::new())
            .await
    }

    /// Downloads blob `digest` of `repo`, counting its bytes; returns the count.
    pub async fn pull_blob(&self, repo: &str, digest: &str) -> anyhow::Result<u64> {
        let url = self.base.join(&format!("{repo}/blobs/{digest}"))?;
        let response = expect(
            self.client.get(url).send().await?,
            StatusCode::OK,
            "GET blob",
        )
        .await?;
        drain(response).await
    }

    /// Pushes `bytes` to `repo` as the manifest tagged `tag`.
    pub async fn put_manifest(&self, repo: &str, tag: &str, bytes: Bytes) -> anyhow::Result<()> {
        let url = self.base.join(&format!("{repo}/manifests/{tag}"))?;
        let request = self
            .client
            .put(url)
            .header(CONTENT_TYPE, MANIFEST_MEDIA_TYPE)
            .body(bytes);
        let response = expect(request.send().await?, StatusCode::CREATED, "PUT manifest").await?;
        drain(response).await?;
        Ok(())
    }

    /// Fetches the manifest tagged `tag` of `repo`; returns its length.
    pub async fn get_manifest(&self, repo: &str, tag: &str) -> anyhow::Result<u64> {
        let url = self.base.join(&format!("{repo}/manifests/{tag}"))?;
        let request = self.client.get(url).header(ACCEPT, MANIFEST_MEDIA_TYPE);
        let response = expect(request.send().await?, StatusCode::OK, "GET manifest").await?;
        drain(response).await
    }

    /// `GET <path>` (a path from the server's root, with its query), expecting 200; returns the
    /// `Docker-Content-Digest` header, if any, and the body. Manifests (a path with
    /// `/manifests/`) are asked for as OCI image manifests.
    pub async fn get(&self, path: &str) -> anyhow::Result<(Option<String>, Bytes)> {
        let url = self.base.join(path)?;
        let mut request = self.client.get(url);
        if path.contains("/manifests/") {
            request = request.header(ACCEPT, MANIFEST_MEDIA_TYPE);
        }
        let response = expect(request.send().await?, StatusCode::OK, "GET").await?;
        let digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok((digest, response.bytes().await?))
    }

    /// `POST /v2/<repo>/blobs/uploads/`; returns the upload's location.
    async fn start_upload(&self, repo: &str) -> anyhow::Result<Url> {
        let url = self.base.join(&format!("{repo}/blobs/uploads/"))?;
        let response = self.client.post(url).send().await?;
        self.next_location(response, StatusCode::ACCEPTED, "POST upload")
            .await
    }

    /// `PUT <location>?digest=<digest>` with `body`, expecting 201.
    async fn finish_upload(
        &self,
        mut location: Url,
        digest: &str,
        body: Bytes,
    ) -> anyhow::Result<()> {
        location.query_pairs_mut().append_pair("digest", digest);
        let mut request = self.client.put(location).body(body.clone());
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/octet-stream");
        }
        let response = expect(request.send().await?, StatusCode::CREATED, "PUT upload").await?;
        drain(response).await?;
        Ok(())
    }

    /// Checks `response` has `status` and returns its `Location`, resolved against the base.
    async fn next_location(
        &self,
        response: Response,
        status: StatusCode,
        what: &str,
    ) -> anyhow::Result<Url> {
        let response = expect(response, status, what).await?;
        let location = response
            .headers()
            .get(LOCATION)
            .with_context(|| format!("{what}: no Location header"))?
            .to_str()?;
        let location = self.base.join(location)?;
        drain(response).await?;
        Ok(location)
    }
}

/// Returns `response` if its status is `status`, else an error quoting the server's answer.
async fn expect(response: Response, status: StatusCode, what: &str) -> anyhow::Result<Response> {
    if response.status() == status {
        return Ok(response);
    }
    let got = response.status();
    let body = response.text().await.unwrap_or_default();
    bail!(
        "{what}: expected {status}, got {got}: {}",
        body.chars().take(500).collect::<String>()
    )
}

/// Reads `response`'s body to its end, counting bytes; checks `Content-Length` when present.
async fn drain(mut response: Response) -> anyhow::Result<u64> {
    let expected = response.content_length();
    let mut read = 0u64;
    while let Some(chunk) = response.chunk().await? {
        read += chunk.len() as u64;
    }
    if let Some(expected) = expected {
        ensure!(
            read == expected,
            "body: read {read} bytes, Content-Length said {expected}"
        );
    }
    Ok(read)
}
