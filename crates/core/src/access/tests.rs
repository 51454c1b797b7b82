//! The permission function's table: principal × package × action → decision; and the
//! management rules' tables (`rules`): principal × role → may they manage it.

use super::*;

const ORG: AccountId = AccountId(1);
const ALICE: AccountId = AccountId(10); // org owner
const BOB: AccountId = AccountId(11); // org member
const CAROL: AccountId = AccountId(12); // outside user
const REPO: RepoId = RepoId(100);
const OTHER_REPO: RepoId = RepoId(101);

fn org() -> Owner {
    Owner {
        id: ORG,
        login: "acme".into(),
        kind: AccountKind::Organization,
        requires_sso: false,
        policy: PackagePolicy::default(),
    }
}

fn package(visibility: Visibility) -> Package {
    Package {
        visibility,
        linked: None,
        inherits: false,
        job_access: vec![],
        deleted_at: None,
    }
}

fn target(package: Option<Package>, relations: Relations) -> Target {
    Target {
        name: "acme/app".into(),
        owner: Some(org()),
        package,
        relations,
    }
}

fn classic(user: AccountId, scopes: &str) -> Principal {
    Principal::Token(Credential {
        expires_at: None,
        id: CredentialId(1),
        user: Some(user),
        login: format!("user{user}"),
        site_admin: false,
        grant: Grant::Classic {
            scopes: scopes.parse().unwrap(),
            sso_authorized: vec![],
        },
    })
}

fn job(repository: RepoId, permission: Role) -> Principal {
    Principal::Token(Credential {
        expires_at: None,
        id: CredentialId(2),
        user: None,
        login: "acme/repo".into(),
        site_admin: false,
        grant: Grant::Job {
            repository,
            owner: ORG,
            permission,
        },
    })
}

fn member(package_role: Option<Role>) -> Relations {
    Relations {
        org_role: Some(OrgRole::Member),
        package_role,
        repo_role: None,
    }
}

fn denied(decision: &Decision) -> bool {
    matches!(decision, Decision::Denied(_))
}

#[test]
fn anonymous_pulls_public_only_and_is_asked_to_authenticate_otherwise() {
    let public = target(Some(package(Visibility::Public)), Relations::default());
    let private = target(Some(package(Visibility::Private)), Relations::default());
    let missing = target(None, Relations::default());
    let anon = Principal::Anonymous;
    assert_eq!(decide(&anon, &public, Action::Pull), Decision::Allow);
    assert_eq!(
        decide(&anon, &public, Action::Push),
        Decision::Unauthenticated
    );
    assert_eq!(
        decide(&anon, &private, Action::Pull),
        Decision::Unauthenticated
    );
    assert_eq!(
        decide(&anon, &missing, Action::Pull),
        Decision::Unauthenticated
    );
}

#[test]
fn a_private_package_is_not_found_for_those_without_a_role_exactly_like_a_missing_one() {
    let private = target(Some(package(Visibility::Private)), Relations::default());
    let missing = target(None, Relations::default());
    let carol = classic(CAROL, "write:packages,delete:packages");
    for action in [Action::Pull, Action::Delete] {
        assert_eq!(decide(&carol, &private, action), Decision::NotFound);
        assert_eq!(decide(&carol, &missing, action), Decision::NotFound);
    }
    // A push is refused as a push to the free name is: carol may not create packages here.
    let push = decide(&carol, &private, Action::Push);
    assert!(denied(&push), "{push:?}");
    assert_eq!(push, decide(&carol, &missing, Action::Push));
}

#[test]
fn a_push_to_an_invisible_package_is_answered_as_a_push_to_a_free_name() {
    let private = |relations| target(Some(package(Visibility::Private)), relations);
    let missing = |relations| target(None, relations);
    // Principals that may not create packages in acme, each for its own reason: no
    // write:packages, not a member, a job token that may only read.
    for (principal, relations) in [
        (classic(BOB, "read:packages"), member(None)),
        (classic(BOB, "repo,delete:packages"), member(None)),
        (classic(CAROL, "write:packages,repo"), Relations::default()),
        (job(OTHER_REPO, Role::Read), Relations::default()),
    ] {
        let existing = decide(&principal, &private(relations.clone()), Action::Push);
        assert!(denied(&existing), "{principal:?}: {existing:?}");
        assert_eq!(
            existing,
            decide(&principal, &missing(relations), Action::Push),
            "{principal:?}"
        );
    }
    // One that may create packages cannot be told the name is free: not found, as for pulls.
    assert_eq!(
        decide(
            &classic(BOB, "write:packages"),
            &private(member(None)),
            Action::Push
        ),
        Decision::NotFound
    );
    // Pulls and deletes of an invisible package stay not found for everyone.
    let carol = classic(CAROL, "write:packages,delete:packages");
    for action in [Action::Pull, Action::Delete] {
        assert_eq!(
            decide(&carol, &private(Relations::default()), action),
            Decision::NotFound
        );
    }
}

