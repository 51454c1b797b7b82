//! Payload shapes against skeletons of GitHub's documented examples (`../fixtures/`): the keys
//! of GitHub's `package` / `registry_package` `published` payloads (octokit/webhooks'
//! payload examples and GitHub's webhook reference) with neutral values; the repository object
//! has every key GitHub's `repository-webhooks` schema requires. (The e2e suite validates
//! every payload delivered against GitHub's webhook schemas themselves.)

use crate::ids::{AccountId, HookId, RepoId};
use serde_json::Value;

use super::*;
use crate::access::Visibility;
use crate::digest::Digest;
use crate::github::tests::account;
use crate::hooks::model::{ContentType, HookConfig, HookScope, LastResponse};
use crate::labels::{Labels, SOURCE};
use crate::name::RepoName;

const PACKAGE: &str = include_str!("../fixtures/github_package_published.json");
const REGISTRY_PACKAGE: &str = include_str!("../fixtures/github_registry_package_published.json");
const PING: &str = include_str!("../fixtures/github_ping.json");

/// Every key of `expected` (recursively through objects, and the first element of arrays)
/// that `actual` lacks, as paths.
pub(crate) fn missing_keys(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let here = format!("{path}.{key}");
                match have.get(key) {
                    None => out.push(here),
                    // Free-form (the image's own labels): only its presence is the shape.
                    Some(_) if key == "all_labels" => {}
                    Some(got) => missing_keys(value, got, &here, out),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if let (Some(w), Some(h)) = (want.first(), have.first()) {
                missing_keys(w, h, &format!("{path}[0]"), out);
            }
        }
        _ => {}
    }
}

fn image_manifest() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::sha256(b"c").as_str(), "size": 1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest::sha256(b"l").as_str(), "size": 1}],
    }))
    .unwrap()
}

fn payload(event: &str, tag: Option<&str>, manifest: Option<&[u8]>) -> Value {
    payload_of(event, PackageAction::Published, tag, manifest)
}

fn payload_of(
    event: &str,
    action: PackageAction,
    tag: Option<&str>,
    manifest: Option<&[u8]>,
) -> Value {
    let org = account(2, "acme", AccountKind::Organization);
    let pusher = account(9, "alice", AccountKind::User);
    let repo = SourceRepo {
        id: RepoId(3),
        owner: AccountId(2),
        owner_login: "acme".into(),
        name: "app".into(),
        visibility: Visibility::Private,
        created_at: 1_700_000_000_000,
    };
    let name: RepoName = "acme/app/worker".parse().unwrap();
    let digest = Digest::sha256(b"manifest");
    let mut labels = Labels::new();
    labels.insert(SOURCE.into(), "https://github.com/acme/app".into());
    labels.insert(
        "org.opencontainers.image.description".into(),
        "The worker".into(),
    );
    labels.insert("org.opencontainers.image.revision".into(), "abc123".into());
    package_payload(
        event,
        action,
        "https://registry.example",
        &EventPackage {
            id: 5,
            name: &name,
            owner: &org,
            created_at: 1_700_000_000_000,
            repository: Some((&repo, &org)),
        },
        &EventVersion {
            id: 11,
            digest: &digest,
            tag,
            manifest,
            labels: &labels,
            created_at: 1_700_000_100_000,
            updated_at: 1_700_000_100_000,
        },
        &pusher,
    )
}

#[test]
fn package_payload_has_every_key_of_githubs() {
    let manifest = image_manifest();
    for (event, fixture) in [("package", PACKAGE), ("registry_package", REGISTRY_PACKAGE)] {
        let expected: Value = serde_json::from_str(fixture).unwrap();
        let actual = payload(event, Some("v1"), Some(&manifest));
        let mut missing = Vec::new();
        missing_keys(&expected, &actual, "", &mut missing);
        assert!(
            missing.is_empty(),
            "{event}: missing {missing:?}\n{actual:#}"
        );
    }
}

#[test]
fn package_payload_names_the_version_githubs_way() {
    let manifest = image_manifest();
    let value = payload("registry_package", Some("v1"), Some(&manifest));
    let package = &value["registry_package"];
    assert_eq!(value["action"], "published");
    assert_eq!(package["name"], "app/worker");
    assert_eq!(package["namespace"], "acme");
    assert_eq!(package["package_type"], "CONTAINER");
    assert_eq!(package["description"], "The worker");
    assert_eq!(package["owner"]["type"], "Organization");
    // A nested name's pages as GitHub writes them (and as the REST API answers them).
    assert_eq!(
        package["html_url"],
        "https://registry.example/orgs/acme/packages/container/package/app%2Fworker"
    );
    let version = &package["package_version"];
    assert_eq!(
        version["html_url"],
        "https://registry.example/orgs/acme/packages/container/app%2Fworker/11"
    );
    let digest = Digest::sha256(b"manifest");
    assert_eq!(version["name"], digest.as_str());
    assert_eq!(version["version"], digest.as_str());
    assert_eq!(version["id"], 11);
    let meta = &version["container_metadata"];
    assert_eq!(meta["tag"]["name"], "v1");
    assert_eq!(meta["tag"]["digest"], digest.as_str());
    assert_eq!(meta["labels"]["source"], "https://github.com/acme/app");
    assert_eq!(meta["labels"]["revision"], "abc123");
    assert_eq!(meta["manifest"]["size"], manifest.len());
    assert_eq!(
        meta["manifest"]["config"]["digest"],
        Digest::sha256(b"c").as_str()
    );
    assert_eq!(meta["manifest"]["layers"][0]["size"], 1);
    assert_eq!(
        version["package_url"],
        "registry.example/acme/app/worker:v1"
    );
    assert_eq!(
        version["installation_command"],
        "docker pull registry.example/acme/app/worker:v1"
    );
    assert_eq!(value["repository"]["full_name"], "acme/app");
    assert_eq!(value["organization"]["login"], "acme");
    assert_eq!(value["sender"]["login"], "alice");
}

