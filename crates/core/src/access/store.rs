//! The access store port: accounts, organizations, teams, source repositories, packages and
//! credentials. Implemented next to [`crate::ports::MetadataStore`] by each metadata backend;
//! never calls services.
//!
//! Logins compare case-insensitively (as GitHub's do) and are stored as given. Conflicts
//! (a login or a repository name taken) are reported as values, not store errors, so the API
//! can answer 422.

use crate::ids::PackageId;
pub use crate::ids::{AppId, InstallationId, TeamId};
use async_trait::async_trait;

use super::model::{
    AccountId, AccountKind, CredentialId, Grant, OrgRole, Owner, PackagePolicy, Principal,
    Readable, RepoId, Role, Target, Visibility,
};
use super::token::TokenKind;
use crate::name::RepoName;
use crate::ports::{Millis, StoreResult};

/// An account as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Row id.
    pub id: AccountId,
    /// Login (user name or organization name).
    pub login: String,
    /// User or organization.
    pub kind: AccountKind,
    /// Display name.
    pub name: Option<String>,
    /// Email (users).
    pub email: Option<String>,
    /// Site administrator (users).
    pub site_admin: bool,
    /// Whether classic tokens must be SSO-authorized (organizations).
    pub requires_sso: bool,
    /// Package creation settings.
    pub policy: PackagePolicy,
    /// Creation time.
    pub created_at: Millis,
}

impl Account {
    /// The account as the owner of packages, as [`crate::access::decide`] sees it.
    pub fn as_owner(&self) -> Owner {
        Owner {
            id: self.id,
            login: self.login.clone(),
            kind: self.kind,
            requires_sso: self.requires_sso,
            policy: self.policy.clone(),
        }
    }

    /// The e-mail address `viewer` may see: GitHub shows a user's public e-mail address to
    /// everyone, and Berth keeps no public one, so only the user and site administrators see
    /// it; everyone else (anonymous included) sees none.
    pub fn email_seen_by(&self, viewer: &Principal) -> Option<&str> {
        let allowed = match viewer {
            Principal::Anonymous => false,
            Principal::Token(credential) => {
                credential.site_admin || credential.user == Some(self.id)
            }
        };
        self.email.as_deref().filter(|_| allowed)
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login.
    pub login: String,
    /// Display name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Argon2 PHC string of the password, if the user has one.
    pub password_hash: Option<String>,
    /// Site administrator.
    pub site_admin: bool,
}

/// A package as the Packages API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord {
    /// Row id (the API's package id).
    pub id: PackageId,
    /// The registry name (`owner/name…`).
    pub name: RepoName,
    /// Owning account.
    pub owner: AccountId,
    /// Visibility.
    pub visibility: Visibility,
    /// The linked source repository.
    pub linked_repo: Option<RepoId>,
    /// Creation time.
    pub created_at: Millis,
    /// Deletion time, while restorable.
    pub deleted_at: Option<Millis>,
}

/// Which of an account's packages a listing shows (beside what the caller may read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageFilter {
    /// Of this visibility only.
    pub visibility: Option<Visibility>,
    /// Whose name after the owner (`api/worker` of `acme/api/worker`) contains this text,
    /// ASCII case-insensitively (`%` and `_` are plain characters).
    pub name_contains: Option<String>,
}

impl PackageFilter {
    /// `name_contains` as a `LIKE` pattern with `\` as its escape character.
    pub fn like_pattern(&self) -> Option<String> {
        self.name_contains.as_ref().map(|text| {
            let mut pattern = String::with_capacity(text.len() + 2);
            pattern.push('%');
            for c in text.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            pattern
        })
    }
}

/// A source repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRepo {
    /// Row id.
    pub id: RepoId,
    /// Owning account.
    pub owner: AccountId,
    /// Owner login.
    pub owner_login: String,
    /// Repository name (without the owner).
    pub name: String,
    /// Visibility.
    pub visibility: Visibility,
    /// Creation time.
    pub created_at: Millis,
}

/// Who a package role is granted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantee {
    /// A user.
    User(AccountId),
    /// A team (organization packages only).
    Team(TeamId),
}

/// A role given on a package, as its settings page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageGrant {
    /// Who holds it.
    pub grantee: Grantee,
    /// The user's login or the team's slug.
    pub name: String,
    /// The role.
    pub role: Role,
}

/// A credential to store (its secret's hash, never the secret).
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// Kind (by the secret's prefix).
    pub kind: TokenKind,
    /// SHA-256 of the secret.
    pub hash: Vec<u8>,
    /// The user it acts for (`None` for app installation and job tokens).
    pub user: Option<AccountId>,
    /// The user's note, or the app/job name.
    pub note: String,
    /// What it grants.
    pub grant: Grant,
    /// When it stops working; `None` never.
    pub expires_at: Option<Millis>,
    /// Creation time.
    pub created_at: Millis,
}

