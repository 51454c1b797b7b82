//! Seeding a store of a given [`Shape`] directly in its database, for `--growth`: the rows a
//! push through Berth would write, without going through HTTP (a million pushes would take
//! hours).
//!
//! Every package is a repository `bench/…` of the organization `bench` (created by
//! `berth admin`, as the other phases do), pushed by `bench-admin`. Each manifest is a small
//! OCI image manifest with one config and one layer (the same two blobs for all of them) and
//! an annotation `org.opencontainers.image.version` that makes its bytes, hence its digest,
//! unique; it is tagged once. The rows are those of meta-sqlite's and meta-postgres's
//! `put_manifest` (with `record_version`), `create_package` and blob linking:
//!
//! - `blobs`: the config and the layer; their bytes are written to the blob store too, so
//!   the store stays whole (`berth fsck`, blob GETs);
//! - `repositories`, and `repository_blobs` linking both blobs to each;
//! - `packages` owned by the organization with its default visibility, and
//!   `package_user_roles` making the pusher admin of each, as a first push does;
//! - `manifests` (content, size, media type, the config's media type as artifact type,
//!   annotations as JSON), `manifest_blobs` (config and layer), `tags`, and
//!   `package_versions` (pusher, total size, the annotation as labels).
//!
//! Rows are written table by table, each in key order where it can be (manifests by digest,
//! tags by name), in one transaction per backend: SQLite through prepared multi-row
//! `INSERT`s on one connection with its journal off, PostgreSQL through binary `COPY`. The
//! schema is Berth's: the caller lets `berth admin` create it before seeding.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use sha2::{Digest as _, Sha256};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection, SqliteConnection};

/// The organization owning every seeded package (the one `berth admin create-org` made).
pub const ORG: &str = "bench";
/// The user that pushed every seeded manifest (the bench's site administrator).
const PUSHER: &str = "bench-admin";
/// The repository holding [`Shape::tags`] tagged manifests.
pub const TAGS_REPO: &str = "bench/tags";
/// Media type of every seeded manifest.
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the config blob, which Berth stores as the manifest's artifact type.
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of the layer blob.
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// The annotation that makes each manifest unique; Berth also shows it as a label.
const VERSION_ANNOTATION: &str = "org.opencontainers.image.version";
/// Rows per `INSERT` statement on SQLite (at most 9 columns: well under its 32,766
/// parameters).
const SQLITE_BATCH: usize = 500;
/// Bytes of `COPY` data sent to PostgreSQL at a time.
const COPY_CHUNK: usize = 1 << 20;

/// How big a seeded store is.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Manifests (each tagged once) of [`TAGS_REPO`].
    pub tags: usize,
    /// Packages of the organization, [`TAGS_REPO`] included; each is a repository.
    pub packages: usize,
    /// Manifests in the store overall; those not in [`TAGS_REPO`] are shared out evenly
    /// among the other packages (at least one each).
    pub manifests: usize,
}

impl Shape {
    /// The repositories and how many manifests each holds: [`TAGS_REPO`] first, then
    /// `bench/pkg-00000`… (all before it in byte order).
    pub fn repositories(&self) -> Vec<(String, usize)> {
        let others = self.packages.saturating_sub(1);
        let rest = self.manifests.saturating_sub(self.tags);
        let mut repos = vec![(TAGS_REPO.to_owned(), self.tags)];
        for i in 0..others {
            let extra = usize::from(i < rest % others.max(1));
            repos.push((format!("{ORG}/pkg-{i:05}"), (rest / others).max(1) + extra));
        }
        repos
    }

    /// Every repository name, in byte order (the catalog's order).
    pub fn repository_names_sorted(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .repositories()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        names.sort();
        names
    }
}

/// The tag of the `index`th manifest of a repository holding `count`: zero-padded, so byte
/// order is index order.
pub fn tag_name(index: usize, count: usize) -> String {
    let width = count.max(2).saturating_sub(1).to_string().len();
    format!("v{index:0width$}")
}

