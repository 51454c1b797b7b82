//! Findings 6–10 of the security review "Hold up against a hostile network", each over real
//! HTTP against the running server: name-existence oracles (6), fine-grained tokens reading
//! internal packages they do not select (7), tokens minted past SSO (8), job tokens writing
//! packages that do not grant their repository write (9), the `repo` scope reading internal
//! packages and e-mail addresses shown to anyone (10).

use crate::common::access::{OCI_MANIFEST, claims, pull, push_manifest, shape, status_and_code};
use crate::common::github::Api;
use crate::common::world::{FineGrained, World};
use crate::common::{Server, anonymous_client, client_with_token, digest, push_image};
use reqwest::Method;
use serde_json::{Value, json};

/// A name no package has.
const MISSING: &str = "acme/does-not-exist";
const FULL: &[&str] = &["read:packages", "write:packages", "delete:packages", "repo"];

// --- 6: invisible answers exactly as missing ------------------------------------------------

/// Linking a hidden package to a repository answered 404 while a free name got 403 ("cannot
/// create packages"), so anyone signed in could tell which private names exist.
#[tokio::test]
async fn linking_a_hidden_package_answers_as_linking_a_missing_one() {
    let server = Server::start();
    let world = World::new(&server);
    let nora = world.user("nora").await;
    push_image(&server, "acme/secret", "v1", b"hidden layer").await;
    world.repo("app", "public").await;

    let link = |package: &str| {
        let path = format!("/orgs/acme/packages/container/{package}/repository");
        let server = &server;
        let nora = nora.clone();
        async move {
            Api::new(server, &nora)
                .send("PUT", &path, Some(json!({ "repository": "app" })))
                .await
        }
    };
    let hidden = shape(link("secret").await, "acme/secret").await;
    let missing = shape(link("does-not-exist").await, MISSING).await;
    assert!(hidden.starts_with("404 "), "{hidden}");
    assert_eq!(
        hidden, missing,
        "a hidden package must answer as a missing one"
    );
}

/// A member may read a free name of the organization before its first push (clients look
/// for blobs first); a blob GET there answered BLOB_UNKNOWN while a hidden package answered
/// NAME_UNKNOWN.
#[tokio::test]
async fn a_blob_of_a_hidden_package_answers_as_one_of_a_missing_package() {
    let server = Server::start();
    let world = World::new(&server);
    let mark = world.user("mark").await;
    world.member("mark", "member").await;
    push_image(&server, "acme/secret", "v1", b"hidden layer").await;
    let layer = digest(b"hidden layer");
    let http = client_with_token(&mark);

    for method in [Method::GET, Method::HEAD] {
        let get = |name: &str| {
            http.request(
                method.clone(),
                server.url(&format!("/v2/{name}/blobs/{layer}")),
            )
            .send()
        };
        let hidden = shape(get("acme/secret").await.expect("get"), "acme/secret").await;
        let missing = shape(get(MISSING).await.expect("get"), MISSING).await;
        assert!(hidden.starts_with("404"), "{method} {hidden}");
        assert_eq!(
            hidden, missing,
            "{method}: a hidden package must answer as a missing one"
        );
    }

    // Starting a push: a member may create packages in `acme`, so a free name is created
    // (202) and any other answer says the name is taken; what it gets for the hidden package
    // is what it gets pulling it, 404 NAME_UNKNOWN, and no word about the package.
    let start = http
        .post(server.url("/v2/acme/secret/blobs/uploads/"))
        .send()
        .await
        .expect("start");
    assert_eq!(status_and_code(start).await, (404, "NAME_UNKNOWN".into()));
}

