//! Webhooks: GitHub's repository and organization hook endpoints, and Berth's user hooks in
//! the same shape (`/user/hooks`). One set of handlers serves the three collections: the
//! path's named parameters say which (`owner`+`repo`, `org`, or neither).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::routing::{get, post};
use berth_core::github::hooks::{
    config as config_json, deliveries_url, delivery as delivery_json, delivery_summary,
    hook as hook_json,
};
use berth_core::hooks::{HookOwner, HookRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiResult, GitHubError, Who, answer, body, no_content};
use crate::AppState;

/// The hook routes, merged into `/api/v3`.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for base in [
        "/repos/{owner}/{repo}/hooks",
        "/orgs/{org}/hooks",
        "/user/hooks",
    ] {
        router = router
            .route(base, get(list).post(create))
            .route(
                &format!("{base}/{{hook_id}}"),
                get(show).patch(update).delete(remove),
            )
            .route(
                &format!("{base}/{{hook_id}}/config"),
                get(show_config).patch(update_config),
            )
            .route(&format!("{base}/{{hook_id}}/pings"), post(ping))
            .route(&format!("{base}/{{hook_id}}/deliveries"), get(deliveries))
            .route(
                &format!("{base}/{{hook_id}}/deliveries/{{delivery_id}}"),
                get(delivery),
            )
            .route(
                &format!("{base}/{{hook_id}}/deliveries/{{delivery_id}}/attempts"),
                post(redeliver),
            );
    }
    // GitHub's "test the push hook" re-sends the latest `push` event; Berth has no push
    // events, so it sends what tests a hook here: a ping (rather than GitHub's silent 204
    // for hooks without push events).
    router.route("/repos/{owner}/{repo}/hooks/{hook_id}/tests", post(ping))
}

/// The path's parameters.
type Params = Path<HashMap<String, String>>;

fn owner(params: &HashMap<String, String>) -> HookOwner<'_> {
    match (params.get("owner"), params.get("repo"), params.get("org")) {
        (Some(owner), Some(name), _) => HookOwner::Repository { owner, name },
        (_, _, Some(org)) => HookOwner::Organization(org),
        _ => HookOwner::User,
    }
}

/// A numeric id from the path; anything else is 404, as GitHub answers.
fn id<T: std::str::FromStr>(params: &HashMap<String, String>, key: &str) -> ApiResult<T> {
    params
        .get(key)
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| GitHubError::new(StatusCode::NOT_FOUND, "Not Found"))
}

#[derive(Deserialize)]
struct HookBody {
    name: Option<String>,
    config: Option<ConfigBody>,
    events: Option<Vec<String>>,
    add_events: Option<Vec<String>>,
    remove_events: Option<Vec<String>>,
    active: Option<bool>,
    deleted_events: Option<bool>,
}

#[derive(Deserialize)]
struct ConfigBody {
    url: Option<String>,
    content_type: Option<String>,
    secret: Option<String>,
    insecure_ssl: Option<Value>,
}

/// The request's settings; `insecure_ssl` as GitHub takes it: `"0"`/`"1"`, 0/1 or a boolean.
fn request(bytes: &[u8]) -> ApiResult<HookRequest> {
    let hook: HookBody = body(bytes)?;
    let config = hook.config.unwrap_or(ConfigBody {
        url: None,
        content_type: None,
        secret: None,
        insecure_ssl: None,
    });
    Ok(HookRequest {
        name: hook.name,
        active: hook.active,
        events: hook.events,
        add_events: hook.add_events.unwrap_or_default(),
        remove_events: hook.remove_events.unwrap_or_default(),
        deleted_events: hook.deleted_events,
        ..config_request(config)?
    })
}

/// A request changing only a hook's configuration (`config` of [`request`], or the body of
/// `PATCH …/config`).
fn config_request(config: ConfigBody) -> ApiResult<HookRequest> {
    let insecure_ssl = match config.insecure_ssl {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(Value::String(s)) if s == "0" || s == "1" => Some(s == "1"),
        Some(Value::Number(n)) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
            Some(n.as_u64() == Some(1))
        }
        Some(other) => {
            return Err(GitHubError::invalid(
                "Hook",
                "insecure_ssl",
                "invalid",
                format!(
                    "config.insecure_ssl `{other}` is not \"0\" (verify TLS) or \"1\" (do not)"
                ),
            ));
        }
    };
    Ok(HookRequest {
        url: config.url,
        content_type: config.content_type,
        secret: config.secret,
        insecure_ssl,
        ..HookRequest::default()
    })
}

