//! GitHub's objects, judged by GitHub's own description: every answer here goes through the
//! suites' `Api` client, which validates it against the response schema GitHub's OpenAPI
//! description (`@octokit/openapi`) gives its operation (common/schema.rs). These tests call
//! every endpoint that renders a user, an organization, a membership, a team, a repository or
//! a package, as every kind of viewer, and check what the schema cannot: that the URLs in
//! them answer and that Berth's own fields stay beside GitHub's.

use serde_json::{Value, json};

use crate::common::github::Api;
use crate::common::schema::check_rest;
use crate::common::world::World;
use crate::common::{Server, anonymous_client, push_image};

/// The judge itself can fail: an answer missing what GitHub requires, or with a field of the
/// wrong type, is a violation; Berth's own endpoints are not GitHub's to judge, even where
/// their path looks like one of GitHub's templates.
#[test]
fn the_judge_refuses_what_github_would_not_send() {
    let package = json!({
        "id": 1, "name": "app", "package_type": "container", "visibility": "private",
        "url": "http://h/api/v3/orgs/acme/packages/container/app",
        "html_url": "http://h/orgs/acme/packages/container/package/app",
        "version_count": 1,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    });
    let path = "/orgs/acme/packages/container/app";
    assert_eq!(check_rest("GET", path, 200, &package), None);
    // Berth's account object, as packages carried it before: not GitHub's simple-user.
    let mut with_berths_owner = package.clone();
    with_berths_owner["owner"] = json!({"login": "acme", "id": 1, "type": "Organization"});
    let problem = check_rest("GET", path, 200, &with_berths_owner).expect("a violation");
    assert!(problem.contains("avatar_url"), "{problem}");
    let mut missing = package.clone();
    missing.as_object_mut().unwrap().remove("version_count");
    assert!(check_rest("GET", path, 200, &missing).is_some());
    let mut wrong_type = package;
    wrong_type["id"] = json!("1");
    assert!(check_rest("GET", path, 200, &wrong_type).is_some());
    // An error status GitHub does not list still needs GitHub's error object.
    assert!(check_rest("GET", path, 429, &json!({"message": "slow down"})).is_none());
    assert!(check_rest("GET", path, 429, &json!({"errors": []})).is_some());
    // A success GitHub never answers is a violation.
    assert!(check_rest("GET", path, 201, &json!({})).is_some());
    // GitHub Enterprise Server's operations are judged by its description.
    let problem = check_rest("POST", "/admin/users", 201, &json!({"login": 5})).expect("GHES");
    assert!(problem.contains("/admin/users"), "{problem}");
    // `/user/tokens` is Berth's, not GitHub's `/user/{account_id}` (an integer).
    assert_eq!(check_rest("GET", "/user/tokens", 200, &json!([1, 2])), None);
    assert!(check_rest("GET", "/user/12", 200, &json!([1, 2])).is_some());
}

