//! The permission function: the whole access model in one pure function, [`decide`].
//!
//! The answer's shape is part of the model: a principal that may not read a package learns
//! nothing about it (the answer a name without a package gets: not found, or for a push the
//! refusal to create it); one that may read but not act is told which role or scope it lacks;
//! anonymous callers are asked to authenticate.
//!
//! Who may manage accounts, repositories, package settings and tokens is decided beside it,
//! by the pure rules of [`super::rules`].

use super::model::{
    AccountKind, Action, Credential, Grant, OrgRole, Owner, Principal, Readable, RepoId, Role,
    Target, Visibility,
};

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Go ahead, creating the package first with this visibility, linked to `link`.
    Create {
        /// Visibility of the new package.
        visibility: Visibility,
        /// Repository to link it to (a job token's repository).
        link: Option<RepoId>,
    },
    /// No credentials, and anonymous may not do this: ask for a token.
    Unauthenticated,
    /// The principal may not know the package exists.
    NotFound,
    /// The principal sees the package but may not do this; the text says what is missing.
    Denied(String),
}

/// Whether `principal` may do `action` on `target`.
pub fn decide(principal: &Principal, target: &Target, action: Action) -> Decision {
    if target
        .package
        .as_ref()
        .is_some_and(|p| p.deleted_at.is_some())
    {
        return deleted(principal, target, action);
    }
    live(principal, target, action)
}

/// A deleted package is gone for the registry: pulls and deletes find nothing, as for a name
/// without a package. Its name stays reserved until it is restored or purged: whoever sees it
/// is told so on a push; others get the refusal they got before. Restoring it is managing
/// it, so `Manage` is decided as for the live package.
fn deleted(principal: &Principal, target: &Target, action: Action) -> Decision {
    match action {
        Action::Manage => live(principal, target, action),
        Action::Pull | Action::Delete if matches!(principal, Principal::Anonymous) => {
            Decision::Unauthenticated
        }
        Action::Pull | Action::Delete => Decision::NotFound,
        Action::Push => match live(principal, target, Action::Pull) {
            Decision::Allow => Decision::Denied(format!(
                "package `{}` was deleted; its name stays reserved for 30 days: an admin of the package can restore it (POST /api/v3/{{orgs|users}}/{}/packages/container/{}/restore)",
                target.name,
                first_segment(&target.name),
                target
                    .name
                    .split_once('/')
                    .map_or("", |(_, rest)| rest)
                    .replace('/', "%2F"),
            )),
            _ => live(principal, target, action),
        },
    }
}

fn live(principal: &Principal, target: &Target, action: Action) -> Decision {
    let Principal::Token(credential) = principal else {
        return anonymous(target, action);
    };
    let Some(owner) = &target.owner else {
        return match action {
            Action::Push => Decision::Denied(format!(
                "there is no user or organization named `{}`; packages live under an existing account",
                first_segment(&target.name)
            )),
            Action::Pull | Action::Delete | Action::Manage => Decision::NotFound,
        };
    };
    if sso_closed(credential, owner) {
        // The organization's packages are closed to the token, but what anyone may pull
        // stays pullable: the token sees no less than no token.
        let public = target
            .package
            .as_ref()
            .is_some_and(|p| p.visibility == Visibility::Public);
        return match action {
            Action::Pull if public => Decision::Allow,
            _ if public => Decision::Denied(format!(
                "the token is not authorized for `{}`, which requires SSO authorization of classic tokens; authorize it (PUT /api/v3/user/tokens/{{id}}/sso/{})",
                owner.login, owner.login
            )),
            _ => Decision::NotFound,
        };
    }
    if target.package.is_none() {
        // Whoever may create the package may also look into it before its first push (a
        // client checks which blobs exist before uploading them): it is empty.
        let creation = create(credential, target);
        return match (action, creation) {
            (Action::Push, creation) => creation,
            (Action::Pull, Decision::Create { .. }) => Decision::Allow,
            (Action::Pull | Action::Delete | Action::Manage, _) => Decision::NotFound,
        };
    }
    if reach(credential, target, Action::Pull).is_err() {
        // A push may not tell a package that exists from a free name either: whoever may not
        // create packages here is refused exactly as for a free name.
        //
        // Whoever may create them (an organization member, a job of one of its repositories)
        // cannot be answered as for a free name: that answer is "created" (202), and making
        // the push succeed would hand them the package. Any refusal says the name is taken,
        // as GHCR's does (it refuses a package that is not theirs); what it may not add is
        // anything about the package. So they get what pulling it gets, 404 NAME_UNKNOWN,
        // with no word on its visibility, its roles or whether they could ask for one (a 403
        // naming a missing role would). Everything else they can ask of it (pull, blobs,
        // tags, `/token` grants, settings) answers as for a free name.
        if action == Action::Push
            && let refusal @ Decision::Denied(_) = create(credential, target)
        {
            return refusal;
        }
        return Decision::NotFound;
    }
    match reach(credential, target, action) {
        Ok(()) => Decision::Allow,
        Err(missing) => Decision::Denied(missing),
    }
}

