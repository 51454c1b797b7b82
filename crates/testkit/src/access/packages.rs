//! Clauses of packages: the target a request is decided on, roles, links, creation and
//! deletion.

use berth_core::access::store::{AccessStore, Grantee, PackageFilter};
use berth_core::access::{
    AccountId, AccountKind, Action, Credential, Decision, Grant, LinkedRepo, OrgRole, Owner,
    Package, PackagePolicy, Principal, Readable, Relations, RepoId, Role, Visibility, decide,
    readable,
};
use berth_core::ports::{ListingStore, ManifestStore, MetadataStore};

use super::{classic, name, org, repo, team, user};

// --- target ---

/// Target without an owner account is empty.
pub async fn target_without_an_owner_account_is_empty<S: AccessStore + MetadataStore + Clone>(
    s: S,
) {
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

/// Target with an owner but no package.
pub async fn target_with_an_owner_but_no_package<S: AccessStore + MetadataStore + Clone>(s: S) {
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

/// Target describes the package its link and job access.
pub async fn target_describes_the_package_its_link_and_job_access<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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

/// Package role is the highest of the user's and their teams.
pub async fn package_role_is_the_highest_of_the_users_and_their_teams<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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

    s.set_team_member(readers, bob, true).await.unwrap();
    s.set_team_member(writers, carol, true).await.unwrap();
    s.set_package_role(&app, Grantee::Team(readers), Some(Role::Read))
        .await
        .unwrap();
    s.set_package_role(&app, Grantee::Team(writers), Some(Role::Write))
        .await
        .unwrap();
    assert_eq!(role(bob).await, Some(Role::Write), "own role beats team's");
    assert_eq!(role(carol).await, Some(Role::Write), "team role alone");
    let grants: Vec<(Grantee, String, Role)> = s
        .package_grants(&app)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.grantee, g.name, g.role))
        .collect();
    assert_eq!(
        grants,
        [
            (Grantee::User(bob), "bob".to_owned(), Role::Write),
            (Grantee::Team(readers), "readers".to_owned(), Role::Read),
            (Grantee::Team(writers), "writers".to_owned(), Role::Write),
        ],
        "a package's own roles are listed, users first, by name"
    );
    assert!(s.package_grants(&other).await.unwrap().is_empty());
    assert!(
        s.package_grants(&name("acme/missing"))
            .await
            .unwrap()
            .is_empty()
    );

    s.set_package_role(&app, Grantee::Team(readers), Some(Role::Admin))
        .await
        .unwrap();
    assert_eq!(role(bob).await, Some(Role::Admin), "team role beats own");

    s.set_team_member(writers, carol, false).await.unwrap();
    s.set_team_member(readers, carol, true).await.unwrap();
    assert_eq!(role(carol).await, Some(Role::Admin));
    s.set_package_role(&app, Grantee::Team(readers), None)
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

/// Repo role comes from collaborators teams and ownership.
pub async fn repo_role_comes_from_collaborators_teams_and_ownership<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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

    s.set_team_member(devs, bob, true).await.unwrap();
    s.set_team_member(devs, carol, true).await.unwrap();
    s.set_team_repo(devs, src, Some(Role::Write)).await.unwrap();
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
    s.set_team_repo(devs, src, None).await.unwrap();
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

    // The owner's listing of everything: live packages by name, the records the one-package
    // query reads.
    let (total, listed) = s
        .list_packages(acme, &Readable::Everything, &Default::default(), 0, 100)
        .await
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        (total, names),
        (3, vec!["acme/app", "acme/plain", "acme/tool"])
    );
    for record in &listed {
        assert_eq!(
            Some(record),
            s.package_record(&record.name).await.unwrap().as_ref()
        );
    }
}

// --- packages ---

/// Create package is idempotent and concurrent creators agree.
pub async fn create_package_is_idempotent_and_concurrent_creators_agree<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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

