//! What only a database shared by several nodes has: each test opens one database twice (two
//! nodes, two pools) and races them on the writes the unique constraints and row locks must
//! settle. Also the port of the SQLite crate's extra clause: what one node stored, another
//! (opened after it closed) reads.

use berth_core::access::store::{AppStore, Created, CredentialStore, DirectoryStore, PackageStore};
use berth_core::access::token::TokenKind;
use berth_core::access::{AccountId, CredentialId, Readable, Role, Visibility};
use berth_meta_postgres::{PgMetadataStore, PgOptions};
use berth_testkit::access::{classic, credential, name, new_user, repo, user, valid};

/// Two nodes on one new database.
async fn two_nodes() -> (PgMetadataStore, PgMetadataStore) {
    let url = berth_testkit::services::postgres_database().await;
    let a = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .expect("open node a");
    let b = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .expect("open node b");
    (a, b)
}

#[tokio::test]
async fn access_data_survives_the_node_that_wrote_it() {
    let url = berth_testkit::services::postgres_database().await;
    let s = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .unwrap();
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

    let s = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .unwrap();
    assert_eq!(s.account("ALICE").await.unwrap().unwrap().id, alice);
    assert_eq!(valid(s.resolve_secret(b"c", 0).await.unwrap()).id, id);
    assert_eq!(
        s.credential(id).await.unwrap().unwrap().last_used_at,
        Some(9_000)
    );
}

#[tokio::test]
async fn two_nodes_creating_one_package_end_with_one_and_both_succeed() {
    let (a, b) = two_nodes().await;
    let alice = user(&a, "alice").await;
    let bob = user(&a, "bob").await;
    let acme = berth_testkit::access::org(&a, "acme", alice).await;
    for round in 0..20 {
        let package = name(&format!("acme/app{round}"));
        let (made_a, made_b) = tokio::join!(
            a.create_package(
                &package,
                acme,
                Visibility::Private,
                None,
                Some(alice),
                5_000
            ),
            b.create_package(&package, acme, Visibility::Public, None, Some(bob), 6_000),
        );
        made_a.expect("node a's create succeeds");
        made_b.expect("node b's create succeeds");
        let record = b.package_record(&package).await.unwrap().expect("created");
        assert_eq!(record.owner, acme);
        // Exactly one creator: its visibility and time, and only it holds admin.
        let alice_role = a
            .target(&package, Some(alice))
            .await
            .unwrap()
            .relations
            .package_role;
        let bob_role = a
            .target(&package, Some(bob))
            .await
            .unwrap()
            .relations
            .package_role;
        match (record.visibility, record.created_at) {
            (Visibility::Private, 5_000) => {
                assert_eq!((alice_role, bob_role), (Some(Role::Admin), None));
            }
            (Visibility::Public, 6_000) => {
                assert_eq!((alice_role, bob_role), (None, Some(Role::Admin)));
            }
            other => panic!("a mix of both creators: {other:?}"),
        }
    }
    let (total, listed) = a
        .list_packages(acme, &Readable::Everything, &Default::default(), 0, 100)
        .await
        .unwrap();
    assert_eq!((total, listed.len()), (20, 20), "one package per name");
}

#[tokio::test]
async fn logins_differing_only_in_case_created_at_once_end_with_one_account() {
    let (a, b) = two_nodes().await;
    let owner = user(&a, "owner").await;
    for round in 0..20 {
        let upper = format!("Mallory{round}");
        let lower = upper.to_lowercase();
        // A user on one node, and on the other a user or (every other round) an organization.
        let upper_user = new_user(&upper);
        let lower_user = new_user(&lower);
        let (made_a, made_b) = tokio::join!(a.create_user(&upper_user, 1_000), async {
            if round % 2 == 0 {
                b.create_user(&lower_user, 1_000).await
            } else {
                b.create_org(&lower, None, owner, 1_000).await
            }
        });
        let outcomes = [
            made_a.expect("no error on a"),
            made_b.expect("no error on b"),
        ];
        let new: Vec<_> = outcomes
            .iter()
            .filter(|o| matches!(o, Created::New(_)))
            .collect();
        assert_eq!(new.len(), 1, "exactly one creates {upper}: {outcomes:?}");
        assert!(outcomes.contains(&Created::Taken), "{outcomes:?}");
        let Created::New(id) = *new[0] else {
            unreachable!()
        };
        assert_eq!(a.account(&lower).await.unwrap().unwrap().id, id);
        assert_eq!(b.account(&upper).await.unwrap().unwrap().id, id);
    }
}

#[tokio::test]
async fn team_repository_and_app_names_created_at_once_are_taken_once() {
    let (a, b) = two_nodes().await;
    let alice = user(&a, "alice").await;
    let acme = berth_testkit::access::org(&a, "acme", alice).await;
    let (ta, tb) = tokio::join!(
        a.create_team(acme, "Ops", "Ops"),
        b.create_team(acme, "ops", "ops")
    );
    let teams = [ta.unwrap(), tb.unwrap()];
    assert_eq!(
        teams.iter().filter(|t| **t == Created::Taken).count(),
        1,
        "{teams:?}"
    );
    let (ra, rb) = tokio::join!(
        a.create_repo(acme, "Site", Visibility::Public, 1_000),
        b.create_repo(acme, "site", Visibility::Private, 1_000),
    );
    let repos = [ra.unwrap(), rb.unwrap()];
    assert_eq!(
        repos.iter().filter(|r| **r == Created::Taken).count(),
        1,
        "{repos:?}"
    );
    let (aa, ab) = tokio::join!(
        a.create_app(alice, "Deployer", b"s1", 1_000),
        b.create_app(alice, "deployer", b"s2", 1_000),
    );
    let apps = [aa.unwrap(), ab.unwrap()];
    assert_eq!(
        apps.iter().filter(|x| **x == Created::Taken).count(),
        1,
        "{apps:?}"
    );
}

