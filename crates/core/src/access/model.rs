//! The access model's values: who asks ([`Principal`]), what they ask about ([`Target`]) and
//! what they ask to do ([`Action`]). Plain data, filled in by the metadata store; the decision
//! is [`super::decide`].

pub use crate::ids::{AccountId, CredentialId, RepoId};
use std::fmt;
use std::str::FromStr;

use crate::ports::Millis;

/// A role on a package or a source repository; later variants include the earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Pull and read metadata.
    Read,
    /// Also push.
    Write,
    /// Also delete and manage access.
    Admin,
}

impl Role {
    /// The role's name, as the API and messages spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

/// Who may see a package (or a source repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Visibility {
    /// Only those granted a role.
    Private,
    /// Also every signed-in user of this instance.
    Internal,
    /// Everyone, anonymous included.
    Public,
}

impl Visibility {
    /// The visibility's name, as GitHub spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Internal => "internal",
            Visibility::Public => "public",
        }
    }
}

/// Whether an account is a person or an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// A person, who signs in.
    User,
    /// An organization: members, teams, packages.
    Organization,
}

/// A user's membership role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrgRole {
    /// An ordinary member.
    Member,
    /// An owner: admin of everything the organization owns.
    Owner,
}

/// What a registry request does to a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read manifests, blobs, tags and referrers.
    Pull,
    /// Upload blobs and manifests (creating the package if needed).
    Push,
    /// Delete manifests, tags or blobs.
    Delete,
    /// Change the package's settings: visibility, access, linked repository (management API;
    /// never a registry scope).
    Manage,
}

impl Action {
    /// The package role the action needs.
    pub fn role(self) -> Role {
        match self {
            Action::Pull => Role::Read,
            Action::Push => Role::Write,
            Action::Delete | Action::Manage => Role::Admin,
        }
    }

    /// The verb of a registry scope (`repository:<name>:<verb>`).
    pub fn verb(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::Manage => "manage",
        }
    }
}

/// GitHub's classic scopes (docs: "Scopes for OAuth apps"), each with the scope that
/// includes it (`repo` includes `public_repo`, `admin:org` includes `write:org`, which
/// includes `read:org`, …). Berth honours those that guard something it has (see
/// [`Scopes`]); the others are accepted, stored and shown, as a token of GitHub's would hold
/// them.
const CLASSIC: [(&str, Option<&str>); 52] = [
    ("repo", None),
    ("repo:status", Some("repo")),
    ("repo_deployment", Some("repo")),
    ("public_repo", Some("repo")),
    ("repo:invite", Some("repo")),
    ("security_events", Some("repo")),
    ("admin:repo_hook", None),
    ("write:repo_hook", Some("admin:repo_hook")),
    ("read:repo_hook", Some("write:repo_hook")),
    ("admin:org", None),
    ("write:org", Some("admin:org")),
    ("read:org", Some("write:org")),
    ("manage_runners:org", Some("admin:org")),
    ("admin:public_key", None),
    ("write:public_key", Some("admin:public_key")),
    ("read:public_key", Some("write:public_key")),
    ("admin:org_hook", None),
    ("gist", None),
    ("notifications", None),
    ("user", None),
    ("read:user", Some("user")),
    ("user:email", Some("user")),
    ("user:follow", Some("user")),
    ("project", None),
    ("read:project", Some("project")),
    ("delete_repo", None),
    ("write:packages", None),
    ("read:packages", Some("write:packages")),
    ("delete:packages", None),
    ("admin:gpg_key", None),
    ("write:gpg_key", Some("admin:gpg_key")),
    ("read:gpg_key", Some("write:gpg_key")),
    ("codespace", None),
    ("codespace:secrets", Some("codespace")),
    ("workflow", None),
    ("admin:enterprise", None),
    ("manage_runners:enterprise", Some("admin:enterprise")),
    ("manage_billing:enterprise", Some("admin:enterprise")),
    ("read:enterprise", Some("admin:enterprise")),
    ("scim:enterprise", Some("admin:enterprise")),
    ("audit_log", None),
    ("read:audit_log", Some("audit_log")),
    ("admin:ssh_signing_key", None),
    ("write:ssh_signing_key", Some("admin:ssh_signing_key")),
    ("read:ssh_signing_key", Some("write:ssh_signing_key")),
    ("copilot", None),
    ("manage_billing:copilot", Some("copilot")),
    ("write:discussion", None),
    ("read:discussion", Some("write:discussion")),
    ("write:network_configurations", None),
    (
        "read:network_configurations",
        Some("write:network_configurations"),
    ),
    ("site_admin", None),
];