/// `GET /token` granted a member pull and push on a free name but nothing on a hidden
/// package: the grant told them which names exist.
#[tokio::test]
async fn the_token_endpoint_grants_on_a_hidden_package_what_it_grants_on_a_missing_one() {
    let server = Server::start();
    let world = World::new(&server);
    let mark = world.user("mark").await;
    let nora = world.user("nora").await;
    world.member("mark", "member").await;
    push_image(&server, "acme/secret", "v1", b"hidden layer").await;

    for (who, token) in [("member", &mark), ("outsider", &nora)] {
        let http = client_with_token(token);
        let mut granted = Vec::new();
        for name in ["acme/secret", MISSING] {
            let response = http
                .get(server.url(&format!(
                    "/token?service=berth&scope=repository:{name}:pull,push,delete"
                )))
                .send()
                .await
                .expect("token");
            assert_eq!(response.status(), 200, "{who}");
            let body: Value = response.json().await.expect("json");
            let access = claims(body["token"].as_str().expect("token"))["access"].clone();
            granted.push(access.to_string().replace(name, "<name>"));
        }
        assert_eq!(
            granted[0], granted[1],
            "{who}: /token must grant on a hidden package what it grants on a missing one"
        );
    }
    // The grant is no key: the registry still decides every request.
    let http = client_with_token(&mark);
    let response = http
        .get(server.url("/token?service=berth&scope=repository:acme/secret:pull"))
        .send()
        .await
        .expect("token");
    let body: Value = response.json().await.expect("json");
    let token = body["token"].as_str().expect("token").to_owned();
    let bearer = anonymous_client()
        .get(server.url("/v2/acme/secret/manifests/v1"))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("pull");
    assert_eq!(status_and_code(bearer).await, (404, "NAME_UNKNOWN".into()));
}

// --- 7: fine-grained tokens reach what they select ------------------------------------------

#[tokio::test]
async fn fine_grained_tokens_read_only_the_internal_packages_they_select() {
    let server = Server::start();
    let world = World::new(&server);
    let tina = world.user("tina").await;
    let nora = world.user("nora").await;
    world.member("tina", "member").await;
    push_image(&server, "acme/int", "v1", b"internal layer").await;
    push_image(&server, "acme/picked", "v1", b"picked layer").await;
    push_image(&server, "acme/pub", "v1", b"public layer").await;
    world.visibility("acme/int", "internal").await;
    world.visibility("acme/picked", "internal").await;
    world.visibility("acme/pub", "public").await;
    // An SSO organization nora is not in, with an internal package.
    world.org("closed").await;
    push_image(&server, "closed/int", "v1", b"closed layer").await;
    world.visibility("closed/int", "internal").await;
    world.require_sso("closed").await;

    let picks = client_with_token(
        &world
            .fine_grained(&tina, FineGrained::read("acme", &["picked"]))
            .await,
    );
    assert_eq!(pull(&picks, &server, "acme/picked").await.status(), 200);
    assert_eq!(
        pull(&picks, &server, "acme/pub").await.status(),
        200,
        "public packages stay readable by anyone"
    );
    assert_eq!(
        status_and_code(pull(&picks, &server, "acme/int").await).await,
        (404, "NAME_UNKNOWN".into()),
        "an internal package the token does not select"
    );
    let own = client_with_token(
        &world
            .fine_grained(&nora, FineGrained::read("nora", &["tool"]))
            .await,
    );
    assert_eq!(
        status_and_code(pull(&own, &server, "closed/int").await).await,
        (404, "NAME_UNKNOWN".into()),
        "an internal package of an SSO organization the user is not in"
    );
    assert_eq!(
        status_and_code(pull(&own, &server, "acme/int").await).await,
        (404, "NAME_UNKNOWN".into()),
        "an internal package of another owner"
    );
    // The catalog lists only what the token reads.
    let catalog: Value = picks
        .get(server.url("/v2/_catalog"))
        .send()
        .await
        .expect("catalog")
        .json()
        .await
        .expect("json");
    assert_eq!(catalog["repositories"], json!(["acme/picked", "acme/pub"]));
}

// --- 8: a minted token reaches no further than the minting one ------------------------------

