//! The AccessStore contract, exercised against a fresh SQLite database per test.

use berth_core::RepoName;
use berth_core::access::store::{
    AppStore, Created, CredentialStore, DirectoryStore, Grantee, NewCredential, NewUser,
    PackageStore, Resolved,
};
use berth_core::access::token::TokenKind;
use berth_core::access::{
    AccountId, AccountKind, Credential, Grant, LinkedRepo, OrgRole, Owner, Package, PackagePolicy,
    Principal, Relations, RepoId, Role, Scopes, Visibility,
};
use berth_core::ids::TeamId;
use berth_core::ids::{CredentialId, InstallationId};
use berth_core::ports::{ListingStore, ManifestStore};
use berth_meta_sqlite::SqliteMetadataStore;
use tempfile::TempDir;

async fn store() -> (TempDir, SqliteMetadataStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteMetadataStore::open(&dir.path().join("meta.db"))
        .await
        .expect("open");
    (dir, store)
}

fn new_user(login: &str) -> NewUser {
    NewUser {
        login: login.to_owned(),
        name: None,
        email: None,
        password_hash: None,
        site_admin: false,
    }
}

async fn user(s: &SqliteMetadataStore, login: &str) -> AccountId {
    match s.create_user(&new_user(login), 1_000).await.unwrap() {
        Created::New(id) => id,
        Created::Taken => panic!("login {login} taken"),
    }
}

async fn org(s: &SqliteMetadataStore, login: &str, owner: AccountId) -> AccountId {
    match s.create_org(login, None, owner, 1_000).await.unwrap() {
        Created::New(id) => id,
        Created::Taken => panic!("login {login} taken"),
    }
}

async fn repo(s: &SqliteMetadataStore, owner: AccountId, name: &str, v: Visibility) -> RepoId {
    match s.create_repo(owner, name, v, 1_000).await.unwrap() {
        Created::New(id) => id,
        Created::Taken => panic!("repository {name} taken"),
    }
}

async fn team(s: &SqliteMetadataStore, org: AccountId, slug: &str) -> i64 {
    match s.create_team(org, slug, slug).await.unwrap() {
        Created::New(id) => id.0,
        Created::Taken => panic!("team {slug} taken"),
    }
}

fn name(text: &str) -> RepoName {
    text.parse().expect("package name")
}

fn classic(scopes: &str) -> Grant {
    Grant::Classic {
        scopes: scopes.parse().unwrap(),
        sso_authorized: Vec::new(),
    }
}

fn credential(
    kind: TokenKind,
    secret: &str,
    user: Option<AccountId>,
    grant: Grant,
) -> NewCredential {
    NewCredential {
        kind,
        hash: secret.as_bytes().to_vec(),
        user,
        note: format!("note of {secret}"),
        grant,
        expires_at: None,
        created_at: 1_000,
    }
}

fn valid(resolved: Resolved) -> Credential {
    match resolved {
        Resolved::Valid(Principal::Token(credential)) => credential,
        other => panic!("expected a valid token, got {other:?}"),
    }
}

// --- accounts, organizations, teams, repositories ---

#[tokio::test]
async fn logins_are_unique_case_insensitively_and_kept_as_given() {
    let (_dir, s) = store().await;
    let alice = NewUser {
        login: "Alice".to_owned(),
        name: Some("Alice A.".to_owned()),
        email: Some("alice@example.com".to_owned()),
        password_hash: Some("$argon2id$x".to_owned()),
        site_admin: true,
    };
    let Created::New(id) = s.create_user(&alice, 5_000).await.unwrap() else {
        panic!("first creation must succeed");
    };
    assert_eq!(
        s.create_user(&new_user("alice"), 6_000).await.unwrap(),
        Created::Taken
    );
    assert_eq!(
        s.create_org("ALICE", None, id, 6_000).await.unwrap(),
        Created::Taken,
        "users and organizations share one namespace"
    );

    let account = s
        .account("aLiCe")
        .await
        .unwrap()
        .expect("found by any case");
    assert_eq!(account.id, id);
    assert_eq!(account.login, "Alice");
    assert_eq!(account.kind, AccountKind::User);
    assert_eq!(account.name.as_deref(), Some("Alice A."));
    assert_eq!(account.email.as_deref(), Some("alice@example.com"));
    assert_eq!(
        s.password_hash("alice").await.unwrap().as_deref(),
        Some("$argon2id$x"),
        "found case-insensitively, and kept off the account"
    );
    assert!(account.site_admin);
    assert!(!account.requires_sso);
    assert_eq!(account.policy, PackagePolicy::default());
    assert_eq!(account.created_at, 5_000);
    assert_eq!(s.account_by_id(id).await.unwrap(), Some(account));
    assert_eq!(s.account("bob").await.unwrap(), None);
    assert_eq!(s.account_by_id(AccountId(id.0 + 100)).await.unwrap(), None);
}

#[tokio::test]
async fn creating_an_org_makes_its_creator_an_owner() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let Created::New(acme) = s
        .create_org("Acme", Some("Acme Inc."), alice, 2_000)
        .await
        .unwrap()
    else {
        panic!("org creation must succeed");
    };
    let account = s.account("acme").await.unwrap().unwrap();
    assert_eq!(account.kind, AccountKind::Organization);
    assert_eq!(account.name.as_deref(), Some("Acme Inc."));
    assert_eq!(account.created_at, 2_000);
    assert_eq!(
        s.membership(acme, alice).await.unwrap(),
        Some(OrgRole::Owner)
    );
    assert_eq!(s.membership(acme, bob).await.unwrap(), None);

    s.set_membership(acme, bob, Some(OrgRole::Member))
        .await
        .unwrap();
    assert_eq!(
        s.membership(acme, bob).await.unwrap(),
        Some(OrgRole::Member)
    );
    s.set_membership(acme, bob, Some(OrgRole::Owner))
        .await
        .unwrap();
    assert_eq!(s.membership(acme, bob).await.unwrap(), Some(OrgRole::Owner));
    assert_eq!(
        s.create_org("acme", None, bob, 3_000).await.unwrap(),
        Created::Taken
    );
}