/// A blob every seeded manifest references.
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The layer (an empty tar archive: two zero blocks) and the config naming it.
pub fn blobs() -> (Blob, Blob) {
    let layer = vec![0u8; 1024];
    let layer_digest = sha256_digest(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    )
    .into_bytes();
    (
        Blob {
            digest: sha256_digest(&config),
            bytes: config,
        },
        Blob {
            digest: layer_digest,
            bytes: layer,
        },
    )
}

/// `sha256:<hex>` of `bytes`.
fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One seeded manifest and what its rows hold.
pub struct Manifest {
    /// `sha256:<hex>` of [`Manifest::content`].
    pub digest: String,
    /// The manifest's bytes.
    pub content: Vec<u8>,
    /// Its tag.
    pub tag: String,
    /// The annotations as Berth stores them (JSON text), also its labels.
    pub annotations: String,
    /// When it was pushed, in milliseconds since the epoch.
    pub created_at: i64,
}

/// Generates the manifests of one repository deterministically.
struct Generator {
    config: Blob,
    layer: Blob,
    /// Push time of the store's first manifest; each next one is a millisecond later.
    base_time: i64,
}

impl Generator {
    /// The `count` manifests of a repository whose first has the store-wide number `first`,
    /// in tag order.
    fn manifests(&self, first: usize, count: usize) -> Vec<Manifest> {
        (0..count)
            .map(|index| {
                let number = first + index;
                let content = format!(
                    r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_MEDIA_TYPE}","config":{{"mediaType":"{CONFIG_MEDIA_TYPE}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{LAYER_MEDIA_TYPE}","digest":"{}","size":{}}}],"annotations":{{"{VERSION_ANNOTATION}":"{number}"}}}}"#,
                    self.config.digest,
                    self.config.bytes.len(),
                    self.layer.digest,
                    self.layer.bytes.len(),
                )
                .into_bytes();
                Manifest {
                    digest: sha256_digest(&content),
                    content,
                    tag: tag_name(index, count),
                    annotations: format!(r#"{{"{VERSION_ANNOTATION}":"{number}"}}"#),
                    created_at: self.base_time + number as i64,
                }
            })
            .collect()
    }

    /// The version's total size as Berth records it: the manifest and both blobs.
    fn total_size(&self, manifest: &Manifest) -> i64 {
        (manifest.content.len() + self.config.bytes.len() + self.layer.bytes.len()) as i64
    }
}

/// Each repository with its id, its manifests' first store-wide number and their count.
type Placed = Vec<(i64, usize, usize)>;

/// Places `shape`'s repositories on their ids: `(id, first manifest number, count)`.
fn place(shape: &Shape, ids: &HashMap<String, i64>) -> anyhow::Result<Placed> {
    let mut first = 0;
    shape
        .repositories()
        .into_iter()
        .map(|(name, count)| {
            let id = *ids
                .get(&name)
                .with_context(|| format!("no id for {name}"))?;
            let placed = (id, first, count);
            first += count;
            Ok(placed)
        })
        .collect()
}

/// What seeding needs to know of the bootstrapped accounts.
struct Accounts {
    org: i64,
    pusher: i64,
    /// The organization's default visibility for new packages.
    visibility: String,
}

/// The current time in milliseconds since the epoch.
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes both blobs' bytes into the blob store under `data_dir`
/// (`blobs/sha256/<2 hex>/<hex>`, the file store's layout).
pub fn write_blob_files(data_dir: &Path) -> anyhow::Result<()> {
    let (config, layer) = blobs();
    for blob in [config, layer] {
        let hex = blob.digest.trim_start_matches("sha256:");
        let dir = data_dir.join("blobs").join("sha256").join(&hex[..2]);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(hex), &blob.bytes)?;
    }
    Ok(())
}

/// A value bound into a SQLite multi-row `INSERT`.
enum Value {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Null,
}