/// Users, organizations, memberships, teams and repositories in GitHub's shapes, for the
/// user themselves, another user, anonymous and the site administrator.
#[tokio::test(flavor = "multi_thread")]
async fn accounts_teams_and_repositories_are_githubs_objects() {
    let server = Server::start();
    let world = World::new(&server);
    let olivia = world.user("olivia").email("olivia@example.com").await;
    let nora = world.user("nora").await;
    world.member("olivia", "admin").await;
    world.member("nora", "member").await;
    world.repo("app", "public").await;
    world.repo("secret", "private").await;
    world
        .team(
            "platform",
            json!({"maintainers": ["olivia", "nora"], "repo_names": ["acme/app"]}),
        )
        .await;

    let admin = world.admin();
    let me = Api::new(&server, &olivia);
    let other = Api::new(&server, &nora);
    let anonymous = Api::anonymous(&server);

    let private = me.expect("GET", "/user", None, 200).await;
    assert_eq!(private["user_view_type"], "private");
    assert_eq!(private["email"], "olivia@example.com");
    assert_eq!(private["login"], "olivia");
    for viewer in [&me, &other, &anonymous, admin] {
        let public = viewer.expect("GET", "/users/olivia", None, 200).await;
        assert_eq!(public["login"], "olivia");
        assert_eq!(public["type"], "User");
        // An organization through /users/ is GitHub's user object with its type.
        let org = viewer.expect("GET", "/users/acme", None, 200).await;
        assert_eq!(org["type"], "Organization");
        let full = viewer.expect("GET", "/orgs/acme", None, 200).await;
        assert_eq!(full["login"], "acme");
        // Berth's additions beside GitHub's fields.
        assert!(full["packages"]["default_visibility"].is_string(), "{full}");
        assert_eq!(full["requires_token_authorization"], false);
        let repo = viewer.expect("GET", "/repos/acme/app", None, 200).await;
        assert_eq!(repo["full_name"], "acme/app");
        assert_eq!(repo["owner"]["login"], "acme");
        assert_eq!(repo["private"], false);
    }
    // Invisible is missing, in GitHub's error object (also judged).
    other.expect("GET", "/repos/acme/secret", None, 404).await;
    anonymous
        .expect("GET", "/repos/acme/secret", None, 404)
        .await;
    let secret = me.expect("GET", "/repos/acme/secret", None, 200).await;
    assert_eq!(secret["private"], true);
    assert_eq!(secret["visibility"], "private");

    let membership = me
        .expect("GET", "/orgs/acme/memberships/olivia", None, 200)
        .await;
    assert_eq!(membership["role"], "admin");
    assert_eq!(membership["organization"]["login"], "acme");
    assert_eq!(membership["user"]["email"], "olivia@example.com");
    let membership = other
        .expect("GET", "/orgs/acme/memberships/olivia", None, 200)
        .await;
    assert_eq!(membership["user"]["email"], Value::Null);

    let team = admin
        .expect(
            "POST",
            "/orgs/acme/teams",
            Some(json!({"name": "Release Crew", "maintainers": ["olivia"]})),
            201,
        )
        .await;
    assert_eq!(team["slug"], "release-crew");
    assert_eq!(team["members_count"], 1);
    assert_eq!(team["repos_count"], 0);
    assert_eq!(team["organization"]["login"], "acme");
    let created = admin
        .expect(
            "POST",
            "/orgs/acme/repos",
            Some(json!({"name": "tools", "visibility": "internal"})),
            201,
        )
        .await;
    assert_eq!(created["full_name"], "acme/tools");
    assert_eq!(created["visibility"], "internal");
    let mine = me
        .expect(
            "POST",
            "/user/repos",
            Some(json!({"name": "dotfiles"})),
            201,
        )
        .await;
    assert_eq!(mine["owner"]["login"], "olivia");
}

/// A package's owner is GitHub's `simple-user` and its linked repository GitHub's
/// `minimal-repository`, in the package, its listings and its versions; every avatar URL in
/// them answers with an image.
#[tokio::test(flavor = "multi_thread")]
async fn packages_carry_githubs_owner_and_repository_and_avatars_answer() {
    let server = Server::start();
    let world = World::new(&server);
    world.repo("app", "private").await;
    push_image(&server, "acme/app", "v1", b"layer of app").await;
    world
        .package(
            "PUT",
            "acme/app",
            "/repository",
            json!({ "repository": "app", "inherit_access": false }),
        )
        .await;
    let admin = world.admin();
    let package = admin
        .expect("GET", "/orgs/acme/packages/container/app", None, 200)
        .await;
    assert_eq!(package["owner"]["login"], "acme");
    assert_eq!(package["owner"]["type"], "Organization");
    assert_eq!(package["repository"]["full_name"], "acme/app");
    assert_eq!(package["repository"]["owner"]["login"], "acme");
    let listed = admin
        .expect(
            "GET",
            "/orgs/acme/packages?package_type=container",
            None,
            200,
        )
        .await;
    assert_eq!(listed[0]["repository"]["full_name"], "acme/app");
    let versions = admin
        .expect(
            "GET",
            "/orgs/acme/packages/container/app/versions",
            None,
            200,
        )
        .await;
    assert_eq!(versions[0]["metadata"]["container"]["tags"], json!(["v1"]));

    let mut avatars = vec![
        package["owner"]["avatar_url"].clone(),
        package["repository"]["owner"]["avatar_url"].clone(),
        admin.expect("GET", "/user", None, 200).await["avatar_url"].clone(),
    ];
    avatars.dedup();
    assert!(avatars.len() >= 2, "{avatars:?}");
    for avatar in avatars {
        let url = avatar.as_str().expect("avatar_url");
        assert!(url.starts_with(&server.url("/avatars/")), "{url}");
        // Anyone may fetch it, as anyone may fetch GitHub's.
        let response = anonymous_client().get(url).send().await.expect("avatar");
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["content-type"], "image/svg+xml");
        let svg = response.text().await.expect("svg");
        assert!(svg.starts_with("<svg"), "{svg}");
    }
    let response = anonymous_client()
        .get(server.url("/avatars/u/not-a-number"))
        .send()
        .await
        .expect("avatar");
    assert_eq!(response.status(), 404);
}