#[tokio::test]
async fn policy_and_sso_settings_round_trip() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    let policy = PackagePolicy {
        default_visibility: Visibility::Internal,
        member_visibilities: Vec::new(),
    };
    s.set_package_policy(acme, &policy).await.unwrap();
    s.set_requires_sso(acme, true).await.unwrap();
    let account = s.account_by_id(acme).await.unwrap().unwrap();
    assert_eq!(account.policy, policy);
    assert!(account.requires_sso);

    let policy = PackagePolicy {
        default_visibility: Visibility::Public,
        member_visibilities: vec![Visibility::Public, Visibility::Private],
    };
    s.set_package_policy(acme, &policy).await.unwrap();
    s.set_requires_sso(acme, false).await.unwrap();
    let account = s.account_by_id(acme).await.unwrap().unwrap();
    assert_eq!(account.policy, policy);
    assert!(!account.requires_sso);
}

#[tokio::test]
async fn removing_a_membership_removes_the_orgs_team_memberships_only() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let acme = org(&s, "acme", alice).await;
    let other = org(&s, "other", alice).await;
    s.set_membership(acme, bob, Some(OrgRole::Member))
        .await
        .unwrap();
    s.set_membership(other, bob, Some(OrgRole::Member))
        .await
        .unwrap();
    let acme_team = team(&s, acme, "core").await;
    let other_team = team(&s, other, "core").await;
    s.set_team_member(TeamId(acme_team), bob, true)
        .await
        .unwrap();
    s.set_team_member(TeamId(acme_team), bob, true)
        .await
        .unwrap(); // idempotent
    s.set_team_member(TeamId(other_team), bob, true)
        .await
        .unwrap();
    for (owner, package, t) in [
        (acme, "acme/app", acme_team),
        (other, "other/app", other_team),
    ] {
        s.create_package(
            &name(package),
            owner,
            Visibility::Private,
            None,
            None,
            1_000,
        )
        .await
        .unwrap();
        assert!(
            s.set_package_role(&name(package), Grantee::Team(TeamId(t)), Some(Role::Write))
                .await
                .unwrap()
        );
    }
    let role = |t: berth_core::access::Target| t.relations.package_role;
    assert_eq!(
        role(s.target(&name("acme/app"), Some(bob)).await.unwrap()),
        Some(Role::Write)
    );

    s.set_membership(acme, bob, None).await.unwrap();
    assert_eq!(s.membership(acme, bob).await.unwrap(), None);
    let target = s.target(&name("acme/app"), Some(bob)).await.unwrap();
    assert_eq!(target.relations, Relations::default(), "team role gone");
    assert_eq!(
        role(s.target(&name("other/app"), Some(bob)).await.unwrap()),
        Some(Role::Write),
        "teams of other organizations are kept"
    );
    assert_eq!(
        s.membership(other, bob).await.unwrap(),
        Some(OrgRole::Member)
    );

    s.set_team_member(TeamId(other_team), bob, false)
        .await
        .unwrap();
    assert_eq!(
        role(s.target(&name("other/app"), Some(bob)).await.unwrap()),
        None
    );
}

#[tokio::test]
async fn team_slugs_are_unique_per_org_case_insensitively() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    let other = org(&s, "other", alice).await;
    let core = team(&s, acme, "Core").await;
    assert_eq!(
        s.create_team(acme, "core", "Core again").await.unwrap(),
        Created::Taken
    );
    let elsewhere = team(&s, other, "core").await;
    assert_ne!(core, elsewhere);
    assert_eq!(s.team(acme, "CORE").await.unwrap(), Some(TeamId(core)));
    assert_eq!(
        s.team(other, "core").await.unwrap(),
        Some(TeamId(elsewhere))
    );
    assert_eq!(s.team(acme, "web").await.unwrap(), None);
}

#[tokio::test]
async fn repositories_are_unique_per_owner_and_found_case_insensitively() {
    let (_dir, s) = store().await;
    let alice = user(&s, "Alice").await;
    let bob = user(&s, "bob").await;
    let Created::New(widget) = s
        .create_repo(alice, "Widget", Visibility::Internal, 7_000)
        .await
        .unwrap()
    else {
        panic!("repository creation must succeed");
    };
    assert_eq!(
        s.create_repo(alice, "widget", Visibility::Public, 8_000)
            .await
            .unwrap(),
        Created::Taken
    );
    let bobs = repo(&s, bob, "widget", Visibility::Public).await;
    assert_ne!(bobs, widget);

    let found = s.repo("ALICE", "wIdGeT").await.unwrap().expect("found");
    assert_eq!(found.id, widget);
    assert_eq!(found.owner, alice);
    assert_eq!(found.owner_login, "Alice");
    assert_eq!(found.name, "Widget");
    assert_eq!(found.visibility, Visibility::Internal);
    assert_eq!(found.created_at, 7_000);
    assert_eq!(s.repo_by_id(widget).await.unwrap(), Some(found));
    assert_eq!(s.repo("bob", "widget").await.unwrap().unwrap().id, bobs);
    assert_eq!(s.repo("alice", "gadget").await.unwrap(), None);
    assert_eq!(s.repo("carol", "widget").await.unwrap(), None);
    assert_eq!(s.repo_by_id(RepoId(bobs.0 + 100)).await.unwrap(), None);
}