#[tokio::test]
async fn a_token_not_authorized_for_sso_mints_nothing_that_reaches_the_organization() {
    let server = Server::start();
    let world = World::new(&server);
    let mark = world.user("mark").await;
    world.member("mark", "member").await;
    push_image(&server, "acme/priv", "v1", b"private layer").await;
    world
        .package(
            "PUT",
            "acme/priv",
            "/collaborators/mark",
            json!({ "role": "read" }),
        )
        .await;
    world.repo("app", "private").await;
    world.collaborator("app", "mark", "push").await;
    world
        .package(
            "PUT",
            "acme/priv",
            "/repository",
            json!({ "repository": "app", "inherit_access": false }),
        )
        .await;
    let (_, unauthorized) = world.classic(&mark, FULL).await;
    let (authorized_id, authorized) = world.classic(&mark, FULL).await;
    world.authorize_sso(&mark, authorized_id).await;
    world.require_sso("acme").await;
    assert_eq!(
        status_and_code(pull(&client_with_token(&unauthorized), &server, "acme/priv").await).await,
        (404, "NAME_UNKNOWN".into()),
        "the classic token itself does not reach the organization"
    );

    // A fine-grained token for the organization.
    let refused = Api::new(&server, &unauthorized)
        .send(
            "POST",
            "/user/tokens",
            Some(FineGrained::read("acme", &["priv"]).request()),
        )
        .await;
    let status = refused.status().as_u16();
    let body: Value = refused.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 403, "{body}");
    let message = body["message"].as_str().unwrap_or("");
    assert!(
        message.contains("SSO") && message.contains("/sso/acme"),
        "the refusal says how to authorize the token: {message}"
    );
    // A job token of a repository of the organization.
    let job = Api::new(&server, &unauthorized)
        .send(
            "POST",
            "/repos/acme/app/actions/job-tokens",
            Some(json!({ "permissions": { "packages": "read" } })),
        )
        .await;
    assert_eq!(
        job.status(),
        403,
        "{}",
        job.text().await.unwrap_or_default()
    );

    // The authorized token mints both, and they work.
    let fine = world
        .fine_grained(&authorized, FineGrained::read("acme", &["priv"]))
        .await;
    assert_eq!(
        pull(&client_with_token(&fine), &server, "acme/priv")
            .await
            .status(),
        200
    );
    world
        .job_token_by(
            &authorized,
            "app",
            json!({ "permissions": { "packages": "read" } }),
        )
        .await;
}

// --- 9: job tokens write only where their repository may write -------------------------------

#[tokio::test]
async fn a_job_token_writes_only_to_packages_that_grant_its_repository_write() {
    let server = Server::start();
    let world = World::new(&server);
    let oscar = world.user("oscar").await;
    world.repo("app", "private").await;
    world.repo("other", "private").await;
    world.collaborator("app", "oscar", "push").await;
    let (_, manifest) = push_image(&server, "acme/own-access", "v1", b"layer of own-access").await;
    world
        .package(
            "PUT",
            "acme/own-access",
            "/repository",
            json!({ "repository": "app", "inherit_access": false }),
        )
        .await;
    let job = world
        .job_token_by(
            &oscar,
            "app",
            json!({ "permissions": { "packages": "write" } }),
        )
        .await;
    let job = client_with_token(&job);

    // Linked, keeping its own access, no Actions access for `app`: readable, not writable.
    assert_eq!(pull(&job, &server, "acme/own-access").await.status(), 200);
    let (status, code) =
        status_and_code(push_manifest(&job, &server, "acme/own-access", &manifest).await).await;
    assert_eq!((status, code.as_str()), (403, "DENIED"));
    let start = job
        .post(server.url("/v2/acme/own-access/blobs/uploads/"))
        .send()
        .await
        .expect("start");
    assert_eq!(start.status(), 403);

    // Actions access with write lets it push.
    world
        .package(
            "PUT",
            "acme/own-access",
            "/actions-access/app",
            json!({ "role": "write" }),
        )
        .await;
    assert_eq!(
        push_manifest(&job, &server, "acme/own-access", &manifest)
            .await
            .status(),
        201
    );

    // A package the job creates: its repository keeps write when inheritance is turned off.
    let layer = b"made by a job".to_vec();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        digest(&layer)
    );
    for blob in [config.clone().into_bytes(), layer.clone()] {
        let response = job
            .post(server.url(&format!(
                "/v2/acme/by-job/blobs/uploads/?digest={}",
                digest(&blob)
            )))
            .body(blob)
            .send()
            .await
            .expect("blob");
        assert_eq!(response.status(), 201);
    }
    let made = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config.as_bytes()), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
    }))
    .expect("json");
    assert_eq!(
        push_manifest(&job, &server, "acme/by-job", &made)
            .await
            .status(),
        201
    );
    world
        .package(
            "PUT",
            "acme/by-job",
            "/repository",
            json!({ "repository": "app", "inherit_access": false }),
        )
        .await;
    assert_eq!(
        push_manifest(&job, &server, "acme/by-job", &made)
            .await
            .status(),
        201,
        "the repository whose job created the package has write on it"
    );
    // A job of another repository reaches none of it.
    let other = world
        .job_token("other", json!({ "permissions": { "packages": "write" } }))
        .await;
    let other = client_with_token(&other);
    assert_eq!(
        status_and_code(push_manifest(&other, &server, "acme/by-job", &made).await).await,
        (404, "NAME_UNKNOWN".into())
    );
}

// --- 10: scopes and e-mail addresses --------------------------------------------------------

