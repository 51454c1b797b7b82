//! The objects of the webhook payloads, in the shapes GitHub's webhook schemas
//! (`@octokit/openapi-webhooks`) give them: `simple-user` (sender, owner, author),
//! `organization-simple-webhooks`, `repository-webhooks` (GitHub's full repository object,
//! which differs from the REST API's) and the `package` / `registry_package` objects of the
//! `published` and `updated` actions.
//!
//! Every field GitHub's schemas require is present. What Berth has no notion of (forks,
//! stars, issues, a repository's git URLs) takes GitHub's neutral value: `null`, `0`, `false`,
//! an empty list; URL templates are formed under the repository's API URL as GitHub forms
//! them. Berth has no avatars: an `avatar_url` is the account's API resource, a URL that
//! answers. Berth's own fields (`container_metadata.labels.all_labels`, the hook's
//! `deleted_events`) are additions, never replacements.

use serde_json::{Value, json};

use super::packages::{EventPackage, EventVersion};
use super::urls::{
    PackageUrls, account_page, api, image_reference, manifest_url, org_api, repo_api, repo_page,
    short_name, user_api,
};
use super::{node_id, time};
use crate::access::store::{Account, SourceRepo};
use crate::access::{AccountKind, Visibility};
use crate::labels::SOURCE;
use crate::name::RepoName;

/// An account's `avatar_url`: Berth has no avatars, so its API resource (a URL that answers).
pub fn avatar_url(base: &str, account: &Account) -> String {
    user_api(base, &account.login)
}

