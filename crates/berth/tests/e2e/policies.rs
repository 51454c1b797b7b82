//! Storage policies over real HTTP: immutable tags on every path that moves or removes a tag
//! (manifest PUT, tag and manifest DELETE, the Packages API), retention rules each allowed,
//! refused and dry-run, the multi-arch untagged clean-up that must never break an image, the
//! scheduled pass and its webhooks, 422s naming the field, and `berth admin`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::github::Api;
use crate::common::world::World;
use crate::common::{Server, client, digest, expect_error, push_blob, put_manifest};
use crate::webhooks::{LOOPBACK, Receiver, hook};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Pushes the blobs of a one-layer image seeded by `seed` (architecture `arch`) and returns
/// its manifest's bytes, not pushed yet.
async fn image(server: &Server, repo: &str, seed: &str, arch: &str) -> Vec<u8> {
    let layer = format!("layer {seed}").into_bytes();
    let config =
        serde_json::to_vec(&json!({"architecture": arch, "os": "linux", "seed": seed})).unwrap();
    let config_digest = push_blob(server, repo, config.clone()).await;
    let layer_digest = push_blob(server, repo, layer.clone()).await;
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap()
}

/// Pushes image `seed` under `reference` (a tag, or `None` for its digest); its digest.
async fn push(server: &Server, repo: &str, seed: &str, tag: Option<&str>) -> String {
    let bytes = image(server, repo, seed, "amd64").await;
    let d = digest(&bytes);
    put_manifest(server, repo, tag.unwrap_or(&d), OCI_MANIFEST, &bytes).await;
    d
}