fn anonymous(target: &Target, action: Action) -> Decision {
    let public = target
        .package
        .as_ref()
        .is_some_and(|p| p.visibility == Visibility::Public);
    if public && action == Action::Pull {
        Decision::Allow
    } else {
        Decision::Unauthenticated
    }
}

/// Whether `credential` reaches `action` on the existing package of `target`; else what is
/// missing, in words.
fn reach(credential: &Credential, target: &Target, action: Action) -> Result<(), String> {
    let package = target
        .package
        .as_ref()
        .expect("reach is asked about existing packages");
    let needed = action.role();
    // Anyone who signed in reads public packages, and users read internal ones (with a
    // token that reads packages at all: a classic token's read:packages, a fine-grained
    // token's selection).
    let mut floor = match package.visibility {
        Visibility::Public => Some(Role::Read),
        Visibility::Internal if credential.user.is_some() => Some(Role::Read),
        _ => None,
    };
    let granted = match &credential.grant {
        Grant::Classic { scopes, .. } => {
            let role = user_role(credential, target, scopes.repo());
            // As on GitHub, deleting takes read:packages (or write:packages) besides
            // delete:packages.
            let scope_ok = match action {
                Action::Pull => scopes.may_read(),
                Action::Push => scopes.write_packages(),
                Action::Delete => scopes.delete_packages() && scopes.may_read(),
                Action::Manage => scopes.write_packages(),
            };
            // Only what anyone may pull is pulled without read:packages: an internal
            // package is for the instance's users, not for every token they hold (`repo`
            // alone reads no package, as on GitHub).
            if !scope_ok && action == Action::Pull && package.visibility != Visibility::Public {
                return Err("the token lacks the read:packages scope".into());
            }
            if !scope_ok && action != Action::Pull {
                return Err(format!(
                    "the token lacks the {} scope",
                    match action {
                        Action::Push | Action::Manage => "write:packages",
                        _ if !scopes.delete_packages() => "delete:packages",
                        _ => "read:packages, which deleting needs with delete:packages",
                    }
                ));
            }
            role
        }
        Grant::FineGrained {
            owner,
            packages,
            repositories,
            permission,
            private_repositories,
        } => {
            let selected = target.owner.as_ref().is_some_and(|o| o.id == *owner)
                && (packages.iter().any(|p| p == &target.name)
                    || package
                        .linked
                        .is_some_and(|repo| repositories.contains(&repo.id)));
            if selected {
                user_role(credential, target, *private_repositories).map(|r| r.min(*permission))
            } else {
                // A fine-grained token reaches only what it selects: the internal floor
                // is for the packages it selects, or any internal package of the instance
                // (of SSO organizations too) would be read through it.
                if package.visibility != Visibility::Public {
                    floor = None;
                }
                None
            }
        }
        Grant::App {
            account,
            repositories,
            permission,
        } => {
            let installed = target.owner.as_ref().is_some_and(|o| o.id == *account);
            let selected = match repositories {
                None => true,
                Some(repos) => package.linked.is_some_and(|r| repos.contains(&r.id)),
            };
            (installed && selected).then_some(*permission)
        }
        Grant::Job {
            repository,
            permission,
            ..
        } => {
            // The link names the repository, so its jobs read the package; they write it only
            // when the package grants the repository write: by inheriting its access, or by
            // Actions access (given automatically to the repository whose job created the
            // package). A package linked but keeping its own access is not the repository's
            // to overwrite, as on GHCR.
            let through_link = package
                .linked
                .is_some_and(|r| r.id == *repository)
                .then(|| {
                    if package.inherits {
                        *permission
                    } else {
                        Role::Read.min(*permission)
                    }
                });
            let granted = package
                .job_access
                .iter()
                .find(|(repo, _)| repo == repository)
                .map(|(_, role)| (*role).min(*permission));
            through_link.max(granted)
        }
    };
    let role = granted.max(floor);
    match role {
        Some(role) if role >= needed => Ok(()),
        Some(role) => Err(format!(
            "{} has the {} role on this package and {} needs {}",
            who(credential),
            role.as_str(),
            action.verb(),
            needed.as_str()
        )),
        None => Err(format!("{} has no access to this package", who(credential))),
    }
}