// --- target ---

#[tokio::test]
async fn target_without_an_owner_account_is_empty() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let target = s
        .target(&name("ghost/app/worker"), Some(alice))
        .await
        .unwrap();
    assert_eq!(target.name, "ghost/app/worker");
    assert_eq!(target.owner, None);
    assert_eq!(target.package, None);
    assert_eq!(target.relations, Relations::default());
}

#[tokio::test]
async fn target_with_an_owner_but_no_package() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let acme = org(&s, "Acme", alice).await;
    s.set_membership(acme, bob, Some(OrgRole::Member))
        .await
        .unwrap();
    let policy = PackagePolicy {
        default_visibility: Visibility::Internal,
        member_visibilities: vec![Visibility::Private],
    };
    s.set_package_policy(acme, &policy).await.unwrap();
    s.set_requires_sso(acme, true).await.unwrap();

    let target = s.target(&name("acme/new"), Some(bob)).await.unwrap();
    assert_eq!(
        target.owner,
        Some(Owner {
            id: acme,
            login: "Acme".to_owned(),
            kind: AccountKind::Organization,
            requires_sso: true,
            policy,
        })
    );
    assert_eq!(target.package, None);
    assert_eq!(target.relations.org_role, Some(OrgRole::Member));
    assert_eq!(
        s.target(&name("acme/new"), Some(alice))
            .await
            .unwrap()
            .relations
            .org_role,
        Some(OrgRole::Owner)
    );
    assert_eq!(
        s.target(&name("acme/new"), None).await.unwrap().relations,
        Relations::default()
    );

    // A user account as owner: no org role, even if a membership row names it.
    s.set_membership(bob, alice, Some(OrgRole::Owner))
        .await
        .unwrap();
    let target = s.target(&name("bob/tool"), Some(alice)).await.unwrap();
    assert_eq!(target.relations, Relations::default());
    let target = s.target(&name("bob/tool"), Some(bob)).await.unwrap();
    let owner = target.owner.expect("bob owns it");
    assert_eq!((owner.id, owner.kind), (bob, AccountKind::User));
    assert_eq!(owner.policy, PackagePolicy::default());
    assert_eq!(target.relations, Relations::default());
}

#[tokio::test]
async fn target_describes_the_package_its_link_and_job_access() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    let src = repo(&s, acme, "src", Visibility::Internal).await;
    let ci = repo(&s, acme, "ci", Visibility::Private).await;
    let deploy = repo(&s, acme, "deploy", Visibility::Public).await;
    let app = name("acme/app");

    assert!(
        !s.set_package_visibility(&app, Visibility::Public)
            .await
            .unwrap()
    );
    assert!(!s.link_package(&app, Some(src), true).await.unwrap());
    assert!(
        !s.set_package_job_access(&app, ci, Some(Role::Read))
            .await
            .unwrap()
    );
    assert!(
        !s.set_package_role(&app, Grantee::User(alice), Some(Role::Read))
            .await
            .unwrap()
    );
    assert_eq!(s.target(&app, None).await.unwrap().package, None);

    s.create_package(&app, acme, Visibility::Private, None, None, 1_000)
        .await
        .unwrap();
    assert_eq!(
        s.target(&app, None).await.unwrap().package,
        Some(Package {
            visibility: Visibility::Private,
            linked: None,
            inherits: false,
            job_access: Vec::new(),
            deleted_at: None,
        })
    );

    assert!(
        s.set_package_visibility(&app, Visibility::Public)
            .await
            .unwrap()
    );
    assert!(s.link_package(&app, Some(src), false).await.unwrap());
    assert!(
        s.set_package_job_access(&app, deploy, Some(Role::Write))
            .await
            .unwrap()
    );
    assert!(
        s.set_package_job_access(&app, ci, Some(Role::Admin))
            .await
            .unwrap()
    );
    assert!(
        s.set_package_job_access(&app, ci, Some(Role::Read))
            .await
            .unwrap()
    );
    let target = s.target(&app, None).await.unwrap();
    assert_eq!(target.owner.map(|o| o.id), Some(acme));
    assert_eq!(
        target.package,
        Some(Package {
            visibility: Visibility::Public,
            linked: Some(LinkedRepo {
                id: src,
                visibility: Visibility::Internal,
            }),
            inherits: false,
            job_access: vec![(ci, Role::Read), (deploy, Role::Write)],
            deleted_at: None,
        })
    );

    assert!(s.link_package(&app, Some(ci), true).await.unwrap());
    assert!(s.set_package_job_access(&app, ci, None).await.unwrap());
    let package = s.target(&app, None).await.unwrap().package.unwrap();
    assert_eq!(
        package.linked,
        Some(LinkedRepo {
            id: ci,
            visibility: Visibility::Private,
        })
    );
    assert!(package.inherits);
    assert_eq!(package.job_access, vec![(deploy, Role::Write)]);

    assert!(s.link_package(&app, None, false).await.unwrap());
    let package = s.target(&app, None).await.unwrap().package.unwrap();
    assert_eq!((package.linked, package.inherits), (None, false));
}