/// PUTs `bytes` under `reference` and answers the response.
async fn put(server: &Server, repo: &str, reference: &str, bytes: &[u8]) -> reqwest::Response {
    client()
        .put(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("content-type", OCI_MANIFEST)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

async fn delete(server: &Server, repo: &str, reference: &str) -> reqwest::Response {
    client()
        .delete(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .send()
        .await
        .unwrap()
}

/// The digest tag `tag` of `repo` points at.
async fn tagged(server: &Server, repo: &str, tag: &str) -> String {
    let response = client()
        .head(server.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{repo}:{tag}");
    crate::common::header(&response, "docker-content-digest")
}

fn package_path(package: &str) -> String {
    format!("/orgs/acme/packages/container/{package}")
}

/// The digests of the live versions of `acme/<package>`, sorted.
async fn live(api: &Api<'_>, package: &str) -> Vec<String> {
    versions(api, package, "active").await
}

async fn versions(api: &Api<'_>, package: &str, state: &str) -> Vec<String> {
    let list = api
        .expect(
            "GET",
            &format!(
                "{}/versions?state={state}&per_page=100",
                package_path(package)
            ),
            None,
            200,
        )
        .await;
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn sorted(mut digests: Vec<String>) -> Vec<String> {
    digests.sort();
    digests
}

/// The digests a dry-run answer lists under `list` (`delete` or `keep`), sorted, with the
/// rule each names.
fn listed(plan: &Value, list: &str) -> Vec<(String, String)> {
    let mut items: Vec<(String, String)> = plan[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {plan}"))
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    items.sort();
    items
}

async fn set_package_policies(api: &Api<'_>, package: &str, body: Value) -> Value {
    api.expect(
        "PUT",
        &format!("{}/policies", package_path(package)),
        Some(body),
        200,
    )
    .await
}

async fn dry_run(api: &Api<'_>, package: &str, body: Option<Value>) -> Value {
    api.expect(
        "POST",
        &format!("{}/policies/dry-run", package_path(package)),
        body,
        200,
    )
    .await
}

#[tokio::test]
async fn an_immutable_tag_refuses_every_move_and_delete_naming_its_rule() {
    let server = Server::start();
    let api = Api::new(&server, &server.admin_token);
    let first = image(&server, "acme/app", "first", "amd64").await;
    let second = image(&server, "acme/app", "second", "amd64").await;
    let (first_digest, second_digest) = (digest(&first), digest(&second));
    assert_eq!(put(&server, "acme/app", "v1", &first).await.status(), 201);
    let set = set_package_policies(&api, "app", json!({"immutable_tags": ["v*"]})).await;
    assert_eq!(set["immutable_tags"], json!(["v*"]));
    assert_eq!(set["effective"]["immutable_tags"], json!(["v*"]));

    // Moving it: DENIED, naming the rule, its pattern and where it is set.
    let message = expect_error(put(&server, "acme/app", "v1", &second).await, 403, "DENIED").await;
    for needle in ["`v1`", "`v*`", "package `acme/app`", "moved"] {
        assert!(message.contains(needle), "{needle} in {message}");
    }
    assert_eq!(tagged(&server, "acme/app", "v1").await, first_digest);

    // Pushing the same digest again, new tags, and mutable tags moving: all fine.
    assert_eq!(put(&server, "acme/app", "v1", &first).await.status(), 201);
    assert_eq!(put(&server, "acme/app", "v2", &second).await.status(), 201);
    assert_eq!(
        put(&server, "acme/app", "latest", &second).await.status(),
        201
    );
    assert_eq!(
        put(&server, "acme/app", "latest", &first).await.status(),
        201
    );
    assert_eq!(tagged(&server, "acme/app", "latest").await, first_digest);

    // Deleting the tag, or the manifest under it, through the OCI API.
    let message = expect_error(delete(&server, "acme/app", "v1").await, 403, "DENIED").await;
    assert!(
        message.contains("`v*`") && message.contains("deleted"),
        "{message}"
    );
    let message = expect_error(
        delete(&server, "acme/app", &first_digest).await,
        403,
        "DENIED",
    )
    .await;
    assert!(
        message.contains("`v1`") && message.contains(&first_digest),
        "{message}"
    );

    // Deleting its version through the Packages API.
    let versions = api
        .expect(
            "GET",
            &format!("{}/versions", package_path("app")),
            None,
            200,
        )
        .await;
    let id = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == first_digest.as_str())
        .unwrap()["id"]
        .clone();
    let (status, body) = api
        .call(
            "DELETE",
            &format!("{}/versions/{id}", package_path("app")),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("`v*`"), "{body}");
    assert_eq!(tagged(&server, "acme/app", "v1").await, first_digest);
    assert_eq!(
        live(&api, "app").await,
        sorted(vec![first_digest.clone(), second_digest.clone()])
    );

    // A tag no rule matches is deleted as always; without the rule, v1 moves again.
    assert_eq!(delete(&server, "acme/app", "latest").await.status(), 202);
    set_package_policies(&api, "app", json!({})).await;
    assert_eq!(put(&server, "acme/app", "v1", &second).await.status(), 201);
    assert_eq!(tagged(&server, "acme/app", "v1").await, second_digest);
}

#[tokio::test]
async fn an_account_rule_covers_every_package_and_only_owners_set_it() {
    let server = Server::start();
    let world = World::new(&server);
    let api = world.admin();
    let member = world.user("mark").member("member").await;
    let mark = Api::new(&server, &member);
    let body = json!({"immutable_tags": ["release-*"]});
    let (status, refused) = mark
        .call("PUT", "/orgs/acme/packages/policies", Some(body.clone()))
        .await;
    assert_eq!(status, 403, "a member is not an owner: {refused}");

    let set = api
        .expect("PUT", "/orgs/acme/packages/policies", Some(body), 200)
        .await;
    assert_eq!(
        (set["login"].clone(), set["immutable_tags"].clone()),
        (json!("acme"), json!(["release-*"]))
    );
    let read = api
        .expect("GET", "/orgs/acme/packages/policies", None, 200)
        .await;
    assert_eq!(read["immutable_tags"], json!(["release-*"]));

    // Every package of the account, a new one too; the package's own rules add to it.
    push(&server, "acme/lib", "one", Some("release-1")).await;
    let other = image(&server, "acme/lib", "two", "amd64").await;
    let message = expect_error(
        put(&server, "acme/lib", "release-1", &other).await,
        403,
        "DENIED",
    )
    .await;
    assert!(
        message.contains("account `acme`") && message.contains("`release-*`"),
        "{message}"
    );
    set_package_policies(api, "lib", json!({"immutable_tags": ["stable"]})).await;
    let message = expect_error(
        put(&server, "acme/lib", "release-1", &other).await,
        403,
        "DENIED",
    )
    .await;
    assert!(
        message.contains("account `acme`"),
        "the package cannot loosen it: {message}"
    );
    let shown = api
        .expect(
            "GET",
            &format!("{}/policies", package_path("lib")),
            None,
            200,
        )
        .await;
    assert_eq!(shown["account"]["immutable_tags"], json!(["release-*"]));
    assert_eq!(
        shown["effective"]["immutable_tags"],
        json!(["stable", "release-*"])
    );
    assert_eq!(put(&server, "acme/lib", "dev", &other).await.status(), 201);
    let both = set_package_policies(
        api,
        "lib",
        json!({"immutable_tags": ["stable", "release-*"]}),
    )
    .await;
    assert_eq!(
        both["effective"]["immutable_tags"],
        json!(["stable", "release-*"]),
        "each pattern once"
    );
}

#[tokio::test]
async fn bad_policy_input_answers_422_naming_the_field_and_stores_nothing() {
    let server = Server::start();
    let api = Api::new(&server, &server.admin_token);
    push(&server, "acme/app", "one", Some("v1")).await;
    set_package_policies(&api, "app", json!({"immutable_tags": ["v*"]})).await;
    let cases = [
        (json!({"immutable_tags": "v*"}), "immutable_tags"),
        (json!({"immutable_tags": ["v/1"]}), "immutable_tags"),
        (json!({"immutable_tags": ["v["]}), "immutable_tags"),
        (json!({"immutable_tags": [""]}), "immutable_tags"),
        (json!({"immutable": ["v*"]}), "policies"),
        (json!({"retention": {"keep_tags": ["x"]}}), "retention"),
        (
            json!({"retention": {"keep_latest": 0}}),
            "retention.keep_latest",
        ),
        (
            json!({"retention": {"keep_latest": "3"}}),
            "retention.keep_latest",
        ),
        (
            json!({"retention": {"delete_untagged_after_days": -1}}),
            "retention.delete_untagged_after_days",
        ),
        (
            json!({"retention": {"delete_unpulled_after_days": 1.5}}),
            "retention.delete_unpulled_after_days",
        ),
        (
            json!({"retention": {"keep_latest": 1, "keep_tags": "x"}}),
            "retention.keep_tags",
        ),
    ];
    for (body, field) in cases {
        for path in [
            format!("{}/policies", package_path("app")),
            format!("{}/policies/dry-run", package_path("app")),
            "/orgs/acme/packages/policies".to_owned(),
            "/orgs/acme/packages/policies/dry-run".to_owned(),
        ] {
            let method = if path.ends_with("dry-run") {
                "POST"
            } else {
                "PUT"
            };
            let (status, answer) = api.call(method, &path, Some(body.clone())).await;
            assert_eq!(status, 422, "{method} {path} {body}: {answer}");
            assert_eq!(answer["errors"][0]["field"], field, "{body}: {answer}");
            let message = answer["errors"][0]["message"].as_str().unwrap();
            assert!(message.len() > 15, "a message to act on: {message}");
        }
    }
    let stored = api
        .expect(
            "GET",
            &format!("{}/policies", package_path("app")),
            None,
            200,
        )
        .await;
    assert_eq!(stored["immutable_tags"], json!(["v*"]), "nothing stored");
    assert_eq!(stored["retention"], Value::Null);
    let account = api
        .expect("GET", "/orgs/acme/packages/policies", None, 200)
        .await;
    assert_eq!(account["immutable_tags"], json!([]));
}

/// Pushes a multi-arch image tagged `tag` (two platforms, by digest first), an attestation
/// whose subject is the amd64 platform, an untagged orphan image with a signature of its own,
/// and an image that lost its tag `old` to another; returns (index, platforms, attestation,
/// deletable).
async fn multi_arch_world(
    server: &Server,
    repo: &str,
) -> (String, Vec<String>, String, Vec<String>) {
    let mut platforms = Vec::new();
    let mut descriptors = Vec::new();
    for arch in ["amd64", "arm64"] {
        let bytes = image(server, repo, arch, arch).await;
        let d = digest(&bytes);
        put_manifest(server, repo, &d, OCI_MANIFEST, &bytes).await;
        descriptors.push(
            json!({"mediaType": OCI_MANIFEST, "digest": d, "size": bytes.len(),
                                "platform": {"architecture": arch, "os": "linux"}}),
        );
        platforms.push((d, bytes.len()));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors,
    }))
    .unwrap();
    put_manifest(server, repo, "v1", OCI_INDEX, &index).await;

    let attest = |subject: &(String, usize), seed: &str| {
        let seed = seed.to_owned();
        let subject = subject.clone();
        async move {
            let empty = push_blob(server, repo, b"{}".to_vec()).await;
            let statement = push_blob(server, repo, format!("statement {seed}").into_bytes()).await;
            let bytes = serde_json::to_vec(&json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.in-toto+json",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement,
                            "size": format!("statement {seed}").len()}],
                "subject": {"mediaType": OCI_MANIFEST, "digest": subject.0, "size": subject.1},
            }))
            .unwrap();
            let d = digest(&bytes);
            put_manifest(server, repo, &d, OCI_MANIFEST, &bytes).await;
            d
        }
    };
    let attestation = attest(&platforms[0], "amd64").await;

    let orphan_bytes = image(server, repo, "orphan", "amd64").await;
    let orphan = digest(&orphan_bytes);
    put_manifest(server, repo, &orphan, OCI_MANIFEST, &orphan_bytes).await;
    let orphan_signature = attest(&(orphan.clone(), orphan_bytes.len()), "orphan").await;
    let retagged = push(server, repo, "old one", Some("old")).await;
    push(server, repo, "new one", Some("old")).await;
    (
        digest(&index),
        platforms.into_iter().map(|(d, _)| d).collect(),
        attestation,
        sorted(vec![orphan, orphan_signature, retagged]),
    )
}

