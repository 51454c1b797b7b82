//! `berth fsck`: checks every stored blob against its digest and every manifest against
//! what it references, and reports — it never repairs. Safe beside a running server: the
//! metadata is read first and the blob store after, and a blob is always on disk before it
//! is recorded, so nothing pushed meanwhile shows as missing.

use std::collections::HashSet;

use anyhow::Context as _;
use berth_blob::FsBlobStore;
use berth_core::ports::BlobStore as _;
use berth_core::{Digest, manifest};
use berth_meta_postgres::{PgMetadataStore, PgOptions};
use berth_meta_sqlite::SqliteMetadataStore;

use crate::config::Config;
use crate::config_check::redact_password;
use crate::stores::{BlobStoreUrl, DatabaseUrl};

/// Checks the data `config` names; an error listing each problem when there are any.
pub async fn fsck(config: &Config) -> anyhow::Result<()> {
    let (database, blob_store) = config.store_urls()?;
    let blob_root = match blob_store {
        BlobStoreUrl::File(root) => root,
        BlobStoreUrl::S3(s3) => anyhow::bail!(
            "berth fsck checks blobs in a file blob store; this configuration keeps them in the \
             S3 bucket `{}`, which fsck does not read yet. The object store's own tools check \
             its objects; `berth fsck` with a file blob store checks the records",
            s3.bucket
        ),
    };
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
    let blobs = FsBlobStore::open(&blob_root)?;
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
    for (digest, size) in &records {
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