/// A credential as listed (no secret, no hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    /// Row id.
    pub id: CredentialId,
    /// Kind.
    pub kind: TokenKind,
    /// User, if any.
    pub user: Option<AccountId>,
    /// Note.
    pub note: String,
    /// Grant.
    pub grant: Grant,
    /// Creation time.
    pub created_at: Millis,
    /// Expiry.
    pub expires_at: Option<Millis>,
    /// Last use (updated in batches; may lag by a few seconds).
    pub last_used_at: Option<Millis>,
    /// Revocation time.
    pub revoked_at: Option<Millis>,
}

/// What the sessions page shows of a web session besides its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    /// The browser's `User-Agent` when it signed in (at most 200 characters).
    pub user_agent: String,
    /// The client address it signed in from.
    pub address: String,
}

/// A live web session as its user's sessions page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// Its credential's id (revoking the credential ends the session).
    pub id: CredentialId,
    /// Where it signed in from.
    pub facts: SessionFacts,
    /// Sign-in time.
    pub created_at: Millis,
    /// When it ends.
    pub expires_at: Option<Millis>,
    /// Last use (updated in batches; may lag by a few seconds).
    pub last_used_at: Option<Millis>,
}

/// What a presented secret resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A usable credential.
    Valid(Principal),
    /// Known but expired at that time.
    Expired(Millis),
    /// Known but revoked.
    Revoked,
    /// No such secret.
    Unknown,
}

/// An app: it is installed on accounts and exchanges its secret for installation tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Row id.
    pub id: AppId,
    /// Slug (unique, case-insensitive).
    pub slug: String,
    /// The account that registered it.
    pub owner: AccountId,
}

/// An app's installation on an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInstallation {
    /// Installation row id.
    pub id: InstallationId,
    /// App row id.
    pub app: AppId,
    /// App slug.
    pub app_slug: String,
    /// The account it is installed on.
    pub account: AccountId,
    /// Selected repositories, `None` for all.
    pub repositories: Option<Vec<RepoId>>,
    /// Packages permission.
    pub permission: Role,
}

/// Result of a create call that may collide with an existing name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created<T> {
    /// Created, with its id.
    New(T),
    /// The name is taken.
    Taken,
}

/// Which source repositories a listing reads ([`DirectoryStore::repos`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoSet {
    /// Those owned by this account.
    OwnedBy(AccountId),
    /// Those this user is affiliated with, as GitHub's `affiliation=owner,collaborator,
    /// organization_member`: owned by them or by an organization they belong to, or on which
    /// they hold a role (as a collaborator or through a team).
    AffiliatedWith(AccountId),
}

