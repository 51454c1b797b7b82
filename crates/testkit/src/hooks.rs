//! The hooks contract ([`berth_core::hooks::HookStore`]): the queue's order and leases, and
//! which hooks a package event reaches (the `deleted` opt-in included).
//!
//! Each clause takes a fresh, empty store (it creates the accounts it needs through the
//! access ports); [`hooks_contract!`](crate::hooks_contract) stamps them per backend.

use std::sync::Arc;

use berth_core::access::store::{AccessStore, Created, NewUser};
use berth_core::access::{Access, AccountId, Principal, RepoId, Visibility};
use berth_core::hooks::model::{
    Attempt, AttemptOutcome, ContentType, DeliveryState, HookConfig, HookId, HookScope,
    HookSettings, NewDelivery,
};
use berth_core::hooks::store::EventTargets;
use berth_core::hooks::{HookStore, Hooks, PackageAction, PackageEvent, TargetPolicy};
use berth_core::{Digest, RepoName};

struct World<S> {
    store: S,
    alice: AccountId,
    org: AccountId,
    repo: RepoId,
}

/// The store's tests need no network policy.
struct AnyTarget;

#[async_trait::async_trait]
impl TargetPolicy for AnyTarget {
    async fn check(&self, _url: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Alice, her organization `acme`, its repository `app` and its package `acme/app`.
async fn world<S: AccessStore>(store: S) -> World<S> {
    let Created::New(alice) = store
        .create_user(
            &NewUser {
                login: "alice".into(),
                name: None,
                email: None,
                password_hash: None,
                site_admin: false,
            },
            1_000,
        )
        .await
        .unwrap()
    else {
        panic!("alice taken")
    };
    let Created::New(org) = store.create_org("acme", None, alice, 1_000).await.unwrap() else {
        panic!("acme taken")
    };
    let Created::New(repo) = store
        .create_repo(org, "app", Visibility::Private, 1_000)
        .await
        .unwrap()
    else {
        panic!("app taken")
    };
    store
        .create_package(&name(), org, Visibility::Private, Some(repo), None, 1_000)
        .await
        .unwrap();
    World {
        store,
        alice,
        org,
        repo,
    }
}

fn name() -> RepoName {
    "acme/app".parse().unwrap()
}

fn settings(deleted_events: bool) -> HookSettings {
    HookSettings {
        active: true,
        events: vec!["package".into()],
        config: HookConfig {
            url: "http://127.0.0.1:9/hook".into(),
            content_type: ContentType::Json,
            secret: Some("s".into()),
            insecure_ssl: false,
        },
        deleted_events,
    }
}

/// Installs `app` on the world's organization for its repository `app` only.
async fn install_for_the_repo<S: AccessStore>(
    w: &World<S>,
    app: berth_core::ids::AppId,
) -> berth_core::ids::InstallationId {
    w.store
        .install_app(
            app,
            w.org,
            Some(&[w.repo]),
            berth_core::access::Role::Read,
            1_000,
        )
        .await
        .unwrap()
}

fn delivery(hook: HookId, n: u32) -> NewDelivery {
    NewDelivery {
        hook,
        guid: format!("guid-{n}"),
        event: "package".into(),
        action: Some("published".into()),
        payload: format!("{{\"n\":{n}}}"),
        redelivery: false,
        repository_id: None,
    }
}

fn attempt(number: u32, status: Option<u16>) -> Attempt {
    Attempt {
        number,
        started_at: 5_000,
        duration_ms: 12,
        request_headers: vec![("X-GitHub-Event".into(), "package".into())],
        status_code: status,
        response_headers: vec![("content-length".into(), "0".into())],
        response_body: String::new(),
        error: status.is_none().then(|| "could not connect".to_owned()),
    }
}

fn guids(claimed: &[berth_core::hooks::store::Claimed]) -> Vec<String> {
    claimed
        .iter()
        .map(|c| c.delivery.queued.guid.clone())
        .collect()
}

/// Stamps the hooks contract for one backend: `hooks_contract!(sqlite, open)` makes
/// `mod sqlite` with one test per clause of [`hooks`](crate::hooks), each on the store `open`
/// returns (see the [crate] docs).
#[macro_export]
macro_rules! hooks_contract {
    ($backend:ident, $open:expr) => {
        $crate::__stamp!($backend, $open, hooks, [::tokio::test], [
            the_queue_hands_out_each_hooks_oldest_delivery_once_under_a_lease,
            inactive_hooks_wait_and_deleted_hooks_take_their_deliveries_along,
            package_events_reach_the_owners_and_the_linked_repositorys_hooks_deleted_only_by_opt_in,
            an_accounts_hooks_are_capped_with_its_repositories_hooks_counted,
            an_apps_hook_reaches_the_packages_of_its_installations_selected_repositories,
            a_package_events_targets_are_its_facts_and_every_hook_it_reaches,
        ]);
    };
}

/// The queue hands out each hook's oldest delivery once under a lease.
pub async fn the_queue_hands_out_each_hooks_oldest_delivery_once_under_a_lease<
    S: HookStore + AccessStore + Clone,
>(
    store: S,
) {
    let w = world(store).await;
    let s = &w.store;
    let org_hook = s
        .create_hook(HookScope::Organization(w.org), &settings(false), 1_000, 20)
        .await
        .unwrap()
        .unwrap();
    let repo_hook = s
        .create_hook(HookScope::Repository(w.repo), &settings(false), 1_000, 20)
        .await
        .unwrap()
        .unwrap();
    s.enqueue(
        &[
            delivery(org_hook, 1),
            delivery(org_hook, 2),
            delivery(repo_hook, 3),
        ],
        1_000,
    )
    .await
    .unwrap();
    assert_eq!(s.next_due().await.unwrap(), Some(1_000));
    assert_eq!(s.pending_deliveries().await.unwrap(), 3);

    // Only the heads, and only once while leased.
    let claimed = s.claim_due(1_000, "a", 60_000, 16).await.unwrap();
    assert_eq!(guids(&claimed), ["guid-1", "guid-3"]);
    assert_eq!(claimed[0].hook.id, org_hook);
    assert!(
        s.claim_due(1_000, "b", 60_000, 16)
            .await
            .unwrap()
            .is_empty()
    );
    let first = claimed[0].delivery.id;
    let third = claimed[1].delivery.id;

    // An attempt is recorded only under the lease it was claimed with.
    let lost = s
        .record_attempt(first, "b", &attempt(1, Some(500)), AttemptOutcome::Failed)
        .await
        .unwrap_err();
    assert_eq!(lost.kind(), berth_core::StoreErrorKind::LeaseLost, "{lost}");
    s.record_attempt(
        first,
        "a",
        &attempt(1, Some(500)),
        AttemptOutcome::RetryAt(2_000),
    )
    .await
    .unwrap();
    s.record_attempt(
        third,
        "a",
        &attempt(1, Some(200)),
        AttemptOutcome::Delivered,
    )
    .await
    .unwrap();
    assert_eq!(
        s.pending_deliveries().await.unwrap(),
        2,
        "the retried one waits"
    );
    // The failed head holds the hook's next delivery back until it is due again.
    assert!(
        s.claim_due(1_500, "c", 60_000, 16)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.next_due().await.unwrap(), Some(2_000));
    let again = s.claim_due(2_000, "c", 60_000, 16).await.unwrap();
    assert_eq!(guids(&again), ["guid-1"]);
    assert_eq!(again[0].delivery.attempts, 1);
    // Given up: the next one goes.
    s.record_attempt(first, "c", &attempt(2, None), AttemptOutcome::Failed)
        .await
        .unwrap();
    let next = s.claim_due(2_000, "d", 60_000, 16).await.unwrap();
    assert_eq!(guids(&next), ["guid-2"]);
    assert_eq!(
        s.pending_deliveries().await.unwrap(),
        1,
        "leased is still queued"
    );

    // A lease that expired is claimed again (its holder died).
    let taken_over = s.claim_due(60_000, "e", 120_000, 16).await.unwrap();
    assert_eq!(guids(&taken_over), ["guid-2"]);

    // What was recorded, newest first, and the hook's last response.
    let listed = s.deliveries(org_hook, None, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].state, DeliveryState::Failed);
    assert_eq!(listed[1].attempts, 2);
    let last = listed[1].last_attempt.as_ref().unwrap();
    assert_eq!(last.error.as_deref(), Some("could not connect"));
    let (one, attempts) = s.delivery(org_hook, first).await.unwrap().unwrap();
    assert_eq!(one.queued.payload, "{\"n\":1}");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status_code, Some(500));
    assert_eq!(
        attempts[0].request_headers,
        [("X-GitHub-Event".to_owned(), "package".to_owned())]
    );
    assert!(s.delivery(repo_hook, first).await.unwrap().is_none());
    // Purging keeps what is pending and what is recent.
    assert_eq!(s.purge_deliveries(1_000).await.unwrap(), 0);
    assert_eq!(
        s.purge_deliveries(1_001).await.unwrap(),
        2,
        "guid-1 and guid-3"
    );
    assert_eq!(s.deliveries(org_hook, None, 10).await.unwrap().len(), 1);
    let hook = s.hook(org_hook).await.unwrap().unwrap();
    assert_eq!(hook.last_response.status, "failed");
    assert_eq!(hook.last_response.code, None);
}

