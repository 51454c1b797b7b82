//! Clauses of the directory: accounts, organizations and their members, teams, repositories.

use berth_core::access::store::{AccessStore, Created, Grantee, NewUser};
use berth_core::access::{AccountKind, OrgRole, PackagePolicy, Relations, Role, Visibility};
use berth_core::ports::MetadataStore;

use super::{name, new_user, org, repo, team, user};

/// Logins are unique case insensitively and kept as given.
pub async fn logins_are_unique_case_insensitively_and_kept_as_given<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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
    assert_eq!(s.account_by_id(crate::missing()).await.unwrap(), None);
}

/// Creating an org makes its creator an owner.
pub async fn creating_an_org_makes_its_creator_an_owner<S: AccessStore + MetadataStore + Clone>(
    s: S,
) {
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

/// Policy and sso settings round trip.
pub async fn policy_and_sso_settings_round_trip<S: AccessStore + MetadataStore + Clone>(s: S) {
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

/// Removing a membership removes the org's team memberships only.
pub async fn removing_a_membership_removes_the_orgs_team_memberships_only<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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
    s.set_team_member(acme_team, bob, true).await.unwrap();
    s.set_team_member(acme_team, bob, true).await.unwrap(); // idempotent
    s.set_team_member(other_team, bob, true).await.unwrap();
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
            s.set_package_role(&name(package), Grantee::Team(t), Some(Role::Write))
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

    s.set_team_member(other_team, bob, false).await.unwrap();
    assert_eq!(
        role(s.target(&name("other/app"), Some(bob)).await.unwrap()),
        None
    );
}

/// Team slugs are unique per org case insensitively.
pub async fn team_slugs_are_unique_per_org_case_insensitively<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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
    assert_eq!(s.team(acme, "CORE").await.unwrap(), Some(core));
    assert_eq!(s.team(other, "core").await.unwrap(), Some(elsewhere));
    assert_eq!(s.team(acme, "web").await.unwrap(), None);
}

/// Repositories are unique per owner and found case insensitively.
pub async fn repositories_are_unique_per_owner_and_found_case_insensitively<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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
    assert_eq!(s.repo_by_id(crate::missing()).await.unwrap(), None);
}

/// The listing reads: an organization's members with their roles, a user's organizations,
/// an organization's teams, and repositories by owner or by affiliation, each with the
/// role [`DirectoryStore::repo_role`] answers.
pub async fn listings_read_members_orgs_teams_and_repositories_with_roles<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
    use berth_core::access::store::RepoSet;

    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let carol = user(&s, "carol").await;
    let acme = org(&s, "acme", alice).await;
    let other = org(&s, "other", carol).await;
    s.set_membership(acme, bob, Some(OrgRole::Member))
        .await
        .unwrap();
    let members: Vec<_> = s
        .org_members(acme)
        .await
        .unwrap()
        .into_iter()
        .map(|(account, role)| (account.login, role))
        .collect();
    assert_eq!(
        members,
        [
            ("alice".to_owned(), OrgRole::Owner),
            ("bob".to_owned(), OrgRole::Member)
        ]
    );
    let orgs: Vec<_> = s.orgs_of(bob).await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].id, acme);
    assert!(
        s.orgs_of(carol)
            .await
            .unwrap()
            .iter()
            .all(|o| o.id == other)
    );

    let web = team(&s, acme, "web").await;
    let core = team(&s, acme, "Core").await;
    team(&s, other, "elsewhere").await;
    let teams: Vec<_> = s.teams(acme).await.unwrap();
    assert_eq!(
        teams,
        [
            (core, "Core".to_owned(), "Core".to_owned()),
            (web, "web".to_owned(), "web".to_owned())
        ]
    );

    let open = repo(&s, acme, "open", Visibility::Public).await;
    let secret = repo(&s, acme, "secret", Visibility::Private).await;
    let mine = repo(&s, bob, "mine", Visibility::Private).await;
    let theirs = repo(&s, carol, "theirs", Visibility::Private).await;
    let teamed = repo(&s, other, "teamed", Visibility::Private).await;
    s.set_collaborator(theirs, bob, Some(Role::Write))
        .await
        .unwrap();
    let squad = team(&s, other, "squad").await;
    s.set_membership(other, bob, Some(OrgRole::Member))
        .await
        .unwrap();
    s.set_team_member(squad, bob, true).await.unwrap();
    s.set_team_repo(squad, teamed, Some(Role::Read))
        .await
        .unwrap();

    let by_owner: Vec<_> = s
        .repos(RepoSet::OwnedBy(acme), Some(alice))
        .await
        .unwrap()
        .into_iter()
        .map(|(r, role)| (r.id, role))
        .collect();
    assert_eq!(
        by_owner,
        [(open, Some(Role::Admin)), (secret, Some(Role::Admin))]
    );
    let anonymous: Vec<_> = s.repos(RepoSet::OwnedBy(acme), None).await.unwrap();
    assert!(anonymous.iter().all(|(_, role)| role.is_none()));
    let affiliated: Vec<_> = s
        .repos(RepoSet::AffiliatedWith(bob), Some(bob))
        .await
        .unwrap()
        .into_iter()
        .map(|(r, role)| (r.id, role))
        .collect();
    assert_eq!(
        affiliated,
        [
            (open, None),
            (secret, None),
            (mine, Some(Role::Admin)),
            (theirs, Some(Role::Write)),
            (teamed, Some(Role::Read)),
        ]
    );
    for (id, role) in affiliated {
        assert_eq!(s.repo_role(id, bob).await.unwrap(), role);
    }
}

/// A user's password is set (replaced) by id; an organization or a missing id has none to set.
pub async fn passwords_are_set_for_users_only<S: AccessStore + MetadataStore + Clone>(s: S) {
    let alice = user(&s, "alice").await;
    let acme = org(&s, "acme", alice).await;
    assert_eq!(s.password_hash("alice").await.unwrap(), None);
    assert!(s.set_password_hash(alice, "$argon2id$one").await.unwrap());
    assert!(s.set_password_hash(alice, "$argon2id$two").await.unwrap());
    assert_eq!(
        s.password_hash("ALICE").await.unwrap().as_deref(),
        Some("$argon2id$two")
    );
    assert!(!s.set_password_hash(acme, "$argon2id$org").await.unwrap());
    assert_eq!(s.password_hash("acme").await.unwrap(), None);
    assert!(
        !s.set_password_hash(crate::missing(), "$argon2id$x")
            .await
            .unwrap()
    );
}
