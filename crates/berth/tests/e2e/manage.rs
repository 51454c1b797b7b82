//! The management API (`/api/v3`) over real HTTP: GitHub's shapes and errors, who may call
//! what, and the tokens it issues (classic, fine-grained, app installation, job) used on the
//! registry.

use crate::common::github::{Api, github_error};
use crate::common::world::World;
use crate::common::{
    Server, anonymous_client, client_with_token, digest, expect_error, push_blob_with, push_image,
};
use serde_json::{Value, json};

#[tokio::test]
async fn site_admin_creates_users_and_organizations_in_github_enterprise_shapes() {
    let server = Server::start();
    let world = World::new(&server);
    let admin = world.admin();

    let bob = admin
        .expect(
            "POST",
            "/admin/users",
            Some(json!({ "login": "bob", "email": "bob@example.com" })),
            201,
        )
        .await;
    assert_eq!(bob["login"], "bob");
    assert_eq!(bob["type"], "User");
    assert_eq!(bob["site_admin"], false);
    assert_eq!(bob["email"], "bob@example.com");
    assert!(bob["id"].is_i64());
    assert_eq!(bob["url"], server.url("/api/v3/users/bob"));
    assert!(bob["created_at"].as_str().unwrap().ends_with('Z'));

    // A taken login (case-insensitively), an invalid one, a missing field: 422.
    let taken = admin
        .expect("POST", "/admin/users", Some(json!({ "login": "BOB" })), 422)
        .await;
    assert_eq!(taken["message"], "Validation Failed");
    assert_eq!(taken["errors"][0]["code"], "already_exists");
    assert_eq!(taken["errors"][0]["field"], "login");
    let bad = admin
        .expect("POST", "/admin/users", Some(json!({ "login": "-x-" })), 422)
        .await;
    assert_eq!(bad["errors"][0]["code"], "invalid");
    let missing = admin
        .expect("POST", "/admin/users", Some(json!({ "email": "a@b" })), 422)
        .await;
    assert_eq!(missing["errors"][0]["code"], "missing_field");
    let (status, body) = admin.call("POST", "/admin/users", None).await.clone();
    assert_eq!(status, 422, "{body}");
    let garbled = admin
        .request("POST", "/admin/users")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), 400);
    let garbled: Value = garbled.json().await.unwrap();
    assert!(github_error(&garbled).starts_with("Problems parsing JSON"));

    let org = admin
        .expect(
            "POST",
            "/admin/organizations",
            Some(json!({ "login": "globex", "admin": "bob", "profile_name": "Globex" })),
            201,
        )
        .await;
    assert_eq!(org["type"], "Organization");
    assert_eq!(org["name"], "Globex");
    let membership = admin
        .expect("GET", "/orgs/globex/memberships/bob", None, 200)
        .await;
    assert_eq!(membership["role"], "admin");
    assert_eq!(membership["state"], "active");
    assert_eq!(membership["user"]["login"], "bob");
    admin
        .expect(
            "POST",
            "/admin/organizations",
            Some(json!({ "login": "initech", "admin": "nobody" })),
            422,
        )
        .await;

    // Not a site administrator: 403; no credentials: 401; a password: 401.
    let bob_token = server.admin(&["create-token", "bob", "--scopes", "site_admin"]);
    let refused = Api::new(&server, &bob_token)
        .expect(
            "POST",
            "/admin/users",
            Some(json!({ "login": "carol" })),
            403,
        )
        .await;
    assert!(github_error(&refused).contains("site administrator"));
    let anonymous = Api::anonymous(&server)
        .expect(
            "POST",
            "/admin/users",
            Some(json!({ "login": "carol" })),
            401,
        )
        .await;
    assert!(github_error(&anonymous).contains("Requires authentication"));
    Api::new(&server, "hunter2")
        .expect("GET", "/user", None, 401)
        .await;
    // The admin's token without the site_admin scope cannot either.
    let narrow = server.admin(&["create-token", "admin", "--scopes", "repo"]);
    let refused = Api::new(&server, &narrow)
        .expect(
            "POST",
            "/admin/users",
            Some(json!({ "login": "carol" })),
            403,
        )
        .await;
    assert!(github_error(&refused).contains("site_admin scope"));

    // Unknown paths answer GitHub's 404.
    let missing = admin.expect("GET", "/no/such/thing", None, 404).await;
    assert_eq!(github_error(&missing), "Not Found");
    let me = Api::new(&server, &bob_token)
        .expect("GET", "/user", None, 200)
        .await;
    assert_eq!(me["login"], "bob");
}

