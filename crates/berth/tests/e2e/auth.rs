//! Authentication and authorization over real HTTP: challenges, the token endpoint, the forms
//! of credentials clients send, and what each principal may see and do.

use crate::common::world::World;
use crate::common::{
    ADMIN, Server, anonymous_client, base64_encode, client, client_with_token, expect_error,
    header, push_image,
};
use serde_json::Value;

async fn get(http: &reqwest::Client, server: &Server, path: &str) -> reqwest::Response {
    http.get(server.url(path)).send().await.expect("GET")
}

#[tokio::test]
async fn without_credentials_every_route_answers_401_with_a_bearer_challenge() {
    let server = Server::start();
    push_image(&server, "acme/app", "v1", b"layer").await;
    let anon = anonymous_client();

    let response = get(&anon, &server, "/v2/").await;
    let challenge = header(&response, "www-authenticate");
    expect_error(response, 401, "UNAUTHORIZED").await;
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"{}/token\",service=\"{}\"",
            server.base, server.host
        )
    );

    let response = get(&anon, &server, "/v2/acme/app/manifests/v1").await;
    let challenge = header(&response, "www-authenticate");
    expect_error(response, 401, "UNAUTHORIZED").await;
    assert!(
        challenge.ends_with(",scope=\"repository:acme/app:pull\""),
        "{challenge}"
    );

    let response = anon
        .post(server.url("/v2/acme/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let challenge = header(&response, "www-authenticate");
    expect_error(response, 401, "UNAUTHORIZED").await;
    assert!(challenge.contains("scope=\"repository:acme/app:pull,push\""));

    let response = get(&anon, &server, "/v2/_catalog").await;
    assert!(header(&response, "www-authenticate").contains("registry:catalog:*"));
    expect_error(response, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn the_token_endpoint_grants_the_intersection_of_the_scope_and_the_principals_rights() {
    let server = Server::start();
    push_image(&server, "acme/app", "v1", b"layer").await;
    let reader = World::new(&server)
        .user("rita")
        .scopes("read:packages")
        .member("member")
        .await;
    // Rita is a member, but her token lacks write:packages: she cannot create a package.
    let rita = client_with_token(&reader);
    let response = rita
        .post(server.url("/v2/acme/rita-app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "DENIED").await;

    // The admin asks for pull+push on acme/app and pull on a package that does not exist.
    let response = client()
        .get(server.url(
            "/token?service=x&scope=repository:acme/app:pull,push&scope=repository:acme/nothing:pull",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().expect("token").to_owned();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    let bearer = |token: &str| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    };
    let with_token = bearer(&token);
    let response = get(&with_token, &server, "/v2/acme/app/tags/list").await;
    assert_eq!(response.status(), 200);
    // The token covers only what was asked: another repository needs another token, and the
    // refusal says which scope to ask for (RFC 6750 insufficient_scope).
    push_image(&server, "acme/other", "v1", b"other").await;
    let response = get(&with_token, &server, "/v2/acme/other/tags/list").await;
    let challenge = header(&response, "www-authenticate");
    expect_error(response, 403, "DENIED").await;
    assert!(
        challenge.contains("scope=\"repository:acme/other:pull\""),
        "{challenge}"
    );
    assert!(
        challenge.ends_with("error=\"insufficient_scope\""),
        "{challenge}"
    );

    // A reader asking for push gets pull only; pushing with that token is forbidden.
    let response = rita
        .get(server.url("/token?scope=repository:acme/rita-app:pull,push"))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let rita_token = bearer(body["token"].as_str().unwrap());
    let response = rita_token
        .post(server.url("/v2/acme/rita-app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "DENIED").await;

    // Anonymous gets a token too (for public packages), and a forged token is refused.
    let response = anonymous_client()
        .get(server.url("/token?scope=repository:acme/app:pull"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let forged = format!("{}x", &token[..token.len() - 1]);
    let response = get(&bearer(&forged), &server, "/v2/").await;
    expect_error(response, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn passwords_are_refused_with_a_message_that_asks_for_a_token() {
    let server = Server::start();
    let http = anonymous_client();
    let basic = format!(
        "Basic {}",
        base64_encode(b"admin:correct horse battery staple")
    );
    for path in ["/v2/", "/token"] {
        let response = http
            .get(server.url(path))
            .header("authorization", &basic)
            .send()
            .await
            .unwrap();
        let message = expect_error(response, 401, "UNAUTHORIZED").await;
        assert!(message.contains("tokens only"), "{message}");
    }
}

#[tokio::test]
async fn basic_raw_bearer_and_base64_bearer_tokens_all_work_as_the_seeds_use_them() {
    let server = Server::start();
    push_image(&server, "acme/app", "v1", b"layer").await;
    let token = server.admin_token.clone();
    let http = anonymous_client();
    for authorization in [
        format!(
            "Basic {}",
            base64_encode(format!("{ADMIN}:{token}").as_bytes())
        ),
        format!("Bearer {token}"),
        format!("Bearer {}", base64_encode(token.as_bytes())),
    ] {
        let response = http
            .get(server.url("/v2/acme/app/tags/list"))
            .header("authorization", &authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{authorization}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["tags"], serde_json::json!(["v1"]));
    }
}

#[tokio::test]
async fn a_private_package_is_indistinguishable_from_a_missing_one_for_outsiders() {
    let server = Server::start();
    push_image(&server, "acme/app", "v1", b"layer").await;
    let outsider = client_with_token(
        &World::new(&server)
            .user("olga")
            .scopes("read:packages,write:packages,delete:packages")
            .await,
    );
    let existing = get(&outsider, &server, "/v2/acme/app/manifests/v1").await;
    let missing = get(&outsider, &server, "/v2/acme/nothing/manifests/v1").await;
    let existing_message = expect_error(existing, 404, "NAME_UNKNOWN").await;
    let missing_message = expect_error(missing, 404, "NAME_UNKNOWN").await;
    assert_eq!(
        existing_message.replace("acme/app", "NAME"),
        missing_message.replace("acme/nothing", "NAME")
    );
    for path in [
        "/v2/acme/app/tags/list",
        "/v2/acme/app/referrers/sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        expect_error(get(&outsider, &server, path).await, 404, "NAME_UNKNOWN").await;
    }
    let response = outsider
        .delete(server.url("/v2/acme/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "NAME_UNKNOWN").await;
    // Creating a package in someone else's organization is refused, saying why.
    let response = outsider
        .post(server.url("/v2/acme/mine/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 403, "DENIED").await;
    assert!(message.contains("acme"), "{message}");
    // And in a namespace that is no account.
    let response = outsider
        .post(server.url("/v2/nobody/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 403, "DENIED").await;
    assert!(message.contains("no user or organization"), "{message}");
    // The catalog lists nothing of acme for her.
    let response = get(&outsider, &server, "/v2/_catalog").await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["repositories"], serde_json::json!([]));
}

#[tokio::test]
async fn members_publish_packages_they_then_administer_and_scopes_gate_each_action() {
    let server = Server::start();
    let writer = World::new(&server)
        .user("wes")
        .scopes("write:packages")
        .member("member")
        .await;
    let http = client_with_token(&writer);
    let pushed =
        crate::common::push_blob_with(&http, &server, "acme/wes-app", b"blob".to_vec()).await;
    assert_eq!(
        pushed.status(),
        201,
        "a member may create packages by default"
    );
    let response = get(&http, &server, "/v2/acme/wes-app/tags/list").await;
    assert_eq!(response.status(), 200);
    // No delete:packages scope: deleting is forbidden, and the message names the scope.
    let digest = crate::common::digest(b"blob");
    let response = http
        .delete(server.url(&format!("/v2/acme/wes-app/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 403, "DENIED").await;
    assert!(message.contains("delete:packages"), "{message}");
    // The admin's package is invisible to wes (no role on it).
    push_image(&server, "acme/app", "v1", b"layer").await;
    expect_error(
        get(&http, &server, "/v2/acme/app/tags/list").await,
        404,
        "NAME_UNKNOWN",
    )
    .await;
    // The catalog shows wes exactly his package; the admin sees both.
    let body: Value = get(&http, &server, "/v2/_catalog")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["repositories"], serde_json::json!(["acme/wes-app"]));
    let body: Value = get(&client(), &server, "/v2/_catalog")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["repositories"],
        serde_json::json!(["acme/app", "acme/wes-app"])
    );
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_refused_with_a_clear_message() {
    let server = Server::start();
    server.admin(&["create-user", "eve"]);
    let expired = server.admin(&[
        "create-token",
        "eve",
        "--scopes",
        "read:packages",
        "--expires-days",
        "0",
    ]);
    let message = expect_error(
        get(&client_with_token(&expired), &server, "/v2/").await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert!(message.contains("expired"), "{message}");

    let revoked = server.admin(&["create-token", "eve", "--scopes", "read:packages"]);
    assert_eq!(
        get(&client_with_token(&revoked), &server, "/v2/")
            .await
            .status(),
        200
    );
    server.admin(&["revoke-token", &revoked]);
    let message = expect_error(
        get(&client_with_token(&revoked), &server, "/v2/").await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert!(message.contains("revoked"), "{message}");
}

#[tokio::test]
async fn failed_authentications_are_rate_limited_per_address() {
    let server = Server::start_with(&[("BERTH_AUTH_FAILURES_PER_MINUTE", "3")]);
    let bad = client_with_token("berthp_not-a-real-token");
    for _ in 0..3 {
        expect_error(get(&bad, &server, "/v2/").await, 401, "UNAUTHORIZED").await;
    }
    let response = get(&bad, &server, "/v2/").await;
    let retry_after: u64 = header(&response, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    expect_error(response, 429, "TOOMANYREQUESTS").await;
    // Requests without credentials are not blocked (anonymous pulls keep working).
    assert_eq!(
        get(&anonymous_client(), &server, "/v2/").await.status(),
        401
    );
}

#[tokio::test]
async fn token_uses_are_recorded_off_the_request_path() {
    let mut server = Server::start();
    let token = World::new(&server)
        .user("tess")
        .scopes("read:packages")
        .await;
    let unused = server.admin(&["list-tokens", "tess"]);
    let columns = |listing: &str| -> Vec<String> {
        listing
            .lines()
            .nth(1)
            .expect("one token")
            .split('\t')
            .map(String::from)
            .collect()
    };
    assert_eq!(columns(&unused)[6], "-", "never used yet: {unused}");
    assert_eq!(
        get(&client_with_token(&token), &server, "/v2/")
            .await
            .status(),
        200
    );
    // Uses are written in batches; a graceful stop writes what is pending.
    server.terminate();
    assert!(server.wait_exit(10).success());
    let used = server.admin(&["list-tokens", "tess"]);
    let row = columns(&used);
    assert_eq!(row[1], "classic");
    assert_eq!(row[3], "read:packages");
    assert!(row[6].ends_with('Z'), "last use recorded: {used}");
    assert!(!used.contains(&token), "listings never show secrets");
}

/// `text` percent-encoded for a query or form value.
fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// An HTTP client that sends `Authorization: Bearer <token>`.
fn bearer(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A registry token from `GET /token` for `scope`, asked with `http`'s credentials.
async fn registry_token(http: &reqwest::Client, server: &Server, scope: &str) -> String {
    let response = http
        .get(server.url(&format!(
            "/token?service={}&scope={}",
            encode(&server.host),
            encode(scope)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET /token?scope={scope}");
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// The status a registry token used beyond its scopes is answered with: 403, not the Docker
/// token spec's 401, because oras-py widens its token only on a 403 (ARCHITECTURE.md,
/// "Choices", has the client matrix).
const INSUFFICIENT_SCOPE: u16 = 403;

#[tokio::test]
async fn an_upload_status_needs_pull_and_cancelling_it_needs_push() {
    let server = Server::start();
    push_image(&server, "acme/app", "v1", b"layer").await;
    let location = crate::common::start_upload(&server, "acme/app").await;
    let pull_only = bearer(&registry_token(&client(), &server, "repository:acme/app:pull").await);

    let response = pull_only.get(&location).send().await.unwrap();
    assert_eq!(response.status(), 204, "GET status with a pull token");
    assert_eq!(header(&response, "range"), "0-0");
    let response = pull_only.head(&location).send().await.unwrap();
    assert_eq!(response.status(), 204, "HEAD status with a pull token");
    assert_eq!(header(&response, "range"), "0-0");
    assert!(header(&response, "location").contains("/blobs/uploads/"));

    // Changing or cancelling the upload needs what starting it needed; the refusal names the
    // scope to ask for so the client can fetch a token with it and go on.
    for request in [
        pull_only.delete(&location),
        pull_only.patch(&location).body(b"abc".to_vec()),
    ] {
        let response = request.send().await.unwrap();
        let challenge = header(&response, "www-authenticate");
        assert!(
            challenge.contains("scope=\"repository:acme/app:pull,push\"")
                && challenge.contains("error=\"insufficient_scope\""),
            "{challenge}"
        );
        assert_eq!(response.status(), INSUFFICIENT_SCOPE);
    }
    let response = client().get(&location).send().await.unwrap();
    assert_eq!(
        response.status(),
        204,
        "the refused requests changed nothing"
    );
    assert_eq!(header(&response, "range"), "0-0");

    let push = bearer(&registry_token(&client(), &server, "repository:acme/app:pull,push").await);
    assert_eq!(push.delete(&location).send().await.unwrap().status(), 204);
    expect_error(
        client().get(&location).send().await.unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn a_mount_challenge_names_pull_on_the_source_so_the_token_can_mount() {
    let server = Server::start();
    let blob = b"shared layer".to_vec();
    let d = crate::common::push_blob(&server, "acme/source", blob.clone()).await;
    let mount = format!("/v2/acme/target/blobs/uploads/?mount={d}&from=acme/source");

    let response = anonymous_client()
        .post(server.url(&mount))
        .send()
        .await
        .unwrap();
    let challenge = header(&response, "www-authenticate");
    expect_error(response, 401, "UNAUTHORIZED").await;
    let scope = challenge
        .split("scope=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no scope in {challenge}"))
        .to_owned();
    assert_eq!(
        scope,
        "repository:acme/target:pull,push repository:acme/source:pull"
    );

    // The token the challenge leads to mounts the blob (no upload session).
    let token = registry_token(&client(), &server, &scope).await;
    let response = bearer(&token)
        .post(server.url(&mount))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "mounted");
    assert_eq!(header(&response, "docker-content-digest"), d);
    let response = bearer(&token)
        .get(server.url(&format!("/v2/acme/target/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap().as_ref(), blob.as_slice());
}

/// `POST /token` with `form` (pairs, form-encoded).
async fn oauth(server: &Server, form: &[(&str, &str)]) -> (u16, Value) {
    let response = anonymous_client()
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form.iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect::<Vec<_>>()
                .join("&"),
        )
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_oauth2_token_endpoint_grants_and_refreshes_tokens() {
    let server = Server::start();
    push_image(&server, "acme/app", "v1", b"layer").await;
    let service = server.host.clone();
    let token = server.admin_token.clone();
    let password_grant = |scope: &'static str, offline: bool| {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", ADMIN),
            ("password", token.as_str()),
            ("service", service.as_str()),
            ("client_id", "berth-tests"),
            ("scope", scope),
        ];
        if offline {
            form.push(("access_type", "offline"));
        }
        form
    };

    let (status, body) = oauth(&server, &password_grant("repository:acme/app:pull", true)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "repository:acme/app:pull");
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("offline access")
        .to_owned();
    let response = bearer(&access)
        .get(server.url("/v2/acme/app/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Only offline access gets a refresh token.
    let (status, body) = oauth(&server, &password_grant("repository:acme/app:pull", false)).await;
    assert_eq!(status, 200);
    assert!(body.get("refresh_token").is_none(), "{body}");

    // The refresh token gets tokens of other scopes, and comes back unchanged.
    let (status, body) = oauth(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", &service),
            ("client_id", "berth-tests"),
            ("scope", "repository:acme/app:pull,push"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["refresh_token"], refresh.as_str());
    assert_eq!(body["scope"], "repository:acme/app:pull,push");
    let pusher = bearer(body["access_token"].as_str().unwrap());
    let response = pusher
        .post(server.url("/v2/acme/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    // A refresh token is no registry credential.
    let response = bearer(&refresh)
        .get(server.url("/v2/"))
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "UNAUTHORIZED").await;

    // The spec's errors.
    let (status, body) = oauth(&server, &[("service", &service), ("client_id", "x")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = oauth(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("service", &service),
            ("client_id", "x"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let mut wrong = password_grant("repository:acme/app:pull", false);
    wrong[2] = ("password", "correct horse battery staple");
    let (status, body) = oauth(&server, &wrong).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("tokens only"),
        "{body}"
    );
    let (status, body) = oauth(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &format!("{refresh}x")),
            ("service", &service),
            ("client_id", "x"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A revoked credential's refresh token stops working at once.
    server.admin(&["create-user", "rae"]);
    let rae = server.admin(&["create-token", "rae", "--scopes", "read:packages"]);
    let (status, body) = oauth(
        &server,
        &[
            ("grant_type", "password"),
            ("username", "rae"),
            ("password", &rae),
            ("service", &service),
            ("client_id", "x"),
            ("access_type", "offline"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rae_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    server.admin(&["revoke-token", &rae]);
    let (status, body) = oauth(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rae_refresh),
            ("service", &service),
            ("client_id", "x"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[tokio::test]
async fn an_anonymous_registry_token_passes_the_base_endpoint() {
    let server = Server::start();
    let response = anonymous_client()
        .get(server.url("/token?service=x"))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let response = bearer(token).get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // Without any token the base endpoint still asks to authenticate.
    let response = anonymous_client()
        .get(server.url("/v2/"))
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "UNAUTHORIZED").await;
}