/// The webhook fields of an app's registration, as GitHub's app manifest names them:
/// `hook_attributes: {url, active}`, `webhook_secret`, `default_events`.
#[derive(Deserialize, Default)]
pub struct AppHookBody {
    hook_attributes: Option<HookAttributes>,
    webhook_secret: Option<String>,
    default_events: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct HookAttributes {
    url: Option<String>,
    active: Option<bool>,
}

impl AppHookBody {
    /// The app's hook to create, if the registration gives one (`hook_attributes.url`).
    pub fn request(self) -> ApiResult<Option<HookRequest>> {
        let Some(attributes) = self.hook_attributes else {
            if self.webhook_secret.is_some() || self.default_events.is_some() {
                return Err(GitHubError::invalid(
                    "Integration",
                    "hook_attributes",
                    "missing_field",
                    "webhook_secret and default_events need hook_attributes.url: where \
                     should the app's events be sent?"
                        .into(),
                ));
            }
            return Ok(None);
        };
        Ok(Some(HookRequest {
            url: attributes.url,
            active: attributes.active,
            secret: self.webhook_secret,
            events: self.default_events,
            ..HookRequest::default()
        }))
    }
}

/// `GET …/hooks`.
async fn list(State(state): State<AppState>, who: Who, Path(params): Params) -> ApiResult {
    let (parent, hooks) = state
        .services
        .hooks
        .list_as(&who.principal, owner(&params))
        .await?;
    let path = parent.path();
    let list: Vec<Value> = hooks
        .iter()
        .map(|h| hook_json(&who.base, &path, h))
        .collect();
    Ok(answer(StatusCode::OK, Value::Array(list)))
}

/// `POST …/hooks`: `{name, config: {url, content_type, secret, insecure_ssl}, events, active,
/// deleted_events}`; queues a `ping`.
async fn create(
    State(state): State<AppState>,
    who: Who,
    Path(params): Params,
    bytes: Bytes,
) -> ApiResult {
    let request = request(&bytes)?;
    let (parent, hook) = state
        .services
        .hooks
        .create_as(&who.principal, owner(&params), request, &who.base)
        .await?;
    let json = hook_json(&who.base, &parent.path(), &hook);
    let mut response = answer(StatusCode::CREATED, json.clone());
    if let Some(url) = json["url"]
        .as_str()
        .and_then(|u| HeaderValue::from_str(u).ok())
    {
        response.headers_mut().insert(header::LOCATION, url);
    }
    Ok(response)
}

/// `GET …/hooks/{hook_id}`.
async fn show(State(state): State<AppState>, who: Who, Path(params): Params) -> ApiResult {
    let (parent, hook) = state
        .services
        .hooks
        .get_as(&who.principal, owner(&params), id(&params, "hook_id")?)
        .await?;
    Ok(answer(
        StatusCode::OK,
        hook_json(&who.base, &parent.path(), &hook),
    ))
}

/// `PATCH …/hooks/{hook_id}`: the fields of create, plus `add_events` and `remove_events`;
/// absent fields stay as they are, `config.secret: ""` removes the secret.
async fn update(
    State(state): State<AppState>,
    who: Who,
    Path(params): Params,
    bytes: Bytes,
) -> ApiResult {
    let request = request(&bytes)?;
    let (parent, hook) = state
        .services
        .hooks
        .update_as(
            &who.principal,
            owner(&params),
            id(&params, "hook_id")?,
            request,
        )
        .await?;
    Ok(answer(
        StatusCode::OK,
        hook_json(&who.base, &parent.path(), &hook),
    ))
}

/// `GET …/hooks/{hook_id}/config`: GitHub's `webhook-config`, the secret masked.
async fn show_config(State(state): State<AppState>, who: Who, Path(params): Params) -> ApiResult {
    let (_, hook) = state
        .services
        .hooks
        .get_as(&who.principal, owner(&params), id(&params, "hook_id")?)
        .await?;
    Ok(answer(StatusCode::OK, config_json(&hook)))
}

/// `PATCH …/hooks/{hook_id}/config`: `{url, content_type, secret, insecure_ssl}`, checked as
/// on creation; absent fields stay as they are, `secret: ""` removes the secret.
async fn update_config(
    State(state): State<AppState>,
    who: Who,
    Path(params): Params,
    bytes: Bytes,
) -> ApiResult {
    let request = config_request(body(&bytes)?)?;
    let (_, hook) = state
        .services
        .hooks
        .update_as(
            &who.principal,
            owner(&params),
            id(&params, "hook_id")?,
            request,
        )
        .await?;
    Ok(answer(StatusCode::OK, config_json(&hook)))
}

/// `DELETE …/hooks/{hook_id}`.
async fn remove(State(state): State<AppState>, who: Who, Path(params): Params) -> ApiResult {
    state
        .services
        .hooks
        .delete_as(&who.principal, owner(&params), id(&params, "hook_id")?)
        .await?;
    Ok(no_content())
}

/// `POST …/hooks/{hook_id}/pings`: queues a `ping`.
async fn ping(State(state): State<AppState>, who: Who, Path(params): Params) -> ApiResult {
    state
        .services
        .hooks
        .ping_as(
            &who.principal,
            owner(&params),
            id(&params, "hook_id")?,
            &who.base,
        )
        .await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct Page {
    per_page: Option<usize>,
    cursor: Option<String>,
}

/// `GET …/hooks/{hook_id}/deliveries?per_page=&cursor=`: newest first; `Link: rel="next"`
/// when there may be more.
async fn deliveries(
    State(state): State<AppState>,
    who: Who,
    Path(params): Params,
    Query(page): Query<Page>,
) -> ApiResult {
    let hook = id(&params, "hook_id")?;
    let per_page = page.per_page.unwrap_or(30).clamp(1, 100);
    let cursor = match page.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(text.parse().map_err(|_| {
            GitHubError::invalid(
                "Delivery",
                "cursor",
                "invalid",
                format!("cursor `{text}` is not one this API handed out in a Link header"),
            )
        })?),
    };
    let (parent, _) = state
        .services
        .hooks
        .get_as(&who.principal, owner(&params), hook)
        .await?;
    let list = state
        .services
        .hooks
        .deliveries_as(&who.principal, owner(&params), hook, cursor, per_page)
        .await?;
    let values: Vec<Value> = list.iter().map(delivery_summary).collect();
    let mut response = answer(StatusCode::OK, Value::Array(values));
    if list.len() == per_page
        && let Some(last) = list.last()
    {
        let next = format!(
            "<{}?per_page={per_page}&cursor={}>; rel=\"next\"",
            deliveries_url(&who.base, &parent.path(), hook),
            last.id
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// `GET …/hooks/{hook_id}/deliveries/{delivery_id}`: the summary, the latest attempt's
/// request (headers, payload) and response (headers, body), and Berth's `attempts`, every
/// attempt's.
async fn delivery(State(state): State<AppState>, who: Who, Path(params): Params) -> ApiResult {
    let hook_id = id(&params, "hook_id")?;
    let delivery_id = id(&params, "delivery_id")?;
    let (parent, _) = state
        .services
        .hooks
        .get_as(&who.principal, owner(&params), hook_id)
        .await?;
    let (_, delivery, attempts) = state
        .services
        .hooks
        .delivery_as(&who.principal, owner(&params), hook_id, delivery_id)
        .await?;
    Ok(answer(
        StatusCode::OK,
        delivery_json(&who.base, &parent.path(), &delivery, &attempts),
    ))
}

/// `POST …/hooks/{hook_id}/deliveries/{delivery_id}/attempts`: queues the delivery again
/// (same GUID and payload, `redelivery: true`); 202.
async fn redeliver(State(state): State<AppState>, who: Who, Path(params): Params) -> ApiResult {
    state
        .services
        .hooks
        .redeliver_as(
            &who.principal,
            owner(&params),
            id(&params, "hook_id")?,
            id(&params, "delivery_id")?,
        )
        .await?;
    Ok(answer(StatusCode::ACCEPTED, json!({})))
}