#[tokio::test]
async fn package_role_is_the_highest_of_the_users_and_their_teams() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let carol = user(&s, "carol").await;
    let acme = org(&s, "acme", alice).await;
    let readers = team(&s, acme, "readers").await;
    let writers = team(&s, acme, "writers").await;
    let app = name("acme/app");
    let other = name("acme/other");
    for package in [&app, &other] {
        s.create_package(package, acme, Visibility::Private, None, None, 1_000)
            .await
            .unwrap();
    }
    let role = async |user| {
        s.target(&app, Some(user))
            .await
            .unwrap()
            .relations
            .package_role
    };

    assert_eq!(role(bob).await, None);
    s.set_package_role(&app, Grantee::User(bob), Some(Role::Read))
        .await
        .unwrap();
    assert_eq!(role(bob).await, Some(Role::Read));
    s.set_package_role(&app, Grantee::User(bob), Some(Role::Write))
        .await
        .unwrap();
    assert_eq!(role(bob).await, Some(Role::Write), "a role is replaced");

    s.set_team_member(TeamId(readers), bob, true).await.unwrap();
    s.set_team_member(TeamId(writers), carol, true)
        .await
        .unwrap();
    s.set_package_role(&app, Grantee::Team(TeamId(readers)), Some(Role::Read))
        .await
        .unwrap();
    s.set_package_role(&app, Grantee::Team(TeamId(writers)), Some(Role::Write))
        .await
        .unwrap();
    assert_eq!(role(bob).await, Some(Role::Write), "own role beats team's");
    assert_eq!(role(carol).await, Some(Role::Write), "team role alone");

    s.set_package_role(&app, Grantee::Team(TeamId(readers)), Some(Role::Admin))
        .await
        .unwrap();
    assert_eq!(role(bob).await, Some(Role::Admin), "team role beats own");

    s.set_team_member(TeamId(writers), carol, false)
        .await
        .unwrap();
    s.set_team_member(TeamId(readers), carol, true)
        .await
        .unwrap();
    assert_eq!(role(carol).await, Some(Role::Admin));
    s.set_package_role(&app, Grantee::Team(TeamId(readers)), None)
        .await
        .unwrap();
    s.set_package_role(&app, Grantee::User(bob), None)
        .await
        .unwrap();
    assert_eq!(role(bob).await, None);
    assert_eq!(role(carol).await, None);

    // Roles are per package, and nobody's roles leak to anonymous callers.
    s.set_package_role(&other, Grantee::User(bob), Some(Role::Admin))
        .await
        .unwrap();
    assert_eq!(role(bob).await, None);
    let target = s.target(&other, None).await.unwrap();
    assert_eq!(target.relations, Relations::default());
}

#[tokio::test]
async fn repo_role_comes_from_collaborators_teams_and_ownership() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let carol = user(&s, "carol").await;
    let dave = user(&s, "dave").await;
    let acme = org(&s, "acme", alice).await;
    s.set_membership(acme, dave, Some(OrgRole::Member))
        .await
        .unwrap();
    let src = repo(&s, acme, "src", Visibility::Private).await;
    let other_src = repo(&s, acme, "other", Visibility::Private).await;
    let devs = team(&s, acme, "devs").await;
    let app = name("acme/app");
    s.create_package(&app, acme, Visibility::Private, Some(src), None, 1_000)
        .await
        .unwrap();
    let role = async |user| {
        s.target(&app, Some(user))
            .await
            .unwrap()
            .relations
            .repo_role
    };

    assert_eq!(
        role(alice).await,
        Some(Role::Admin),
        "owner of the owning org"
    );
    assert_eq!(role(dave).await, None, "members are not admins");
    assert_eq!(role(bob).await, None);

    s.set_collaborator(src, bob, Some(Role::Read))
        .await
        .unwrap();
    s.set_collaborator(other_src, carol, Some(Role::Admin))
        .await
        .unwrap();
    assert_eq!(role(bob).await, Some(Role::Read), "collaborator");
    assert_eq!(role(carol).await, None, "a role on another repository");

    s.set_team_member(TeamId(devs), bob, true).await.unwrap();
    s.set_team_member(TeamId(devs), carol, true).await.unwrap();
    s.set_team_repo(TeamId(devs), src, Some(Role::Write))
        .await
        .unwrap();
    assert_eq!(
        role(bob).await,
        Some(Role::Write),
        "team beats collaborator"
    );
    assert_eq!(role(carol).await, Some(Role::Write), "team");

    s.set_collaborator(src, bob, Some(Role::Admin))
        .await
        .unwrap();
    assert_eq!(
        role(bob).await,
        Some(Role::Admin),
        "collaborator beats team"
    );
    s.set_collaborator(src, bob, None).await.unwrap();
    s.set_team_repo(TeamId(devs), src, None).await.unwrap();
    assert_eq!(role(bob).await, None);
    assert_eq!(role(carol).await, None);

    s.set_membership(acme, dave, Some(OrgRole::Owner))
        .await
        .unwrap();
    assert_eq!(role(dave).await, Some(Role::Admin), "promoted to owner");

    // A repository owned by a user account: its owner is admin, even on a package of an
    // organization linked to it.
    let bobs = repo(&s, bob, "tool", Visibility::Public).await;
    let tool = name("acme/tool");
    s.create_package(&tool, acme, Visibility::Private, Some(bobs), None, 1_000)
        .await
        .unwrap();
    let target = s.target(&tool, Some(bob)).await.unwrap();
    assert_eq!(target.relations.repo_role, Some(Role::Admin));
    assert_eq!(target.relations.org_role, None);
    let target = s.target(&tool, Some(alice)).await.unwrap();
    assert_eq!(
        target.relations.repo_role, None,
        "acme's owner has no say on bob's repo"
    );
    assert_eq!(target.relations.org_role, Some(OrgRole::Owner));
    assert_eq!(
        s.target(&tool, None).await.unwrap().relations,
        Relations::default()
    );

    // No linked repository: no repository role.
    let plain = name("acme/plain");
    s.create_package(&plain, acme, Visibility::Private, None, None, 1_000)
        .await
        .unwrap();
    assert_eq!(
        s.target(&plain, Some(alice))
            .await
            .unwrap()
            .relations
            .repo_role,
        None
    );

    // The owner's listing reads, for every user, what the one-package query reads.
    s.set_team_member(TeamId(devs), bob, true).await.unwrap();
    s.set_team_repo(TeamId(devs), src, Some(Role::Write))
        .await
        .unwrap();
    s.set_package_role(&plain, Grantee::Team(TeamId(devs)), Some(Role::Read))
        .await
        .unwrap();
    for user in [None, Some(alice), Some(bob), Some(carol), Some(dave)] {
        let listed = s.packages_of(acme, user).await.unwrap();
        let names: Vec<&str> = listed.iter().map(|(p, _)| p.name.as_str()).collect();
        assert_eq!(names, ["acme/app", "acme/plain", "acme/tool"]);
        for (record, target) in &listed {
            assert_eq!(
                target,
                &s.target(&record.name, user).await.unwrap(),
                "{user:?}"
            );
        }
    }
}