/// Inactive hooks wait and deleted hooks take their deliveries along.
pub async fn inactive_hooks_wait_and_deleted_hooks_take_their_deliveries_along<
    S: HookStore + AccessStore + Clone,
>(
    store: S,
) {
    let w = world(store).await;
    let s = &w.store;
    let hook = s
        .create_hook(HookScope::Organization(w.org), &settings(false), 1_000, 20)
        .await
        .unwrap()
        .unwrap();
    s.enqueue(&[delivery(hook, 1)], 1_000).await.unwrap();
    let paused = HookSettings {
        active: false,
        ..settings(false)
    };
    assert!(s.update_hook(hook, &paused, 2_000).await.unwrap());
    assert!(
        s.claim_due(5_000, "a", 60_000, 16)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.next_due().await.unwrap(), None);
    assert!(
        s.hooks_for_package(w.org, Some(w.repo))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.update_hook(hook, &settings(false), 3_000).await.unwrap());
    assert_eq!(s.claim_due(5_000, "a", 60_000, 16).await.unwrap().len(), 1);
    assert!(s.delete_hook(hook).await.unwrap());
    assert!(s.deliveries(hook, None, 10).await.unwrap().is_empty());
    assert!(!s.delete_hook(hook).await.unwrap());
}

/// Package events reach the owners and the linked repository's hooks deleted only by opt in.
pub async fn package_events_reach_the_owners_and_the_linked_repositorys_hooks_deleted_only_by_opt_in<
    S: HookStore + AccessStore + Clone,