#[tokio::test]
async fn org_owners_manage_members_teams_and_repositories() {
    let server = Server::start();
    let world = World::new(&server);
    let admin = world.admin();
    let dana = world
        .user("dana")
        .email("dana@example.com")
        .scopes("read:packages,repo")
        .await;
    let erin = world
        .user("erin")
        .email("erin@example.com")
        .scopes("read:packages,repo")
        .await;

    admin
        .expect(
            "PUT",
            "/orgs/acme/memberships/dana",
            Some(json!({ "role": "member" })),
            200,
        )
        .await;
    // A member is not an owner: cannot add members.
    let dana_api = Api::new(&server, &dana);
    dana_api
        .expect(
            "PUT",
            "/orgs/acme/memberships/erin",
            Some(json!({ "role": "member" })),
            403,
        )
        .await;
    admin
        .expect(
            "PUT",
            "/orgs/acme/memberships/erin",
            Some(json!({ "role": "owner" })),
            422,
        )
        .await;

    // Members create repositories in the organization and administer what they create.
    let repo = dana_api
        .expect(
            "POST",
            "/orgs/acme/repos",
            Some(json!({ "name": "app", "private": true })),
            201,
        )
        .await;
    assert_eq!(repo["full_name"], "acme/app");
    assert_eq!(repo["private"], true);
    assert_eq!(repo["visibility"], "private");
    assert_eq!(repo["owner"]["login"], "acme");
    let again = dana_api
        .expect(
            "POST",
            "/orgs/acme/repos",
            Some(json!({ "name": "APP" })),
            422,
        )
        .await;
    assert_eq!(
        again["errors"][0]["message"],
        "name already exists on this account"
    );
    // Outsiders do not see a private repository, nor create repositories in the org.
    let erin_api = Api::new(&server, &erin);
    erin_api.expect("GET", "/repos/acme/app", None, 404).await;
    erin_api
        .expect(
            "POST",
            "/orgs/acme/repos",
            Some(json!({ "name": "x" })),
            403,
        )
        .await;
    dana_api
        .expect(
            "PUT",
            "/repos/acme/app/collaborators/erin",
            Some(json!({ "permission": "pull" })),
            204,
        )
        .await;
    assert_eq!(
        erin_api.expect("GET", "/repos/acme/app", None, 200).await["name"],
        "app"
    );
    // A read collaborator is no admin of the repository.
    let refused = erin_api
        .expect(
            "PUT",
            "/repos/acme/app/collaborators/erin",
            Some(json!({ "permission": "admin" })),
            403,
        )
        .await;
    assert!(github_error(&refused).contains("admin rights"));
    dana_api
        .expect("DELETE", "/repos/acme/app/collaborators/erin", None, 204)
        .await;
    erin_api.expect("GET", "/repos/acme/app", None, 404).await;

    // Users' own repositories; internal is for organizations only.
    erin_api
        .expect(
            "POST",
            "/user/repos",
            Some(json!({ "name": "dotfiles", "visibility": "internal" })),
            422,
        )
        .await;
    let own = erin_api
        .expect(
            "POST",
            "/user/repos",
            Some(json!({ "name": "dotfiles" })),
            201,
        )
        .await;
    assert_eq!(own["full_name"], "erin/dotfiles");
    assert_eq!(own["visibility"], "public");

    // Teams: owners create them; members join; a team gets a repository role.
    let team = admin
        .expect(
            "POST",
            "/orgs/acme/teams",
            Some(json!({ "name": "Platform Team", "maintainers": ["dana"] })),
            201,
        )
        .await;
    assert_eq!(team["slug"], "platform-team");
    assert_eq!(
        team["url"],
        server.url("/api/v3/orgs/acme/teams/platform-team")
    );
    let not_member = admin
        .expect(
            "PUT",
            "/orgs/acme/teams/platform-team/memberships/erin",
            None,
            422,
        )
        .await;
    assert!(
        not_member["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a member")
    );
    admin
        .expect(
            "PUT",
            "/orgs/acme/memberships/erin",
            Some(json!({ "role": "member" })),
            200,
        )
        .await;
    let joined = admin
        .expect(
            "PUT",
            "/orgs/acme/teams/platform-team/memberships/erin",
            Some(json!({ "role": "member" })),
            200,
        )
        .await;
    assert_eq!(joined["state"], "active");
    admin
        .expect(
            "PUT",
            "/orgs/acme/teams/platform-team/repos/acme/app",
            Some(json!({ "permission": "push" })),
            204,
        )
        .await;
    assert_eq!(
        erin_api.expect("GET", "/repos/acme/app", None, 200).await["name"],
        "app"
    );
    admin
        .expect(
            "DELETE",
            "/orgs/acme/teams/platform-team/repos/acme/app",
            None,
            204,
        )
        .await;
    erin_api.expect("GET", "/repos/acme/app", None, 404).await;
    admin
        .expect("DELETE", "/orgs/acme/memberships/erin", None, 204)
        .await;
    admin
        .expect("GET", "/orgs/acme/memberships/erin", None, 404)
        .await;
}