/// Scopes of a classic personal access token: any of GitHub's classic scopes, as granted
/// (so they are shown as they were asked for). What they allow is asked with
/// [`Scopes::holds`], which counts a scope as held when one that includes it is.
///
/// Those Berth honours: `read:packages` (pull), `write:packages` (push, and pull),
/// `delete:packages` (delete, with the admin role), `repo` (reach packages whose access comes
/// from a non-public source repository; create and administer source repositories),
/// `admin:org` (manage organization memberships, teams and package settings), `read:org`
/// (see organization memberships and teams), `admin:repo_hook` and `admin:org_hook`
/// (repository and organization webhooks), `site_admin` (create users and organizations;
/// site administrators only).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u64);

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scopes").field(&self.names()).finish()
    }
}

fn scope_index(name: &str) -> Option<usize> {
    CLASSIC.iter().position(|(n, _)| *n == name)
}

impl Scopes {
    /// Every classic scope name, as GitHub spells it.
    pub fn known() -> impl Iterator<Item = &'static str> {
        CLASSIC.iter().map(|(name, _)| *name)
    }

    /// Every scope.
    pub const ALL: Scopes = Scopes((1u64 << CLASSIC.len()) - 1);

    /// Whether `name` is held, directly or through a scope that includes it (`write:org`
    /// holds `read:org`). An unknown name is never held.
    pub fn holds(&self, name: &str) -> bool {
        let mut at = scope_index(name);
        while let Some(index) = at {
            if self.0 & (1 << index) != 0 {
                return true;
            }
            at = CLASSIC[index].1.and_then(scope_index);
        }
        false
    }

    /// Whether any of `names` is held.
    pub fn holds_any(&self, names: &[&str]) -> bool {
        names.iter().any(|name| self.holds(name))
    }

    /// Whether the scopes allow pulling (`read:packages`, or `write:packages`).
    pub fn may_read(&self) -> bool {
        self.holds("read:packages")
    }

    /// `write:packages`: push.
    pub fn write_packages(&self) -> bool {
        self.holds("write:packages")
    }

    /// `delete:packages`: delete, with the admin role.
    pub fn delete_packages(&self) -> bool {
        self.holds("delete:packages")
    }

    /// `repo`: reach packages through non-public source repositories; administer those.
    pub fn repo(&self) -> bool {
        self.holds("repo")
    }

    /// `site_admin`.
    pub fn site_admin(&self) -> bool {
        self.holds("site_admin")
    }

    /// The scope names granted, in GitHub's spelling and order.
    pub fn names(&self) -> Vec<&'static str> {
        CLASSIC
            .iter()
            .enumerate()
            .filter(|(index, _)| self.0 & (1 << index) != 0)
            .map(|(_, (name, _))| *name)
            .collect()
    }

    /// Whether every scope of `other` is held here (directly or through a scope that
    /// includes it: `write:packages` covers `read:packages`).
    pub fn covers(&self, other: &Scopes) -> bool {
        other.names().iter().all(|name| self.holds(name))
    }
}

impl FromStr for Scopes {
    type Err = String;

