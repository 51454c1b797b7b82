//! `berth fsck`: checks every stored blob against its digest and every manifest against
//! what it references, and reports — it never repairs. Safe beside a running server: the
//! metadata is read first and the blob store after, and a blob is always stored before it
//! is recorded, so nothing pushed meanwhile shows as missing.
//!
//! A file blob store is listed, so stray files show too; an S3 bucket is checked through the
//! blob port, blob by recorded blob (each read back and hashed).

use std::collections::HashSet;

use anyhow::Context as _;
use berth_blob::FsBlobStore;
use berth_core::ports::BlobStore;
use berth_core::{Algorithm, Digest, manifest};
use berth_meta_postgres::{PgMetadataStore, PgOptions};
use berth_meta_sqlite::SqliteMetadataStore;

use crate::config::Config;
use crate::config_check::redact_password;
use crate::stores::{BlobStoreUrl, DatabaseUrl};

/// Checks the data `config` names; an error listing each problem when there are any.
pub async fn fsck(config: &Config) -> anyhow::Result<()> {
    let (database, blob_store) = config.store_urls()?;
    // The records, read from whichever database holds them (SQLite beside a running server,
    // or the PostgreSQL database every node shares).
    let (records, links, manifests) = match &database {
        DatabaseUrl::Sqlite(database) => {
            anyhow::ensure!(
                database.is_file(),
                "there is no metadata database at {}",
                database.display()
            );
            let store = SqliteMetadataStore::open_shared(database)
                .await
                .with_context(|| format!("opening {}", database.display()))?;
            let records = store.blob_records().await;
            let links = store.blob_links().await;
            let manifests = store.live_manifests().await;
            store.close().await;
            (records?, links?, manifests?)
        }
        DatabaseUrl::Postgres { url, .. } => {
            let options = PgOptions {
                max_connections: 2,
                ..PgOptions::default()
            };
            let store = PgMetadataStore::open(url.expose(), options)
                .await
                .with_context(|| format!("opening {}", redact_password(url.expose())))?;
            let records = store.blob_records().await;
            let links = store.blob_links().await;
            let manifests = store.live_manifests().await;
            store.close().await;
            (records?, links?, manifests?)
        }
    };
    let (stored, mut problems) = match blob_store {
        BlobStoreUrl::File(root) => file_blobs(&FsBlobStore::open(&root)?, &records).await?,
        BlobStoreUrl::S3(settings) => {
            let store = berth_blob_s3::S3BlobStore::open(&settings)
                .await
                .with_context(|| {
                    format!(
                        "opening the S3 blob store of the blob_store setting (s3://{})",
                        settings.bucket
                    )
                })?;
            recorded_blobs(&store, &records).await
        }
    };
    let linked: HashSet<(&str, &Digest)> = links.iter().map(|(r, d)| (r.as_str(), d)).collect();
    let present: HashSet<(&str, &Digest)> = manifests
        .iter()
        .map(|m| (m.repository.as_str(), &m.digest))
        .collect();
    for m in &manifests {
        let name = format!("manifest {}@{}", m.repository, m.digest);
        let actual = Digest::of(m.digest.algorithm(), &m.content);
        if actual != m.digest {
            problems.push(format!("{name} is corrupt: its bytes hash to {actual}"));
            continue;
        }
        let parsed =
            match manifest::parse(m.content.clone(), Some(&m.media_type), m.digest.algorithm()) {
                Ok(parsed) => parsed,
                Err(err) => {
                    problems.push(format!("{name} does not parse: {err}"));
                    continue;
                }
            };
        for blob in &parsed.required_blobs {
            let digest = &blob.digest;
            if !linked.contains(&(m.repository.as_str(), digest)) {
                problems.push(format!(
                    "{name} references blob {digest}, which {} does not hold",
                    m.repository
                ));
            } else if !stored.contains(digest) {
                problems.push(format!(
                    "{name} references blob {digest}, missing from the blob store"
                ));
            }
        }
        for child in &parsed.children {
            if !present.contains(&(m.repository.as_str(), child)) {
                problems.push(format!(
                    "{name} references manifest {child}, which {} does not hold",
                    m.repository
                ));
            }
        }
    }

    eprintln!(
        "checked {} blobs and {} manifests: {} problem{}",
        stored.len(),
        manifests.len(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    if problems.is_empty() {
        return Ok(());
    }
    anyhow::bail!("{}", problems.join("\n"))
}

/// Every file of a file blob store, listed and rehashed, then the records against them: the
/// digests stored, and the problems found.
async fn file_blobs(
    blobs: &FsBlobStore,
    records: &[(Digest, u64)],
) -> anyhow::Result<(HashSet<Digest>, Vec<String>)> {
    let mut problems = Vec::new();
    let mut stored = HashSet::new();
    for blob in blobs.stored_blobs().context("listing the blob store")? {
        let digest = match blob {
            Ok(digest) => digest,
            Err(stray) => {
                problems.push(format!(
                    "stray file {} in the blob store",
                    stray.0.display()
                ));
                continue;
            }
        };
        match blobs.rehash(&digest) {
            Ok(actual) if actual == digest => {}
            Ok(actual) => problems.push(format!(
                "blob {digest} is corrupt: its bytes hash to {actual} ({})",
                blobs.blob_path(&digest).display()
            )),
            Err(err) => problems.push(format!("blob {digest} cannot be read: {err}")),
        }
        stored.insert(digest);
    }
    for (digest, size) in records {
        if !stored.contains(digest) {
            problems.push(format!(
                "blob {digest} is recorded but missing from the blob store"
            ));
        } else if let Ok(Some(actual)) = blobs.stat(digest).await
            && actual != *size
        {
            problems.push(format!(
                "blob {digest} is recorded with {size} bytes but holds {actual}"
            ));
        }
    }
    Ok((stored, problems))
}

/// Every recorded blob looked up and read back through the blob port (for stores that are
/// not listed here): the digests stored, with each problem pushed to `problems`.
async fn recorded_blobs(
    blobs: &dyn BlobStore,
    records: &[(Digest, u64)],
) -> (HashSet<Digest>, Vec<String>) {
    use futures_util::StreamExt as _;
    let mut problems = Vec::new();
    let mut stored = HashSet::new();
    for (digest, size) in records {
        let actual = match blobs.stat(digest).await {
            Ok(Some(actual)) => actual,
            Ok(None) => {
                problems.push(format!(
                    "blob {digest} is recorded but missing from the blob store"
                ));
                continue;
            }
            Err(err) => {
                problems.push(format!("blob {digest} cannot be looked up: {err}"));
                continue;
            }
        };
        stored.insert(digest.clone());
        if actual != *size {
            problems.push(format!(
                "blob {digest} is recorded with {size} bytes but holds {actual}"
            ));
            continue;
        }
        let read = async {
            use sha2::Digest as _;
            let (mut sha256, mut sha512) = (sha2::Sha256::new(), sha2::Sha512::new());
            let mut stream = blobs.read(digest, 0, actual).await?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| berth_core::StoreError::new("reading", e))?;
                match digest.algorithm() {
                    Algorithm::Sha256 => sha256.update(&chunk),
                    Algorithm::Sha512 => sha512.update(&chunk),
                }
            }
            let hex = match digest.algorithm() {
                Algorithm::Sha256 => hex::encode(sha256.finalize()),
                Algorithm::Sha512 => hex::encode(sha512.finalize()),
            };
            Ok::<_, berth_core::StoreError>(format!("{}:{hex}", digest.algorithm().as_str()))
        };
        match read.await {
            Ok(hashed) => {
                if hashed != digest.as_str() {
                    problems.push(format!(
                        "blob {digest} is corrupt: its bytes hash to {hashed}"
                    ));
                }
            }
            Err(err) => problems.push(format!("blob {digest} cannot be read: {err}")),
        }
    }
    (stored, problems)
}