// --- packages ---

#[tokio::test]
async fn create_package_is_idempotent_and_concurrent_creators_agree() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let src = repo(&s, alice, "src", Visibility::Public).await;
    let app = name("alice/app");
    let bob = user(&s, "bob").await;
    s.create_package(&app, alice, Visibility::Internal, None, Some(alice), 1_000)
        .await
        .unwrap();
    s.create_package(&app, alice, Visibility::Public, Some(src), Some(bob), 2_000)
        .await
        .unwrap();
    let relations = |user| {
        let s = s.clone();
        let app = app.clone();
        async move {
            s.target(&app, Some(user))
                .await
                .unwrap()
                .relations
                .package_role
        }
    };
    assert_eq!(
        relations(alice).await,
        Some(Role::Admin),
        "the creator administers it"
    );
    assert_eq!(
        relations(bob).await,
        None,
        "a creator who lost the race gets nothing"
    );
    assert_eq!(
        s.target(&app, None).await.unwrap().package,
        Some(Package {
            visibility: Visibility::Internal,
            linked: None,
            inherits: false,
            job_access: Vec::new(),
            deleted_at: None,
        }),
        "the first creator wins"
    );

    let racy = name("alice/racy");
    let visibilities = [
        Visibility::Private,
        Visibility::Internal,
        Visibility::Public,
    ];
    let creators: Vec<_> = (0..12)
        .map(|i| {
            let s = s.clone();
            let racy = racy.clone();
            tokio::spawn(async move {
                s.create_package(&racy, alice, visibilities[i % 3], None, None, 1_000)
                    .await
            })
        })
        .collect();
    for creator in creators {
        creator.await.unwrap().expect("every creator succeeds");
    }
    let package = s
        .target(&racy, None)
        .await
        .unwrap()
        .package
        .expect("created");
    assert!(visibilities.contains(&package.visibility));
    let again = s.target(&racy, None).await.unwrap().package.unwrap();
    assert_eq!(package, again);
}

#[tokio::test]
async fn a_package_created_linked_inherits() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let src = repo(&s, alice, "src", Visibility::Private).await;
    let app = name("alice/app");
    s.create_package(&app, alice, Visibility::Private, Some(src), None, 1_000)
        .await
        .unwrap();
    assert_eq!(
        s.target(&app, Some(alice)).await.unwrap().package,
        Some(Package {
            visibility: Visibility::Private,
            linked: Some(LinkedRepo {
                id: src,
                visibility: Visibility::Private,
            }),
            inherits: true,
            // Created by no user (a job token of `src`): `src` writes it however it is set.
            job_access: vec![(src, Role::Write)],
            deleted_at: None,
        })
    );
    // Created linked by a user (the API's link of a new name): no Actions access.
    let linked_by_user = name("alice/linked");
    s.create_package(
        &linked_by_user,
        alice,
        Visibility::Private,
        Some(src),
        Some(alice),
        1_000,
    )
    .await
    .unwrap();
    let package = s
        .target(&linked_by_user, Some(alice))
        .await
        .unwrap()
        .package;
    assert_eq!(package.map(|p| p.job_access), Some(Vec::new()));
}

// --- credentials ---

