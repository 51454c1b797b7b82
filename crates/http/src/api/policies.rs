//! Storage policies (immutable tags, retention), Berth endpoints in the style of the package
//! settings: `GET`/`PUT /{orgs|users}/{owner}/packages/policies` for an account (the user, or
//! the organization's owners), `GET`/`PUT …/packages/container/{package}/policies` for one
//! package (readers see them, admins set them), and `POST …/policies/dry-run`: what retention
//! would delete now, and why (with a body: as if those were the package's policies).
//!
//! A `PUT` replaces the scope's policies with its body (`{}` removes them); a wrong field
//! answers 422 naming it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::github::{maybe_time, time};
use berth_core::packages::RetentionPlan;
use berth_core::policies::{PackagePolicies, Policies, Verdict, parse_policies};
use serde_json::{Value, json};

use super::packages::package;
use super::{ApiResult, GitHubError, Who, answer, body};
use crate::AppState;

/// The policies a request body holds; 422 naming the field that is wrong.
fn requested(bytes: &[u8], resource: &str) -> ApiResult<Policies> {
    let value: Value = body(bytes)?;
    parse_policies(&value)
        .map_err(|e| GitHubError::invalid(resource, e.field, "invalid", e.message))
}

fn policies_json(policies: &Policies) -> Value {
    json!({
        "immutable_tags": policies.immutable_tags,
        "retention": policies.retention,
    })
}

fn package_json(policies: &PackagePolicies) -> Value {
    let own = policies.own.clone().unwrap_or_default();
    let account = policies.account.clone().unwrap_or_default();
    let mut immutable: Vec<&str> = Vec::new();
    for pattern in own.immutable_tags.iter().chain(&account.immutable_tags) {
        if !immutable.contains(&pattern.as_str()) {
            immutable.push(pattern.as_str());
        }
    }
    let mut value = policies_json(&own);
    value["package"] = json!(policies.package);
    value["account"] = policies_json(&account);
    value["account"]["login"] = json!(policies.owner);
    value["effective"] = json!({
        "immutable_tags": immutable,
        "retention": policies.retention(),
    });
    value
}

/// `GET /{orgs|users}/{owner}/packages/policies`.
pub async fn account(
    State(state): State<AppState>,
    who: Who,
    Path(owner): Path<String>,
) -> ApiResult {
    let (account, policies) = state
        .services
        .packages
        .account_policies_as(&who.principal, &owner)
        .await?;
    let mut value = policies_json(&policies);
    value["login"] = json!(account.login);
    Ok(answer(StatusCode::OK, value))
}

/// `PUT /{orgs|users}/{owner}/packages/policies`: `{immutable_tags, retention}`.
pub async fn set_account(
    State(state): State<AppState>,
    who: Who,
    Path(owner): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let policies = requested(&bytes, "AccountPolicies")?;
    let (account, policies) = state
        .services
        .packages
        .set_account_policies_as(&who.principal, &owner, &policies)
        .await?;
    let mut value = policies_json(&policies);
    value["login"] = json!(account.login);
    Ok(answer(StatusCode::OK, value))
}

/// `POST /{orgs|users}/{owner}/packages/policies/dry-run`: what retention would delete now
/// from each of the account's packages; a body is evaluated in place of the account's
/// policies (a package's own retention still overrides it).
pub async fn account_dry_run(
    State(state): State<AppState>,
    who: Who,
    Path(owner): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let proposed = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(requested(&bytes, "AccountPolicies")?)
    };
    let (account, plans) = state
        .services
        .packages
        .account_retention_dry_run_as(&who.principal, &owner, proposed)
        .await?;
    Ok(answer(
        StatusCode::OK,
        json!({
            "login": account.login,
            "packages": plans.iter().map(plan_json).collect::<Vec<_>>(),
        }),
    ))
}

/// `GET …/packages/container/{package}/policies`: its own, its account's, and what applies.
pub async fn get(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name)): Path<(String, String, String)>,
) -> ApiResult {
    let name = package(&state, &kind, &owner, &name).await?;
    let policies = state
        .services
        .packages
        .package_policies_as(&who.principal, &name)
        .await?;
    Ok(answer(StatusCode::OK, package_json(&policies)))
}

/// `PUT …/packages/container/{package}/policies`: `{immutable_tags, retention}`.
pub async fn set(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name)): Path<(String, String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let policies = requested(&bytes, "PackagePolicies")?;
    let name = package(&state, &kind, &owner, &name).await?;
    let stored = state
        .services
        .packages
        .set_package_policies_as(&who.principal, &name, &policies)
        .await?;
    Ok(answer(StatusCode::OK, package_json(&stored)))
}

/// `POST …/packages/container/{package}/policies/dry-run`: what retention would delete now;
/// a body (`{immutable_tags, retention}`) is evaluated in place of the package's own policies.
pub async fn dry_run(
    State(state): State<AppState>,
    who: Who,
    Path((kind, owner, name)): Path<(String, String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let proposed = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(requested(&bytes, "PackagePolicies")?)
    };
    let name = package(&state, &kind, &owner, &name).await?;
    let plan = state
        .services
        .packages
        .retention_dry_run_as(&who.principal, &name, proposed)
        .await?;
    Ok(answer(StatusCode::OK, plan_json(&plan)))
}

/// A plan: the policy evaluated, what goes and what stays, each with its rule and reason and
/// the times the rules read (last push or tag move, last recorded pull).
pub fn plan_json(plan: &RetentionPlan) -> Value {
    let (mut delete, mut keep) = (Vec::new(), Vec::new());
    for (version, verdict) in &plan.versions {
        let (rule, reason, list) = match verdict {
            Verdict::Delete(why) => (why.rule(), why.describe(), &mut delete),
            Verdict::Keep(why) => (why.rule(), why.describe(), &mut keep),
        };
        list.push(json!({
            "id": version.id,
            "name": version.digest.as_str(),
            "tags": version.tags,
            "rule": rule,
            "reason": reason,
            "updated_at": time(version.updated_at),
            "last_pulled_at": maybe_time(version.last_pulled_at),
        }));
    }
    json!({
        "package": plan.name.as_str(),
        "retention": plan.retention,
        "delete": delete,
        "keep": keep,
    })
}
