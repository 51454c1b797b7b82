//! `berth backup DEST` and `berth restore SRC`: a consistent copy of a data directory taken
//! while the server runs, and putting one back into an empty data directory.
//!
//! A backup is a directory holding `metadata.sqlite` (an online snapshot: `VACUUM INTO`), the
//! blobs that snapshot records, in the blob store's own layout (hard-linked when on the same
//! filesystem, else copied: committed blobs are never rewritten), and `token-signing.key`.
//! The database is copied first and the blobs after, so every blob the copy records is
//! already on disk (a blob is written before it is recorded); blobs pushed meanwhile are left
//! for the next backup. SQL stays in `berth-meta-sqlite` and the blob layout in `berth-blob`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use berth_blob::{FsBlobStore, Placed};
use berth_meta_sqlite::SqliteMetadataStore;

use crate::config::{Config, Overrides};
use crate::stores::{BlobStoreUrl, DatabaseUrl};

/// Where the data a tool works on lives: as given to `serve`.
#[derive(clap::Args)]
pub struct DataArgs {
    /// Directory holding the instance's state (as given to `serve`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Configuration file (default: ./berth.toml when present).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl DataArgs {
    /// The configuration these arguments select.
    pub fn load(self) -> anyhow::Result<Config> {
        let overrides = Overrides {
            data_dir: self.data_dir,
            ..Overrides::default()
        };
        Config::load(self.config.as_deref(), overrides)
    }
}

/// The metadata database file and the blob store's root `config` names.
pub fn local_stores(config: &Config) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (database, blobs) = config.store_urls()?;
    let database = match database {
        DatabaseUrl::Sqlite(path) => path,
        DatabaseUrl::Postgres { .. } => anyhow::bail!(
            "berth backup and restore work on the embedded setup (database_url = sqlite:…); \
             this configuration's metadata is in PostgreSQL: back it up with pg_dump (or your \
             database's point-in-time recovery) and the blob store with its own tools"
        ),
    };
    match blobs {
        BlobStoreUrl::File(blobs) => Ok((database, blobs)),
        BlobStoreUrl::S3(s3) => anyhow::bail!(
            "berth backup and restore work on the embedded setup; this configuration keeps blobs \
             in the S3 bucket `{}`: back it up with the object store's own tools",
            s3.bucket
        ),
    }
}

/// The file the backup holds the database in.
const DATABASE: &str = "metadata.sqlite";
/// The token signing key, kept so registry tokens issued before stay valid.
const SIGNING_KEY: &str = "token-signing.key";

/// Copies the data `config` names into `dest`, a new or empty directory.
pub async fn backup(config: &Config, dest: &Path) -> anyhow::Result<()> {
    let (database, blob_root) = local_stores(config)?;
    anyhow::ensure!(
        database.is_file(),
        "there is no metadata database at {}",
        database.display()
    );
    ensure_empty(dest, "the backup directory")?;
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let store = SqliteMetadataStore::open_shared(&database)
        .await
        .with_context(|| format!("opening {}", database.display()))?;
    let recorded = store.backup_to(&dest.join(DATABASE)).await;
    store.close().await;
    let recorded = recorded?;
    let source = FsBlobStore::open(&blob_root)?;
    let target = FsBlobStore::open(dest)?;
    let (mut linked, mut copied, mut missing) = (0, 0, Vec::new());
    for (digest, _) in &recorded {
        match source.place_blob_into(digest, &target) {
            Ok(Placed::Linked) => linked += 1,
            Ok(Placed::Copied) => copied += 1,
            Ok(Placed::AlreadyThere) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => missing.push(digest),
            Err(err) => {
                return Err(err).with_context(|| format!("copying blob {digest}"));
            }
        }
    }
    copy_if_present(&config.data_dir.join(SIGNING_KEY), &dest.join(SIGNING_KEY))?;
    eprintln!(
        "backed up the metadata and {} blobs ({linked} hard-linked, {copied} copied) to {}",
        recorded.len(),
        dest.display()
    );
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|d| d.to_string()).collect();
        anyhow::bail!(
            "the metadata records blobs the blob store does not hold (run berth fsck): {}",
            list.join(", ")
        );
    }
    Ok(())
}

/// Puts the backup in `src` into the data `config` names, which must be empty.
pub async fn restore(config: &Config, src: &Path) -> anyhow::Result<()> {
    let (database, blob_root) = local_stores(config)?;
    let snapshot = src.join(DATABASE);
    anyhow::ensure!(
        snapshot.is_file(),
        "{} holds no backup: {} is missing",
        src.display(),
        snapshot.display()
    );
    ensure_empty(&config.data_dir, "the data directory")?;
    ensure_empty(&blob_root, "the blob store directory")?;
    anyhow::ensure!(
        !database.exists(),
        "refusing to restore over the existing database {}",
        database.display()
    );
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    if let Some(parent) = database.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Copied, not linked: the restored database is written to.
    copy_durably(&snapshot, &database)?;
    let source = FsBlobStore::open(src)?;
    let target = FsBlobStore::open(&blob_root)?;
    let mut placed = 0;
    for blob in source.stored_blobs()? {
        match blob {
            Ok(digest) => {
                source
                    .place_blob_into(&digest, &target)
                    .with_context(|| format!("restoring blob {digest}"))?;
                placed += 1;
            }
            Err(stray) => eprintln!("warning: skipping {}: not a blob", stray.0.display()),
        }
    }
    copy_if_present(&src.join(SIGNING_KEY), &config.data_dir.join(SIGNING_KEY))?;
    eprintln!(
        "restored the metadata and {placed} blobs into {}; `berth fsck` checks them",
        config.data_dir.display()
    );
    Ok(())
}

/// Fails naming `dir` unless it is missing or empty.
fn ensure_empty(dir: &Path, what: &str) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => anyhow::ensure!(
            entries.next().is_none(),
            "{what} {} is not empty; restore and back up only into an empty directory",
            dir.display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
    }
    Ok(())
}

fn copy_if_present(from: &Path, to: &Path) -> anyhow::Result<()> {
    if from.is_file() {
        copy_durably(from, to)?;
    }
    Ok(())
}

fn copy_durably(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::File::open(to)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("syncing {}", to.display()))
}