#[tokio::test]
async fn untagged_cleanup_never_breaks_a_multi_arch_image_nor_strips_its_attestation() {
    let server = Server::start();
    let api = Api::new(&server, &server.admin_token);
    let (index, platforms, attestation, deletable) = multi_arch_world(&server, "acme/multi").await;
    let before = live(&api, "multi").await;
    let policy = json!({"retention": {"delete_untagged_after_days": 0}});

    // Dry run: exactly the truly untagged, unreferenced versions, each with its reason.
    let plan = dry_run(&api, "multi", Some(policy.clone())).await;
    let planned: Vec<String> = listed(&plan, "delete")
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(planned, deletable, "{plan}");
    assert!(
        plan["delete"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["rule"] == "delete_untagged_after_days"
                && v["reason"].as_str().unwrap().contains("untagged")),
        "{plan}"
    );
    let kept = listed(&plan, "keep");
    for platform in &platforms {
        assert!(
            kept.contains(&(platform.clone(), "referenced".into())),
            "{plan}"
        );
    }
    assert!(
        kept.contains(&(attestation.clone(), "referenced".into())),
        "{plan}"
    );
    assert_eq!(
        live(&api, "multi").await,
        before,
        "a dry run deletes nothing"
    );

    // The pass itself, through `berth admin`, deletes the same and nothing more.
    set_package_policies(&api, "multi", policy).await;
    let out = server.admin(&["retention", "--package", "acme/multi"]);
    for d in &deletable {
        assert!(
            out.lines()
                .any(|l| l.starts_with("deleted\tacme/multi") && l.contains(d.as_str())),
            "{out}"
        );
    }
    let mut expected: Vec<String> = before
        .iter()
        .filter(|d| !deletable.contains(d))
        .cloned()
        .collect();
    expected.sort();
    assert_eq!(live(&api, "multi").await, expected);
    assert_eq!(
        versions(&api, "multi", "deleted").await,
        deletable,
        "restorable"
    );

    // The image still pulls whole: index, both platforms, and its attestation by referrers.
    assert_eq!(tagged(&server, "acme/multi", "v1").await, index);
    for platform in &platforms {
        let response = client()
            .get(server.url(&format!("/v2/acme/multi/manifests/{platform}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let referrers: Value = client()
        .get(server.url(&format!("/v2/acme/multi/referrers/{}", platforms[0])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(referrers["manifests"][0]["digest"], attestation.as_str());
}

/// A package, its retention, the tags pushed in order (`-`: untagged), which of them the
/// rule deletes, and the rules the dry run names for what stays.
type RuleCase = (
    &'static str,
    Value,
    &'static [&'static str],
    &'static [usize],
    &'static [&'static str],
);

/// Each rule, run for real on a package of its own: what it deletes (allow), what it keeps
/// (refuse), and that the dry run said so beforehand.
#[tokio::test]
async fn each_retention_rule_deletes_what_it_names_keeps_the_rest_and_dry_runs_the_same() {
    let server = Server::start();
    let api = Api::new(&server, &server.admin_token);
    let cases: [RuleCase; 7] = [
        (
            "latest",
            json!({"keep_latest": 2}),
            &["t1", "t2", "t3"],
            &[0],
            &["keep_latest"],
        ),
        (
            "latest-kept-tags",
            json!({"keep_latest": 1, "keep_tags": ["t1"]}),
            &["t1", "t2", "t3"],
            &[1],
            &["keep_latest", "keep_tags"],
        ),
        (
            "untagged",
            json!({"delete_untagged_after_days": 0}),
            &["-", "a", "-"],
            &[0, 2],
            &["none"],
        ),
        (
            "untagged-young",
            json!({"delete_untagged_after_days": 1}),
            &["-", "a"],
            &[],
            &["none"],
        ),
        (
            "unpulled",
            json!({"delete_unpulled_after_days": 0, "keep_tags": ["stable*"]}),
            &["stable-1", "dev", "stable"],
            &[1],
            &["keep_tags"],
        ),
        (
            "unpulled-young",
            json!({"delete_unpulled_after_days": 1}),
            &["dev", "-"],
            &[],
            &["none"],
        ),
        (
            "immutable-wins",
            json!({"delete_unpulled_after_days": 0}),
            &["v1", "dev"],
            &[1],
            &["immutable_tags"],
        ),
    ];
    for (package, retention, pushed, expected, keep_rules) in cases {
        let repo = format!("acme/{package}");
        let mut digests = Vec::new();
        for (i, tag) in pushed.iter().enumerate() {
            let tag = (*tag != "-").then_some(*tag);
            digests.push(push(&server, &repo, &format!("{package} {i}"), tag).await);
        }
        let deleted = sorted(expected.iter().map(|&i| digests[i].clone()).collect());
        let policy = json!({"immutable_tags": ["v*"], "retention": retention});
        let plan = dry_run(&api, package, Some(policy.clone())).await;
        let planned: Vec<String> = listed(&plan, "delete")
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(planned, deleted, "{package}: {plan}");
        for kept in plan["keep"].as_array().unwrap() {
            let rule = kept["rule"].as_str().unwrap();
            assert!(keep_rules.contains(&rule), "{package}: {kept}");
            assert!(kept["reason"].as_str().unwrap().len() > 10, "{kept}");
        }
        for gone in plan["delete"].as_array().unwrap() {
            assert!(
                retention.get(gone["rule"].as_str().unwrap()).is_some(),
                "{gone}"
            );
        }
        if package == "immutable-wins" {
            assert!(
                listed(&plan, "keep").contains(&(digests[0].clone(), "immutable_tags".into())),
                "{plan}"
            );
        }

        set_package_policies(&api, package, policy).await;
        let stored = dry_run(&api, package, None).await;
        assert_eq!(
            stored["delete"], plan["delete"],
            "the stored policy plans the same"
        );
        server.admin(&["retention", "--package", &repo]);
        let all = sorted(digests.clone());
        let left: Vec<String> = all.into_iter().filter(|d| !deleted.contains(d)).collect();
        assert_eq!(live(&api, package).await, left, "{package}");
    }
}

#[tokio::test]
async fn the_dry_run_is_for_package_admins_and_readers_see_the_policies() {
    let server = Server::start();
    let world = World::new(&server);
    let admin = world.admin();
    push(&server, "acme/app", "one", Some("v1")).await;
    let reader = world.user("rita").member("member").await;
    world
        .package(
            "PUT",
            "acme/app",
            "/collaborators/rita",
            json!({"role": "read"}),
        )
        .await;
    let rita = Api::new(&server, &reader);
    set_package_policies(admin, "app", json!({"retention": {"keep_latest": 5}})).await;
    let seen = rita
        .expect(
            "GET",
            &format!("{}/policies", package_path("app")),
            None,
            200,
        )
        .await;
    assert_eq!(seen["retention"]["keep_latest"], 5);
    let (status, _) = rita
        .call(
            "POST",
            &format!("{}/policies/dry-run", package_path("app")),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = rita
        .call(
            "PUT",
            &format!("{}/policies", package_path("app")),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_scheduled_pass_deletes_restorably_and_fires_deleted_webhooks() {
    let server = Server::start_with(&[
        LOOPBACK,
        ("BERTH_RETENTION_INTERVAL_SECS", "1"),
        ("BERTH_LOG", "info"),
    ]);
    let api = Api::new(&server, &server.admin_token);
    let receiver = Receiver::start().await;
    hook(
        &api,
        "/orgs/acme",
        json!({ "url": receiver.url() }),
        json!({ "deleted_events": true }),
    )
    .await;
    let orphan = push(&server, "acme/tidy", "orphan", None).await;
    let tagged_one = push(&server, "acme/tidy", "kept", Some("v1")).await;
    api.expect(
        "PUT",
        "/orgs/acme/packages/policies",
        Some(json!({"retention": {"delete_untagged_after_days": 0}})),
        200,
    )
    .await;

    let events = receiver
        .wait_for("the retention's deleted event", |r| {
            r.iter()
                .any(|r| r.event() == "package" && r.json()["action"] == "deleted")
        })
        .await;
    let deleted: Vec<String> = events
        .iter()
        .filter(|r| r.event() == "package" && r.json()["action"] == "deleted")
        .map(|r| r.digest())
        .collect();
    assert_eq!(deleted, std::slice::from_ref(&orphan));
    assert_eq!(live(&api, "tidy").await, [tagged_one]);
    assert_eq!(
        versions(&api, "tidy", "deleted").await,
        std::slice::from_ref(&orphan)
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        crate::common::server_log()
            .iter()
            .any(|l| l.contains("retention deleted a version") && l.contains(&orphan)),
        "each deletion is logged with its reason"
    );
}

#[tokio::test]
async fn berth_admin_sets_shows_and_dry_runs_policies() {
    let server = Server::start();
    push(&server, "acme/app", "one", Some("v1")).await;
    let orphan = push(&server, "acme/app", "two", None).await;
    let out = server.admin(&[
        "set-policies",
        "--account",
        "acme",
        r#"{"immutable_tags":["v*"],"retention":{"delete_untagged_after_days":0}}"#,
    ]);
    assert!(out.contains("\"v*\""), "{out}");
    let shown = server.admin(&["show-policies", "--account", "acme"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["retention"]["delete_untagged_after_days"], 0);

    // The server applies it at once.
    let other = image(&server, "acme/app", "three", "amd64").await;
    let message = expect_error(put(&server, "acme/app", "v1", &other).await, 403, "DENIED").await;
    assert!(message.contains("account `acme`"), "{message}");

    let plan = server.admin(&["retention", "--dry-run"]);
    let line = plan
        .lines()
        .find(|l| l.contains(&orphan))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(line.starts_with("delete\tacme/app") && line.contains("delete_untagged_after_days"));
    assert!(
        plan.lines()
            .any(|l| l.starts_with("keep\tacme/app") && l.contains("immutable_tags"))
    );
    let api = Api::new(&server, &server.admin_token);
    assert_eq!(
        live(&api, "app").await.len(),
        2,
        "the dry run deleted nothing"
    );

    let refused = server.try_admin(&[
        "set-policies",
        "--package",
        "acme/app",
        r#"{"retention":{"keep_latest":0}}"#,
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("retention.keep_latest"), "{stderr}");
}

#[tokio::test]
async fn an_account_dry_run_plans_every_package_and_honours_package_overrides() {
    let server = Server::start();
    let world = World::new(&server);
    let api = world.admin();
    let app_orphan = push(&server, "acme/app", "orphan", None).await;
    let app_tagged = push(&server, "acme/app", "tagged", Some("v1")).await;
    let lib_orphan = push(&server, "acme/lib", "orphan", None).await;
    set_package_policies(
        api,
        "lib",
        json!({"retention": {"delete_untagged_after_days": 1}}),
    )
    .await;
    let proposed = json!({"retention": {"delete_untagged_after_days": 0}});
    let plan = api
        .expect(
            "POST",
            "/orgs/acme/packages/policies/dry-run",
            Some(proposed.clone()),
            200,
        )
        .await;
    assert_eq!(plan["login"], "acme");
    let package = |name: &str| {
        plan["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["package"] == name)
            .unwrap_or_else(|| panic!("{name} in {plan}"))
            .clone()
    };
    let app = package("acme/app");
    assert_eq!(
        listed(&app, "delete"),
        [(app_orphan.clone(), "delete_untagged_after_days".to_owned())]
    );
    assert_eq!(listed(&app, "keep"), [(app_tagged, "none".to_owned())]);
    let lib = package("acme/lib");
    assert_eq!(
        listed(&lib, "keep"),
        [(lib_orphan, "none".to_owned())],
        "the package's own retention (1 day) overrides the account's: {lib}"
    );
    assert_eq!(live(api, "app").await.len(), 2, "a dry run deletes nothing");

    // Without a body: the stored policies (none on the account: nothing for app).
    let stored = api
        .expect("POST", "/orgs/acme/packages/policies/dry-run", None, 200)
        .await;
    assert!(
        stored["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["delete"].as_array().unwrap().is_empty()),
        "{stored}"
    );
    let member = world.user("mark").member("member").await;
    let (status, _) = Api::new(&server, &member)
        .call(
            "POST",
            "/orgs/acme/packages/policies/dry-run",
            Some(proposed),
        )
        .await;
    assert_eq!(status, 403, "owners only");
}

#[tokio::test]
async fn a_pull_is_recorded_as_the_versions_last_pull_for_the_unpulled_rule() {
    let server = Server::start();
    let api = Api::new(&server, &server.admin_token);
    let pulled = push(&server, "acme/app", "pulled", Some("v1")).await;
    let idle = push(&server, "acme/app", "idle", Some("v2")).await;
    let before = dry_run(&api, "app", None).await;
    assert!(
        before["keep"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["last_pulled_at"].is_null()),
        "{before}"
    );
    let response = client()
        .get(server.url("/v2/acme/app/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Downloads are written in batches (every 5 s); the pull's time comes with them.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let plan = loop {
        let plan = dry_run(&api, "app", None).await;
        let recorded = plan["keep"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == pulled.as_str() && v["last_pulled_at"].is_string());
        if recorded {
            break plan;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recorded: {plan}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let idle_entry = plan["keep"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == idle.as_str())
        .unwrap();
    assert!(idle_entry["last_pulled_at"].is_null(), "{plan}");
    assert!(idle_entry["updated_at"].is_string(), "{plan}");
}