/// The role the credential's user holds on the package, before the token's own limits.
/// `via_private_repo` says whether access inherited from a non-public repository counts
/// (classic tokens need the `repo` scope for it).
fn user_role(credential: &Credential, target: &Target, via_private_repo: bool) -> Option<Role> {
    credential.user?;
    if credential.site_admin || owns(credential, target) {
        return Some(Role::Admin);
    }
    let package = target.package.as_ref()?;
    let relations = &target.relations;
    match package.linked {
        Some(repo) if package.inherits => {
            let from_visibility = match repo.visibility {
                Visibility::Public | Visibility::Internal => Some(Role::Read),
                Visibility::Private => None,
            };
            let from_role = relations
                .repo_role
                .filter(|_| via_private_repo || repo.visibility == Visibility::Public);
            from_role.max(from_visibility)
        }
        _ => relations.package_role,
    }
}

/// Whether `principal` may know that the package of `target` exists: there is one and the
/// principal may read it (a deleted one: could read it, as its admins may restore it).
pub fn sees(principal: &Principal, target: &Target) -> bool {
    target.package.is_some() && live(principal, target, Action::Pull) == Decision::Allow
}

/// Whether `principal` administers the account a package belongs to: a site administrator,
/// the owning user, or an owner of the owning organization.
pub fn administers_owner(principal: &Principal, target: &Target) -> bool {
    match principal {
        Principal::Token(credential) => credential.site_admin || owns(credential, target),
        Principal::Anonymous => false,
    }
}

/// Whether the credential's user is the owning user or an owner of the owning organization.
fn owns(credential: &Credential, target: &Target) -> bool {
    target
        .owner
        .as_ref()
        .is_some_and(|owner| owns_account(credential, owner, target.relations.org_role))
}

/// Whether the credential's user is `owner` or, `owner` being an organization, an owner of
/// it (`org_role`: the user's membership in it).
fn owns_account(credential: &Credential, owner: &Owner, org_role: Option<OrgRole>) -> bool {
    match owner.kind {
        AccountKind::User => credential.user == Some(owner.id),
        AccountKind::Organization => org_role == Some(OrgRole::Owner),
    }
}

/// Whether `owner` is closed to the credential: a classic token not SSO-authorized for an
/// organization that requires it (site administrators aside). Its public packages stay
/// pullable.
fn sso_closed(credential: &Credential, owner: &Owner) -> bool {
    matches!(&credential.grant, Grant::Classic { sso_authorized, .. }
        if owner.requires_sso
            && !credential.site_admin
            && !sso_authorized.contains(&owner.id))
}

/// Which live packages of `owner` `principal` may pull, as a condition a store evaluates in a
/// listing's query (`org_role`: the principal's user's membership in `owner`, when it is an
/// organization). It admits exactly the packages [`decide`] allows `Action::Pull` on: the
/// same rules as [`live`] and [`reach`] with the package left open, each fact about the
/// package (its visibility, link, job access, the user's roles on it) becoming a condition
/// on the package's row. The access tests compare the two over every combination of
/// principal, owner and package they build; a change to one is a change to both.
pub fn readable(principal: &Principal, owner: &Owner, org_role: Option<OrgRole>) -> Readable {
    let public = Readable::Visibility(Visibility::Public);
    let Principal::Token(credential) = principal else {
        return public;
    };
    if sso_closed(credential, owner) {
        return public;
    }
    // The floor of `reach`: public packages, and internal ones for users.
    let internal = if credential.user.is_some() {
        Readable::Visibility(Visibility::Internal)
    } else {
        Readable::Nothing
    };
    let granted = match &credential.grant {
        Grant::Classic { scopes, .. } => {
            if !scopes.may_read() {
                return public;
            }
            user_role_readable(credential, owner, org_role, scopes.repo())
        }
        Grant::FineGrained {
            owner: token_owner,
            packages,
            repositories,
            private_repositories,
            ..
        } => {
            if *token_owner != owner.id {
                return public;
            }
            // What it does not select it reads only when public: the internal floor too is
            // for what it selects.
            let selected = Readable::any_of(vec![
                Readable::Named(packages.clone()),
                Readable::LinkedTo(repositories.clone()),
            ]);
            return Readable::any_of(vec![
                public,
                Readable::all_of(vec![
                    selected,
                    Readable::any_of(vec![
                        internal,
                        user_role_readable(credential, owner, org_role, *private_repositories),
                    ]),
                ]),
            ]);
        }
        Grant::App {
            account,
            repositories,
            ..
        } => {
            if *account != owner.id {
                Readable::Nothing
            } else {
                match repositories {
                    None => Readable::Everything,
                    Some(repos) => Readable::LinkedTo(repos.clone()),
                }
            }
        }
        Grant::Job { repository, .. } => Readable::any_of(vec![
            Readable::LinkedTo(vec![*repository]),
            Readable::JobAccess(*repository),
        ]),
    };
    Readable::any_of(vec![public, internal, granted])
}

