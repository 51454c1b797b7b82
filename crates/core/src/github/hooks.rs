//! Hooks and their deliveries as GitHub's API shows them: the hook object (its secret
//! masked), the delivery list item and the delivery, with Berth's `state` and `attempts`.

use serde_json::{Map, Value, json};

use super::time;
use super::urls::hook_api;
use crate::hooks::model::{Attempt, Delivery, Hook, HookScope};

/// A hook as GitHub's API shows it, the secret masked. `collection` is the API path of the
/// hooks' owner (`repos/acme/app`, `orgs/acme` or `user`).
pub fn hook(base: &str, collection: &str, hook: &Hook) -> Value {
    let url = hook_api(base, collection, hook.id);
    let config = config(hook);
    let mut value = json!({
        "type": hook.scope.type_name(),
        "id": hook.id,
        "name": "web",
        "active": hook.active,
        "events": hook.events,
        "config": config,
        "deleted_events": hook.deleted_events,
        "updated_at": time(hook.updated_at),
        "created_at": time(hook.created_at),
        "url": url,
        "ping_url": format!("{url}/pings"),
        "deliveries_url": format!("{url}/deliveries"),
        "last_response": {
            "code": hook.last_response.code,
            "status": hook.last_response.status,
            "message": hook.last_response.message,
        },
    });
    if matches!(hook.scope, HookScope::Repository(_)) {
        value["test_url"] = json!(format!("{url}/tests"));
    }
    value
}

/// A hook's configuration (GitHub's `webhook-config`): `url`, `content_type`, `insecure_ssl`
/// as `"0"`/`"1"`, and `secret` as `********` when one is set.
pub fn config(hook: &Hook) -> Value {
    let mut config = json!({
        "url": hook.config.url,
        "content_type": hook.config.content_type.as_str(),
        "insecure_ssl": if hook.config.insecure_ssl { "1" } else { "0" },
    });
    if hook.config.secret.is_some() {
        config["secret"] = json!("********");
    }
    config
}

/// The URL of the deliveries of hook `hook` (`collection` as for [`hook`]).
pub fn deliveries_url(base: &str, collection: &str, hook: impl std::fmt::Display) -> String {
    format!("{}/deliveries", hook_api(base, collection, hook))
}

/// A delivery in GitHub's list shape, with Berth's `state` and `attempts` (a count).
pub fn delivery_summary(delivery: &Delivery) -> Value {
    let last = delivery.last_attempt.as_ref();
    json!({
        "id": delivery.id,
        "guid": delivery.queued.guid,
        "delivered_at": time(last.map_or(delivery.created_at, |a| a.started_at)),
        "redelivery": delivery.queued.redelivery,
        "duration": last.map_or(0.0, |a| a.duration_ms as f64 / 1000.0),
        "status": last.map_or_else(|| "pending".to_owned(), Attempt::status_text),
        "status_code": last.and_then(|a| a.status_code).unwrap_or(0),
        "event": delivery.queued.event,
        "action": delivery.queued.action,
        "installation_id": null,
        "repository_id": delivery.queued.repository_id,
        "throttled_at": null,
        "state": delivery.state.as_str(),
        "attempts": delivery.attempts,
    })
}

/// One delivery in full (GitHub's `hook-delivery`): the summary, its `url`, the latest
/// attempt's request (headers, payload) and response (headers, body), and Berth's
/// `attempts`, every attempt's (replacing the summary's count).
pub fn delivery(base: &str, collection: &str, delivery: &Delivery, attempts: &[Attempt]) -> Value {
    let payload: Value = serde_json::from_str(&delivery.queued.payload).unwrap_or(Value::Null);
    let mut value = delivery_summary(delivery);
    value["url"] = json!(format!(
        "{}/{}",
        deliveries_url(base, collection, delivery.queued.hook),
        delivery.id
    ));
    let last = attempts.last();
    value["request"] = json!({
        "headers": last.map_or_else(|| json!({}), |a| headers(&a.request_headers)),
        "payload": payload,
    });
    value["response"] = json!({
        "headers": last.map_or_else(|| json!({}), |a| headers(&a.response_headers)),
        "payload": last.map(|a| a.response_body.clone()),
    });
    value["attempts"] = attempts.iter().map(attempt).collect();
    value
}

/// One attempt of a delivery (Berth's).
fn attempt(attempt: &Attempt) -> Value {
    json!({
        "number": attempt.number,
        "delivered_at": time(attempt.started_at),
        "duration": attempt.duration_ms as f64 / 1000.0,
        "status": attempt.status_text(),
        "status_code": attempt.status_code.unwrap_or(0),
        "request": { "headers": headers(&attempt.request_headers) },
        "response": {
            "headers": headers(&attempt.response_headers),
            "payload": attempt.response_body,
        },
    })
}

/// Header pairs as one JSON object.
fn headers(list: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (name, value) in list {
        map.insert(name.clone(), Value::String(value.clone()));
    }
    Value::Object(map)
}