#[test]
fn roles_and_scopes_both_gate_and_the_denial_names_what_is_missing() {
    let read_role = target(Some(package(Visibility::Private)), member(Some(Role::Read)));
    let bob_rw = classic(BOB, "write:packages");
    assert_eq!(decide(&bob_rw, &read_role, Action::Pull), Decision::Allow);
    let Decision::Denied(why) = decide(&bob_rw, &read_role, Action::Push) else {
        panic!("push with the read role must be denied");
    };
    assert!(why.contains("needs write"), "{why}");

    let write_role = target(
        Some(package(Visibility::Private)),
        member(Some(Role::Write)),
    );
    let bob_read = classic(BOB, "read:packages");
    let Decision::Denied(why) = decide(&bob_read, &write_role, Action::Push) else {
        panic!("push without write:packages must be denied");
    };
    assert!(why.contains("write:packages"), "{why}");
    assert_eq!(decide(&bob_rw, &write_role, Action::Push), Decision::Allow);

    // No read scope: the package is invisible, not forbidden.
    let bob_none = classic(BOB, "");
    assert_eq!(
        decide(&bob_none, &write_role, Action::Pull),
        Decision::NotFound
    );
}

#[test]
fn delete_needs_the_scope_and_the_admin_role() {
    let admin_role = target(
        Some(package(Visibility::Private)),
        member(Some(Role::Admin)),
    );
    let write_role = target(
        Some(package(Visibility::Private)),
        member(Some(Role::Write)),
    );
    let with_delete = classic(BOB, "read:packages,delete:packages");
    let without = classic(BOB, "write:packages");
    assert_eq!(
        decide(&with_delete, &admin_role, Action::Delete),
        Decision::Allow
    );
    assert!(denied(&decide(&without, &admin_role, Action::Delete)));
    assert!(denied(&decide(&with_delete, &write_role, Action::Delete)));
}

#[test]
fn delete_needs_read_packages_too_even_where_anyone_may_read() {
    let admin = |visibility| target(Some(package(visibility)), member(Some(Role::Admin)));
    let delete_only = classic(BOB, "delete:packages");
    assert_eq!(
        decide(&delete_only, &admin(Visibility::Public), Action::Pull),
        Decision::Allow
    );
    let Decision::Denied(why) = decide(&delete_only, &admin(Visibility::Public), Action::Delete)
    else {
        panic!("deleting without read:packages must be denied");
    };
    assert!(why.contains("read:packages"), "{why}");
    for visibility in [Visibility::Public, Visibility::Internal] {
        assert_eq!(
            decide(
                &classic(BOB, "write:packages,delete:packages"),
                &admin(visibility),
                Action::Delete
            ),
            Decision::Allow
        );
    }
    // Internal and private packages are invisible to the token in the first place.
    for visibility in [Visibility::Internal, Visibility::Private] {
        assert_eq!(
            decide(&delete_only, &admin(visibility), Action::Delete),
            Decision::NotFound
        );
    }
}

#[test]
fn only_public_packages_are_read_without_read_packages() {
    let plain = |visibility| target(Some(package(visibility)), Relations::default());
    for scopes in ["repo", "delete:packages", "admin:org"] {
        let token = classic(BOB, scopes);
        assert_eq!(
            decide(&token, &plain(Visibility::Public), Action::Pull),
            Decision::Allow,
            "{scopes}"
        );
        assert_eq!(
            decide(&token, &plain(Visibility::Internal), Action::Pull),
            Decision::NotFound,
            "{scopes}"
        );
    }
    assert_eq!(
        decide(
            &classic(BOB, "read:packages"),
            &plain(Visibility::Internal),
            Action::Pull
        ),
        Decision::Allow
    );
}

