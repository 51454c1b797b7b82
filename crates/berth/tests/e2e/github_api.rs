//! GitHub fidelity of `/api/v3`: the endpoints GitHub's tools call first (the root, `/meta`,
//! `/rate_limit`), the listings they call often (members, teams, organizations,
//! repositories), GitHub's headers and refusals, and GitHub's classic scopes. Every answer
//! goes through the [`Api`] client, which judges it by GitHub's OpenAPI description.

use crate::common::github::{Api, github_error};
use crate::common::schema::assert_rest;
use crate::common::world::{EVERY_SCOPE, World};
use crate::common::{ADMIN, ORG, Server, client_with_token, header, push_image};
use serde_json::{Value, json};

/// The logins of a list of users or organizations.
fn logins(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["login"].as_str().expect("login"))
        .collect()
}

/// The `full_name`s of a list of repositories, sorted.
fn full_names(list: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item["full_name"].as_str().expect("full_name"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_root_and_meta_answer_githubs_objects() {
    let server = Server::start();
    let world = World::new(&server);
    let admin = world.admin();

    let root = admin.expect("GET", "/", None, 200).await;
    let api = server.url("/api/v3");
    assert_eq!(root["current_user_url"], format!("{api}/user"));
    assert_eq!(root["rate_limit_url"], format!("{api}/rate_limit"));
    assert_eq!(
        root["repository_url"],
        format!("{api}/repos/{{owner}}/{{repo}}")
    );
    // Without the trailing slash too, and anonymously.
    let bare = Api::anonymous(&server).expect("GET", "", None, 200).await;
    assert_eq!(bare, root);

    let meta = Api::anonymous(&server)
        .expect("GET", "/meta", None, 200)
        .await;
    assert_eq!(meta["verifiable_password_authentication"], false);
    for list in ["hooks", "web", "api", "git", "packages", "actions"] {
        assert_eq!(meta[list], json!([]), "{list}");
    }
}

#[tokio::test]
async fn rate_limit_shows_the_callers_real_budget_and_costs_nothing() {
    let server = Server::start();
    let world = World::new(&server);
    let admin = world.admin();

    let before = admin.expect("GET", "/rate_limit", None, 200).await;
    let core = &before["resources"]["core"];
    assert_eq!(core["limit"], 5000);
    assert_eq!(before["rate"], *core);
    let used = core["used"].as_u64().unwrap();
    assert_eq!(core["remaining"].as_u64().unwrap(), 5000 - used);

    // Two counted requests later, `used` is two more: `/rate_limit` itself counts nothing,
    // and it agrees with the `x-ratelimit-*` headers of the answers.
    admin.ok("GET", "/user", None).await;
    let response = admin.send("GET", "/user", None).await;
    assert_eq!(
        header(&response, "x-ratelimit-used"),
        (used + 2).to_string()
    );
    let reset = header(&response, "x-ratelimit-reset");
    let after = admin.expect("GET", "/rate_limit", None, 200).await;
    assert_eq!(after["resources"]["core"]["used"], used + 2);
    assert_eq!(after["resources"]["core"]["reset"].to_string(), reset);
    // Berth counts every API request in one budget: `search` is that budget too.
    assert_eq!(after["resources"]["search"], after["resources"]["core"]);
    let again = admin.send("GET", "/rate_limit", None).await;
    assert_eq!(header(&again, "x-ratelimit-used"), (used + 2).to_string());
    assert_eq!(header(&again, "x-ratelimit-reset"), reset);

    // An anonymous caller has the address's budget.
    let anonymous = Api::anonymous(&server)
        .expect("GET", "/rate_limit", None, 200)
        .await;
    assert_eq!(anonymous["resources"]["core"]["limit"], 60);
}

#[tokio::test]
async fn org_members_are_seen_by_members_with_read_org_only() {
    let server = Server::start();
    let world = World::new(&server);
    let with_read_org = world
        .user("mark")
        .member("member")
        .scopes("read:packages,read:org")
        .await;
    let without = world.classic(&with_read_org, &["read:packages"]).await.1;
    let outsider = world.user("olga").scopes("read:org").await;
    let path = format!("/orgs/{ORG}/members");

    let members = Api::new(&server, &with_read_org)
        .expect("GET", &path, None, 200)
        .await;
    assert_eq!(logins(&members), [ADMIN, "mark"]);
    // `admin:org` includes `read:org`.
    let admin = world.admin().expect("GET", &path, None, 200).await;
    assert_eq!(logins(&admin), [ADMIN, "mark"]);

    // Concealed membership: no members without `read:org`, for outsiders and anonymously.
    for caller in [
        Api::new(&server, &without),
        Api::new(&server, &outsider),
        Api::anonymous(&server),
    ] {
        let seen = caller.expect("GET", &path, None, 200).await;
        assert_eq!(seen, json!([]));
    }
    // GitHub's `role` filter: `admin` are the owners.
    let mark_api = Api::new(&server, &with_read_org);
    let owners = mark_api
        .expect("GET", &format!("{path}?role=admin"), None, 200)
        .await;
    assert_eq!(logins(&owners), [ADMIN]);
    let plain = mark_api
        .expect("GET", &format!("{path}?role=member"), None, 200)
        .await;
    assert_eq!(logins(&plain), ["mark"]);
    mark_api
        .expect("GET", &format!("{path}?role=boss"), None, 422)
        .await;
    let missing = Api::new(&server, &with_read_org)
        .expect("GET", "/orgs/nosuch/members", None, 404)
        .await;
    github_error(&missing);

    // Paged as GitHub pages: `per_page`, `page` and the `Link` header.
    let response = Api::new(&server, &with_read_org)
        .send("GET", &format!("{path}?per_page=1"), None)
        .await;
    let link = header(&response, "link");
    assert!(link.contains("page=2>; rel=\"next\""), "{link}");
    assert!(link.contains("rel=\"last\""), "{link}");
    let first: Value = response.json().await.unwrap();
    assert_eq!(logins(&first), [ADMIN]);
    let second = Api::new(&server, &with_read_org)
        .expect("GET", &format!("{path}?per_page=1&page=2"), None, 200)
        .await;
    assert_eq!(logins(&second), ["mark"]);
    let bad = Api::new(&server, &with_read_org)
        .expect("GET", &format!("{path}?per_page=many"), None, 422)
        .await;
    assert_eq!(bad["errors"][0]["field"], "per_page");
}

#[tokio::test]
async fn user_orgs_need_read_org_and_list_the_callers_organizations() {
    let server = Server::start();
    let world = World::new(&server);
    world.org("other").await;
    let mark = world
        .user("mark")
        .member("member")
        .scopes("read:packages,read:org")
        .await;
    let orgs = Api::new(&server, &mark)
        .expect("GET", "/user/orgs", None, 200)
        .await;
    assert_eq!(logins(&orgs), [ORG]);
    let admin = world.admin().expect("GET", "/user/orgs", None, 200).await;
    assert_eq!(logins(&admin), [ORG, "other"]);

    let without = world.classic(&mark, &["read:packages"]).await.1;
    let none = Api::new(&server, &without)
        .expect("GET", "/user/orgs", None, 200)
        .await;
    assert_eq!(none, json!([]));
    let anonymous = Api::anonymous(&server)
        .expect("GET", "/user/orgs", None, 401)
        .await;
    github_error(&anonymous);
}

#[tokio::test]
async fn org_teams_are_listed_to_members_with_read_org() {
    let server = Server::start();
    let world = World::new(&server);
    let mark = world
        .user("mark")
        .member("member")
        .scopes("read:packages,read:org")
        .await;
    world.team("Platform Team", json!({})).await;
    world.team("Ops", json!({})).await;
    let path = format!("/orgs/{ORG}/teams");

    let teams = Api::new(&server, &mark)
        .expect("GET", &path, None, 200)
        .await;
    let slugs: Vec<&str> = teams
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["ops", "platform-team"]);

    let without = world.classic(&mark, &["read:packages"]).await.1;
    let refused = Api::new(&server, &without)
        .expect("GET", &path, None, 403)
        .await;
    assert!(github_error(&refused).contains("read:org"), "{refused}");
    let outsider = world.user("olga").scopes("read:org").await;
    let refused = Api::new(&server, &outsider)
        .expect("GET", &path, None, 403)
        .await;
    assert!(github_error(&refused).contains("member"), "{refused}");
    Api::anonymous(&server)
        .expect("GET", &path, None, 401)
        .await;
}

#[tokio::test]
async fn repository_listings_show_only_what_the_caller_may_see() {
    let server = Server::start();
    let world = World::new(&server);
    world.repo("open", "public").await;
    world.repo("inside", "internal").await;
    world.repo("secret", "private").await;
    world.repo("hidden", "private").await;
    let mark = world.user("mark").member("member").await;
    world.collaborator("secret", "mark", "pull").await;
    let olga = world.user("olga").await;
    Api::new(&server, &olga)
        .expect(
            "POST",
            "/user/repos",
            Some(json!({ "name": "mine", "private": false })),
            201,
        )
        .await;
    Api::new(&server, &olga)
        .expect(
            "POST",
            "/user/repos",
            Some(json!({ "name": "diary", "private": true })),
            201,
        )
        .await;
    let path = format!("/orgs/{ORG}/repos");

    let admin = world.admin().expect("GET", &path, None, 200).await;
    assert_eq!(
        full_names(&admin),
        ["acme/hidden", "acme/inside", "acme/open", "acme/secret"]
    );
    let member = Api::new(&server, &mark)
        .expect("GET", &path, None, 200)
        .await;
    assert_eq!(
        full_names(&member),
        ["acme/inside", "acme/open", "acme/secret"]
    );
    let outsider = Api::new(&server, &olga)
        .expect("GET", &path, None, 200)
        .await;
    assert_eq!(full_names(&outsider), ["acme/inside", "acme/open"]);
    let anonymous = Api::anonymous(&server)
        .expect("GET", &path, None, 200)
        .await;
    assert_eq!(full_names(&anonymous), ["acme/open"]);
    // GitHub's default order of an organization's repositories: newest first.
    let newest = &admin.as_array().unwrap()[0];
    assert_eq!(newest["full_name"], "acme/hidden");

    // The caller's own: theirs, their organizations', those they hold a role on.
    let mine = Api::new(&server, &mark)
        .expect("GET", "/user/repos", None, 200)
        .await;
    assert_eq!(
        full_names(&mine),
        ["acme/inside", "acme/open", "acme/secret"]
    );
    let olgas = Api::new(&server, &olga)
        .expect("GET", "/user/repos", None, 200)
        .await;
    assert_eq!(full_names(&olgas), ["olga/diary", "olga/mine"]);
    Api::anonymous(&server)
        .expect("GET", "/user/repos", None, 401)
        .await;

    // A user's repositories, as GitHub lists them: the public ones, to everyone.
    for caller in [Api::new(&server, &olga), Api::anonymous(&server)] {
        let public = caller.expect("GET", "/users/olga/repos", None, 200).await;
        assert_eq!(full_names(&public), ["olga/mine"]);
    }
    Api::anonymous(&server)
        .expect("GET", "/users/nosuch/repos", None, 404)
        .await;
}

#[tokio::test]
async fn answers_carry_githubs_headers() {
    let server = Server::start();
    let world = World::new(&server);
    let mark = world
        .user("mark")
        .member("member")
        .scopes("read:packages,repo,read:user,gist")
        .await;
    let api = Api::new(&server, &mark);

    let first = api.send("GET", &format!("/orgs/{ORG}/members"), None).await;
    assert_eq!(
        header(&first, "x-oauth-scopes"),
        "repo, gist, read:user, read:packages"
    );
    assert_eq!(
        header(&first, "x-accepted-oauth-scopes"),
        "admin:org, read:org, write:org"
    );
    assert_eq!(
        header(&first, "x-github-media-type"),
        "github.v3; format=json"
    );
    let id = header(&first, "x-github-request-id");
    assert_eq!(id, header(&first, "x-request-id"));
    let second = api.send("GET", "/user", None).await;
    assert_ne!(header(&second, "x-github-request-id"), id);
    assert_eq!(header(&second, "x-accepted-oauth-scopes"), "user");
    // Errors carry them too; anonymous answers have no token scopes to tell.
    let missing = api.send("GET", "/no/such/path", None).await;
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-github-request-id"));
    assert_eq!(
        header(&missing, "x-oauth-scopes"),
        "repo, gist, read:user, read:packages"
    );
    let anonymous = Api::anonymous(&server).send("GET", "/meta", None).await;
    assert!(!anonymous.headers().contains_key("x-oauth-scopes"));

    // API versions: GitHub's are accepted, others refused with 400.
    for version in ["2022-11-28", "2026-03-10"] {
        let response = api
            .request("GET", "/user")
            .header("x-github-api-version", version)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{version}");
    }
    let response = api
        .request("GET", "/user")
        .header("x-github-api-version", "2019-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().contains_key("x-github-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_rest("GET", "/user", 400, &body);
    assert!(github_error(&body).contains("2019-01-01"), "{body}");
}

#[tokio::test]
async fn single_objects_carry_last_modified_and_answer_if_modified_since() {
    let server = Server::start();
    let world = World::new(&server);
    push_image(&server, "acme/app", "v1", b"layer").await;
    let path = format!("/orgs/{ORG}/packages/container/app");
    let admin = world.admin();

    let response = admin.send("GET", &path, None).await;
    assert_eq!(response.status(), 200);
    let modified = header(&response, "last-modified");
    let package: Value = response.json().await.unwrap();
    assert_rest("GET", &path, 200, &package);
    assert!(modified.ends_with(" GMT"), "{modified}");

    let unchanged = admin
        .request("GET", &path)
        .header("if-modified-since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(header(&unchanged, "last-modified"), modified);
    let earlier = admin
        .request("GET", &path)
        .header("if-modified-since", "Mon, 01 Jan 2024 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(earlier.status(), 200);
    // A list has no single modification time.
    let list = admin
        .send(
            "GET",
            &format!("/orgs/{ORG}/packages?package_type=container"),
            None,
        )
        .await;
    assert!(!list.headers().contains_key("last-modified"));
}

#[tokio::test]
async fn refusals_answer_githubs_errors() {
    let server = Server::start();
    let world = World::new(&server);
    let admin = world.admin();

    // A bad token: GitHub's 401, whatever is wrong with it.
    let made_up = Api::new(&server, "berthp_notatoken");
    let refused = made_up.expect("GET", "/user", None, 401).await;
    assert_eq!(github_error(&refused), "Bad credentials");
    let (id, secret) = world.classic(&server.admin_token, &["read:packages"]).await;
    admin
        .expect("DELETE", &format!("/user/tokens/{id}"), None, 204)
        .await;
    let revoked = Api::new(&server, &secret)
        .expect("GET", "/rate_limit", None, 401)
        .await;
    assert_eq!(github_error(&revoked), "Bad credentials");

    // Paths and methods Berth does not have: GitHub's 404, never a bare 405.
    for (method, path) in [
        ("DELETE", "/user"),
        ("POST", "/rate_limit"),
        ("PUT", "/orgs/acme/members"),
        ("PATCH", "/user/repos"),
        ("DELETE", "/orgs/acme/packages/container/app/versions"),
        ("GET", "/no/such/thing"),
        ("GET", "/orgs/acme/sso"),
    ] {
        let body = admin.expect(method, path, None, 404).await;
        assert_eq!(github_error(&body), "Not Found", "{method} {path}");
    }
    // A path segment that does not parse: still GitHub's JSON.
    let body = admin.expect("DELETE", "/user/tokens/abc", None, 400).await;
    github_error(&body);
}

#[tokio::test]
async fn githubs_classic_scopes_are_accepted_shown_and_honoured() {
    let server = Server::start();
    let world = World::new(&server);
    push_image(&server, "acme/app", "v1", b"layer").await;
    world.visibility("acme/app", "internal").await;
    let mark = world
        .user("mark")
        .member("member")
        .scopes(&format!("{EVERY_SCOPE},user,gist,workflow,admin:repo_hook"))
        .await;

    // The scopes a GitHub seed script asks for: created, shown, and the token pulls.
    let token = Api::new(&server, &mark)
        .expect(
            "POST",
            "/user/tokens",
            Some(json!({ "note": "seed", "scopes": ["read:packages", "repo", "read:user"] })),
            201,
        )
        .await;
    let secret = token["token"].as_str().unwrap().to_owned();
    let mut scopes: Vec<&str> = token["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["read:packages", "read:user", "repo"]);
    let manifest = server.url("/v2/acme/app/manifests/v1");
    let pulled = client_with_token(&secret)
        .get(&manifest)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    let response = Api::new(&server, &secret).send("GET", "/user", None).await;
    assert_eq!(
        header(&response, "x-oauth-scopes"),
        "repo, read:user, read:packages"
    );

    // Scopes that guard nothing of Berth's are stored and shown, never an error; a name
    // GitHub does not have is refused.
    let other = world
        .classic(
            &mark,
            &["gist", "workflow", "admin:repo_hook", "user:email"],
        )
        .await
        .1;
    let response = Api::new(&server, &other).send("GET", "/user", None).await;
    assert_eq!(
        header(&response, "x-oauth-scopes"),
        "admin:repo_hook, gist, user:email, workflow"
    );
    let unknown = Api::new(&server, &mark)
        .expect(
            "POST",
            "/user/tokens",
            Some(json!({ "note": "x", "scopes": ["read:everything"] })),
            422,
        )
        .await;
    assert!(github_error(&unknown).contains("Validation") || unknown["errors"].is_array());
    // Nor does a token mint scopes it does not hold (`user` includes `read:user`, not
    // the reverse).
    let reader = world.classic(&mark, &["read:user"]).await.1;
    Api::new(&server, &reader)
        .expect(
            "POST",
            "/user/tokens",
            Some(json!({ "note": "x", "scopes": ["user"] })),
            403,
        )
        .await;
}

#[tokio::test]
async fn a_spent_budget_is_told_by_rate_limit_and_refused_with_githubs_headers() {
    let server = Server::start_with(&[("BERTH_API_RATE_LIMIT_ANONYMOUS_PER_HOUR", "2")]);
    let anonymous = Api::anonymous(&server);
    anonymous.expect("GET", "/meta", None, 200).await;
    anonymous.expect("GET", "/meta", None, 200).await;
    let refused = anonymous.send("GET", "/meta", None).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().contains_key("x-github-request-id"));
    assert_eq!(
        header(&refused, "x-github-media-type"),
        "github.v3; format=json"
    );
    let body: Value = refused.json().await.unwrap();
    assert!(github_error(&body).contains("rate limit"), "{body}");
    // `/rate_limit` still answers, counting nothing, and says why.
    let budget = anonymous.expect("GET", "/rate_limit", None, 200).await;
    assert_eq!(budget["resources"]["core"]["limit"], 2);
    assert_eq!(budget["resources"]["core"]["remaining"], 0);
    assert_eq!(budget["resources"]["core"]["used"], 2);
}

/// Webhooks take GitHub's hook scopes: an organization's take `admin:org_hook` (which
/// `admin:org` does not include), a repository's `repo`, `write:repo_hook` or
/// `admin:repo_hook`; the refusal names the scope, and `X-Accepted-OAuth-Scopes` says them.
#[tokio::test]
async fn webhooks_take_githubs_hook_scopes() {
    let server = Server::start_with(&[crate::webhooks::LOOPBACK]);
    let world = World::new(&server);
    let olivia = world
        .user("olivia")
        .scopes(&format!("{EVERY_SCOPE},admin:repo_hook"))
        .await;
    world.member("olivia", "admin").await;
    // Public, so a token without `repo` sees it and is refused for its scopes alone.
    world.repo("app", "public").await;
    world.collaborator("app", "olivia", "admin").await;
    let body = json!({ "config": { "url": "http://127.0.0.1:9/hook" } });

    let (_, org_admin) = world.classic(&olivia, &["admin:org"]).await;
    let api = Api::new(&server, &org_admin);
    let refused = api
        .expect("POST", "/orgs/acme/hooks", Some(body.clone()), 403)
        .await;
    assert!(
        github_error(&refused).contains("admin:org_hook"),
        "{refused}"
    );
    let response = api.send("GET", "/orgs/acme/hooks", None).await;
    assert_eq!(
        header(&response, "x-accepted-oauth-scopes"),
        "admin:org_hook"
    );
    let (_, org_hook) = world.classic(&olivia, &["admin:org_hook"]).await;
    Api::new(&server, &org_hook)
        .expect("POST", "/orgs/acme/hooks", Some(body.clone()), 201)
        .await;

    for (scopes, status) in [
        (&["read:packages"][..], 403),
        (&["write:repo_hook"], 201),
        (&["admin:repo_hook"], 201),
        (&["repo"], 201),
    ] {
        let (_, token) = world.classic(&olivia, scopes).await;
        Api::new(&server, &token)
            .expect("POST", "/repos/acme/app/hooks", Some(body.clone()), status)
            .await;
    }
}

/// `GET /user/repos` narrows by `visibility`, `affiliation` and the older `type` as GitHub
/// does, refuses to combine `type` with the others, and names a bad value's field.
#[tokio::test]
async fn the_callers_repositories_narrow_by_visibility_and_affiliation() {
    let server = Server::start();
    let world = World::new(&server);
    world.repo("open", "public").await;
    world.repo("inside", "internal").await;
    world.repo("secret", "private").await;
    let mark = world.user("mark").member("member").await;
    let olga = world.user("olga").await;
    let as_mark = Api::new(&server, &mark);
    let as_olga = Api::new(&server, &olga);
    for (api, name, private) in [
        (&as_mark, "tools", false),
        (&as_mark, "notes", true),
        (&as_olga, "shared", true),
        (&as_olga, "other", true),
    ] {
        let body = json!({ "name": name, "private": private });
        api.expect("POST", "/user/repos", Some(body), 201).await;
    }
    as_olga
        .expect(
            "PUT",
            "/repos/olga/shared/collaborators/mark",
            Some(json!({ "permission": "push" })),
            204,
        )
        .await;

    for (query, expected) in [
        (
            "",
            &[
                "acme/inside",
                "acme/open",
                "mark/notes",
                "mark/tools",
                "olga/shared",
            ][..],
        ),
        ("?visibility=public", &["acme/open", "mark/tools"]),
        (
            "?visibility=private",
            &["acme/inside", "mark/notes", "olga/shared"],
        ),
        ("?affiliation=owner", &["mark/notes", "mark/tools"]),
        ("?affiliation=collaborator", &["olga/shared"]),
        (
            "?affiliation=organization_member",
            &["acme/inside", "acme/open"],
        ),
        (
            "?affiliation=owner,collaborator&visibility=private",
            &["mark/notes", "olga/shared"],
        ),
        ("?type=owner", &["mark/notes", "mark/tools"]),
        ("?type=member", &["acme/inside", "acme/open", "olga/shared"]),
        ("?type=public", &["acme/open", "mark/tools"]),
    ] {
        let path = format!("/user/repos{query}");
        let listed = as_mark.expect("GET", &path, None, 200).await;
        assert_eq!(full_names(&listed), expected, "{path}");
    }
    for (query, field) in [
        ("?type=owner&visibility=all", "type"),
        ("?type=everything", "type"),
        ("?visibility=secret", "visibility"),
        ("?affiliation=owner,friend", "affiliation"),
    ] {
        let path = format!("/user/repos{query}");
        let refused = as_mark.expect("GET", &path, None, 422).await;
        assert_eq!(refused["errors"][0]["field"], field, "{path}: {refused}");
    }
}