/// The directory: accounts (users and organizations) and their memberships, teams, and source repositories with their collaborators.
#[async_trait]
pub trait DirectoryStore: Send + Sync + 'static {
    // --- accounts ---
    /// Creates a user.
    async fn create_user(&self, user: &NewUser, now: Millis) -> StoreResult<Created<AccountId>>;
    /// Creates an organization whose first owner is `owner`.
    async fn create_org(
        &self,
        login: &str,
        name: Option<&str>,
        owner: AccountId,
        now: Millis,
    ) -> StoreResult<Created<AccountId>>;
    /// The account with `login` (case-insensitive).
    async fn account(&self, login: &str) -> StoreResult<Option<Account>>;
    /// The account with id `id`.
    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>>;
    /// The Argon2 PHC string of user `login`'s password, if they have one (kept off
    /// [`Account`], so nothing that renders an account can leak it).
    async fn password_hash(&self, login: &str) -> StoreResult<Option<String>>;
    /// Sets user `user`'s password (its Argon2 PHC string); false when there is no such user.
    async fn set_password_hash(&self, user: AccountId, hash: &str) -> StoreResult<bool>;
    /// Sets `user`'s membership role in `org`; `None` removes it (and their team memberships).
    async fn set_membership(
        &self,
        org: AccountId,
        user: AccountId,
        role: Option<OrgRole>,
    ) -> StoreResult<()>;
    /// `user`'s membership role in `org`.
    async fn membership(&self, org: AccountId, user: AccountId) -> StoreResult<Option<OrgRole>>;
    /// Sets whether `org` requires SSO-authorized classic tokens.
    async fn set_requires_sso(&self, org: AccountId, required: bool) -> StoreResult<()>;
    /// Sets the package creation policy of an account.
    async fn set_package_policy(
        &self,
        account: AccountId,
        policy: &PackagePolicy,
    ) -> StoreResult<()>;
    /// Creates team `slug` in `org`.
    async fn create_team(
        &self,
        org: AccountId,
        slug: &str,
        name: &str,
    ) -> StoreResult<Created<TeamId>>;
    /// The team `slug` of `org`.
    async fn team(&self, org: AccountId, slug: &str) -> StoreResult<Option<TeamId>>;
    /// Adds (`true`) or removes `user` from `team`.
    async fn set_team_member(&self, team: TeamId, user: AccountId, member: bool)
    -> StoreResult<()>;
    /// Creates repository `name` owned by `owner`.
    async fn create_repo(
        &self,
        owner: AccountId,
        name: &str,
        visibility: Visibility,
        now: Millis,
    ) -> StoreResult<Created<RepoId>>;
    /// Repository `owner_login/name`.
    async fn repo(&self, owner_login: &str, name: &str) -> StoreResult<Option<SourceRepo>>;
    /// Repository by id.
    async fn repo_by_id(&self, id: RepoId) -> StoreResult<Option<SourceRepo>>;
    /// Sets `user`'s collaborator role on `repo` (`None` removes it).
    async fn set_collaborator(
        &self,
        repo: RepoId,
        user: AccountId,
        role: Option<Role>,
    ) -> StoreResult<()>;
    /// `user`'s role on `repo`: the highest of their collaborator role, their teams' roles,
    /// and admin when they own the repository or an organization owning it.
    async fn repo_role(&self, repo: RepoId, user: AccountId) -> StoreResult<Option<Role>>;
    /// Sets `team`'s role on `repo` (`None` removes it).
    async fn set_team_repo(
        &self,
        team: TeamId,
        repo: RepoId,
        role: Option<Role>,
    ) -> StoreResult<()>;
    /// The members of `org` with their roles, by account id.
    async fn org_members(&self, org: AccountId) -> StoreResult<Vec<(Account, OrgRole)>>;
    /// The organizations `user` belongs to, by account id.
    async fn orgs_of(&self, user: AccountId) -> StoreResult<Vec<Account>>;
    /// The teams of `org`: id, slug and name, by slug.
    async fn teams(&self, org: AccountId) -> StoreResult<Vec<(TeamId, String, String)>>;
    /// The repositories of `set`, by owner login and name, each with `user`'s role on it
    /// (what [`DirectoryStore::repo_role`] answers; `None` for no user), in one read.
    async fn repos(
        &self,
        set: RepoSet,
        user: Option<AccountId>,
    ) -> StoreResult<Vec<(SourceRepo, Option<Role>)>>;
}

/// Packages as the access model sees them: the per-request [`Target`], package records, roles and links to source repositories.
#[async_trait]
pub trait PackageStore: Send + Sync + 'static {
    /// Everything [`crate::access::decide`] needs about package `name` for `user`, in one
    /// read.
    async fn target(&self, name: &RepoName, user: Option<AccountId>) -> StoreResult<Target>;
    /// Creates package `name` owned by `owner` if it does not exist (a concurrent creator
    /// wins silently), with `admin` (its creator) holding the admin role, in one
    /// transaction. A package created linked to a repository inherits its access. Created
    /// linked and by no user — by a job token of that repository — it also grants the
    /// repository write (Actions access), which stays when the package stops inheriting, as
    /// GHCR grants the repository whose workflow published a package.
    async fn create_package(
        &self,
        name: &RepoName,
        owner: AccountId,
        visibility: Visibility,
        link: Option<RepoId>,
        admin: Option<AccountId>,
        now: Millis,
    ) -> StoreResult<()>;
    /// A page of the live packages of `owner` that `readable` and `filter` admit, by name in
    /// byte order: `limit` of them after
    /// the first `offset`, and how many there are in all. Paged and counted in the store, so
    /// a page costs what it shows (and the offset it skips), not every package of the
    /// owner; what `readable` does not admit is neither shown nor counted.
    async fn list_packages(
        &self,
        owner: AccountId,
        readable: &Readable,
        filter: &PackageFilter,
        offset: u64,
        limit: u64,
    ) -> StoreResult<(u64, Vec<PackageRecord>)>;
    /// Package `name`, live or deleted.
    async fn package_record(&self, name: &RepoName) -> StoreResult<Option<PackageRecord>>;
    /// Marks package `name` deleted at `at`, or restores it (`None`); false when absent.
    async fn set_package_deleted(&self, name: &RepoName, at: Option<Millis>) -> StoreResult<bool>;
    /// Removes for good the packages deleted before `before`, with their roles and every
    /// manifest, tag and blob link of their repositories; returns how many.
    async fn purge_deleted_packages(&self, before: Millis) -> StoreResult<u64>;
    /// Sets a package's visibility.
    async fn set_package_visibility(
        &self,
        name: &RepoName,
        visibility: Visibility,
    ) -> StoreResult<bool>;
    /// The roles given on package `name` (its own, not inherited): users by login, then
    /// teams by slug; empty when there is no such package.
    async fn package_grants(&self, name: &RepoName) -> StoreResult<Vec<PackageGrant>>;
    /// Sets a user's or team's role on a package (`None` removes it).
    async fn set_package_role(
        &self,
        name: &RepoName,
        grantee: Grantee,
        role: Option<Role>,
    ) -> StoreResult<bool>;
    /// Links package `name` to `repo` unless it is linked already (checked and written in one
    /// statement, so of two racing links the first wins); false when it was linked or absent.
    async fn link_unlinked_package(
        &self,
        name: &RepoName,
        repo: RepoId,
        inherits: bool,
    ) -> StoreResult<bool>;
    /// Links a package to a repository (or unlinks it) and sets whether it inherits access.
    async fn link_package(
        &self,
        name: &RepoName,
        repo: Option<RepoId>,
        inherits: bool,
    ) -> StoreResult<bool>;
    /// Lets job tokens of `repo` use the package with `role` (`None` removes it).
    async fn set_package_job_access(
        &self,
        name: &RepoName,
        repo: RepoId,
        role: Option<Role>,
    ) -> StoreResult<bool>;
}