#[test]
fn org_owners_and_site_admins_are_admins() {
    let private = target(
        Some(package(Visibility::Private)),
        Relations {
            org_role: Some(OrgRole::Owner),
            ..Relations::default()
        },
    );
    let alice = classic(ALICE, "write:packages,delete:packages");
    assert_eq!(decide(&alice, &private, Action::Delete), Decision::Allow);
    let mut admin = classic(CAROL, "read:packages");
    if let Principal::Token(c) = &mut admin {
        c.site_admin = true;
    }
    let outsider = target(Some(package(Visibility::Private)), Relations::default());
    assert_eq!(decide(&admin, &outsider, Action::Pull), Decision::Allow);
}

#[test]
fn internal_packages_are_readable_by_any_signed_in_user_but_not_by_jobs_of_other_repos() {
    let internal = target(Some(package(Visibility::Internal)), Relations::default());
    assert_eq!(
        decide(&classic(CAROL, "read:packages"), &internal, Action::Pull),
        Decision::Allow
    );
    assert_eq!(
        decide(&job(OTHER_REPO, Role::Read), &internal, Action::Pull),
        Decision::NotFound
    );
    assert_eq!(
        decide(&Principal::Anonymous, &internal, Action::Pull),
        Decision::Unauthenticated
    );
}

#[test]
fn inherited_access_from_a_private_repository_needs_the_repo_scope() {
    let mut linked = package(Visibility::Private);
    linked.linked = Some(LinkedRepo {
        id: REPO,
        visibility: Visibility::Private,
    });
    linked.inherits = true;
    let relations = Relations {
        org_role: Some(OrgRole::Member),
        package_role: None,
        repo_role: Some(Role::Write),
    };
    let t = target(Some(linked), relations);
    assert_eq!(
        decide(&classic(BOB, "write:packages"), &t, Action::Pull),
        Decision::NotFound
    );
    assert_eq!(
        decide(&classic(BOB, "write:packages,repo"), &t, Action::Push),
        Decision::Allow
    );
}

#[test]
fn job_tokens_push_only_to_packages_of_their_repository_and_create_linked_ones() {
    let mut linked = package(Visibility::Private);
    linked.linked = Some(LinkedRepo {
        id: REPO,
        visibility: Visibility::Private,
    });
    linked.inherits = true;
    let mut own_access = linked.clone();
    own_access.inherits = false;
    let mut granted = package(Visibility::Private);
    granted.job_access = vec![(REPO, Role::Read)];
    let ours = target(Some(linked), Relations::default());
    let theirs = target(Some(granted), Relations::default());
    let token = job(REPO, Role::Write);
    assert_eq!(decide(&token, &ours, Action::Push), Decision::Allow);
    // Linked but keeping its own access: read through the link, write only when granted.
    let kept = target(Some(own_access.clone()), Relations::default());
    assert_eq!(decide(&token, &kept, Action::Pull), Decision::Allow);
    assert!(denied(&decide(&token, &kept, Action::Push)));
    own_access.job_access = vec![(REPO, Role::Write)];
    let kept_granted = target(Some(own_access), Relations::default());
    assert_eq!(decide(&token, &kept_granted, Action::Push), Decision::Allow);
    assert_eq!(decide(&token, &theirs, Action::Pull), Decision::Allow);
    assert!(denied(&decide(&token, &theirs, Action::Push)));
    assert_eq!(
        decide(&job(OTHER_REPO, Role::Write), &ours, Action::Push),
        Decision::NotFound
    );
    assert_eq!(
        decide(&token, &target(None, Relations::default()), Action::Push),
        Decision::Create {
            visibility: Visibility::Private,
            link: Some(REPO)
        }
    );
    assert!(denied(&decide(
        &job(REPO, Role::Read),
        &target(None, Relations::default()),
        Action::Push
    )));
}