/// A package created linked inherits.
pub async fn a_package_created_linked_inherits<S: AccessStore + MetadataStore + Clone>(s: S) {
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

/// Deleted packages are marked restored and purged with their repository.
pub async fn deleted_packages_are_marked_restored_and_purged_with_their_repository<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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
        tag_immutable: false,
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
    // A deleted package is neither listed nor counted; the live one is listed as it reads.
    let (total, listed) = s
        .list_packages(acme, &Readable::Everything, &Default::default(), 0, 100)
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(
        listed
            .iter()
            .map(|p| (p.name.as_str(), p.deleted_at))
            .collect::<Vec<_>>(),
        [("acme/lib", None)]
    );
    assert_eq!(
        Some(&listed[0]),
        s.package_record(&lib).await.unwrap().as_ref()
    );
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

/// The first link of a package wins.
pub async fn the_first_link_of_a_package_wins<S: AccessStore + MetadataStore + Clone>(s: S) {
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

// --- listing ---

/// A principal holding a token of `grant` for `user`.
fn token(user: Option<AccountId>, site_admin: bool, grant: Grant) -> Principal {
    Principal::Token(Credential {
        id: crate::id(1),
        user,
        login: "lister".to_owned(),
        site_admin,
        grant,
        expires_at: None,
    })
}

/// The listing shows and counts, page after page, exactly the packages each principal may
/// pull: what [`decide`] allows on each package's [`Target`] (the one-package query), by name,
/// whatever is invisible between them; deleted packages and other owners' never.
pub async fn the_listing_pages_and_counts_exactly_what_each_principal_may_pull<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let carol = user(&s, "carol").await;
    let dave = user(&s, "dave").await;
    let acme = org(&s, "acme", alice).await;
    let zeta = org(&s, "zeta", carol).await;
    s.set_membership(acme, bob, Some(OrgRole::Member))
        .await
        .unwrap();
    let devs = team(&s, acme, "devs").await;
    s.set_team_member(devs, bob, true).await.unwrap();
    let src = repo(&s, acme, "src", Visibility::Private).await;
    let open = repo(&s, acme, "open", Visibility::Public).await;
    let inner = repo(&s, acme, "inner", Visibility::Internal).await;
    let teamed = repo(&s, acme, "teamed", Visibility::Private).await;
    let carols = repo(&s, carol, "tool", Visibility::Private).await;
    s.set_collaborator(src, bob, Some(Role::Read))
        .await
        .unwrap();
    s.set_team_repo(devs, teamed, Some(Role::Write))
        .await
        .unwrap();

    // Visible and invisible packages interleaved, so pages of every size cut between them.
    let create = |package: &'static str, visibility, link: Option<RepoId>| {
        let s = s.clone();
        async move {
            let package = name(package);
            let owner = if package.owner() == "zeta" {
                zeta
            } else {
                acme
            };
            s.create_package(&package, owner, visibility, link, None, 1_000)
                .await
                .unwrap();
            package
        }
    };
    use Visibility::{Internal, Private, Public};
    create("acme/a1", Public, None).await;
    create("acme/a2", Private, None).await;
    create("acme/a3", Internal, None).await;
    let a4 = create("acme/a4", Private, None).await;
    s.set_package_role(&a4, Grantee::User(bob), Some(Role::Read))
        .await
        .unwrap();
    let a5 = create("acme/a5", Private, None).await;
    s.set_package_role(&a5, Grantee::Team(devs), Some(Role::Read))
        .await
        .unwrap();
    create("acme/a6", Private, Some(src)).await;
    create("acme/a7", Private, Some(open)).await;
    create("acme/a8", Private, Some(inner)).await;
    let a9 = create("acme/a9", Private, None).await;
    assert!(s.link_package(&a9, Some(src), false).await.unwrap());
    let b1 = create("acme/b1", Private, None).await;
    s.set_package_job_access(&b1, open, Some(Role::Read))
        .await
        .unwrap();
    let b2 = create("acme/b2", Public, None).await;
    assert!(s.set_package_deleted(&b2, Some(2_000)).await.unwrap());
    let b3 = create("acme/b3", Private, None).await;
    s.set_package_role(&b3, Grantee::User(bob), Some(Role::Admin))
        .await
        .unwrap();
    assert!(s.set_package_deleted(&b3, Some(2_000)).await.unwrap());
    create("acme/b4", Private, Some(carols)).await;
    create("acme/b5", Private, Some(teamed)).await;
    create("acme/b6", Internal, None).await;
    let b7 = create("acme/b7", Private, Some(teamed)).await;
    assert!(s.link_package(&b7, Some(teamed), false).await.unwrap());
    s.set_package_role(&b7, Grantee::Team(devs), Some(Role::Write))
        .await
        .unwrap();
    create("acme/b8", Private, None).await;
    create("zeta/a1", Public, None).await;
    let names = [
        "acme/a1", "acme/a2", "acme/a3", "acme/a4", "acme/a5", "acme/a6", "acme/a7", "acme/a8",
        "acme/a9", "acme/b1", "acme/b2", "acme/b3", "acme/b4", "acme/b5", "acme/b6", "acme/b7",
        "acme/b8", "zeta/a1",
    ];

    let fine_grained = |owner, private_repositories| Grant::FineGrained {
        owner,
        packages: vec!["acme/a2".to_owned(), "acme/b8".to_owned()],
        repositories: vec![src],
        permission: Role::Read,
        private_repositories,
    };
    let app = |account, repositories| Grant::App {
        account,
        repositories,
        permission: Role::Read,
    };
    let job = |repository| Grant::Job {
        repository,
        owner: acme,
        permission: Role::Write,
    };
    let sso = |scopes: &str, sso_authorized| Grant::Classic {
        scopes: scopes.parse().unwrap(),
        sso_authorized,
    };
    let principals = [
        Principal::Anonymous,
        token(Some(alice), false, classic("read:packages")),
        token(Some(alice), false, classic("")),
        token(Some(bob), false, classic("read:packages")),
        token(Some(bob), false, classic("read:packages,repo")),
        token(Some(bob), false, sso("write:packages", vec![acme])),
        token(Some(bob), false, classic("delete:packages")),
        token(Some(carol), false, classic("read:packages,repo")),
        token(Some(carol), false, classic("read:packages")),
        token(Some(dave), true, classic("read:packages")),
        token(Some(dave), false, classic("read:packages")),
        token(Some(bob), false, fine_grained(acme, false)),
        token(Some(bob), false, fine_grained(acme, true)),
        token(Some(bob), false, fine_grained(zeta, true)),
        token(None, false, app(acme, None)),
        token(None, false, app(acme, Some(vec![open, src]))),
        token(None, false, app(zeta, None)),
        token(None, false, job(src)),
        token(None, false, job(open)),
    ];

    let mut seen = std::collections::BTreeSet::new();
    for requires_sso in [false, true] {
        s.set_requires_sso(acme, requires_sso).await.unwrap();
        let owner = s.account_by_id(acme).await.unwrap().expect("acme");
        for principal in &principals {
            // What the registry decides on each package, one by one.
            let mut expected = Vec::new();
            for package in names {
                let target = s.target(&name(package), principal.user()).await.unwrap();
                if target.owner.as_ref().is_some_and(|o| o.id == acme)
                    && decide(principal, &target, Action::Pull) == Decision::Allow
                {
                    let visibility = target.package.expect("a package").visibility;
                    expected.push((package.to_owned(), visibility));
                }
            }
            let org_role = match principal.user() {
                Some(user) => s.membership(acme, user).await.unwrap(),
                None => None,
            };
            let condition = readable(principal, &owner.as_owner(), org_role);
            let context = format!("{principal:?} (SSO required: {requires_sso})");
            let list = |visibility, offset, limit| {
                let s = s.clone();
                let condition = condition.clone();
                async move {
                    let (total, records) = s
                        .list_packages(
                            acme,
                            &condition,
                            &PackageFilter {
                                visibility,
                                name_contains: None,
                            },
                            offset,
                            limit,
                        )
                        .await
                        .unwrap();
                    let names: Vec<String> =
                        records.iter().map(|r| r.name.as_str().to_owned()).collect();
                    (total, names)
                }
            };
            let all: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
            let count = all.len() as u64;
            assert_eq!(list(None, 0, 100).await, (count, all.clone()), "{context}");
            for per_page in 1..=4u64 {
                let mut paged = Vec::new();
                let mut offset = 0;
                while offset <= count {
                    let (total, page) = list(None, offset, per_page).await;
                    assert_eq!(total, count, "{context}: total at offset {offset}");
                    assert!(page.len() as u64 <= per_page, "{context}");
                    paged.extend(page);
                    offset += per_page;
                }
                assert_eq!(paged, all, "{context}: pages of {per_page}");
            }
            for visibility in [Private, Internal, Public] {
                let only: Vec<String> = expected
                    .iter()
                    .filter(|(_, v)| *v == visibility)
                    .map(|(n, _)| n.clone())
                    .collect();
                assert_eq!(
                    list(Some(visibility), 0, 100).await,
                    (only.len() as u64, only),
                    "{context}: {visibility:?} only"
                );
            }
            seen.insert(all);
        }
    }
    // The fixture tells the principals apart: many different listings, from the public
    // package alone to every live one.
    assert!(seen.len() >= 10, "{seen:?}");
    assert!(seen.contains(&vec!["acme/a1".to_owned()]), "{seen:?}");
    let live = names
        .iter()
        .filter(|n| n.starts_with("acme/") && !["acme/b2", "acme/b3"].contains(n))
        .map(|n| (*n).to_owned())
        .collect::<Vec<_>>();
    assert!(seen.contains(&live), "{seen:?}");
    // What a member reads with read:packages, worked out by hand: public and internal
    // packages, those bob or his team holds a role on, and those inheriting from a public or
    // internal repository; not a private repository's without the repo scope.
    s.set_requires_sso(acme, false).await.unwrap();
    let bob_reads = readable(
        &token(Some(bob), false, classic("read:packages")),
        &s.account_by_id(acme).await.unwrap().unwrap().as_owner(),
        Some(OrgRole::Member),
    );
    let (total, listed) = s
        .list_packages(acme, &bob_reads, &Default::default(), 2, 2)
        .await
        .unwrap();
    assert_eq!(total, 8);
    assert_eq!(
        listed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["acme/a4", "acme/a5"]
    );
}

