//! The management API's conditional requests (`ETag`, `If-None-Match` → 304) and GitHub's
//! rate limits (`x-ratelimit-*` headers, 403 when a budget is spent, 429 past the burst
//! limit) over real HTTP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::github::Api;
use crate::common::{ADMIN, Server, anonymous_client, header};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const RATE_LIMIT_DOCS: &str =
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api";

/// Sends `method path` under `/api/v3`, GitHub-style (`Authorization: token …`).
async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = Api::maybe(server, token).request(method, path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("API call");
    crate::common::schema::judged(method, path, response).await
}

async fn get(server: &Server, path: &str, token: Option<&str>) -> reqwest::Response {
    call(server, "GET", path, token, &[]).await
}

/// A number header.
fn number(response: &reqwest::Response, name: &str) -> u64 {
    header(response, name).parse().expect("a number")
}

/// `(limit, remaining, used)`.
fn budget(response: &reqwest::Response) -> (u64, u64, u64) {
    (
        number(response, "x-ratelimit-limit"),
        number(response, "x-ratelimit-remaining"),
        number(response, "x-ratelimit-used"),
    )
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sleeps until wall-clock time passes `reset` (epoch seconds).
async fn wait_for_reset(reset: u64) {
    let at = UNIX_EPOCH + Duration::from_secs(reset) + Duration::from_millis(150);
    if let Ok(wait) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
}

/// Another classic token of the site administrator.
fn second_admin_token(server: &Server) -> String {
    server.admin(&["create-token", ADMIN, "--scopes", "read:packages"])
}

#[tokio::test]
async fn get_answers_carry_a_weak_etag_of_their_body_and_if_none_match_answers_304() {
    let server = Server::start();
    let token = server.admin_token.as_str();

    let first = get(&server, "/user", Some(token)).await;
    assert_eq!(first.status(), 200);
    let etag = header(&first, "etag");
    let (_, remaining, _) = budget(&first);
    let body = first.bytes().await.unwrap();
    assert_eq!(
        etag,
        format!("W/\"{}\"", hex::encode(Sha256::digest(&body)))
    );

    // The same tag, weak or strong, alone, in a list or as `*`: 304, no body, same headers.
    let opaque = etag.trim_start_matches("W/");
    let list = format!("\"nope\", {etag}");
    for tag in [etag.as_str(), opaque, list.as_str(), "*"] {
        let cached = call(
            &server,
            "GET",
            "/user",
            Some(token),
            &[("if-none-match", tag)],
        )
        .await;
        assert_eq!(cached.status(), 304, "If-None-Match: {tag}");
        assert_eq!(header(&cached, "etag"), etag);
        assert_eq!(header(&cached, "x-ratelimit-resource"), "core");
        assert!(header(&cached, "vary").contains("Authorization"));
        // A 304 does not count against the budget.
        assert_eq!(number(&cached, "x-ratelimit-remaining"), remaining);
        assert!(cached.bytes().await.unwrap().is_empty());
    }

    // Another tag: the whole answer, which then counts.
    let other = call(
        &server,
        "GET",
        "/user",
        Some(token),
        &[("if-none-match", "W/\"0000\"")],
    )
    .await;
    assert_eq!(other.status(), 200);
    assert_eq!(header(&other, "etag"), etag);
    assert_eq!(number(&other, "x-ratelimit-remaining"), remaining - 1);
    assert_eq!(other.bytes().await.unwrap(), body);

    // Errors and writes carry no tag.
    let missing = get(&server, "/users/nobody", Some(token)).await;
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("etag").is_none());
    let created = call(
        &server,
        "POST",
        "/admin/users",
        Some(token),
        &[("if-none-match", "*")],
    )
    .await;
    assert!(created.headers().get("etag").is_none());
}

#[tokio::test]
async fn a_changed_resource_gets_a_new_etag() {
    let server = Server::start();
    let token = server.admin_token.as_str();

    let before = get(&server, "/user/tokens", Some(token)).await;
    assert_eq!(before.status(), 200);
    let old = header(&before, "etag");

    let created = anonymous_client()
        .post(server.url("/api/v3/user/tokens"))
        .header("authorization", format!("token {token}"))
        .body(json!({ "note": "ci", "scopes": ["read:packages"] }).to_string())
        .send()
        .await
        .unwrap();
    let created = crate::common::schema::judged("POST", "/user/tokens", created).await;
    assert_eq!(created.status(), 201);

    let after = call(
        &server,
        "GET",
        "/user/tokens",
        Some(token),
        &[("if-none-match", &old)],
    )
    .await;
    assert_eq!(after.status(), 200, "the old tag no longer matches");
    let new = header(&after, "etag");
    assert_ne!(new, old);
    let tokens: Value = after.json().await.unwrap();
    assert!(tokens.to_string().contains("\"ci\""), "{tokens}");
}