#[test]
fn fine_grained_tokens_reach_only_selected_packages_of_their_owner() {
    let fine = |packages: Vec<&str>, permission| {
        Principal::Token(Credential {
            expires_at: None,
            id: CredentialId(3),
            user: Some(BOB),
            login: "bob".into(),
            site_admin: false,
            grant: Grant::FineGrained {
                owner: ORG,
                packages: packages.into_iter().map(String::from).collect(),
                repositories: vec![],
                permission,
                private_repositories: true,
            },
        })
    };
    let t = target(
        Some(package(Visibility::Private)),
        member(Some(Role::Admin)),
    );
    assert_eq!(
        decide(&fine(vec!["acme/app"], Role::Read), &t, Action::Pull),
        Decision::Allow
    );
    assert!(denied(&decide(
        &fine(vec!["acme/app"], Role::Read),
        &t,
        Action::Push
    )));
    assert_eq!(
        decide(&fine(vec!["acme/app"], Role::Write), &t, Action::Push),
        Decision::Allow
    );
    assert_eq!(
        decide(&fine(vec!["acme/other"], Role::Write), &t, Action::Pull),
        Decision::NotFound
    );
    // Never more than the user has.
    let read_only = target(Some(package(Visibility::Private)), member(Some(Role::Read)));
    assert!(denied(&decide(
        &fine(vec!["acme/app"], Role::Write),
        &read_only,
        Action::Push
    )));
    // Internal packages: read when selected, as missing when not; public ones by anyone.
    let internal = target(Some(package(Visibility::Internal)), Relations::default());
    assert_eq!(
        decide(&fine(vec!["acme/app"], Role::Read), &internal, Action::Pull),
        Decision::Allow
    );
    assert_eq!(
        decide(
            &fine(vec!["acme/other"], Role::Read),
            &internal,
            Action::Pull
        ),
        Decision::NotFound
    );
    let public = target(Some(package(Visibility::Public)), Relations::default());
    assert_eq!(
        decide(&fine(vec!["acme/other"], Role::Read), &public, Action::Pull),
        Decision::Allow
    );
}

#[test]
fn sso_organizations_hide_their_packages_from_unauthorized_classic_tokens() {
    let mut t = target(
        Some(package(Visibility::Private)),
        member(Some(Role::Write)),
    );
    t.owner.as_mut().unwrap().requires_sso = true;
    let unauthorized = classic(BOB, "write:packages");
    assert_eq!(decide(&unauthorized, &t, Action::Pull), Decision::NotFound);
    let authorized = Principal::Token(Credential {
        expires_at: None,
        id: CredentialId(4),
        user: Some(BOB),
        login: "bob".into(),
        site_admin: false,
        grant: Grant::Classic {
            scopes: "write:packages".parse().unwrap(),
            sso_authorized: vec![ORG],
        },
    });
    assert_eq!(decide(&authorized, &t, Action::Push), Decision::Allow);

    // Public packages stay pullable (as without a token), and only pullable.
    t.package.as_mut().unwrap().visibility = Visibility::Public;
    assert_eq!(decide(&unauthorized, &t, Action::Pull), Decision::Allow);
    let Decision::Denied(why) = decide(&unauthorized, &t, Action::Push) else {
        panic!("push to a public package with an unauthorized token must be denied");
    };
    assert!(why.contains("SSO"), "{why}");
}

#[test]
fn creation_follows_the_owner_and_the_organization_policy() {
    let missing = |relations| target(None, relations);
    let bob = classic(BOB, "write:packages");
    assert_eq!(
        decide(&bob, &missing(member(None)), Action::Push),
        Decision::Create {
            visibility: Visibility::Private,
            link: None
        }
    );
    assert!(denied(&decide(
        &classic(CAROL, "write:packages"),
        &missing(Relations::default()),
        Action::Push
    )));
    assert!(denied(&decide(
        &classic(BOB, "read:packages"),
        &missing(member(None)),
        Action::Push
    )));

    let mut locked = missing(member(None));
    locked
        .owner
        .as_mut()
        .unwrap()
        .policy
        .member_visibilities
        .clear();
    assert!(denied(&decide(&bob, &locked, Action::Push)));
    let mut public_only = missing(member(None));
    public_only
        .owner
        .as_mut()
        .unwrap()
        .policy
        .member_visibilities = vec![Visibility::Internal];
    assert_eq!(
        decide(&bob, &public_only, Action::Push),
        Decision::Create {
            visibility: Visibility::Internal,
            link: None
        }
    );

    let mut nobody = missing(Relations::default());
    nobody.owner = None;
    assert!(denied(&decide(&bob, &nobody, Action::Push)));
    assert_eq!(decide(&bob, &nobody, Action::Pull), Decision::NotFound);
}