#[tokio::test]
async fn package_settings_visibility_roles_and_linking() {
    let server = Server::start();
    let world = World::new(&server);
    let admin = world.admin();
    let frank = world
        .user("frank")
        .email("frank@example.com")
        .scopes("read:packages,write:packages")
        .await;
    let (digest, _) = push_image(&server, "acme/api/worker", "v1", b"worker").await;
    let path = "/orgs/acme/packages/container/api%2Fworker";
    let manifest = format!("/v2/acme/api/worker/manifests/{digest}");
    let frank_http = client_with_token(&frank);
    let frank_api = Api::new(&server, &frank);

    // Private: frank sees nothing, over the registry or the API.
    expect_error(
        frank_http.get(server.url(&manifest)).send().await.unwrap(),
        404,
        "NAME_UNKNOWN",
    )
    .await;
    frank_api
        .expect("PATCH", path, Some(json!({ "visibility": "public" })), 404)
        .await;

    // A read role lets him pull, not manage or push.
    admin
        .expect(
            "PUT",
            &format!("{path}/collaborators/frank"),
            Some(json!({ "role": "read" })),
            204,
        )
        .await;
    assert_eq!(
        frank_http
            .get(server.url(&manifest))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let denied = frank_api
        .expect("PATCH", path, Some(json!({ "visibility": "public" })), 403)
        .await;
    assert!(github_error(&denied).contains("admin"), "{denied}");
    let push = push_blob_with(&frank_http, &server, "acme/api/worker", b"x".to_vec()).await;
    expect_error(push, 403, "DENIED").await;
    admin
        .expect(
            "PUT",
            &format!("{path}/collaborators/frank"),
            Some(json!({ "role": "owner" })),
            422,
        )
        .await;
    admin
        .expect("DELETE", &format!("{path}/collaborators/frank"), None, 204)
        .await;
    expect_error(
        frank_http.get(server.url(&manifest)).send().await.unwrap(),
        404,
        "NAME_UNKNOWN",
    )
    .await;

    // Team roles, for organization packages.
    admin
        .expect(
            "PUT",
            "/orgs/acme/memberships/frank",
            Some(json!({ "role": "member" })),
            200,
        )
        .await;
    admin
        .expect(
            "POST",
            "/orgs/acme/teams",
            Some(json!({ "name": "builders", "maintainers": ["frank"] })),
            201,
        )
        .await;
    admin
        .expect(
            "PUT",
            &format!("{path}/teams/builders"),
            Some(json!({ "role": "write" })),
            204,
        )
        .await;
    let push = push_blob_with(&frank_http, &server, "acme/api/worker", b"y".to_vec()).await;
    assert_eq!(push.status(), 201);
    admin
        .expect("DELETE", &format!("{path}/teams/builders"), None, 204)
        .await;
    admin
        .expect(
            "PUT",
            &format!("{path}/teams/nobody"),
            Some(json!({ "role": "read" })),
            404,
        )
        .await;

    // Linking to a repository of the same owner makes its access the package's.
    admin
        .expect(
            "POST",
            "/orgs/acme/repos",
            Some(json!({ "name": "worker", "private": true })),
            201,
        )
        .await;
    admin
        .expect(
            "PUT",
            "/repos/acme/worker/collaborators/frank",
            Some(json!({ "permission": "push" })),
            204,
        )
        .await;
    admin
        .expect(
            "PUT",
            &format!("{path}/repository"),
            Some(json!({ "repository": "nope" })),
            422,
        )
        .await;
    admin
        .expect(
            "PUT",
            &format!("{path}/repository"),
            Some(json!({ "repository": "worker" })),
            204,
        )
        .await;
    // Frank's token lacks `repo`, which access from a private repository needs.
    expect_error(
        frank_http.get(server.url(&manifest)).send().await.unwrap(),
        404,
        "NAME_UNKNOWN",
    )
    .await;
    let with_repo = server.admin(&["create-token", "frank", "--scopes", "write:packages,repo"]);
    let response = client_with_token(&with_repo)
        .get(server.url(&manifest))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    admin
        .expect("DELETE", &format!("{path}/repository"), None, 204)
        .await;
    let response = client_with_token(&with_repo)
        .get(server.url(&manifest))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // Linking a package before its first publish creates it, inheriting.
    admin
        .expect(
            "PUT",
            "/orgs/acme/packages/container/worker-next/repository",
            Some(json!({ "repository": "acme/worker" })),
            204,
        )
        .await;
    let push = push_blob_with(
        &client_with_token(&with_repo),
        &server,
        "acme/worker-next",
        b"z".to_vec(),
    )
    .await;
    assert_eq!(push.status(), 201);

    // Public, then never private again; anonymous pulls work.
    admin
        .expect("PATCH", path, Some(json!({ "visibility": "public" })), 204)
        .await;
    let anonymous = anonymous_client()
        .get(server.url(&manifest))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 200);
    let refused = admin
        .expect("PATCH", path, Some(json!({ "visibility": "private" })), 422)
        .await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be made private")
    );
    admin
        .expect("PATCH", path, Some(json!({ "visibility": "secret" })), 422)
        .await;
    // The path names the owner's kind: a user path for an organization package is 404.
    admin
        .expect(
            "PATCH",
            "/users/acme/packages/container/api%2Fworker",
            Some(json!({ "visibility": "public" })),
            404,
        )
        .await;

    // Members create only the visibilities the organization allows.
    let settings = admin
        .expect(
            "PATCH",
            "/orgs/acme/packages/settings",
            Some(json!({ "default_visibility": "internal", "member_visibilities": ["private"] })),
            200,
        )
        .await;
    assert_eq!(settings["default_visibility"], "internal");
    assert_eq!(settings["member_visibilities"], json!(["private"]));
    frank_api
        .expect(
            "PATCH",
            "/orgs/acme/packages/settings",
            Some(json!({ "member_visibilities": ["public"] })),
            403,
        )
        .await;
    // New packages: an owner's get the default (internal, readable by any signed-in user);
    // a member's the most private visibility allowed to members (private).
    let (owned, _) = push_image(&server, "acme/owned-new", "v1", b"owned").await;
    let member_push = push_blob_with(&frank_http, &server, "acme/frank-new", b"f".to_vec()).await;
    assert_eq!(member_push.status(), 201);
    let outsider = world
        .user("olaf")
        .email("olaf@example.com")
        .scopes("read:packages")
        .await;
    let outsider = client_with_token(&outsider);
    let internal = outsider
        .get(server.url(&format!("/v2/acme/owned-new/manifests/{owned}")))
        .send()
        .await
        .unwrap();
    assert_eq!(internal.status(), 200);
    let private = outsider
        .get(server.url("/v2/acme/frank-new/tags/list"))
        .send()
        .await
        .unwrap();
    expect_error(private, 404, "NAME_UNKNOWN").await;
    let own = frank_http
        .get(server.url("/v2/acme/frank-new/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn tokens_are_created_listed_and_revoked_through_the_api() {
    let server = Server::start();
    let world = World::new(&server);
    let admin = world.admin();
    let grace = world
        .user("grace")
        .email("grace@example.com")
        .scopes("read:packages,write:packages")
        .await;
    admin
        .expect(
            "PUT",
            "/orgs/acme/memberships/grace",
            Some(json!({ "role": "member" })),
            200,
        )
        .await;
    let grace_api = Api::new(&server, &grace);
    push_image(&server, "acme/one", "v1", b"one").await;
    push_image(&server, "acme/two", "v1", b"two").await;

    // Classic: at most the creating token's scopes; shown once with its prefix.
    let created = grace_api
        .expect(
            "POST",
            "/user/tokens",
            Some(json!({ "note": "ci", "scopes": ["read:packages"], "expires_at": "2099-01-01T00:00:00Z" })),
            201,
        )
        .await;
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("berthp_"), "{secret}");
    assert_eq!(created["scopes"], json!(["read:packages"]));
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00Z");
    let wider = grace_api
        .expect(
            "POST",
            "/user/tokens",
            Some(json!({ "note": "more", "scopes": ["delete:packages"] })),
            403,
        )
        .await;
    assert!(github_error(&wider).contains("at most its own scopes"));
    grace_api
        .expect(
            "POST",
            "/user/tokens",
            // Not one of GitHub's classic scopes (`gist` is, and is accepted).
            Some(json!({ "note": "bad", "scopes": ["gists"] })),
            422,
        )
        .await;
    grace_api
        .expect(
            "POST",
            "/user/tokens",
            Some(json!({ "note": "old", "scopes": [], "expires_at": "2001-01-01" })),
            422,
        )
        .await;
    let listed = grace_api.expect("GET", "/user/tokens", None, 200).await;
    let listed = listed.as_array().unwrap();
    assert!(
        listed.iter().all(|t| t.get("token").is_none()),
        "secrets never listed"
    );
    assert!(listed.iter().any(|t| t["note"] == "ci"));

    // Fine-grained: one owner, selected packages, read.
    let fine = grace_api
        .expect(
            "POST",
            "/user/tokens",
            Some(json!({
                "type": "fine_grained", "note": "pull one", "resource_owner": "acme",
                "packages": ["one"], "permissions": { "packages": "read" },
            })),
            201,
        )
        .await;
    let fine_secret = fine["token"].as_str().unwrap();
    assert!(fine_secret.starts_with("berthf_"));
    assert_eq!(fine["packages"], json!(["acme/one"]));
    let fine_http = client_with_token(fine_secret);
    // Grace is a member: acme's private packages are not hers, so give her a read role.
    for package in ["one", "two"] {
        admin
            .expect(
                "PUT",
                &format!("/orgs/acme/packages/container/{package}/collaborators/grace"),
                Some(json!({ "role": "read" })),
                204,
            )
            .await;
    }
    let one = fine_http
        .get(server.url("/v2/acme/one/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let two = fine_http
        .get(server.url("/v2/acme/two/tags/list"))
        .send()
        .await
        .unwrap();
    expect_error(two, 404, "NAME_UNKNOWN").await;
    // Fine-grained tokens do not manage anything.
    Api::new(&server, fine_secret)
        .expect("GET", "/user/tokens", None, 403)
        .await;
    grace_api
        .expect(
            "POST",
            "/user/tokens",
            Some(json!({
                "type": "fine_grained", "note": "elsewhere", "resource_owner": "admin",
                "packages": ["x"], "permissions": { "packages": "read" },
            })),
            422,
        )
        .await;

    // Revoked through the API: refused on the registry with a clear message.
    let id = created["id"].as_i64().unwrap();
    let ci = client_with_token(&secret);
    assert_eq!(
        ci.get(server.url("/v2/")).send().await.unwrap().status(),
        200
    );
    grace_api
        .expect("DELETE", &format!("/user/tokens/{id}"), None, 204)
        .await;
    let message = expect_error(
        ci.get(server.url("/v2/")).send().await.unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert!(message.contains("revoked"), "{message}");
    // Someone else's token is not found.
    admin
        .expect("DELETE", &format!("/user/tokens/{id}"), None, 404)
        .await;
}

/// An image's blobs and manifest pushed with `http`; the status of the manifest PUT.
async fn push_image_with(http: &reqwest::Client, server: &Server, repo: &str) -> u16 {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let response = push_blob_with(http, server, repo, config.clone()).await;
    if response.status() != 201 {
        return response.status().as_u16();
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [],
    });
    http.put(server.url(&format!("/v2/{repo}/manifests/latest")))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn job_tokens_push_only_to_their_repositorys_packages() {
    let server = Server::start();
    let world = World::new(&server);
    let admin = world.admin();
    for repo in ["app", "other"] {
        admin
            .expect(
                "POST",
                "/orgs/acme/repos",
                Some(json!({ "name": repo, "private": true })),
                201,
            )
            .await;
    }
    let job = admin
        .expect(
            "POST",
            "/repos/acme/app/actions/job-tokens",
            Some(json!({ "permissions": { "packages": "write" }, "expires_in": 600 })),
            201,
        )
        .await;
    let token = job["token"].as_str().unwrap();
    assert!(token.starts_with("berthj_"));
    assert_eq!(job["repository"], "acme/app");
    let job_http = client_with_token(token);

    // A new package it creates is linked to its repository; it pushes there again.
    assert_eq!(
        push_image_with(&job_http, &server, "acme/app-image").await,
        201
    );
    assert_eq!(
        push_image_with(&job_http, &server, "acme/app-image").await,
        201
    );

    // Another repository's package: invisible (404), and with read access granted to
    // this repository, visible but not writable (403).
    let other_job = admin
        .expect(
            "POST",
            "/repos/acme/other/actions/job-tokens",
            Some(json!({ "permissions": { "packages": "write" } })),
            201,
        )
        .await;
    let other_http = client_with_token(other_job["token"].as_str().unwrap());
    assert_eq!(
        push_image_with(&other_http, &server, "acme/other-image").await,
        201
    );
    let response = push_blob_with(&job_http, &server, "acme/other-image", b"x".to_vec()).await;
    expect_error(response, 404, "NAME_UNKNOWN").await;
    admin
        .expect(
            "PUT",
            "/orgs/acme/packages/container/other-image/actions-access/app",
            Some(json!({ "role": "read" })),
            204,
        )
        .await;
    let pulled = job_http
        .get(server.url("/v2/acme/other-image/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    let response = push_blob_with(&job_http, &server, "acme/other-image", b"x".to_vec()).await;
    let message = expect_error(response, 403, "DENIED").await;
    assert!(message.contains("job token"), "{message}");
    admin
        .expect(
            "PUT",
            "/orgs/acme/packages/container/other-image/actions-access/app",
            Some(json!({ "role": "admin" })),
            422,
        )
        .await;

    // A job token manages nothing, and only repository writers mint them.
    Api::new(&server, token)
        .expect("GET", "/user", None, 403)
        .await;
    let reader = world
        .user("ivan")
        .email("ivan@example.com")
        .scopes("repo")
        .await;
    admin
        .expect(
            "PUT",
            "/repos/acme/app/collaborators/ivan",
            Some(json!({ "permission": "pull" })),
            204,
        )
        .await;
    Api::new(&server, &reader)
        .expect(
            "POST",
            "/repos/acme/app/actions/job-tokens",
            Some(json!({ "permissions": { "packages": "write" } })),
            403,
        )
        .await;
}

#[tokio::test]
async fn app_installation_tokens_work_for_an_hour_as_x_access_token() {
    let server = Server::start_with(&[("BERTH_APP_TOKEN_TTL_SECS", "2")]);
    let world = World::new(&server);
    let admin = world.admin();
    admin
        .expect(
            "POST",
            "/orgs/acme/repos",
            Some(json!({ "name": "app", "private": true })),
            201,
        )
        .await;
    push_image(&server, "acme/app", "v1", b"app").await;
    push_image(&server, "acme/unlinked", "v1", b"unlinked").await;
    admin
        .expect(
            "PUT",
            "/orgs/acme/packages/container/app/repository",
            Some(json!({ "repository": "app" })),
            204,
        )
        .await;
    let app = admin
        .expect("POST", "/apps", Some(json!({ "slug": "scanner" })), 201)
        .await;
    let secret = app["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("berthc_"));
    let installation = admin
        .expect(
            "POST",
            "/apps/scanner/installations",
            Some(json!({ "account": "acme", "repositories": ["app"], "permissions": { "packages": "read" } })),
            201,
        )
        .await;
    assert_eq!(installation["repository_selection"], "selected");
    let id = installation["id"].as_i64().unwrap();
    let exchange = format!("/api/v3/app/installations/{id}/access_tokens");

    // Wrong secret: 401. The app's secret is not a registry credential either.
    let wrong = anonymous_client()
        .post(server.url(&exchange))
        .header("authorization", format!("Bearer {}", server.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let as_registry = client_with_token(&secret)
        .get(server.url("/v2/acme/app/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_registry.status(), 401);

    let issued = anonymous_client()
        .post(server.url(&exchange))
        .header("authorization", format!("Bearer {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 201);
    let issued: Value = issued.json().await.unwrap();
    let token = issued["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("berths_"));
    assert_eq!(issued["permissions"]["packages"], "read");
    assert!(issued["expires_at"].as_str().unwrap().ends_with('Z'));

    // Clients log in as `x-access-token`.
    let basic = crate::common::base64_encode(format!("x-access-token:{token}").as_bytes());
    let app_http = anonymous_client();
    let get = |path: &str| {
        app_http
            .get(server.url(path))
            .header("authorization", format!("Basic {basic}"))
            .send()
    };
    assert_eq!(get("/v2/acme/app/tags/list").await.unwrap().status(), 200);
    expect_error(
        get("/v2/acme/unlinked/tags/list").await.unwrap(),
        404,
        "NAME_UNKNOWN",
    )
    .await;

    // After its lifetime it is refused, saying it expired.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let message = expect_error(
        get("/v2/acme/app/tags/list").await.unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert!(message.contains("expired"), "{message}");
}