#[tokio::test]
async fn each_grant_kind_round_trips_through_its_secret() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let admin = match s
        .create_user(
            &NewUser {
                site_admin: true,
                ..new_user("root")
            },
            1_000,
        )
        .await
        .unwrap()
    {
        Created::New(id) => id,
        Created::Taken => unreachable!(),
    };
    let acme = org(&s, "acme", alice).await;
    let sso = org(&s, "sso", alice).await;
    let src = repo(&s, acme, "src", Visibility::Private).await;
    let web = repo(&s, acme, "web", Visibility::Private).await;

    let grants = [
        (
            TokenKind::Classic,
            Some(alice),
            Grant::Classic {
                scopes: Scopes {
                    read_packages: true,
                    write_packages: true,
                    delete_packages: false,
                    repo: true,
                    admin_org: true,
                    site_admin: false,
                },
                sso_authorized: vec![acme, sso],
            },
            "alice",
        ),
        (
            TokenKind::Classic,
            Some(admin),
            Grant::Classic {
                scopes: Scopes::default(),
                sso_authorized: Vec::new(),
            },
            "root",
        ),
        (
            TokenKind::FineGrained,
            Some(alice),
            Grant::FineGrained {
                owner: acme,
                packages: vec!["acme/api".to_owned(), "acme/app".to_owned()],
                repositories: vec![src, web],
                permission: Role::Write,
                private_repositories: true,
            },
            "alice",
        ),
        (
            TokenKind::FineGrained,
            Some(alice),
            Grant::FineGrained {
                owner: acme,
                packages: Vec::new(),
                repositories: Vec::new(),
                permission: Role::Read,
                private_repositories: false,
            },
            "alice",
        ),
        (
            TokenKind::App,
            None,
            Grant::App {
                account: acme,
                repositories: Some(vec![src, web]),
                permission: Role::Read,
            },
            "note of app-some",
        ),
        (
            TokenKind::App,
            None,
            Grant::App {
                account: acme,
                repositories: None,
                permission: Role::Write,
            },
            "note of app-all",
        ),
        (
            TokenKind::App,
            None,
            Grant::App {
                account: acme,
                repositories: Some(Vec::new()),
                permission: Role::Write,
            },
            "note of app-none",
        ),
        (
            TokenKind::Job,
            None,
            Grant::Job {
                repository: src,
                owner: acme,
                permission: Role::Write,
            },
            "note of job",
        ),
    ];
    let secrets = [
        "classic",
        "classic-admin",
        "fine",
        "fine-empty",
        "app-some",
        "app-all",
        "app-none",
        "job",
    ];
    for ((kind, user, grant, login), secret) in grants.into_iter().zip(secrets) {
        let id = s
            .create_credential(&credential(kind, secret, user, grant.clone()))
            .await
            .unwrap();
        let expected = Credential {
            expires_at: None,
            id,
            user,
            login: login.to_owned(),
            site_admin: user == Some(admin),
            grant: grant.clone(),
        };
        assert_eq!(
            valid(s.resolve_secret(secret.as_bytes(), 2_000).await.unwrap()),
            expected,
            "{secret}"
        );
        assert_eq!(
            valid(s.resolve_credential(id, 2_000).await.unwrap()),
            expected,
            "{secret} by id"
        );
        let info = s.credential(id).await.unwrap().expect("listed");
        assert_eq!(info.id, id);
        assert_eq!(info.kind, kind);
        assert_eq!(info.user, user);
        assert_eq!(info.note, format!("note of {secret}"));
        assert_eq!(info.grant, grant, "{secret} as listed");
        assert_eq!(
            (
                info.created_at,
                info.expires_at,
                info.last_used_at,
                info.revoked_at
            ),
            (1_000, None, None, None)
        );
    }
}

#[tokio::test]
async fn grant_lists_are_sets() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    let a = repo(&s, acme, "a", Visibility::Private).await;
    let b = repo(&s, acme, "b", Visibility::Private).await;
    let grant = Grant::FineGrained {
        owner: acme,
        packages: vec!["acme/z".into(), "acme/a".into(), "acme/z".into()],
        repositories: vec![b, a, b],
        permission: Role::Read,
        private_repositories: true,
    };
    s.create_credential(&credential(TokenKind::FineGrained, "s", Some(alice), grant))
        .await
        .unwrap();
    assert_eq!(
        valid(s.resolve_secret(b"s", 0).await.unwrap()).grant,
        Grant::FineGrained {
            owner: acme,
            packages: vec!["acme/a".into(), "acme/z".into()],
            repositories: vec![a, b],
            permission: Role::Read,
            private_repositories: true,
        },
        "stored once each, read back sorted"
    );
}

#[tokio::test]
async fn tokens_grant_at_most_write() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let src = repo(&s, alice, "src", Visibility::Private).await;
    let job = Grant::Job {
        repository: src,
        owner: alice,
        permission: Role::Admin,
    };
    assert!(
        s.create_credential(&credential(TokenKind::Job, "j", None, job))
            .await
            .is_err()
    );
    let mismatched = credential(TokenKind::Job, "k", Some(alice), classic("repo"));
    assert!(s.create_credential(&mismatched).await.is_err());
    assert_eq!(s.resolve_secret(b"j", 0).await.unwrap(), Resolved::Unknown);
    assert_eq!(s.resolve_secret(b"k", 0).await.unwrap(), Resolved::Unknown);
}