#[test]
fn scopes_parse_and_print_in_githubs_spelling() {
    let scopes: Scopes = "read:packages, delete:packages".parse().unwrap();
    assert!(scopes.may_read() && scopes.delete_packages() && !scopes.write_packages());
    assert_eq!(scopes.to_string(), "read:packages,delete:packages");
    assert!("gists".parse::<Scopes>().unwrap_err().contains("gists"));
    // GitHub's classic scopes that guard nothing of Berth's are held and shown all the same.
    let classic: Scopes = "read:user,gist,workflow,repo".parse().unwrap();
    assert_eq!(classic.to_string(), "repo,gist,read:user,workflow");
    assert!(!classic.may_read());
    let admin: Scopes = "admin:org,site_admin,repo".parse().unwrap();
    assert_eq!(admin.to_string(), "repo,admin:org,site_admin");
}

#[test]
fn a_token_covers_the_scopes_it_holds_and_write_covers_read() {
    let write: Scopes = "write:packages,repo".parse().unwrap();
    assert!(write.covers(&"read:packages".parse().unwrap()));
    assert!(write.covers(&"write:packages,repo".parse().unwrap()));
    assert!(!write.covers(&"delete:packages".parse().unwrap()));
    assert!(!write.covers(&"admin:org".parse().unwrap()));
    assert!(Scopes::ALL.covers(&write));
    assert!(Scopes::default().covers(&Scopes::default()));
    // A scope includes the ones GitHub nests under it, never the other way round.
    let admin_org: Scopes = "admin:org".parse().unwrap();
    assert!(admin_org.holds("write:org") && admin_org.holds("read:org"));
    let read_org: Scopes = "read:org".parse().unwrap();
    assert!(!read_org.holds("admin:org") && !read_org.holds("write:org"));
    let user: Scopes = "user".parse().unwrap();
    assert!(user.covers(&"read:user,user:email".parse().unwrap()));
    let hooks: Scopes = "admin:repo_hook".parse().unwrap();
    assert!(hooks.holds("read:repo_hook") && !hooks.holds("admin:org_hook"));
    assert!(!hooks.holds("no:such-scope"));
}

/// The management rules' tables: principal × role → may they manage it.
mod rules {
    use super::*;
    use crate::access::rules::*;

    fn site_admin() -> Principal {
        let mut admin = classic(CAROL, "write:packages");
        if let Principal::Token(c) = &mut admin {
            c.site_admin = true;
        }
        admin
    }

    #[test]
    fn organizations_are_managed_by_owners_and_seen_into_by_members() {
        // principal, its role in acme → (manages it, sees its members, creates repositories)
        let table = [
            (Principal::Anonymous, None, (false, false, false)),
            (job(REPO, Role::Write), None, (false, false, false)),
            (
                classic(CAROL, "admin:org,repo"),
                None,
                (false, false, false),
            ),
            (
                classic(BOB, "admin:org,repo"),
                Some(OrgRole::Member),
                (false, true, true),
            ),
            (classic(ALICE, ""), Some(OrgRole::Owner), (true, true, true)),
            (site_admin(), None, (true, true, true)),
        ];
        for (principal, role, expected) in table {
            let got = (
                may_manage_org(&principal, role),
                may_see_members(&principal, role),
                may_create_repo_in(&principal, role),
            );
            assert_eq!(got, expected, "{principal:?} as {role:?}");
        }
        assert!(may_administer_site(&site_admin()));
        for principal in [Principal::Anonymous, classic(ALICE, "site_admin")] {
            assert!(!may_administer_site(&principal), "{principal:?}");
        }
    }

    #[test]
    fn a_user_account_is_managed_by_the_user_and_site_admins() {
        assert!(may_manage_user(&classic(CAROL, ""), CAROL));
        assert!(may_manage_user(&site_admin(), BOB));
        for principal in [
            Principal::Anonymous,
            classic(BOB, ""),
            job(REPO, Role::Write),
        ] {
            assert!(!may_manage_user(&principal, CAROL), "{principal:?}");
        }
    }

