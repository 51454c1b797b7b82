//! Repositories: the REST API's `repository` object and the webhooks' (the fields Berth has
//! of each).

use serde_json::{Value, json};

use super::urls::{repo_api, repo_page};
use super::users::simple_user;
use super::{node_id, time};
use crate::access::Visibility;
use crate::access::store::{Account, SourceRepo};

/// `owner/name`.
pub fn full_name(repo: &SourceRepo) -> String {
    format!("{}/{}", repo.owner_login, repo.name)
}

/// A repository in GitHub's `minimal-repository` shape (packages' `repository`, listings):
/// its names, owner, visibility and every API URL template GitHub gives one (they answer
/// GitHub's 404 where Berth has no such resource).
pub fn minimal_repository(base: &str, repo: &SourceRepo, owner: &Account) -> Value {
    let full_name = full_name(repo);
    let api = repo_api(base, &full_name);
    let mut value = json!({
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": full_name,
        "owner": simple_user(base, owner),
        "private": repo.visibility != Visibility::Public,
        "visibility": repo.visibility.as_str(),
        "html_url": repo_page(base, &full_name),
        "description": null,
        "fork": false,
        "url": api,
        "created_at": time(repo.created_at),
        "updated_at": time(repo.created_at),
        "pushed_at": time(repo.created_at),
    });
    let templates = [
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ];
    if let Value::Object(map) = &mut value {
        for (key, suffix) in templates {
            map.insert(key.into(), Value::String(format!("{api}{suffix}")));
        }
    }
    value
}

/// A repository in GitHub's `full-repository` shape (`GET /repos/{owner}/{repo}`, creating
/// one), which also satisfies its `repository` shape (`GET /user/repos`):
/// [`minimal_repository`] with clone URLs and the counts and switches of features Berth does
/// not have (`0`, `false`, `null`).
pub fn repository(base: &str, repo: &SourceRepo, owner: &Account) -> Value {
    let mut value = minimal_repository(base, repo, owner);
    let full_name = full_name(repo);
    let page = repo_page(base, &full_name);
    let host = super::urls::host_of(base);
    let more = json!({
        "clone_url": format!("{page}.git"),
        "git_url": format!("git://{host}/{full_name}.git"),
        "ssh_url": format!("git@{host}:{full_name}.git"),
        "svn_url": page,
        "mirror_url": null,
        "homepage": null,
        "language": null,
        "default_branch": "main",
        "size": 0,
        "forks": 0,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers": 0,
        "watchers_count": 0,
        "open_issues": 0,
        "open_issues_count": 0,
        "network_count": 0,
        "subscribers_count": 0,
        "has_issues": false,
        "has_projects": false,
        "has_wiki": false,
        "has_pages": false,
        "has_downloads": false,
        "has_discussions": false,
        "archived": false,
        "disabled": false,
        "is_template": false,
        "license": null,
        "topics": [],
    });
    if let (Value::Object(value), Value::Object(more)) = (&mut value, more) {
        value.extend(more);
    }
    value
}