>(
    store: S,
) {
    let w = world(store).await;
    let s = &w.store;
    let org_hook = s
        .create_hook(HookScope::Organization(w.org), &settings(false), 1_000, 20)
        .await
        .unwrap()
        .unwrap();
    let repo_hook = s
        .create_hook(HookScope::Repository(w.repo), &settings(true), 1_000, 20)
        .await
        .unwrap()
        .unwrap();
    let found: Vec<HookId> = s
        .hooks_for_package(w.org, Some(w.repo))
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(found, [org_hook, repo_hook]);

    let store = Arc::new(s.clone());
    let hooks = Hooks::new(store.clone(), Access::new(store), Arc::new(AnyTarget));
    let event = |action| PackageEvent {
        action,
        name: name(),
        digest: Digest::sha256(b"manifest"),
        tag: Some("v1".into()),
        manifest: None,
        labels: Default::default(),
        sender: Principal::Anonymous,
        base: "https://registry.example".into(),
        version_id: Some(crate::id(42)),
    };
    assert_eq!(
        hooks.package_event(event(PackageAction::Published)).await,
        2
    );
    assert_eq!(hooks.package_event(event(PackageAction::Deleted)).await, 1);
    let deleted = s.deliveries(repo_hook, None, 1).await.unwrap();
    let payload: serde_json::Value = serde_json::from_str(&deleted[0].queued.payload).unwrap();
    assert_eq!(payload["action"], "deleted");
    assert_eq!(payload["package"]["package_version"]["id"], 42);
    assert_eq!(payload["repository"]["full_name"], "acme/app");
    assert_eq!(
        payload["sender"]["login"], "acme",
        "no user: the owner sends"
    );
    assert_eq!(s.deliveries(org_hook, None, 10).await.unwrap().len(), 1);

    // No package, no deliveries.
    let mut other = event(PackageAction::Published);
    other.name = "acme/none".parse().unwrap();
    assert_eq!(hooks.package_event(other).await, 0);
}