    /// Parses a comma- or space-separated list of scope names.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut scopes = Scopes::default();
        for name in list.split([',', ' ']).filter(|s| !s.is_empty()) {
            match scope_index(name) {
                Some(index) => scopes.0 |= 1 << index,
                None => {
                    return Err(format!(
                        "unknown scope `{name}`; scopes are GitHub's classic ones: {}",
                        Scopes::known().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
        Ok(scopes)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

/// What a credential grants, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// A classic personal access token: the user's access, gated by scopes.
    Classic {
        /// The token's scopes.
        scopes: Scopes,
        /// Organizations requiring SSO that authorized this token.
        sso_authorized: Vec<AccountId>,
    },
    /// A fine-grained token: one resource owner, selected packages and repositories.
    FineGrained {
        /// The only account whose packages it reaches.
        owner: AccountId,
        /// Packages selected by name (they need not exist yet).
        packages: Vec<String>,
        /// Source repositories selected: their linked packages are reached.
        repositories: Vec<RepoId>,
        /// At most this role (read or write).
        permission: Role,
        /// Whether roles the user has through non-public repositories count: only when the
        /// classic token that minted it had the `repo` scope.
        private_repositories: bool,
    },
    /// An app installation token: no user; the installation's account and repositories.
    App {
        /// The account the app is installed on.
        account: AccountId,
        /// Selected repositories, or `None` for all of the account's.
        repositories: Option<Vec<RepoId>>,
        /// At most this role (read or write).
        permission: Role,
    },
    /// A repository job token (the `GITHUB_TOKEN` analogue).
    Job {
        /// The repository the job runs for.
        repository: RepoId,
        /// That repository's owner.
        owner: AccountId,
        /// At most this role (read or write).
        permission: Role,
    },
}

/// A verified, unexpired, unrevoked credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Its row id.
    pub id: CredentialId,
    /// The user acting through it (`None` for app installation and job tokens).
    pub user: Option<AccountId>,
    /// Login of that user, or a name for the app/job (for messages and audit).
    pub login: String,
    /// Whether the user is a site administrator.
    pub site_admin: bool,
    /// What it grants.
    pub grant: Grant,
    /// When it stops working, if ever.
    pub expires_at: Option<Millis>,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// A token.
    Token(Credential),
}

impl Principal {
    /// The user behind the principal, if any.
    pub fn user(&self) -> Option<AccountId> {
        match self {
            Principal::Anonymous => None,
            Principal::Token(c) => c.user,
        }
    }
}

/// How an account lets packages be created in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePolicy {
    /// Visibility of a new package.
    pub default_visibility: Visibility,
    /// Visibilities members (not owners) may create; empty: members may not create packages.
    pub member_visibilities: Vec<Visibility>,
}

impl Default for PackagePolicy {
    fn default() -> Self {
        PackagePolicy {
            default_visibility: Visibility::Private,
            member_visibilities: vec![
                Visibility::Private,
                Visibility::Internal,
                Visibility::Public,
            ],
        }
    }
}

/// The account a package name's first segment names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its id.
    pub id: AccountId,
    /// Its login.
    pub login: String,
    /// User or organization.
    pub kind: AccountKind,
    /// Whether classic tokens must be SSO-authorized for it.
    pub requires_sso: bool,
    /// Package creation settings.
    pub policy: PackagePolicy,
}

/// A source repository a package is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkedRepo {
    /// Its id.
    pub id: RepoId,
    /// Its visibility.
    pub visibility: Visibility,
}

/// An existing package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Its visibility.
    pub visibility: Visibility,
    /// The source repository it is linked to.
    pub linked: Option<LinkedRepo>,
    /// Whether access is inherited from `linked` (instead of the package's own roles).
    pub inherits: bool,
    /// Repositories whose job tokens may use it, with the role granted.
    pub job_access: Vec<(RepoId, Role)>,
    /// When it was deleted (restorable for 30 days; the name stays reserved meanwhile).
    pub deleted_at: Option<Millis>,
}

/// What the asking user is to the owner and the package, gathered by the store for the
/// credential's user (all empty for anonymous, app and job principals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relations {
    /// Membership in the owning organization.
    pub org_role: Option<OrgRole>,
    /// Highest of the user's own and their teams' roles on the package.
    pub package_role: Option<Role>,
    /// The user's role on the linked repository (collaborator, team, org owner).
    pub repo_role: Option<Role>,
}

/// What a request is about: a package name and what the store knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The package (registry repository) name.
    pub name: String,
    /// The account its first segment names; `None` when no such account exists.
    pub owner: Option<Owner>,
    /// The package, `None` when it does not exist yet.
    pub package: Option<Package>,
    /// The asking user's relations to it.
    pub relations: Relations,
}

impl Target {
    /// The same name as if it had no package: the owner and the user's membership stay,
    /// the package and the relations to it go. What a principal that may not see the package
    /// is answered from, so the answer is the one a free name gets.
    pub fn as_missing(&self) -> Target {
        Target {
            name: self.name.clone(),
            owner: self.owner.clone(),
            package: None,
            relations: Relations {
                org_role: self.relations.org_role,
                package_role: None,
                repo_role: None,
            },
        }
    }
}