#[tokio::test]
async fn of_two_nodes_linking_one_package_the_first_wins() {
    let (a, b) = two_nodes().await;
    let alice = user(&a, "alice").await;
    let one = repo(&a, alice, "one", Visibility::Public).await;
    let two = repo(&a, alice, "two", Visibility::Public).await;
    for round in 0..10 {
        let package = name(&format!("alice/p{round}"));
        a.create_package(
            &package,
            alice,
            Visibility::Public,
            None,
            Some(alice),
            1_000,
        )
        .await
        .unwrap();
        let (la, lb) = tokio::join!(
            a.link_unlinked_package(&package, one, true),
            b.link_unlinked_package(&package, two, false),
        );
        let (la, lb) = (la.unwrap(), lb.unwrap());
        assert!(la ^ lb, "exactly one link wins: {la} {lb}");
        let linked = b
            .package_record(&package)
            .await
            .unwrap()
            .unwrap()
            .linked_repo;
        assert_eq!(linked, Some(if la { one } else { two }));
    }
}

#[tokio::test]
async fn touches_from_two_nodes_keep_the_latest_use_without_deadlocking() {
    let (a, b) = two_nodes().await;
    let alice = user(&a, "alice").await;
    let mut ids: Vec<CredentialId> = Vec::new();
    for n in 0..30 {
        let id = a
            .create_credential(&credential(
                TokenKind::Classic,
                &format!("secret{n}"),
                Some(alice),
                classic("read:packages"),
            ))
            .await
            .unwrap();
        ids.push(id);
    }
    for round in 0..10_i64 {
        // The same credentials, in opposite orders, from both nodes at once.
        let forward: Vec<_> = ids.iter().map(|id| (*id, 1_000 + round * 10)).collect();
        let backward: Vec<_> = ids
            .iter()
            .rev()
            .map(|id| (*id, 1_005 + round * 10))
            .collect();
        let (ta, tb) = tokio::join!(
            a.touch_credentials(&forward),
            b.touch_credentials(&backward)
        );
        ta.expect("node a records its uses");
        tb.expect("node b records its uses");
    }
    // An older use recorded late changes nothing.
    a.touch_credentials(&[(ids[0], 10)]).await.unwrap();
    for id in &ids {
        let info = b.credential(*id).await.unwrap().unwrap();
        assert_eq!(info.last_used_at, Some(1_095), "credential {id}");
    }
}

#[tokio::test]
async fn two_nodes_installing_one_app_share_one_installation() {
    let (a, b) = two_nodes().await;
    let alice = user(&a, "alice").await;
    let site = repo(&a, alice, "site", Visibility::Private).await;
    let Created::New(app) = a
        .create_app(alice, "deployer", b"secret", 1_000)
        .await
        .unwrap()
    else {
        panic!("app taken");
    };
    let only_site = [site];
    let (ia, ib) = tokio::join!(
        a.install_app(app, alice, Some(&only_site), Role::Read, 1_000),
        b.install_app(app, alice, None, Role::Write, 1_000),
    );
    let (ia, ib) = (ia.unwrap(), ib.unwrap());
    assert_eq!(ia, ib, "one installation per app and account");
    let installed = a
        .installation_for_secret(ia, b"secret")
        .await
        .unwrap()
        .unwrap();
    // Whichever committed last, its settings apply whole.
    match installed.permission {
        Role::Read => assert_eq!(installed.repositories, Some(vec![site])),
        Role::Write => assert_eq!(installed.repositories, None),
        Role::Admin => panic!("never admin"),
    }
}

#[tokio::test]
async fn a_purge_and_a_role_grant_racing_on_two_nodes_both_finish() {
    let (a, b) = two_nodes().await;
    let alice = user(&a, "alice").await;
    let bob = user(&a, "bob").await;
    for round in 0..10 {
        let package = name(&format!("alice/gone{round}"));
        a.create_package(
            &package,
            alice,
            Visibility::Public,
            None,
            Some(alice),
            1_000,
        )
        .await
        .unwrap();
        a.set_package_deleted(&package, Some(2_000)).await.unwrap();
        let (purged, granted) = tokio::join!(
            a.purge_deleted_packages(3_000),
            b.set_package_role(
                &package,
                berth_core::access::store::Grantee::User(bob),
                Some(Role::Read)
            ),
        );
        assert_eq!(purged.expect("the purge succeeds"), 1);
        // Granted before the purge (and purged with the package) or refused after it.
        let _ = granted.expect("the grant succeeds or finds no package");
        assert_eq!(a.package_record(&package).await.unwrap(), None);
    }
    assert_eq!(
        a.account_by_id(AccountId(bob.0))
            .await
            .unwrap()
            .unwrap()
            .login,
        "bob"
    );
}