#[tokio::test]
async fn reading_an_internal_package_takes_read_packages() {
    let server = Server::start();
    let world = World::new(&server);
    let olivia = world.user("olivia").await;
    world.member("olivia", "member").await;
    push_image(&server, "acme/int", "v1", b"internal layer").await;
    world.visibility("acme/int", "internal").await;

    let (_, repo_only) = world.classic(&olivia, &["repo"]).await;
    let (_, reader) = world.classic(&olivia, &["read:packages"]).await;
    let repo_only = client_with_token(&repo_only);
    let hidden = shape(pull(&repo_only, &server, "acme/int").await, "acme/int").await;
    let missing = shape(pull(&repo_only, &server, MISSING).await, MISSING).await;
    assert!(hidden.starts_with("404"), "{hidden}");
    assert_eq!(hidden, missing);
    assert_eq!(
        pull(&client_with_token(&reader), &server, "acme/int")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_users_email_is_shown_only_to_them_and_site_administrators() {
    let server = Server::start();
    let world = World::new(&server);
    let admin = server.admin_token.clone();
    let olivia = world.user("olivia").email("olivia@example.com").await;
    let nora = world.user("nora").await;
    world.member("olivia", "member").await;

    let email = |token: Option<String>, path: &'static str| {
        let server = &server;
        async move {
            let response = Api::maybe(server, token.as_deref())
                .send("GET", path, None)
                .await;
            assert_eq!(response.status(), 200, "GET {path}");
            let body: Value = response.json().await.expect("json");
            body.pointer("/email")
                .or_else(|| body.pointer("/user/email"))
                .cloned()
                .unwrap_or(Value::Null)
        }
    };
    let shown = json!("olivia@example.com");
    assert_eq!(email(None, "/users/olivia").await, Value::Null, "anonymous");
    assert_eq!(
        email(Some(nora.clone()), "/users/olivia").await,
        Value::Null,
        "another user"
    );
    assert_eq!(
        email(Some(olivia.clone()), "/users/olivia").await,
        shown,
        "herself"
    );
    assert_eq!(
        email(Some(olivia.clone()), "/user").await,
        shown,
        "GET /user"
    );
    assert_eq!(
        email(Some(admin.clone()), "/users/olivia").await,
        shown,
        "a site admin"
    );
    // Memberships show the user too.
    assert_eq!(
        email(Some(olivia), "/orgs/acme/memberships/olivia").await,
        shown
    );
    world.member("nora", "member").await;
    assert_eq!(
        email(Some(nora), "/orgs/acme/memberships/olivia").await,
        Value::Null,
        "another member"
    );
}

/// Finding 8, the rule in general: a classic token without `repo` reaches nothing through
/// private repositories, so a fine-grained token it mints does not either; one minted with
/// `repo` does.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_minted_without_repo_reaches_nothing_through_private_repositories() {
    let server = Server::start();
    let world = World::new(&server);
    let rita = world.user("rita").await;
    world.member("rita", "member").await;
    push_image(&server, "acme/inherited", "v1", b"inherited layer").await;
    world.repo("app", "private").await;
    world.collaborator("app", "rita", "push").await;
    world
        .package(
            "PUT",
            "acme/inherited",
            "/repository",
            json!({ "repository": "app", "inherit_access": true }),
        )
        .await;
    let (_, without_repo) = world.classic(&rita, &["read:packages"]).await;
    let (_, with_repo) = world.classic(&rita, &["read:packages", "repo"]).await;
    assert_eq!(
        status_and_code(pull(&client_with_token(&without_repo), &server, "acme/inherited").await)
            .await,
        (404, "NAME_UNKNOWN".into()),
        "the minting token itself does not reach the package"
    );
    assert_eq!(
        pull(&client_with_token(&with_repo), &server, "acme/inherited")
            .await
            .status(),
        200
    );
    let minted = world
        .fine_grained(&without_repo, FineGrained::read("acme", &["inherited"]))
        .await;
    assert_eq!(
        status_and_code(pull(&client_with_token(&minted), &server, "acme/inherited").await).await,
        (404, "NAME_UNKNOWN".into()),
        "a token minted without repo reaches no further than its minter"
    );
    let minted = world
        .fine_grained(&with_repo, FineGrained::read("acme", &["inherited"]))
        .await;
    assert_eq!(
        pull(&client_with_token(&minted), &server, "acme/inherited")
            .await
            .status(),
        200
    );
}