/// The listing's name filter matches the name after the owner, ASCII case-insensitively,
/// with `%` and `_` as plain characters, and pages and counts what it matches.
pub async fn the_listing_finds_packages_by_part_of_their_name<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    for package in [
        "acme/api/worker",
        "acme/web",
        "acme/worker-tools",
        "acme/a_b",
        "acme/axb",
        "acme/acme-app",
    ] {
        s.create_package(
            &name(package),
            acme,
            Visibility::Private,
            None,
            Some(alice),
            1_000,
        )
        .await
        .unwrap();
    }
    let find = |text: &str, offset, limit| {
        let s = s.clone();
        let filter = PackageFilter {
            visibility: None,
            name_contains: Some(text.to_owned()),
        };
        async move {
            let (total, records) = s
                .list_packages(acme, &Readable::Everything, &filter, offset, limit)
                .await
                .unwrap();
            let names: Vec<String> = records.iter().map(|r| r.name.as_str().to_owned()).collect();
            (total, names)
        }
    };
    assert_eq!(
        find("WORKER", 0, 10).await,
        (
            2,
            vec!["acme/api/worker".to_owned(), "acme/worker-tools".to_owned()]
        )
    );
    assert_eq!(
        find("WORKER", 1, 1).await,
        (2, vec!["acme/worker-tools".to_owned()])
    );
    assert_eq!(find("a_b", 0, 10).await, (1, vec!["acme/a_b".to_owned()]));
    assert_eq!(find("%", 0, 10).await, (0, vec![]));
    assert_eq!(
        find("acme", 0, 10).await,
        (1, vec!["acme/acme-app".to_owned()]),
        "the owner's part of the name is not searched"
    );
}
