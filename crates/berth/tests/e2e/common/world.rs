//! The shared fixture builder: the world a test runs in (users and their tokens of every
//! kind, the organization's members and teams, repositories and their collaborators,
//! package settings, apps), built through the management API as the site administrator, as
//! a user would build it.
//!
//! ```ignore
//! let world = World::new(&server);
//! let mark = world.user("mark").member("member").await; // a classic token of mark's
//! world.repo("app", "private").await;
//! world.collaborator("app", "mark", "push").await;
//! let fine = world.fine_grained(&mark, FineGrained::read("acme", &["app"])).await;
//! ```

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde_json::{Value, json};

use super::github::Api;
use super::{ORG, Server};

/// Every scope a user's first token gets unless the test says otherwise: enough to create
/// their other tokens and manage what they own.
pub const EVERY_SCOPE: &str =
    "read:packages,write:packages,delete:packages,repo,admin:org,admin:org_hook";

/// Builds fixtures on one server as its site administrator.
pub struct World<'a> {
    server: &'a Server,
    admin: Api<'a>,
}

impl<'a> World<'a> {
    /// The builder of `server`'s world.
    pub fn new(server: &'a Server) -> Self {
        World {
            server,
            admin: Api::new(server, &server.admin_token),
        }
    }

    /// The site administrator's API client.
    pub fn admin(&self) -> &Api<'a> {
        &self.admin
    }

    /// A user to create; awaiting it creates them and answers a classic token of theirs
    /// (scopes [`EVERY_SCOPE`] unless [`NewUser::scopes`] says otherwise).
    pub fn user(&self, login: &str) -> NewUser<'_, 'a> {
        NewUser {
            world: self,
            login: login.to_owned(),
            email: None,
            scopes: EVERY_SCOPE.to_owned(),
            role: None,
        }
    }

    /// Makes `login` a member of [`ORG`] with `role` (`member`, `admin`).
    pub async fn member(&self, login: &str, role: &str) {
        let path = format!("/orgs/{ORG}/memberships/{login}");
        self.admin
            .ok("PUT", &path, Some(json!({ "role": role })))
            .await;
    }

    /// Creates organization `login`, owned by the site administrator.
    pub async fn org(&self, login: &str) {
        let body = json!({ "login": login, "admin": super::ADMIN });
        self.admin
            .ok("POST", "/admin/organizations", Some(body))
            .await;
    }

    /// Sets whether organization `org` requires tokens authorized for SSO.
    pub async fn require_sso(&self, org: &str) {
        let path = format!("/orgs/{org}/sso");
        self.admin
            .ok("PUT", &path, Some(json!({ "required": true })))
            .await;
    }

    /// Creates repository `acme/<name>` with `visibility`.
    pub async fn repo(&self, name: &str, visibility: &str) {
        let body = json!({ "name": name, "visibility": visibility });
        self.admin
            .ok("POST", &format!("/orgs/{ORG}/repos"), Some(body))
            .await;
    }

    /// Creates team `name` of [`ORG`] (`body` adds maintainers, repositories, permission).
    pub async fn team(&self, name: &str, mut body: Value) {
        body["name"] = json!(name);
        self.admin
            .ok("POST", &format!("/orgs/{ORG}/teams"), Some(body))
            .await;
    }

    /// Makes `login` a collaborator of repository `acme/<repo>` with `permission`
    /// (`pull`, `push`, `admin`).
    pub async fn collaborator(&self, repo: &str, login: &str, permission: &str) {
        let path = format!("/repos/{ORG}/{repo}/collaborators/{login}");
        let body = json!({ "permission": permission });
        self.admin.ok("PUT", &path, Some(body)).await;
    }

    /// Sets something of package `package` (`owner/name`): `setting` is the path under the
    /// package (`/collaborators/bob`, `/repository`, …), empty for the package itself.
    pub async fn package(&self, method: &str, package: &str, setting: &str, body: Value) {
        let (owner, name) = package.split_once('/').expect("owner/name");
        let name = name.replace('/', "%2F");
        let path = format!("/orgs/{owner}/packages/container/{name}{setting}");
        self.admin.ok(method, &path, Some(body)).await;
    }

    /// Sets the visibility of package `package` (`owner/name`).
    pub async fn visibility(&self, package: &str, visibility: &str) {
        let body = json!({ "visibility": visibility });
        self.package("PATCH", package, "", body).await;
    }

    /// A classic token with `scopes` of the user behind `own`: its id and secret.
    pub async fn classic(&self, own: &str, scopes: &[&str]) -> (i64, String) {
        let body = json!({ "note": "e2e", "scopes": scopes });
        let token = self
            .as_user(own)
            .ok("POST", "/user/tokens", Some(body))
            .await;
        (
            token["id"].as_i64().expect("token id"),
            token["token"].as_str().expect("token").to_owned(),
        )
    }

    /// Authorizes the token `id` of the user behind `own` for [`ORG`]'s SSO.
    pub async fn authorize_sso(&self, own: &str, id: i64) {
        let path = format!("/user/tokens/{id}/sso/{ORG}");
        self.as_user(own).ok("PUT", &path, None).await;
    }

    /// A fine-grained token of the user behind `own`.
    pub async fn fine_grained(&self, own: &str, token: FineGrained<'_>) -> String {
        let body = token.request();
        let token = self
            .as_user(own)
            .ok("POST", "/user/tokens", Some(body))
            .await;
        token_secret(&token)
    }

    /// An app installed on [`ORG`] for all repositories with `permission` on packages: its
    /// secret and installation id.
    pub async fn app(&self, slug: &str, permission: &str) -> (String, i64) {
        let app = self
            .admin
            .ok("POST", "/apps", Some(json!({ "slug": slug })))
            .await;
        let secret = app["client_secret"].as_str().expect("secret").to_owned();
        let body = json!({ "account": ORG, "permissions": { "packages": permission } });
        let path = format!("/apps/{slug}/installations");
        let installation = self.admin.ok("POST", &path, Some(body)).await;
        let id = installation["id"].as_i64().expect("installation id");
        (secret, id)
    }

    /// An installation token of the app with `secret`, narrowed by `narrow`.
    pub async fn installation_token(
        &self,
        secret: &str,
        installation: i64,
        narrow: Value,
    ) -> String {
        let app = Api::with_authorization(self.server, &format!("Bearer {secret}"));
        let path = format!("/app/installations/{installation}/access_tokens");
        token_secret(&app.ok("POST", &path, Some(narrow)).await)
    }

    /// A job token of repository `acme/<repo>` minted by the user behind `own` (`body`:
    /// permissions, lifetime).
    pub async fn job_token_by(&self, own: &str, repo: &str, body: Value) -> String {
        let path = format!("/repos/{ORG}/{repo}/actions/job-tokens");
        token_secret(&self.as_user(own).ok("POST", &path, Some(body)).await)
    }

    /// A job token of repository `acme/<repo>` minted by the site administrator.
    pub async fn job_token(&self, repo: &str, body: Value) -> String {
        let admin = self.server.admin_token.clone();
        self.job_token_by(&admin, repo, body).await
    }

    /// The API client of the user behind `own`.
    pub fn as_user(&self, own: &str) -> Api<'a> {
        Api::new(self.server, own)
    }
}

