//! What the operator's tools need of the store as a whole — `berth backup`, `restore` and
//! `fsck` — and the readiness probe: listing every stored blob, re-hashing one, putting one
//! into another store (a hard link when both are on one filesystem, else a durable copy).
//!
//! Calls only `std::fs` and `sha2`; the functions block (the tools run them off the request
//! path), except [`probe`], which the port's `probe` runs on a blocking thread.

use std::fs::{self, File};
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_core::{Algorithm, Digest};
use sha2::Digest as _;

use crate::layout::Layout;
use crate::{FsBlobStore, sync_dir};

/// How a blob reached another store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// The destination already held it.
    AlreadyThere,
    /// Hard-linked: same filesystem, no bytes copied (committed blobs are never rewritten).
    Linked,
    /// Copied byte for byte and made durable.
    Copied,
}

/// A file in the blob area that is not a blob under its digest's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayFile(pub PathBuf);

impl FsBlobStore {
    /// Every blob the store holds, in no particular order; files whose place does not name a
    /// digest are listed as [`StrayFile`]s.
    pub fn stored_blobs(&self) -> io::Result<Vec<Result<Digest, StrayFile>>> {
        let mut found = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.layout.algorithm_dir(algorithm);
            let shards = match fs::read_dir(&dir) {
                Ok(shards) => shards,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            for shard in shards {
                let shard = shard?;
                for entry in fs::read_dir(shard.path())? {
                    let entry = entry?;
                    let name = entry.file_name();
                    let parsed = name
                        .to_str()
                        .and_then(|hex| format!("{}:{hex}", algorithm.as_str()).parse().ok())
                        .filter(|digest: &Digest| self.layout.blob(digest) == entry.path());
                    found.push(parsed.ok_or_else(|| StrayFile(entry.path())));
                }
            }
        }
        Ok(found)
    }

    /// The digest the stored bytes of blob `digest` hash to (under `digest`'s algorithm): a
    /// sound blob's is `digest` itself.
    pub fn rehash(&self, digest: &Digest) -> io::Result<Digest> {
        let mut file = File::open(self.layout.blob(digest))?;
        let mut buffer = vec![0u8; 1 << 20];
        let hex = match digest.algorithm() {
            Algorithm::Sha256 => {
                let mut hasher = sha2::Sha256::new();
                hash_file(&mut file, &mut buffer, |b| hasher.update(b))?;
                hex::encode(hasher.finalize())
            }
            Algorithm::Sha512 => {
                let mut hasher = sha2::Sha512::new();
                hash_file(&mut file, &mut buffer, |b| hasher.update(b))?;
                hex::encode(hasher.finalize())
            }
        };
        format!("{}:{hex}", digest.algorithm().as_str())
            .parse()
            .map_err(io::Error::other)
    }

    /// Puts blob `digest` into `dest`, durably: a hard link when both stores share a
    /// filesystem, else a copy written aside and renamed into place.
    pub fn place_blob_into(&self, digest: &Digest, dest: &FsBlobStore) -> io::Result<Placed> {
        let from = self.layout.blob(digest);
        let to = dest.layout.blob(digest);
        if to.try_exists()? {
            return Ok(Placed::AlreadyThere);
        }
        let shard = to
            .parent()
            .ok_or_else(|| io::Error::other("blob path has no parent"))?;
        fs::create_dir_all(shard)?;
        let placed = match fs::hard_link(&from, &to) {
            Ok(()) => Placed::Linked,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                return Ok(Placed::AlreadyThere);
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(err),
            Err(_) => {
                let aside = shard.join(format!(".{}.partial", digest.hex()));
                fs::copy(&from, &aside)?;
                File::open(&aside)?.sync_all()?;
                fs::rename(&aside, &to)?;
                Placed::Copied
            }
        };
        sync_dir(shard)?;
        Ok(placed)
    }

    /// Where blob `digest` lives: for messages to the operator, who may want to look.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.layout.blob(digest)
    }
}

fn hash_file(file: &mut File, buffer: &mut [u8], mut update: impl FnMut(&[u8])) -> io::Result<()> {
    loop {
        match file.read(buffer)? {
            0 => return Ok(()),
            n => update(&buffer[..n]),
        }
    }
}

/// Probe files told apart from each other when probes overlap.
static PROBES: AtomicU64 = AtomicU64::new(0);

/// The readiness probe: the blobs directory can be listed, and a file can be created and
/// removed among the uploads. Its name holds a `.`, which no upload id does, so it can never
/// be taken for an upload.
pub(crate) fn probe(layout: &Layout) -> io::Result<()> {
    read_dir_once(layout.blobs_dir())?;
    let path = layout.uploads_dir().join(format!(
        ".probe-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    ));
    File::create(&path)?;
    match fs::remove_file(&path) {
        // Swept by a concurrent purge of stale uploads: the file was made, which is the point.
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Opens `dir` for listing and reads its first entry.
fn read_dir_once(dir: &Path) -> io::Result<()> {
    fs::read_dir(dir)?.next().transpose().map(drop)
}

/// The blobs last modified before `cutoff` among the next `limit` under `blobs_dir` after
/// `after`, in digest order, and the cursor to go on from (`None` when none are left). Files that do not name a digest are left to `fsck`. One shard directory is read per
/// step, so a page costs its own entries, not the store's.
pub(crate) fn list_blobs(
    blobs_dir: &Path,
    after: Option<Digest>,
    limit: usize,
    cutoff: std::time::SystemTime,
) -> io::Result<(Vec<Digest>, Option<Digest>)> {
    let mut found = Vec::new();
    let mut examined = 0;
    // Algorithms in the order their names sort, as digests do.
    let mut algorithms = [Algorithm::Sha256, Algorithm::Sha512];
    algorithms.sort_by_key(|a| a.as_str());
    for algorithm in algorithms {
        let after_hex = match &after {
            Some(a) if a.algorithm().as_str() > algorithm.as_str() => continue,
            Some(a) if a.algorithm() == algorithm => Some(a.hex().to_owned()),
            _ => None,
        };
        let mut shards = match sorted_names(&blobs_dir.join(algorithm.as_str())) {
            Ok(shards) => shards,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if let Some(hex) = &after_hex {
            shards.retain(|shard| shard.as_str() >= &hex[..2.min(hex.len())]);
        }
        for shard in shards {
            let dir = blobs_dir.join(algorithm.as_str()).join(&shard);
            let mut names = match sorted_names(&dir) {
                Ok(names) => names,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            if let Some(hex) = &after_hex {
                names.retain(|name| name.as_str() > hex.as_str());
            }
            for name in names {
                let Ok(digest) = format!("{}:{name}", algorithm.as_str()).parse::<Digest>() else {
                    continue;
                };
                if !name.starts_with(shard.as_str()) {
                    continue;
                }
                examined += 1;
                match fs::metadata(dir.join(&name)) {
                    Ok(meta) if meta.modified()? < cutoff => found.push(digest.clone()),
                    Ok(_) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
                if examined >= limit {
                    return Ok((found, Some(digest)));
                }
            }
        }
    }
    Ok((found, None))
}

/// The UTF-8 names in `dir`, sorted.
fn sorted_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}