#[test]
fn updated_payloads_are_shaped_as_githubs_updated_events() {
    let manifest = image_manifest();
    for event in ["package", "registry_package"] {
        let value = payload_of(event, PackageAction::Updated, Some("v2"), Some(&manifest));
        let package = &value[event];
        assert_eq!(value["action"], "updated");
        // GitHub's updated events carry no package description (the version still does).
        assert!(package["description"].is_null(), "{event}: {package:#}");
        let version = &package["package_version"];
        assert_eq!(version["description"], "The worker");
        for key in [
            "body",
            "body_html",
            "target_commitish",
            "created_at",
            "updated_at",
        ] {
            assert!(version[key].is_string(), "{event}: {key} in {version:#}");
        }
        assert_eq!(version["author"]["login"], "alice");
        assert_eq!(value["repository"]["full_name"], "acme/app");
    }
}

#[test]
fn every_avatar_is_a_url_that_answers() {
    // Berth's identicons (http's `/avatars/u/{id}`), by account id.
    let value = payload("package", Some("v1"), Some(&image_manifest()));
    let avatar = |account: &Value| {
        format!(
            "https://registry.example/avatars/u/{}",
            account["id"].as_i64().expect("id")
        )
    };
    assert_eq!(value["sender"]["avatar_url"], avatar(&value["sender"]));
    let owner = &value["package"]["owner"];
    assert_eq!(owner["avatar_url"], avatar(owner));
    assert_eq!(owner["login"], "acme");
    let org = &value["organization"];
    assert_eq!(org["avatar_url"], avatar(org));
    let repo_owner = &value["repository"]["owner"];
    assert_eq!(repo_owner["avatar_url"], avatar(repo_owner));
    assert_eq!(
        value["repository"]["clone_url"],
        "https://registry.example/acme/app.git"
    );
}

#[test]
fn a_child_pushed_by_digest_has_an_empty_tag_name() {
    let value = payload("package", None, Some(&image_manifest()));
    let version = &value["package"]["package_version"];
    assert_eq!(version["container_metadata"]["tag"]["name"], "");
    let digest = Digest::sha256(b"manifest");
    assert_eq!(
        version["package_url"],
        format!("registry.example/acme/app/worker@{digest}")
    );
}

#[test]
fn a_deleted_version_without_its_manifest_still_names_its_digest() {
    let value = payload("package", None, None);
    let manifest = &value["package"]["package_version"]["container_metadata"]["manifest"];
    assert_eq!(manifest["digest"], Digest::sha256(b"manifest").as_str());
    assert!(manifest["size"].is_null());
}

#[test]
fn hook_json_and_ping_have_githubs_keys_and_mask_the_secret() {
    let hook = Hook {
        id: HookId(6),
        scope: HookScope::Repository(RepoId(3)),
        active: true,
        events: vec!["package".into()],
        config: HookConfig {
            url: "https://scanner.example/hook".into(),
            content_type: ContentType::Json,
            secret: Some("s3cret".into()),
            insecure_ssl: false,
        },
        deleted_events: false,
        created_at: 0,
        updated_at: 0,
        last_response: LastResponse::default(),
    };
    let org = account(2, "acme", AccountKind::Organization);
    let repo = SourceRepo {
        id: RepoId(3),
        owner: AccountId(2),
        owner_login: "acme".into(),
        name: "app".into(),
        visibility: Visibility::Public,
        created_at: 0,
    };
    let target = PingTarget::Repository(&repo, &org);
    let json = crate::github::hooks::hook("https://registry.example", &target.path(), &hook);
    assert_eq!(json["config"]["secret"], "********");
    assert!(!json.to_string().contains("s3cret"));
    assert_eq!(
        json["url"],
        "https://registry.example/api/v3/repos/acme/app/hooks/6"
    );
    let ping = ping_payload(&hook, json, "https://registry.example", &target, &org);
    let expected: Value = serde_json::from_str(PING).unwrap();
    let mut missing = Vec::new();
    missing_keys(&expected, &ping, "", &mut missing);
    assert!(missing.is_empty(), "missing {missing:?}");
    assert_eq!(ping["hook_id"], 6);
}