    #[test]
    fn repositories_are_seen_by_visibility_and_role() {
        let roles = [None, Some(Role::Read), Some(Role::Write), Some(Role::Admin)];
        for role in roles {
            // principal → (sees public, internal, private) with this role
            let table = [
                (Principal::Anonymous, (true, false, false)),
                (job(REPO, Role::Write), (true, false, false)),
                (classic(CAROL, ""), (true, true, role.is_some())),
                (site_admin(), (true, true, true)),
            ];
            for (principal, expected) in table {
                let got = (
                    may_see_repo(&principal, Visibility::Public, role),
                    may_see_repo(&principal, Visibility::Internal, role),
                    may_see_repo(&principal, Visibility::Private, role),
                );
                assert_eq!(got, expected, "{principal:?} with {role:?}");
            }
        }
    }

    #[test]
    fn repository_admins_manage_it_and_writers_run_its_jobs() {
        // role → (manages it, runs its jobs)
        let table = [
            (None, (false, false)),
            (Some(Role::Read), (false, false)),
            (Some(Role::Write), (false, true)),
            (Some(Role::Admin), (true, true)),
        ];
        for (role, expected) in table {
            let user = classic(BOB, "repo");
            let got = (may_manage_repo(&user, role), may_run_jobs_of(&user, role));
            assert_eq!(got, expected, "{role:?}");
            let admin = site_admin();
            assert_eq!(
                (may_manage_repo(&admin, role), may_run_jobs_of(&admin, role)),
                (true, true),
                "site admin with {role:?}"
            );
        }
    }

    #[test]
    fn package_settings_are_managed_as_decide_says_and_members_choose_allowed_visibilities() {
        let package_of = |relations| target(Some(package(Visibility::Private)), relations);
        let owner = Relations {
            org_role: Some(OrgRole::Owner),
            ..Relations::default()
        };
        // principal, its relations → manages the package
        let table = [
            (Principal::Anonymous, Relations::default(), false),
            (
                classic(CAROL, "write:packages"),
                Relations::default(),
                false,
            ),
            (classic(BOB, "write:packages"), member(None), false),
            (
                classic(BOB, "write:packages"),
                member(Some(Role::Write)),
                false,
            ),
            (
                classic(BOB, "read:packages"),
                member(Some(Role::Admin)),
                false,
            ),
            (
                classic(BOB, "write:packages"),
                member(Some(Role::Admin)),
                true,
            ),
            (classic(ALICE, "write:packages"), owner.clone(), true),
            (site_admin(), Relations::default(), true),
        ];
        for (principal, relations, expected) in table {
            let target = package_of(relations);
            assert_eq!(
                may_manage_package(&principal, &target),
                expected,
                "{principal:?} on {target:?}"
            );
            assert_eq!(
                may_manage_package(&principal, &target),
                decide(&principal, &target, Action::Manage) == Decision::Allow
            );
        }
        // A member who manages the package chooses among what the policy lets members create;
        // the account's owners and site admins choose any visibility.
        let mut members_private_only = package_of(member(Some(Role::Admin)));
        if let Some(owner) = &mut members_private_only.owner {
            owner.policy.member_visibilities = vec![Visibility::Private];
        }
        let mut as_owner = members_private_only.clone();
        as_owner.relations = owner;
        let bob = classic(BOB, "write:packages");
        let alice = classic(ALICE, "write:packages");
        for visibility in [
            Visibility::Private,
            Visibility::Internal,
            Visibility::Public,
        ] {
            let allowed = visibility == Visibility::Private;
            assert_eq!(
                may_choose_package_visibility(&bob, &members_private_only, visibility),
                allowed,
                "{visibility:?}"
            );
            assert!(may_choose_package_visibility(&alice, &as_owner, visibility));
            assert!(may_choose_package_visibility(
                &site_admin(),
                &members_private_only,
                visibility
            ));
        }
    }