/// An account's hooks are capped with its repositories hooks counted.
pub async fn an_accounts_hooks_are_capped_with_its_repositories_hooks_counted<
    S: HookStore + AccessStore + Clone,
>(
    store: S,
) {
    let w = world(store).await;
    let s = &w.store;
    let org = HookScope::Organization(w.org);
    let repo = HookScope::Repository(w.repo);
    let create = |scope| async move {
        s.create_hook(scope, &settings(false), 1_000, 3)
            .await
            .unwrap()
    };
    let first = create(org).await.expect("first");
    create(repo).await.expect("second");
    create(org).await.expect("third");
    assert_eq!(create(org).await, None, "the organization is full");
    assert_eq!(
        create(repo).await,
        None,
        "its repositories' hooks count as its own"
    );
    assert_eq!(s.hooks_of(org).await.unwrap().len(), 2, "nothing created");
    // Another account is counted on its own.
    assert!(create(HookScope::User(w.alice)).await.is_some());
    // Deleting one makes room.
    assert!(s.delete_hook(first).await.unwrap());
    assert!(create(repo).await.is_some());
    assert_eq!(create(org).await, None);
}

/// An app's hook reaches the packages of its installations, limited to the selected
/// repositories, each through its installation; it is no hook of the app owner's collection.
pub async fn an_apps_hook_reaches_the_packages_of_its_installations_selected_repositories<
    S: HookStore + AccessStore + Clone,