/// Credentials: tokens of every kind, stored by their secret's hash, with their uses, revocation and SSO authorizations.
#[async_trait]
pub trait CredentialStore: Send + Sync + 'static {
    /// Stores a credential.
    async fn create_credential(&self, credential: &NewCredential) -> StoreResult<CredentialId>;
    /// Resolves a secret's hash at time `now`.
    async fn resolve_secret(&self, hash: &[u8], now: Millis) -> StoreResult<Resolved>;
    /// Resolves a credential by id at time `now` (for registry tokens minted from it).
    async fn resolve_credential(&self, id: CredentialId, now: Millis) -> StoreResult<Resolved>;
    /// Records uses: each credential's last-used time becomes the given time if later.
    async fn touch_credentials(&self, uses: &[(CredentialId, Millis)]) -> StoreResult<()>;
    /// Revokes a credential; `false` when there was none.
    async fn revoke_credential(&self, id: CredentialId, now: Millis) -> StoreResult<bool>;
    /// A user's credentials, newest first.
    async fn list_credentials(&self, user: AccountId) -> StoreResult<Vec<CredentialInfo>>;
    /// One credential.
    async fn credential(&self, id: CredentialId) -> StoreResult<Option<CredentialInfo>>;
    /// Marks a classic token as authorized for an SSO organization.
    async fn authorize_sso(&self, id: CredentialId, org: AccountId) -> StoreResult<()>;
    /// Stores a web session: its credential (a classic one, with its grant's lists) and
    /// `facts`, in one transaction. A session's credential is never listed by
    /// [`CredentialStore::list_credentials`]; it resolves and is revoked as any other.
    async fn create_session(
        &self,
        credential: &NewCredential,
        facts: &SessionFacts,
    ) -> StoreResult<CredentialId>;
    /// `user`'s sessions live at `now` (neither revoked nor expired), newest first.
    async fn list_sessions(&self, user: AccountId, now: Millis) -> StoreResult<Vec<WebSession>>;
}

/// Apps and their installations, which exchange the app's secret for installation tokens.
#[async_trait]
pub trait AppStore: Send + Sync + 'static {
    /// Creates app `slug` owned by `owner` with its secret's hash.
    async fn create_app(
        &self,
        owner: AccountId,
        slug: &str,
        secret_hash: &[u8],
        now: Millis,
    ) -> StoreResult<Created<AppId>>;
    /// App `slug` (case-insensitive).
    async fn app(&self, slug: &str) -> StoreResult<Option<App>>;
    /// Installs `app` on `account` (again: replaces that installation's settings).
    async fn install_app(
        &self,
        app: AppId,
        account: AccountId,
        repositories: Option<&[RepoId]>,
        permission: Role,
        now: Millis,
    ) -> StoreResult<InstallationId>;
    /// Installation `id` if `secret_hash` is its app's secret.
    async fn installation_for_secret(
        &self,
        id: InstallationId,
        secret_hash: &[u8],
    ) -> StoreResult<Option<AppInstallation>>;
}

/// Every access port — accounts, sources, packages and credentials — implemented by one
/// backend over one database.
pub trait AccessStore: DirectoryStore + PackageStore + CredentialStore + AppStore {}

impl<T> AccessStore for T where T: DirectoryStore + PackageStore + CredentialStore + AppStore {}