/// Inserts `rows` (each `columns` values) with `head` (`INSERT INTO t (…) VALUES`), in
/// statements of [`SQLITE_BATCH`] rows; returns how many were inserted.
async fn sqlite_insert(
    conn: &mut SqliteConnection,
    head: &str,
    columns: usize,
    rows: impl Iterator<Item = Vec<Value>>,
) -> anyhow::Result<u64> {
    let placeholders = |count: usize| {
        let row = format!("({})", vec!["?"; columns].join(","));
        format!("{head} {}", vec![row; count].join(","))
    };
    let full = placeholders(SQLITE_BATCH);
    let mut inserted = 0;
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(SQLITE_BATCH);
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        batch.extend(rows.by_ref().take(SQLITE_BATCH));
        let sql = if batch.len() == SQLITE_BATCH {
            full.clone()
        } else {
            placeholders(batch.len())
        };
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in batch.drain(..).flatten() {
            query = match value {
                Value::Int(v) => query.bind(v),
                Value::Text(v) => query.bind(v),
                Value::Bytes(v) => query.bind(v),
                Value::Null => query.bind(None::<String>),
            };
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// Seeds the SQLite database at `path` (its schema made by Berth) with `shape`.
pub async fn seed_sqlite(path: &Path, shape: &Shape) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut conn = SqliteConnection::connect(&format!("sqlite:{}", path.display())).await?;
    // Nothing else has the file open: no journal, no syncs, a large cache. The database is
    // put back in WAL mode at the end (Berth sets it again when it opens the file anyway).
    for pragma in [
        "PRAGMA journal_mode = OFF",
        "PRAGMA synchronous = OFF",
        "PRAGMA foreign_keys = OFF",
        "PRAGMA cache_size = -1048576",
        "PRAGMA temp_store = MEMORY",
    ] {
        sqlx::query(pragma).execute(&mut conn).await?;
    }
    let accounts = {
        let row: (i64, String) =
            sqlx::query_as("SELECT id, default_visibility FROM accounts WHERE login = ?1")
                .bind(ORG)
                .fetch_one(&mut conn)
                .await
                .context("the organization bench")?;
        let pusher: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE login = ?1")
            .bind(PUSHER)
            .fetch_one(&mut conn)
            .await
            .context("the user bench-admin")?;
        Accounts {
            org: row.0,
            pusher,
            visibility: row.1,
        }
    };
    let (config, layer) = blobs();
    let now = now_millis();
    let generator = Generator {
        base_time: now - shape.manifests as i64 - 1,
        config,
        layer,
    };
    let mut tx = conn.begin().await?;
    for blob in [&generator.config, &generator.layer] {
        sqlx::query("INSERT INTO blobs (digest, size) VALUES (?1, ?2)")
            .bind(&blob.digest)
            .bind(blob.bytes.len() as i64)
            .execute(&mut *tx)
            .await?;
    }
    let names: Vec<String> = shape.repository_names_sorted();
    let names_json = serde_json::to_string(&names)?;
    sqlx::query(
        "INSERT INTO repositories (name, created_at) SELECT value, ?2 FROM json_each(?1) ORDER BY value",
    )
    .bind(&names_json)
    .bind(generator.base_time)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest) \
         SELECT r.id, b.digest FROM repositories r, blobs b WHERE b.digest IN (?1, ?2) \
         ORDER BY r.id, b.digest",
    )
    .bind(&generator.config.digest)
    .bind(&generator.layer.digest)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO packages (name, owner_id, visibility, linked_repo_id, inherits, created_at) \
         SELECT value, ?2, ?3, NULL, 0, ?4 FROM json_each(?1) ORDER BY value",
    )
    .bind(&names_json)
    .bind(accounts.org)
    .bind(&accounts.visibility)
    .bind(generator.base_time)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO package_user_roles (package_id, user_id, role) \
         SELECT id, ?2, 'admin' FROM packages WHERE owner_id = ?1 ORDER BY id",
    )
    .bind(accounts.org)
    .bind(accounts.pusher)
    .execute(&mut *tx)
    .await?;
    let ids: HashMap<String, i64> = sqlx::query_as("SELECT name, id FROM repositories")
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let placed = place(shape, &ids)?;

    // By digest within each repository: the primary keys and indexes grow at their end.
    let by_digest = |&(id, first, count): &(i64, usize, usize)| {
        let mut manifests = generator.manifests(first, count);
        manifests.sort_unstable_by(|a, b| a.digest.cmp(&b.digest));
        manifests.into_iter().map(move |m| (id, m))
    };
    let inserted = sqlite_insert(
        &mut tx,
        "INSERT INTO manifests (repository_id, digest, media_type, size, content, artifact_type, \
             subject, annotations, created_at) VALUES",
        9,
        placed.iter().flat_map(by_digest).map(|(id, m)| {
            vec![
                Value::Int(id),
                Value::Text(m.digest),
                Value::Text(MANIFEST_MEDIA_TYPE.to_owned()),
                Value::Int(m.content.len() as i64),
                Value::Bytes(m.content),
                Value::Text(CONFIG_MEDIA_TYPE.to_owned()),
                Value::Null,
                Value::Text(m.annotations),
                Value::Int(m.created_at),
            ]
        }),
    )
    .await?;
    ensure!(
        inserted == shape_manifests(&placed),
        "inserted {inserted} manifests"
    );
    let mut blob_digests = [
        generator.config.digest.clone(),
        generator.layer.digest.clone(),
    ];
    blob_digests.sort();
    sqlite_insert(
        &mut tx,
        "INSERT INTO manifest_blobs (repository_id, manifest_digest, blob_digest) VALUES",
        3,
        placed.iter().flat_map(by_digest).flat_map(|(id, m)| {
            blob_digests.clone().map(|blob| {
                vec![
                    Value::Int(id),
                    Value::Text(m.digest.clone()),
                    Value::Text(blob),
                ]
            })
        }),
    )
    .await?;
    sqlite_insert(
        &mut tx,
        "INSERT INTO package_versions (repository_id, pushed_by, total_size, digest, platforms, \
             labels, created_at, updated_at) VALUES",
        8,
        placed.iter().flat_map(by_digest).map(|(id, m)| {
            vec![
                Value::Int(id),
                Value::Int(accounts.pusher),
                Value::Int(generator.total_size(&m)),
                Value::Text(m.digest),
                Value::Null,
                Value::Text(m.annotations),
                Value::Int(m.created_at),
                Value::Int(m.created_at),
            ]
        }),
    )
    .await?;
    sqlite_insert(
        &mut tx,
        "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES",
        4,
        placed.iter().flat_map(|&(id, first, count)| {
            generator.manifests(first, count).into_iter().map(move |m| {
                vec![
                    Value::Int(id),
                    Value::Text(m.tag),
                    Value::Text(m.digest),
                    Value::Int(m.created_at),
                ]
            })
        }),
    )
    .await?;
    tx.commit().await?;
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    println!(
        "  seeded SQLite: {} manifests in {} repositories in {:.1} s",
        shape_manifests(&placed),
        placed.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// How many manifests `placed` holds.
fn shape_manifests(placed: &Placed) -> u64 {
    placed.iter().map(|&(_, _, count)| count as u64).sum()
}

/// PostgreSQL's binary `COPY` format, written row by row and sent in chunks.
struct Copy {
    buf: Vec<u8>,
}

impl Copy {
    /// A buffer holding the format's header.
    fn new() -> Copy {
        let mut buf = Vec::with_capacity(2 * COPY_CHUNK);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Copy { buf }
    }

    /// Starts a row of `fields` fields.
    fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    /// A BIGINT field.
    fn int(&mut self, value: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// A TEXT (UTF-8) or BYTEA field.
    fn bytes(&mut self, value: &[u8]) {
        self.buf
            .extend_from_slice(&i32::try_from(value.len()).unwrap_or(i32::MAX).to_be_bytes());
        self.buf.extend_from_slice(value);
    }

    /// A NULL field.
    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }
}

/// Runs `COPY <target> FROM STDIN (FORMAT binary)` with the rows `write` puts in the buffer
/// for each of `items`; returns the row count PostgreSQL reports.
async fn pg_copy<I, F>(
    conn: &mut PgConnection,
    target: &str,
    items: I,
    mut write: F,
) -> anyhow::Result<u64>
where
    I: Iterator,
    F: FnMut(&mut Copy, I::Item),
{
    let mut copy_in = conn
        .copy_in_raw(&format!("COPY {target} FROM STDIN (FORMAT binary)"))
        .await?;
    let mut copy = Copy::new();
    for item in items {
        write(&mut copy, item);
        if copy.buf.len() >= COPY_CHUNK {
            copy_in.send(copy.buf.as_slice()).await?;
            copy.buf.clear();
        }
    }
    copy.buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy_in.send(copy.buf.as_slice()).await?;
    Ok(copy_in.finish().await?)
}

/// Seeds the PostgreSQL database at `url` (its schema made by Berth) with `shape`, then
/// `VACUUM ANALYZE`s it, as autovacuum would have after such growth.
pub async fn seed_postgres(url: &str, shape: &Shape) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut conn)
        .await?;
    let (org, visibility): (i64, String) =
        sqlx::query_as("SELECT id, default_visibility FROM accounts WHERE login = $1")
            .bind(ORG)
            .fetch_one(&mut conn)
            .await
            .context("the organization bench")?;
    let pusher: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE login = $1")
        .bind(PUSHER)
        .fetch_one(&mut conn)
        .await
        .context("the user bench-admin")?;
    let (config, layer) = blobs();
    let generator = Generator {
        base_time: now_millis() - shape.manifests as i64 - 1,
        config,
        layer,
    };
    let mut tx = conn.begin().await?;
    for blob in [&generator.config, &generator.layer] {
        sqlx::query("INSERT INTO blobs (digest, size) VALUES ($1, $2)")
            .bind(&blob.digest)
            .bind(blob.bytes.len() as i64)
            .execute(&mut *tx)
            .await?;
    }
    let names = shape.repository_names_sorted();
    sqlx::query("INSERT INTO repositories (name, created_at) SELECT unnest($1::text[]), $2")
        .bind(&names)
        .bind(generator.base_time)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest) \
         SELECT r.id, b.digest FROM repositories r CROSS JOIN blobs b \
         WHERE b.digest IN ($1, $2) ORDER BY r.id, b.digest",
    )
    .bind(&generator.config.digest)
    .bind(&generator.layer.digest)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO packages (name, owner_id, visibility, linked_repo_id, inherits, created_at) \
         SELECT unnest($1::text[]), $2, $3, NULL, FALSE, $4",
    )
    .bind(&names)
    .bind(org)
    .bind(&visibility)
    .bind(generator.base_time)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO package_user_roles (package_id, user_id, role) \
         SELECT id, $2, 'admin' FROM packages WHERE owner_id = $1 ORDER BY id",
    )
    .bind(org)
    .bind(pusher)
    .execute(&mut *tx)
    .await?;
    let ids: HashMap<String, i64> = sqlx::query_as("SELECT name, id FROM repositories")
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let placed = place(shape, &ids)?;
    let by_digest = |&(id, first, count): &(i64, usize, usize)| {
        let mut manifests = generator.manifests(first, count);
        manifests.sort_unstable_by(|a, b| a.digest.cmp(&b.digest));
        manifests.into_iter().map(move |m| (id, m))
    };
    let copied = pg_copy(
        &mut tx,
        "manifests (repository_id, digest, media_type, size, content, artifact_type, subject, \
             annotations, created_at)",
        placed.iter().flat_map(by_digest),
        |copy, (id, m)| {
            copy.row(9);
            copy.int(id);
            copy.bytes(m.digest.as_bytes());
            copy.bytes(MANIFEST_MEDIA_TYPE.as_bytes());
            copy.int(m.content.len() as i64);
            copy.bytes(&m.content);
            copy.bytes(CONFIG_MEDIA_TYPE.as_bytes());
            copy.null();
            copy.bytes(m.annotations.as_bytes());
            copy.int(m.created_at);
        },
    )
    .await?;
    ensure!(
        copied == shape_manifests(&placed),
        "copied {copied} manifests"
    );
    let mut blob_digests = [
        generator.config.digest.clone(),
        generator.layer.digest.clone(),
    ];
    blob_digests.sort();
    pg_copy(
        &mut tx,
        "manifest_blobs (repository_id, manifest_digest, blob_digest)",
        placed.iter().flat_map(by_digest),
        |copy, (id, m)| {
            for blob in &blob_digests {
                copy.row(3);
                copy.int(id);
                copy.bytes(m.digest.as_bytes());
                copy.bytes(blob.as_bytes());
            }
        },
    )
    .await?;
    pg_copy(
        &mut tx,
        "package_versions (repository_id, digest, pushed_by, total_size, platforms, labels, \
             created_at, updated_at)",
        placed.iter().flat_map(by_digest),
        |copy, (id, m)| {
            copy.row(8);
            copy.int(id);
            copy.bytes(m.digest.as_bytes());
            copy.int(pusher);
            copy.int(generator.total_size(&m));
            copy.null();
            copy.bytes(m.annotations.as_bytes());
            copy.int(m.created_at);
            copy.int(m.created_at);
        },
    )
    .await?;
    pg_copy(
        &mut tx,
        "tags (repository_id, name, digest, updated_at)",
        placed.iter().flat_map(|&(id, first, count)| {
            generator
                .manifests(first, count)
                .into_iter()
                .map(move |m| (id, m))
        }),
        |copy, (id, m)| {
            copy.row(4);
            copy.int(id);
            copy.bytes(m.tag.as_bytes());
            copy.bytes(m.digest.as_bytes());
            copy.int(m.created_at);
        },
    )
    .await?;
    tx.commit().await?;
    let seeded = started.elapsed().as_secs_f64();
    sqlx::query("VACUUM ANALYZE").execute(&mut conn).await?;
    conn.close().await?;
    println!(
        "  seeded PostgreSQL: {} manifests in {} repositories in {seeded:.1} s, VACUUM ANALYZE \
         {:.1} s",
        shape_manifests(&placed),
        placed.len(),
        started.elapsed().as_secs_f64() - seeded
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_shares_the_manifests_out() {
        let shape = Shape {
            tags: 10,
            packages: 4,
            manifests: 21,
        };
        let repos = shape.repositories();
        assert_eq!(repos.len(), 4);
        assert_eq!(repos[0], (TAGS_REPO.to_owned(), 10));
        assert_eq!(repos.iter().map(|(_, n)| n).sum::<usize>(), 21);
        let names = shape.repository_names_sorted();
        assert_eq!(names.last().map(String::as_str), Some(TAGS_REPO));
    }

    #[test]
    fn tags_sort_in_index_order_and_manifests_are_distinct() {
        assert!(tag_name(9, 100_000) < tag_name(10, 100_000));
        assert_eq!(tag_name(5, 300), "v005");
        let (config, layer) = blobs();
        let generator = Generator {
            config,
            layer,
            base_time: 0,
        };
        let manifests = generator.manifests(7, 3);
        assert_eq!(manifests[1].created_at, 8);
        assert_ne!(manifests[0].digest, manifests[1].digest);
        assert_eq!(manifests[0].digest, sha256_digest(&manifests[0].content));
        let parsed: serde_json::Value = serde_json::from_slice(&manifests[0].content).unwrap();
        assert_eq!(parsed["annotations"][VERSION_ANNOTATION], "7");
        assert_eq!(parsed["config"]["size"], generator.config.bytes.len());
    }
}