#[tokio::test]
async fn expired_revoked_and_unknown_secrets() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let expiring = s
        .create_credential(&NewCredential {
            expires_at: Some(5_000),
            ..credential(
                TokenKind::Classic,
                "expiring",
                Some(alice),
                classic("read:packages"),
            )
        })
        .await
        .unwrap();
    assert_eq!(
        valid(s.resolve_secret(b"expiring", 4_999).await.unwrap()).id,
        expiring
    );
    assert_eq!(
        s.resolve_secret(b"expiring", 5_000).await.unwrap(),
        Resolved::Expired(5_000)
    );
    assert_eq!(
        s.resolve_credential(expiring, 9_000).await.unwrap(),
        Resolved::Expired(5_000)
    );

    let revoked = s
        .create_credential(&credential(
            TokenKind::Classic,
            "revoked",
            Some(alice),
            classic("read:packages"),
        ))
        .await
        .unwrap();
    assert!(s.revoke_credential(revoked, 3_000).await.unwrap());
    assert!(
        s.revoke_credential(revoked, 4_000).await.unwrap(),
        "still exists"
    );
    assert_eq!(
        s.resolve_secret(b"revoked", 3_500).await.unwrap(),
        Resolved::Revoked
    );
    assert_eq!(
        s.resolve_credential(revoked, 3_500).await.unwrap(),
        Resolved::Revoked
    );
    assert_eq!(
        s.credential(revoked).await.unwrap().unwrap().revoked_at,
        Some(3_000),
        "the first revocation time is kept"
    );
    assert!(
        !s.revoke_credential(CredentialId(revoked.0 + 100), 3_000)
            .await
            .unwrap()
    );

    assert_eq!(
        s.resolve_secret(b"never issued", 0).await.unwrap(),
        Resolved::Unknown
    );
    assert_eq!(
        s.resolve_secret(b"expirin", 0).await.unwrap(),
        Resolved::Unknown
    );
    assert_eq!(
        s.resolve_credential(CredentialId(revoked.0 + 100), 0)
            .await
            .unwrap(),
        Resolved::Unknown
    );
    assert_eq!(
        s.credential(CredentialId(revoked.0 + 100)).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn touches_keep_the_latest_use_and_lists_are_newest_first() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let mut ids = Vec::new();
    for (i, created_at) in [3_000, 1_000, 2_000].into_iter().enumerate() {
        ids.push(
            s.create_credential(&NewCredential {
                created_at,
                ..credential(
                    TokenKind::Classic,
                    &format!("t{i}"),
                    Some(alice),
                    classic("read:packages"),
                )
            })
            .await
            .unwrap(),
        );
    }
    let bobs = s
        .create_credential(&credential(
            TokenKind::Classic,
            "b",
            Some(bob),
            classic("repo"),
        ))
        .await
        .unwrap();

    s.touch_credentials(&[]).await.unwrap();
    s.touch_credentials(&[(ids[0], 5_000), (ids[1], 6_000), (ids[0], 7_000)])
        .await
        .unwrap();
    s.touch_credentials(&[(ids[0], 4_000), (ids[1], 8_000)])
        .await
        .unwrap();
    let used = |list: &[berth_core::access::store::CredentialInfo], id| {
        list.iter().find(|c| c.id == id).unwrap().last_used_at
    };

    let listed = s.list_credentials(alice).await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![ids[0], ids[2], ids[1]],
        "by creation time, newest first"
    );
    assert_eq!(
        used(&listed, ids[0]),
        Some(7_000),
        "an older touch is ignored"
    );
    assert_eq!(used(&listed, ids[1]), Some(8_000));
    assert_eq!(used(&listed, ids[2]), None);
    assert!(listed.iter().all(|c| c.user == Some(alice)));
    assert_eq!(listed[0].grant, classic("read:packages"));

    let listed = s.list_credentials(bob).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, bobs);
    assert_eq!(listed[0].grant, classic("repo"));
    assert_eq!(
        s.list_credentials(AccountId(bob.0 + 100)).await.unwrap(),
        Vec::new()
    );
}

#[tokio::test]
async fn sso_authorization_is_added_to_a_classic_grant() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    let beta = org(&s, "beta", alice).await;
    let id = s
        .create_credential(&credential(
            TokenKind::Classic,
            "c",
            Some(alice),
            classic("write:packages"),
        ))
        .await
        .unwrap();
    s.authorize_sso(id, beta).await.unwrap();
    s.authorize_sso(id, acme).await.unwrap();
    s.authorize_sso(id, beta).await.unwrap(); // idempotent
    let expected = Grant::Classic {
        scopes: "write:packages".parse().unwrap(),
        sso_authorized: vec![acme, beta],
    };
    assert_eq!(
        valid(s.resolve_secret(b"c", 0).await.unwrap()).grant,
        expected
    );
    let listed = s.list_credentials(alice).await.unwrap();
    assert_eq!(listed[0].grant, expected);
}

// --- apps ---

#[tokio::test]
async fn app_installations_are_found_by_their_apps_secret() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    let a = repo(&s, acme, "a", Visibility::Private).await;
    let b = repo(&s, acme, "b", Visibility::Private).await;
    let Created::New(app) = s
        .create_app(alice, "Deployer", b"app secret", 1_000)
        .await
        .unwrap()
    else {
        panic!("app creation must succeed");
    };
    assert_eq!(
        s.create_app(alice, "deployer", b"other", 1_000)
            .await
            .unwrap(),
        Created::Taken
    );

    let id = s
        .install_app(app, acme, Some(&[b, a]), Role::Read, 2_000)
        .await
        .unwrap();
    let found = s
        .installation_for_secret(id, b"app secret")
        .await
        .unwrap()
        .expect("right secret");
    assert_eq!(found.id, id);
    assert_eq!(found.app, app);
    assert_eq!(found.app_slug, "Deployer");
    assert_eq!(found.account, acme);
    assert_eq!(found.repositories, Some(vec![a, b]));
    assert_eq!(found.permission, Role::Read);
    assert_eq!(
        s.installation_for_secret(id, b"app secreT").await.unwrap(),
        None
    );
    assert_eq!(s.installation_for_secret(id, b"").await.unwrap(), None);
    assert_eq!(
        s.installation_for_secret(InstallationId(id.0 + 100), b"app secret")
            .await
            .unwrap(),
        None
    );

    let again = s
        .install_app(app, acme, None, Role::Write, 3_000)
        .await
        .unwrap();
    assert_eq!(again, id, "reinstalling replaces the installation");
    let found = s
        .installation_for_secret(id, b"app secret")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.repositories, found.permission), (None, Role::Write));

    s.install_app(app, acme, Some(&[a]), Role::Read, 4_000)
        .await
        .unwrap();
    let found = s
        .installation_for_secret(id, b"app secret")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.repositories, Some(vec![a]));

    let elsewhere = s
        .install_app(app, alice, None, Role::Read, 5_000)
        .await
        .unwrap();
    assert_ne!(elsewhere, id);
    assert_eq!(
        s.installation_for_secret(elsewhere, b"app secret")
            .await
            .unwrap()
            .map(|i| i.account),
        Some(alice)
    );
    assert!(
        s.install_app(app, acme, None, Role::Admin, 6_000)
            .await
            .is_err(),
        "installations grant at most write"
    );
}