>(
    store: S,
) {
    let w = world(store).await;
    let s = &w.store;
    let Created::New(other) = s
        .create_repo(w.org, "other", Visibility::Private, 1_000)
        .await
        .unwrap()
    else {
        panic!("other taken")
    };
    let Created::New(app) = s
        .create_app(w.alice, "scanner", b"hash", 1_000)
        .await
        .unwrap()
    else {
        panic!("scanner taken")
    };
    let hook = s
        .create_hook(HookScope::App(app), &settings(false), 1_000, 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.hook(hook).await.unwrap().unwrap().scope,
        HookScope::App(app)
    );
    assert_eq!(s.hooks_of(HookScope::App(app)).await.unwrap()[0].id, hook);
    assert!(
        s.hooks_of(HookScope::User(w.alice))
            .await
            .unwrap()
            .is_empty()
    );
    // Not installed yet: nothing.
    assert!(
        s.app_hooks_for_package(w.org, Some(w.repo))
            .await
            .unwrap()
            .is_empty()
    );

    let installation = install_for_the_repo(&w, app).await;
    let found = s.app_hooks_for_package(w.org, Some(w.repo)).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].0.id, found[0].1), (hook, installation));
    assert!(
        s.app_hooks_for_package(w.org, Some(other))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.app_hooks_for_package(w.org, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.app_hooks_for_package(w.alice, Some(w.repo))
            .await
            .unwrap()
            .is_empty()
    );
    // App hooks are not the owner's or the repository's hooks.
    assert!(
        s.hooks_for_package(w.org, Some(w.repo))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.hooks_for_package(w.alice, None).await.unwrap().is_empty());

    // Installed for all repositories: every package of the account, linked or not.
    s.install_app(app, w.org, None, berth_core::access::Role::Read, 2_000)
        .await
        .unwrap();
    assert_eq!(
        s.app_hooks_for_package(w.org, Some(other))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.app_hooks_for_package(w.org, None).await.unwrap().len(), 1);

    // An inactive hook reaches nothing.
    let mut inactive = settings(false);
    inactive.active = false;
    assert!(s.update_hook(hook, &inactive, 3_000).await.unwrap());
    assert!(
        s.app_hooks_for_package(w.org, Some(w.repo))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A package event's targets, read at once, are the package's facts and the hooks each
/// separate read finds: its owner's and its linked repository's active hooks, and its apps'
/// with their installations; none for a package that does not exist.
pub async fn a_package_events_targets_are_its_facts_and_every_hook_it_reaches<
    S: HookStore + AccessStore + Clone,
>(
    store: S,
) {
    let w = world(store).await;
    let s = &w.store;
    let new_hook = |scope| async move {
        s.create_hook(scope, &settings(false), 1_000, 20)
            .await
            .unwrap()
            .unwrap()
    };
    let org_hook = new_hook(HookScope::Organization(w.org)).await;
    let repo_hook = new_hook(HookScope::Repository(w.repo)).await;
    let idle = new_hook(HookScope::Organization(w.org)).await;
    let mut off = settings(false);
    off.active = false;
    assert!(s.update_hook(idle, &off, 1_500).await.unwrap());
    new_hook(HookScope::User(w.alice)).await;
    let Created::New(app) = s
        .create_app(w.alice, "scanner", b"hash", 1_000)
        .await
        .unwrap()
    else {
        panic!("scanner taken")
    };
    let app_hook = new_hook(HookScope::App(app)).await;
    let installation = install_for_the_repo(&w, app).await;
    let digest = Digest::sha256(b"version");

    let targets = s
        .package_event_targets(&name(), &digest)
        .await
        .unwrap()
        .expect("the package exists");
    let expected = EventTargets {
        facts: s.package_facts(&name(), &digest).await.unwrap().unwrap(),
        hooks: s.hooks_for_package(w.org, Some(w.repo)).await.unwrap(),
        app_hooks: s.app_hooks_for_package(w.org, Some(w.repo)).await.unwrap(),
    };
    assert_eq!(targets, expected);
    assert_eq!(targets.facts.owner, w.org);
    assert_eq!(targets.facts.linked_repo, Some(w.repo));
    let ids: Vec<HookId> = targets.hooks.iter().map(|h| h.id).collect();
    assert_eq!(
        ids,
        [org_hook, repo_hook],
        "active owner and repository hooks only"
    );
    let apps: Vec<_> = targets.app_hooks.iter().map(|(h, i)| (h.id, *i)).collect();
    assert_eq!(apps, [(app_hook, installation)]);

    // A package linked to no repository reaches its owner's hooks, and no app installed for
    // selected repositories only.
    let unlinked: RepoName = "acme/tool".parse().unwrap();
    s.create_package(&unlinked, w.org, Visibility::Private, None, None, 2_000)
        .await
        .unwrap();
    let targets = s
        .package_event_targets(&unlinked, &digest)
        .await
        .unwrap()
        .expect("the package exists");
    let ids: Vec<HookId> = targets.hooks.iter().map(|h| h.id).collect();
    assert_eq!(ids, [org_hook]);
    assert!(targets.app_hooks.is_empty());
    assert_eq!(targets.facts.linked_repo, None);

    let missing: RepoName = "acme/none".parse().unwrap();
    assert_eq!(
        s.package_event_targets(&missing, &digest).await.unwrap(),
        None
    );
}
