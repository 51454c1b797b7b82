//! Clauses of credentials: tokens of every kind through their secrets, and app installations.

use berth_core::access::store::{AccessStore, Created, NewCredential, NewUser, Resolved};
use berth_core::access::token::TokenKind;
use berth_core::access::{Credential, Grant, Role, Scopes, Visibility};
use berth_core::ports::MetadataStore;

use super::{classic, credential, new_user, org, repo, user, valid};

/// Each grant kind round trips through its secret.
pub async fn each_grant_kind_round_trips_through_its_secret<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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
                scopes: "read:packages,write:packages,repo,admin:org,read:user"
                    .parse::<Scopes>()
                    .expect("GitHub's scope names"),
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

/// Grant lists are sets.
pub async fn grant_lists_are_sets<S: AccessStore + MetadataStore + Clone>(s: S) {
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

/// Tokens grant at most write.
pub async fn tokens_grant_at_most_write<S: AccessStore + MetadataStore + Clone>(s: S) {
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

/// Expired revoked and unknown secrets.
pub async fn expired_revoked_and_unknown_secrets<S: AccessStore + MetadataStore + Clone>(s: S) {
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
    assert!(!s.revoke_credential(crate::missing(), 3_000).await.unwrap());

    assert_eq!(
        s.resolve_secret(b"never issued", 0).await.unwrap(),
        Resolved::Unknown
    );
    assert_eq!(
        s.resolve_secret(b"expirin", 0).await.unwrap(),
        Resolved::Unknown
    );
    assert_eq!(
        s.resolve_credential(crate::missing(), 0).await.unwrap(),
        Resolved::Unknown
    );
    assert_eq!(s.credential(crate::missing()).await.unwrap(), None);
}

/// Touches keep the latest use and lists are newest first.
pub async fn touches_keep_the_latest_use_and_lists_are_newest_first<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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
        s.list_credentials(crate::missing()).await.unwrap(),
        Vec::new()
    );
}

/// Sso authorization is added to a classic grant.
pub async fn sso_authorization_is_added_to_a_classic_grant<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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

/// App installations are found by their app's secret.
pub async fn app_installations_are_found_by_their_apps_secret<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
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
        s.installation_for_secret(crate::missing(), b"app secret")
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

/// A web session is a credential that resolves, records uses and is revoked as any other, is
/// listed by `list_sessions` while live (newest first, with what it signed in from) and never
/// by `list_credentials`.
pub async fn web_sessions_resolve_list_and_end_as_credentials<
    S: AccessStore + MetadataStore + Clone,
>(
    s: S,
) {
    use berth_core::access::store::SessionFacts;

    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let acme = org(&s, "acme", alice).await;
    let token = s
        .create_credential(&credential(
            TokenKind::Classic,
            "token",
            Some(alice),
            classic("read:packages"),
        ))
        .await
        .unwrap();
    let facts = |agent: &str| SessionFacts {
        user_agent: agent.to_owned(),
        address: "192.0.2.7".to_owned(),
    };
    let session = |secret: &str, created_at, expires_at| NewCredential {
        created_at,
        expires_at: Some(expires_at),
        ..credential(
            TokenKind::Classic,
            secret,
            Some(alice),
            Grant::Classic {
                scopes: Scopes::ALL,
                sso_authorized: vec![acme],
            },
        )
    };
    let older = s
        .create_session(&session("s1", 2_000, 100_000), &facts("Firefox"))
        .await
        .unwrap();
    let newer = s
        .create_session(&session("s2", 3_000, 100_000), &facts("Chromium"))
        .await
        .unwrap();
    let _expired = s
        .create_session(&session("s3", 4_000, 5_000), &facts("Old"))
        .await
        .unwrap();
    s.create_session(
        &NewCredential {
            user: Some(bob),
            ..session("b1", 2_500, 100_000)
        },
        &facts("Bob's"),
    )
    .await
    .unwrap();

    let resolved = valid(s.resolve_secret(b"s2", 10_000).await.unwrap());
    assert_eq!(resolved.id, newer);
    assert_eq!(resolved.user, Some(alice));
    assert_eq!(
        resolved.grant,
        Grant::Classic {
            scopes: Scopes::ALL,
            sso_authorized: vec![acme],
        }
    );
    s.touch_credentials(&[(older, 9_000)]).await.unwrap();

    let listed = s.list_sessions(alice, 10_000).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|session| session.id).collect();
    assert_eq!(ids, vec![newer, older], "live ones only, newest first");
    assert_eq!(listed[0].facts, facts("Chromium"));
    assert_eq!(listed[0].created_at, 3_000);
    assert_eq!(listed[0].expires_at, Some(100_000));
    assert_eq!(listed[1].last_used_at, Some(9_000));

    let tokens: Vec<_> = s
        .list_credentials(alice)
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.id)
        .collect();
    assert_eq!(tokens, vec![token], "sessions are not listed as tokens");

    assert!(s.revoke_credential(newer, 11_000).await.unwrap());
    assert_eq!(
        s.resolve_secret(b"s2", 12_000).await.unwrap(),
        Resolved::Revoked
    );
    let ids: Vec<_> = s
        .list_sessions(alice, 12_000)
        .await
        .unwrap()
        .into_iter()
        .map(|session| session.id)
        .collect();
    assert_eq!(ids, vec![older]);
}