// --- the schema ---

#[tokio::test]
async fn access_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let s = SqliteMetadataStore::open(&path).await.unwrap();
    let alice = user(&s, "alice").await;
    let id = s
        .create_credential(&credential(
            TokenKind::Classic,
            "c",
            Some(alice),
            classic("repo"),
        ))
        .await
        .unwrap();
    s.touch_credentials(&[(id, 9_000)]).await.unwrap();
    s.close().await;

    let s = SqliteMetadataStore::open(&path).await.unwrap();
    assert_eq!(s.account("alice").await.unwrap().unwrap().id, alice);
    assert_eq!(valid(s.resolve_secret(b"c", 0).await.unwrap()).id, id);
    assert_eq!(
        s.credential(id).await.unwrap().unwrap().last_used_at,
        Some(9_000)
    );
}

#[tokio::test]
async fn deleted_packages_are_marked_restored_and_purged_with_their_repository() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    let (app, lib) = (name("acme/app"), name("acme/lib"));
    for package in [&app, &lib] {
        s.create_package(package, acme, Visibility::Private, None, None, 1_000)
            .await
            .unwrap();
        s.set_package_role(package, Grantee::User(alice), Some(Role::Admin))
            .await
            .unwrap();
    }
    let manifest = berth_core::ports::NewManifest {
        digest: berth_core::Digest::sha256(b"m"),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        content: bytes::Bytes::from_static(b"m"),
        artifact_type: None,
        subject: None,
        blobs: Vec::new(),
        required_blobs: Vec::new(),
        children: Vec::new(),
        annotations: None,
        total_size: 1,
        platforms: Vec::new(),
        labels: Default::default(),
        pushed_by: Some(alice),
    };
    let tag: berth_core::Tag = "v1".parse().unwrap();
    for package in [&app, &lib] {
        ManifestStore::put_manifest(&s, package, &manifest, Some(&tag))
            .await
            .unwrap();
    }

    assert!(s.set_package_deleted(&app, Some(5_000)).await.unwrap());
    assert!(
        !s.set_package_deleted(&name("acme/none"), Some(5_000))
            .await
            .unwrap()
    );
    let listed = s.packages_of(acme, Some(alice)).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|(p, _)| (p.name.as_str(), p.deleted_at))
            .collect::<Vec<_>>(),
        [("acme/app", Some(5_000)), ("acme/lib", None)]
    );
    for (record, target) in &listed {
        assert_eq!(
            target,
            &s.target(&record.name, Some(alice)).await.unwrap(),
            "the listing reads what the one-package query reads"
        );
        assert_eq!(
            Some(record.clone()),
            s.package_record(&record.name).await.unwrap()
        );
    }
    assert_eq!(
        s.target(&app, Some(alice))
            .await
            .unwrap()
            .package
            .unwrap()
            .deleted_at,
        Some(5_000)
    );
    assert!(s.set_package_deleted(&app, None).await.unwrap(), "restored");
    assert_eq!(
        s.package_record(&app).await.unwrap().unwrap().deleted_at,
        None
    );

    s.set_package_deleted(&app, Some(5_000)).await.unwrap();
    assert_eq!(s.purge_deleted_packages(5_000).await.unwrap(), 0, "not yet");
    assert_eq!(s.purge_deleted_packages(5_001).await.unwrap(), 1);
    assert_eq!(s.package_record(&app).await.unwrap(), None);
    assert!(!ListingStore::repository_exists(&s, &app).await.unwrap());
    assert!(s.target(&app, Some(alice)).await.unwrap().package.is_none());
    assert!(
        ManifestStore::manifest_by_tag(&s, &lib, &tag)
            .await
            .unwrap()
            .is_some(),
        "the other package is untouched"
    );
}

#[tokio::test]
async fn the_first_link_of_a_package_wins() {
    let (_dir, s) = store().await;
    let alice = user(&s, "alice").await;
    let first = repo(&s, alice, "first", Visibility::Private).await;
    let second = repo(&s, alice, "second", Visibility::Private).await;
    let app = name("alice/app");
    s.create_package(&app, alice, Visibility::Private, None, Some(alice), 1_000)
        .await
        .unwrap();
    assert!(s.link_unlinked_package(&app, first, true).await.unwrap());
    assert!(
        !s.link_unlinked_package(&app, second, false).await.unwrap(),
        "linked already"
    );
    let package = s.target(&app, None).await.unwrap().package.unwrap();
    assert_eq!(
        (package.linked.map(|l| l.id), package.inherits),
        (Some(first), true)
    );
    assert!(
        !s.link_unlinked_package(&name("alice/none"), first, true)
            .await
            .unwrap()
    );
}