/// A user being created: see [`World::user`].
pub struct NewUser<'w, 'a> {
    world: &'w World<'a>,
    login: String,
    email: Option<String>,
    scopes: String,
    role: Option<String>,
}

impl NewUser<'_, '_> {
    /// Gives the user an e-mail address (none otherwise).
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    /// The scopes of the token answered (comma-separated), instead of [`EVERY_SCOPE`].
    pub fn scopes(mut self, scopes: &str) -> Self {
        self.scopes = scopes.to_owned();
        self
    }

    /// Makes the user a member of [`ORG`] with `role`.
    pub fn member(mut self, role: &str) -> Self {
        self.role = Some(role.to_owned());
        self
    }
}

impl<'w, 'a> IntoFuture for NewUser<'w, 'a> {
    type Output = String;
    type IntoFuture = Pin<Box<dyn Future<Output = String> + 'w>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let world = self.world;
            let body = json!({ "login": self.login, "email": self.email });
            world
                .admin
                .expect("POST", "/admin/users", Some(body), 201)
                .await;
            if let Some(role) = &self.role {
                world.member(&self.login, role).await;
            }
            world
                .server
                .admin(&["create-token", &self.login, "--scopes", &self.scopes])
        })
    }
}

/// A fine-grained token's request.
#[derive(Clone, Copy)]
pub struct FineGrained<'s> {
    /// The account whose resources it reaches.
    pub owner: &'s str,
    /// The packages it selects (short names).
    pub packages: &'s [&'s str],
    /// The repositories it selects.
    pub repositories: &'s [&'s str],
    /// Its permission on packages: `read` or `write`.
    pub permission: &'s str,
}

impl<'s> FineGrained<'s> {
    /// A token reading `packages` of `owner`.
    pub fn read(owner: &'s str, packages: &'s [&'s str]) -> Self {
        FineGrained {
            owner,
            packages,
            repositories: &[],
            permission: "read",
        }
    }

    /// The body of `POST /user/tokens` creating it.
    pub fn request(&self) -> Value {
        json!({
            "type": "fine_grained",
            "note": "e2e",
            "resource_owner": self.owner,
            "packages": self.packages,
            "repositories": self.repositories,
            "permissions": { "packages": self.permission },
        })
    }
}

/// The `token` field of a token the API created.
fn token_secret(token: &Value) -> String {
    token["token"].as_str().expect("token").to_owned()
}