/// Which live packages of one owner a principal may read, as a condition on each package
/// that a metadata store evaluates in its listing query, so a listing is paged and counted
/// where the rows are. [`super::decide::readable`] builds it for a principal;
/// [`Readable::admits`] evaluates it on a [`Target`] gathered for that principal's user,
/// and agrees with [`super::decide()`] on every live package (the access tests check it
/// over every combination they can build). The user-dependent conditions name their user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readable {
    /// Every package.
    Everything,
    /// No package.
    Nothing,
    /// Packages of this visibility.
    Visibility(Visibility),
    /// Packages named one of these (full names, `owner/…`).
    Named(Vec<String>),
    /// Packages linked to one of these repositories, inheriting their access or not.
    LinkedTo(Vec<RepoId>),
    /// Packages that let job tokens of this repository use them (with any role).
    JobAccess(RepoId),
    /// Packages inheriting their access from a linked repository of one of these
    /// visibilities.
    InheritsFrom(Vec<Visibility>),
    /// Packages inheriting their access from a linked repository of one of these
    /// visibilities on which `user` holds a role (as a collaborator, through a team, or by
    /// owning it or being an owner of the organization owning it).
    RepoRole {
        /// The user.
        user: AccountId,
        /// The linked repository's visibilities that count.
        repo_visibilities: Vec<Visibility>,
    },
    /// Packages keeping their own access (not linked, or linked without inheriting) on which
    /// this user or one of their teams holds a role.
    PackageRole(AccountId),
    /// Packages any of these admits.
    AnyOf(Vec<Readable>),
    /// Packages all of these admit.
    AllOf(Vec<Readable>),
}

impl Readable {
    /// Packages any of `conditions` admits, simplified: [`Readable::Nothing`] when there is
    /// none, [`Readable::Everything`] when one admits everything.
    pub fn any_of(conditions: Vec<Readable>) -> Readable {
        let mut kept = Vec::new();
        for condition in conditions {
            match condition {
                Readable::Everything => return Readable::Everything,
                Readable::Nothing => {}
                Readable::AnyOf(inner) => kept.extend(inner),
                other => kept.push(other),
            }
        }
        match kept.len() {
            0 => Readable::Nothing,
            1 => kept.remove(0),
            _ => Readable::AnyOf(kept),
        }
    }

    /// Packages all of `conditions` admit, simplified: [`Readable::Everything`] when there
    /// is none, [`Readable::Nothing`] when one admits nothing.
    pub fn all_of(conditions: Vec<Readable>) -> Readable {
        let mut kept = Vec::new();
        for condition in conditions {
            match condition {
                Readable::Nothing => return Readable::Nothing,
                Readable::Everything => {}
                Readable::AllOf(inner) => kept.extend(inner),
                other => kept.push(other),
            }
        }
        match kept.len() {
            0 => Readable::Everything,
            1 => kept.remove(0),
            _ => Readable::AllOf(kept),
        }
    }

    /// Whether the condition admits the package of `target`, whose relations were gathered
    /// for the user the condition names. A target without a package is never admitted.
    pub fn admits(&self, target: &Target) -> bool {
        let Some(package) = &target.package else {
            return false;
        };
        let inherited_from = |visibilities: &[Visibility]| {
            package.inherits
                && package
                    .linked
                    .is_some_and(|repo| visibilities.contains(&repo.visibility))
        };
        match self {
            Readable::Everything => true,
            Readable::Nothing => false,
            Readable::Visibility(visibility) => package.visibility == *visibility,
            Readable::Named(names) => names.contains(&target.name),
            Readable::LinkedTo(repos) => package.linked.is_some_and(|r| repos.contains(&r.id)),
            Readable::JobAccess(repo) => package.job_access.iter().any(|(r, _)| r == repo),
            Readable::InheritsFrom(visibilities) => inherited_from(visibilities),
            Readable::RepoRole {
                repo_visibilities, ..
            } => inherited_from(repo_visibilities) && target.relations.repo_role.is_some(),
            Readable::PackageRole(_) => {
                !(package.inherits && package.linked.is_some())
                    && target.relations.package_role.is_some()
            }
            Readable::AnyOf(conditions) => conditions.iter().any(|c| c.admits(target)),
            Readable::AllOf(conditions) => conditions.iter().all(|c| c.admits(target)),
        }
    }
}