/// The packages of `owner` on which [`user_role`] gives the credential's user a role.
fn user_role_readable(
    credential: &Credential,
    owner: &Owner,
    org_role: Option<OrgRole>,
    via_private_repo: bool,
) -> Readable {
    let Some(user) = credential.user else {
        return Readable::Nothing;
    };
    if credential.site_admin || owns_account(credential, owner, org_role) {
        return Readable::Everything;
    }
    Readable::any_of(vec![
        Readable::InheritsFrom(vec![Visibility::Public, Visibility::Internal]),
        Readable::RepoRole {
            user,
            repo_visibilities: if via_private_repo {
                vec![
                    Visibility::Private,
                    Visibility::Internal,
                    Visibility::Public,
                ]
            } else {
                vec![Visibility::Public]
            },
        },
        Readable::PackageRole(user),
    ])
}

/// A push to a package that does not exist yet: may the credential create it, and how.
fn create(credential: &Credential, target: &Target) -> Decision {
    let owner = target
        .owner
        .as_ref()
        .expect("create is asked about existing owners");
    let policy = &owner.policy;
    let denied = |why: &str| {
        Decision::Denied(format!(
            "{} cannot create packages in `{}`: {why}",
            who(credential),
            owner.login
        ))
    };
    let as_user = |visibility_for_members: bool| -> Result<Visibility, String> {
        if credential.site_admin || owns(credential, target) {
            return Ok(policy.default_visibility);
        }
        if owner.kind == AccountKind::Organization
            && target.relations.org_role == Some(OrgRole::Member)
            && visibility_for_members
        {
            let allowed = &policy.member_visibilities;
            if allowed.contains(&policy.default_visibility) {
                return Ok(policy.default_visibility);
            }
            if let Some(most_private) = allowed.iter().min() {
                return Ok(*most_private);
            }
            return Err("the organization does not let members create packages".into());
        }
        Err("only its owners and members may".into())
    };
    match &credential.grant {
        Grant::Classic { scopes, .. } => {
            if !scopes.write_packages() {
                return denied("the token lacks the write:packages scope");
            }
            match as_user(true) {
                Ok(visibility) => Decision::Create {
                    visibility,
                    link: None,
                },
                Err(why) => denied(&why),
            }
        }
        Grant::FineGrained {
            owner: token_owner,
            packages,
            permission,
            ..
        } => {
            if *token_owner != owner.id || !packages.contains(&target.name) {
                return denied("the fine-grained token does not select this package");
            }
            if *permission < Role::Write {
                return denied("the fine-grained token has packages: read");
            }
            match as_user(true) {
                Ok(visibility) => Decision::Create {
                    visibility,
                    link: None,
                },
                Err(why) => denied(&why),
            }
        }
        Grant::App {
            account,
            repositories,
            permission,
        } => {
            if *account != owner.id {
                return denied("the app is not installed on this account");
            }
            if repositories.is_some() {
                return denied(
                    "the app installation selects repositories, so it reaches only packages linked to them",
                );
            }
            if *permission < Role::Write {
                return denied("the app installation has packages: read");
            }
            Decision::Create {
                visibility: policy.default_visibility,
                link: None,
            }
        }
        Grant::Job {
            repository,
            owner: repo_owner,
            permission,
        } => {
            if *repo_owner != owner.id {
                return denied("a job token creates packages only under its repository's owner");
            }
            if *permission < Role::Write {
                return denied("the job token has packages: read");
            }
            Decision::Create {
                visibility: policy.default_visibility,
                link: Some(*repository),
            }
        }
    }
}

fn who(credential: &Credential) -> String {
    match credential.grant {
        Grant::App { .. } => format!("app installation token `{}`", credential.login),
        Grant::Job { .. } => format!("job token of `{}`", credential.login),
        _ => format!("`{}`", credential.login),
    }
}

fn first_segment(name: &str) -> &str {
    name.split('/').next().unwrap_or(name)
}