    #[test]
    fn tokens_are_their_users_alone_and_reach_only_accounts_the_user_belongs_to() {
        // Managing a token: its user only, not even a site admin.
        assert!(may_manage_token(&classic(BOB, ""), Some(BOB)));
        for principal in [Principal::Anonymous, classic(CAROL, ""), site_admin()] {
            assert!(!may_manage_token(&principal, Some(BOB)), "{principal:?}");
        }
        assert!(!may_manage_token(&job(REPO, Role::Write), None));
        // Minting a fine-grained token for an account: principal, account, role in it.
        let table = [
            (classic(CAROL, ""), CAROL, None, true),
            (classic(CAROL, ""), ORG, None, false),
            (classic(BOB, ""), ORG, Some(OrgRole::Member), true),
            (classic(ALICE, ""), ORG, Some(OrgRole::Owner), true),
            (site_admin(), ORG, None, true),
            (Principal::Anonymous, ORG, None, false),
        ];
        for (principal, account, role, expected) in table {
            assert_eq!(
                may_mint_token_for(&principal, account, role),
                expected,
                "{principal:?} for {account:?} as {role:?}"
            );
        }
        // The site_admin scope is for site admins; other scopes for anyone.
        let scopes = |s: &str| s.parse::<Scopes>().unwrap();
        assert!(may_hold_scopes(&site_admin(), &scopes("site_admin")));
        assert!(!may_hold_scopes(
            &classic(ALICE, "site_admin"),
            &scopes("site_admin")
        ));
        assert!(may_hold_scopes(
            &classic(ALICE, ""),
            &scopes("admin:org,repo,write:packages")
        ));
        // SSO authorization: members and owners of the organization.
        for (role, expected) in [
            (None, false),
            (Some(OrgRole::Member), true),
            (Some(OrgRole::Owner), true),
        ] {
            assert_eq!(may_authorize_sso_for(role), expected, "{role:?}");
        }
    }

    #[test]
    fn sso_admits_authorized_classic_tokens_and_site_admins() {
        let mut authorized = classic(BOB, "write:packages");
        if let Principal::Token(Credential {
            grant: Grant::Classic { sso_authorized, .. },
            ..
        }) = &mut authorized
        {
            sso_authorized.push(ORG);
        }
        // principal → admitted where SSO is required (everyone is where it is not)
        let table = [
            (Principal::Anonymous, false),
            (job(REPO, Role::Write), false),
            (classic(BOB, "write:packages"), false),
            (authorized, true),
            (site_admin(), true),
        ];
        for (principal, expected) in table {
            assert_eq!(sso_admits(&principal, ORG, true), expected, "{principal:?}");
            assert!(sso_admits(&principal, ORG, false), "{principal:?}");
        }
    }
}

/// Every principal kind, in the variants that change what it reads: each grant's fields, a
/// site administrator or not, the owner or not.
fn principals() -> Vec<Principal> {
    let token = |user: Option<AccountId>, site_admin: bool, grant: Grant| {
        Principal::Token(Credential {
            expires_at: None,
            id: CredentialId(1),
            user,
            login: "someone".into(),
            site_admin,
            grant,
        })
    };
    let mut all = vec![Principal::Anonymous];
    for user in [ALICE, BOB] {
        for site_admin in [false, true] {
            for scopes in [
                "",
                "read:packages",
                "read:packages,repo",
                "write:packages,repo",
            ] {
                for sso_authorized in [vec![], vec![ORG]] {
                    all.push(token(
                        Some(user),
                        site_admin,
                        Grant::Classic {
                            scopes: scopes.parse().unwrap(),
                            sso_authorized,
                        },
                    ));
                }
            }
            for owner in [ORG, ALICE, AccountId(2)] {
                for packages in [vec![], vec!["acme/app".to_owned()]] {
                    for repositories in [vec![], vec![REPO]] {
                        for private_repositories in [false, true] {
                            all.push(token(
                                Some(user),
                                site_admin,
                                Grant::FineGrained {
                                    owner,
                                    packages: packages.clone(),
                                    repositories: repositories.clone(),
                                    permission: Role::Read,
                                    private_repositories,
                                },
                            ));
                        }
                    }
                }
            }
        }
    }
    for account in [ORG, ALICE, AccountId(2)] {
        for repositories in [None, Some(vec![]), Some(vec![REPO])] {
            all.push(token(
                None,
                false,
                Grant::App {
                    account,
                    repositories,
                    permission: Role::Read,
                },
            ));
        }
    }
    for repository in [REPO, OTHER_REPO] {
        for permission in [Role::Read, Role::Write] {
            all.push(job(repository, permission));
        }
    }
    all
}