#[tokio::test]
async fn every_api_answer_carries_rate_limit_headers_that_count_down() {
    let server = Server::start();
    let token = server.admin_token.as_str();

    let first = get(&server, "/user", Some(token)).await;
    assert_eq!(budget(&first), (5000, 4999, 1));
    assert_eq!(header(&first, "x-ratelimit-resource"), "core");
    let reset = number(&first, "x-ratelimit-reset");
    let now = epoch_now();
    assert!(
        (now + 3590..=now + 3601).contains(&reset),
        "reset {reset}, now {now}: the window is an hour from the first request"
    );

    // Errors count and carry the headers too; the window's end does not move.
    let missing = get(&server, "/users/nobody", Some(token)).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(budget(&missing), (5000, 4998, 2));
    assert_eq!(number(&missing, "x-ratelimit-reset"), reset);
    let unknown = get(&server, "/no/such/endpoint", Some(token)).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(budget(&unknown), (5000, 4997, 3));

    // Anonymous callers have their own, lower budget.
    let anonymous = get(&server, "/users/admin", None).await;
    assert_eq!(budget(&anonymous), (60, 59, 1));

    // The registry API is not limited.
    let registry = anonymous_client()
        .get(server.url("/v2/"))
        .send()
        .await
        .unwrap();
    assert!(registry.headers().get("x-ratelimit-limit").is_none());
}

#[tokio::test]
async fn a_spent_budget_answers_403_until_its_window_resets() {
    let server = Server::start_with(&[
        ("BERTH_API_RATE_LIMIT_PER_HOUR", "3"),
        ("BERTH_API_RATE_LIMIT_ANONYMOUS_PER_HOUR", "2"),
        ("BERTH_API_RATE_LIMIT_WINDOW_SECS", "3"),
    ]);
    let token = server.admin_token.as_str();
    let other = second_admin_token(&server);

    for used in 1..=3 {
        let response = get(&server, "/user", Some(token)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(budget(&response), (3, 3 - used, used));
    }
    let spent = get(&server, "/user", Some(token)).await;
    assert_eq!(spent.status(), 403);
    assert_eq!(budget(&spent), (3, 0, 3));
    let reset = number(&spent, "x-ratelimit-reset");
    let body: Value = spent.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("API rate limit exceeded for admin.") && message.contains("resets at"),
        "{message}"
    );
    assert_eq!(body["documentation_url"], RATE_LIMIT_DOCS);

    // Another token has its own budget; anonymous callers a separate, lower one.
    let fresh = get(&server, "/user", Some(&other)).await;
    assert_eq!(fresh.status(), 200);
    assert_eq!(budget(&fresh), (3, 2, 1));
    for used in 1..=2 {
        let response = get(&server, "/users/admin", None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(budget(&response), (2, 2 - used, used));
    }
    let anonymous = get(&server, "/users/admin", None).await;
    assert_eq!(anonymous.status(), 403);
    assert_eq!(number(&anonymous, "x-ratelimit-remaining"), 0);
    let body: Value = anonymous.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("API rate limit exceeded for your IP address"),
        "{message}"
    );

    // When the window ends, the budget is whole again.
    wait_for_reset(reset).await;
    let again = get(&server, "/user", Some(token)).await;
    assert_eq!(again.status(), 200);
    assert_eq!(budget(&again), (3, 2, 1));
    assert!(number(&again, "x-ratelimit-reset") > reset);
}

#[tokio::test]
async fn failed_credentials_spend_the_address_budget() {
    let server = Server::start_with(&[("BERTH_API_RATE_LIMIT_ANONYMOUS_PER_HOUR", "3")]);

    let made_up = "berthp_notarealtokenatallnotarealtoken123456";
    let refused = get(&server, "/user", Some(made_up)).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(budget(&refused), (3, 2, 1));
    let anonymous = get(&server, "/users/admin", None).await;
    assert_eq!(budget(&anonymous), (3, 1, 2));

    // A registry token is no API credential either.
    let registry_token: Value = anonymous_client()
        .get(server.url("/token?service=x&scope=repository:acme/app:pull"))
        .basic_auth(ADMIN, Some(&server.admin_token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registry_token = registry_token["token"].as_str().expect("a registry token");
    let refused = anonymous_client()
        .get(server.url("/api/v3/user"))
        .bearer_auth(registry_token)
        .send()
        .await
        .unwrap();
    let refused = crate::common::schema::judged("GET", "/user", refused).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(budget(&refused), (3, 0, 3));

    // The address's budget is spent; a valid token is not affected.
    let spent = get(&server, "/user", Some(made_up)).await;
    assert_eq!(spent.status(), 403);
    let admin = get(&server, "/user", Some(&server.admin_token)).await;
    assert_eq!(admin.status(), 200);
    assert_eq!(budget(&admin), (5000, 4999, 1));
}

#[tokio::test]
async fn a_burst_past_the_per_minute_limit_answers_429_with_retry_after() {
    let server = Server::start_with(&[("BERTH_API_RATE_LIMIT_PER_MINUTE", "3")]);
    let token = server.admin_token.as_str();
    let other = second_admin_token(&server);

    for _ in 0..3 {
        assert_eq!(get(&server, "/user", Some(token)).await.status(), 200);
    }
    let burst = get(&server, "/user", Some(token)).await;
    assert_eq!(burst.status(), 429);
    let wait = number(&burst, "retry-after");
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    // The hourly budget is not spent, and refusals do not count against it.
    assert_eq!(budget(&burst), (5000, 4997, 3));
    let body: Value = burst.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("secondary rate limit"), "{message}");
    assert!(body["documentation_url"].is_string());

    assert_eq!(get(&server, "/user", Some(&other)).await.status(), 200);
}