/// An account in GitHub's `simple-user` shape (senders, package owners and authors,
/// repository owners; organizations too, filed under `/users/` as GitHub files them there).
pub fn user(base: &str, account: &Account) -> Value {
    let api = api(base);
    let login = &account.login;
    let kind = match account.kind {
        AccountKind::User => "User",
        AccountKind::Organization => "Organization",
    };
    json!({
        "login": login,
        "id": account.id,
        "node_id": node_id(kind, account.id),
        "avatar_url": avatar_url(base, account),
        "gravatar_id": "",
        "url": user_api(base, login),
        "html_url": account_page(base, login),
        "followers_url": format!("{api}/users/{login}/followers"),
        "following_url": format!("{api}/users/{login}/following{{/other_user}}"),
        "gists_url": format!("{api}/users/{login}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/users/{login}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/users/{login}/subscriptions"),
        "organizations_url": format!("{api}/users/{login}/orgs"),
        "repos_url": format!("{api}/users/{login}/repos"),
        "events_url": format!("{api}/users/{login}/events{{/privacy}}"),
        "received_events_url": format!("{api}/users/{login}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": account.site_admin,
    })
}

/// An organization in GitHub's `organization-simple-webhooks` shape.
pub fn organization(base: &str, org: &Account) -> Value {
    let api = org_api(base, &org.login);
    json!({
        "login": org.login,
        "id": org.id,
        "node_id": node_id("Organization", org.id),
        "url": api,
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events"),
        "hooks_url": format!("{api}/hooks"),
        "issues_url": format!("{api}/issues"),
        "members_url": format!("{api}/members{{/member}}"),
        "public_members_url": format!("{api}/public_members{{/member}}"),
        "avatar_url": avatar_url(base, org),
        "description": org.name.clone(),
    })
}

/// A repository in GitHub's `repository-webhooks` shape: Berth's source repository, with
/// GitHub's neutral values for what a source repository does not have.
pub fn repository(base: &str, repo: &SourceRepo, owner: &Account) -> Value {
    let full_name = format!("{}/{}", repo.owner_login, repo.name);
    let api = repo_api(base, &full_name);
    let page = repo_page(base, &full_name);
    let host = super::urls::host_of(base);
    let mut value = json!({
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": full_name,
        "private": repo.visibility != Visibility::Public,
        "owner": user(base, owner),
        "html_url": page,
        "description": null,
        "fork": false,
        "url": api,
        "clone_url": format!("{page}.git"),
        "git_url": format!("git://{host}/{full_name}.git"),
        "ssh_url": format!("git@{host}:{full_name}.git"),
        "svn_url": page,
        "mirror_url": null,
        "homepage": null,
        "language": null,
        "license": null,
        "size": 0,
        "forks": 0,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers": 0,
        "watchers_count": 0,
        "open_issues": 0,
        "open_issues_count": 0,
        "has_issues": false,
        "has_projects": false,
        "has_wiki": false,
        "has_pages": false,
        "has_downloads": false,
        "has_discussions": false,
        "archived": false,
        "disabled": false,
        "is_template": false,
        "topics": [],
        "visibility": repo.visibility.as_str(),
        "default_branch": "main",
        "created_at": time(repo.created_at),
        "updated_at": time(repo.created_at),
        "pushed_at": null,
    });
    // GitHub's URL templates, each under the repository's API URL.
    for (key, tail) in REPOSITORY_URLS {
        value[format!("{key}_url")] = json!(format!("{api}/{tail}"));
    }
    value
}

/// The `<key>_url`s of GitHub's repository object and their paths under its API URL.
const REPOSITORY_URLS: [(&str, &str); 36] = [
    ("archive", "{archive_format}{/ref}"),
    ("assignees", "assignees{/user}"),
    ("blobs", "git/blobs{/sha}"),
    ("branches", "branches{/branch}"),
    ("collaborators", "collaborators{/collaborator}"),
    ("comments", "comments{/number}"),
    ("commits", "commits{/sha}"),
    ("compare", "compare/{base}...{head}"),
    ("contents", "contents/{+path}"),
    ("contributors", "contributors"),
    ("deployments", "deployments"),
    ("downloads", "downloads"),
    ("events", "events"),
    ("forks", "forks"),
    ("git_commits", "git/commits{/sha}"),
    ("git_refs", "git/refs{/sha}"),
    ("git_tags", "git/tags{/sha}"),
    ("hooks", "hooks"),
    ("issue_comment", "issues/comments{/number}"),
    ("issue_events", "issues/events{/number}"),
    ("issues", "issues{/number}"),
    ("keys", "keys{/key_id}"),
    ("labels", "labels{/name}"),
    ("languages", "languages"),
    ("merges", "merges"),
    ("milestones", "milestones{/number}"),
    ("notifications", "notifications{?since,all,participating}"),
    ("pulls", "pulls{/number}"),
    ("releases", "releases{/id}"),
    ("stargazers", "stargazers"),
    ("statuses", "statuses/{sha}"),
    ("subscribers", "subscribers"),
    ("subscription", "subscription"),
    ("tags", "tags"),
    ("teams", "teams"),
    ("trees", "git/trees{/sha}"),
];

/// The package object of a `package` or `registry_package` payload, with its
/// `package_version`; `sender` is who pushed (the version's `author`). `updated` events carry
/// no package description, as GitHub's `updated` schemas have it.
pub fn package(
    base: &str,
    updated: bool,
    package: &EventPackage<'_>,
    version: &EventVersion<'_>,
    sender: &Account,
) -> Value {
    let owner = package.owner;
    let urls = PackageUrls::of(base, owner, package.name);
    let description = if updated {
        None
    } else {
        version
            .labels
            .get("org.opencontainers.image.description")
            .cloned()
    };
    json!({
        "id": package.id,
        "name": short_name(package.name),
        "namespace": owner.login,
        "description": description,
        "ecosystem": "CONTAINER",
        "package_type": "CONTAINER",
        "html_url": urls.page,
        "created_at": time(package.created_at),
        "updated_at": time(version.updated_at),
        "owner": user(base, owner),
        "package_version": package_version(base, &urls, package, version, sender),
        "registry": {
            "about_url": format!("{base}/"),
            "name": "Berth container registry",
            "type": "CONTAINER",
            "url": account_page(base, &owner.login),
            "vendor": "Berth",
        },
    })
}

fn package_version(
    base: &str,
    urls: &PackageUrls,
    package: &EventPackage<'_>,
    version: &EventVersion<'_>,
    sender: &Account,
) -> Value {
    let digest = version.digest.as_str();
    let reference = image_reference(base, package.name, version.tag, version.digest);
    let label = |key: &str| {
        version
            .labels
            .get(&format!("org.opencontainers.image.{key}"))
            .cloned()
            .unwrap_or_default()
    };
    json!({
        "id": version.id,
        "version": digest,
        "name": digest,
        "description": label("description"),
        "summary": label("description"),
        "body": "",
        "body_html": "",
        "manifest": "",
        "html_url": urls.version_page(version.id),
        "target_commitish": "",
        "target_oid": label("revision"),
        "created_at": time(version.created_at),
        "updated_at": time(version.updated_at),
        "metadata": [],
        "container_metadata": {
            "tag": { "name": version.tag.unwrap_or(""), "digest": digest },
            "labels": {
                "description": label("description"),
                "source": version.labels.get(SOURCE).cloned().unwrap_or_default(),
                "revision": label("revision"),
                "image_url": label("url"),
                "licenses": label("licenses"),
                "all_labels": version.labels,
            },
            "manifest": manifest(base, package.name, version),
        },
        "package_files": [],
        "installation_command": format!("docker pull {reference}"),
        "package_url": reference,
        "author": user(base, sender),
    })
}

/// `container_metadata.manifest`: digest, media type, URL, size, config and layers.
fn manifest(base: &str, name: &RepoName, version: &EventVersion<'_>) -> Value {
    let digest = version.digest.as_str();
    let uri = manifest_url(base, name, version.digest);
    let Some(bytes) = version.manifest else {
        return json!({
            "digest": digest, "media_type": null, "uri": uri, "size": null,
            "config": null, "layers": [],
        });
    };
    let doc: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let descriptor = |d: &Value| {
        json!({
            "digest": d.get("digest").cloned().unwrap_or(Value::Null),
            "media_type": d.get("mediaType").cloned().unwrap_or(Value::Null),
            "size": d.get("size").cloned().unwrap_or(Value::Null),
        })
    };
    let media_type = doc
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if doc.get("manifests").is_some() {
                "application/vnd.oci.image.index.v1+json".into()
            } else {
                "application/vnd.oci.image.manifest.v1+json".into()
            }
        });
    let layers: Vec<Value> = doc
        .get("layers")
        .and_then(Value::as_array)
        .map(|layers| layers.iter().map(descriptor).collect())
        .unwrap_or_default();
    json!({
        "digest": digest,
        "media_type": media_type,
        "uri": uri,
        "size": bytes.len(),
        "config": doc.get("config").map(descriptor),
        "layers": layers,
    })
}