/// The live packages of `owner` in every combination of the facts a store gathers about one
/// (name, visibility, link, inheritance, job access) and the roles `user` may hold on it,
/// `org_role` being the user's membership in the owner.
fn live_targets(owner: &Owner, user: Option<AccountId>, org_role: Option<OrgRole>) -> Vec<Target> {
    let visibilities = [
        Visibility::Private,
        Visibility::Internal,
        Visibility::Public,
    ];
    let mut links = vec![None];
    for id in [REPO, OTHER_REPO] {
        for visibility in visibilities {
            links.push(Some(LinkedRepo { id, visibility }));
        }
    }
    let roles = if user.is_some() {
        vec![None, Some(Role::Read), Some(Role::Admin)]
    } else {
        vec![None]
    };
    let mut all = Vec::new();
    for name in ["acme/app", "acme/other"] {
        for visibility in visibilities {
            for linked in &links {
                for inherits in [false, true] {
                    for job_access in [
                        vec![],
                        vec![(REPO, Role::Read)],
                        vec![(OTHER_REPO, Role::Write)],
                    ] {
                        for package_role in &roles {
                            // The store finds a repository role only on a linked repository.
                            let repo_roles = if linked.is_some() {
                                roles.clone()
                            } else {
                                vec![None]
                            };
                            for repo_role in repo_roles {
                                all.push(Target {
                                    name: name.into(),
                                    owner: Some(owner.clone()),
                                    package: Some(Package {
                                        visibility,
                                        linked: *linked,
                                        inherits,
                                        job_access: job_access.clone(),
                                        deleted_at: None,
                                    }),
                                    relations: Relations {
                                        org_role,
                                        package_role: *package_role,
                                        repo_role,
                                    },
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    all
}

#[test]
fn the_listing_condition_admits_exactly_what_decide_lets_pull() {
    let mut owners = Vec::new();
    for requires_sso in [false, true] {
        owners.push(Owner {
            requires_sso,
            ..org()
        });
    }
    owners.push(Owner {
        id: ALICE,
        login: "alice".into(),
        kind: AccountKind::User,
        requires_sso: false,
        policy: PackagePolicy::default(),
    });
    let mut checked = 0;
    for principal in principals() {
        for owner in &owners {
            // The store reads an organization membership for users only.
            let org_roles = match (owner.kind, principal.user()) {
                (AccountKind::Organization, Some(_)) => {
                    vec![None, Some(OrgRole::Member), Some(OrgRole::Owner)]
                }
                _ => vec![None],
            };
            for org_role in org_roles {
                let condition = readable(&principal, owner, org_role);
                for target in live_targets(owner, principal.user(), org_role) {
                    let allowed = decide(&principal, &target, Action::Pull) == Decision::Allow;
                    assert_eq!(
                        condition.admits(&target),
                        allowed,
                        "{principal:?} on {target:?}: condition {condition:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100_000, "{checked} combinations");
}

#[test]
fn listing_conditions_simplify() {
    let public = Readable::Visibility(Visibility::Public);
    assert_eq!(Readable::any_of(vec![]), Readable::Nothing);
    assert_eq!(Readable::all_of(vec![]), Readable::Everything);
    assert_eq!(
        Readable::any_of(vec![Readable::Nothing, public.clone()]),
        public
    );
    assert_eq!(
        Readable::any_of(vec![public.clone(), Readable::Everything]),
        Readable::Everything
    );
    assert_eq!(
        Readable::all_of(vec![public.clone(), Readable::Nothing]),
        Readable::Nothing
    );
    // What site administrators and owners read is every package: the store lists them
    // without a condition.
    let owner = org();
    let admin = Principal::Token(Credential {
        site_admin: true,
        ..match classic(CAROL, "read:packages") {
            Principal::Token(c) => c,
            Principal::Anonymous => unreachable!(),
        }
    });
    assert_eq!(readable(&admin, &owner, None), Readable::Everything);
    assert_eq!(
        readable(
            &classic(ALICE, "read:packages"),
            &owner,
            Some(OrgRole::Owner)
        ),
        Readable::Everything
    );
    assert_eq!(readable(&Principal::Anonymous, &owner, None), public);
    assert_eq!(
        readable(&classic(BOB, ""), &owner, Some(OrgRole::Member)),
        public
    );
}
