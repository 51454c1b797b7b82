//! What the registry's query modules share: repositories by name, and the checks a manifest
//! push makes of the blobs and manifests it references.
//!
//! The checks lock what they find (`FOR SHARE`), so inside the caller's transaction nothing
//! they vouched for can be unlinked or deleted before it commits: a concurrent `DELETE` of a
//! blob link or `UPDATE` marking a manifest deleted waits for the commit, and a check that
//! waited for such a write sees its outcome.

use berth_core::digest::Digest;
use berth_core::error::StoreError;
use berth_core::ports::BlobRef;
use sqlx::PgConnection;

use crate::store::{failed, now_millis};

/// `digests` as text, to bind as one `text[]` parameter.
pub(crate) fn text_list(digests: &[Digest]) -> Vec<&str> {
    digests.iter().map(Digest::as_str).collect()
}

/// The id of repository `name`, if it exists.
pub(crate) async fn repository_id(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed(format!("looking up repository {name}")))
}

/// The id of repository `name`, creating the repository if new. Run inside a transaction.
/// Two pushes creating one repository at once both get its id: the second's insert waits for
/// the first's commit, then does nothing, and the select that follows sees the committed row.
pub(crate) async fn ensure_repository(
    conn: &mut PgConnection,
    name: &str,
) -> Result<i64, StoreError> {
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO repositories (name, created_at) VALUES ($1, $2) \
         ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(now_millis())
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed(format!("creating repository {name}")))?;
    if let Some(id) = created {
        return Ok(id);
    }
    repository_id(conn, name).await?.ok_or_else(|| {
        StoreError::new(
            format!("looking up repository {name}"),
            "repository vanished inside its own transaction",
        )
    })
}

/// The first of `digests` (in the order given) that is not a live manifest of repository
/// `repo`: one query, run on `conn` inside the caller's transaction. The live ones are
/// locked `FOR SHARE` until it ends, so none can be marked deleted before the caller commits.
pub(crate) async fn first_missing_manifest<'d>(
    conn: &mut PgConnection,
    repo: &str,
    digests: &'d [Digest],
) -> Result<Option<&'d Digest>, StoreError> {
    if digests.is_empty() {
        return Ok(None);
    }
    let position: Option<i64> = sqlx::query_scalar(
        "WITH live AS MATERIALIZED ( \
             SELECT m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id \
             WHERE r.name = $1 AND m.digest = ANY($2::text[]) AND m.deleted_at IS NULL \
             FOR SHARE OF m) \
         SELECT wanted.ord FROM unnest($2::text[]) WITH ORDINALITY AS wanted (digest, ord) \
         WHERE NOT EXISTS (SELECT 1 FROM live WHERE live.digest = wanted.digest) \
         ORDER BY wanted.ord LIMIT 1",
    )
    .bind(repo)
    .bind(text_list(digests))
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed(format!("checking which manifests {repo} holds")))?;
    // ORDINALITY counts from 1.
    Ok(position
        .and_then(|i| usize::try_from(i - 1).ok())
        .and_then(|i| digests.get(i)))
}

/// The first of `wanted` (in the order given) that repository `repo` does not hold with the
/// size its descriptor states, with the size it holds (`None`: not linked at all). One query,
/// run on `conn` inside the caller's transaction; the links found are locked `FOR SHARE`
/// until it ends, so none can be unlinked before the caller commits.
pub(crate) async fn first_unmet_blob<'d>(
    conn: &mut PgConnection,
    repo: &str,
    wanted: &'d [BlobRef],
) -> Result<Option<(&'d BlobRef, Option<u64>)>, StoreError> {
    if wanted.is_empty() {
        return Ok(None);
    }
    let digests: Vec<&str> = wanted.iter().map(|b| b.digest.as_str()).collect();
    // A declared size beyond BIGINT matches no stored size: -1 says so without failing.
    let sizes: Vec<i64> = wanted
        .iter()
        .map(|b| i64::try_from(b.size).unwrap_or(-1))
        .collect();
    let row: Option<(i64, Option<i64>)> = sqlx::query_as(
        "WITH held AS MATERIALIZED ( \
             SELECT rb.digest, b.size FROM repository_blobs rb \
             JOIN repositories r ON r.id = rb.repository_id \
             JOIN blobs b ON b.digest = rb.digest \
             WHERE r.name = $1 AND rb.digest = ANY($2::text[]) \
             FOR SHARE OF rb) \
         SELECT wanted.ord, held.size \
         FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS wanted (digest, declared, ord) \
         LEFT JOIN held ON held.digest = wanted.digest \
         WHERE held.size IS NULL OR held.size <> wanted.declared \
         ORDER BY wanted.ord LIMIT 1",
    )
    .bind(repo)
    .bind(digests)
    .bind(sizes)
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed(format!("checking which blobs {repo} holds")))?;
    let Some((position, stored)) = row else {
        return Ok(None);
    };
    // `WITH ORDINALITY` counts from 1.
    BlobRef::unmet(wanted, position - 1, stored, repo).map(Some)
}
