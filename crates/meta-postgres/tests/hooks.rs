//! The webhook queue on PostgreSQL beyond the stamped contract (`hooks_contract.rs`): what
//! only a shared database must show, over accounts, a repository and a package made with SQL.
//! Nodes claiming from one queue at once never claim a delivery
//! twice nor lease two deliveries of one hook together, take expired leases over, and keep
//! an account's hook cap however many create at once.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_core::StoreErrorKind;
use berth_core::access::{AccountId, RepoId};
use berth_core::hooks::HookStore as _;
use berth_core::hooks::model::{
    Attempt, AttemptOutcome, ContentType, DeliveryState, HookConfig, HookId, HookScope,
    HookSettings, NewDelivery,
};
use berth_core::hooks::store::Claimed;
use berth_meta_postgres::{PgMetadataStore, PgOptions};
use sqlx::Connection as _;

/// The organization `acme`, its repository `app` and its package `acme/app`, on one
/// database, with stores (nodes) opened on it.
struct World {
    url: String,
    org: AccountId,
    repo: RepoId,
}

/// Makes the [`World`]'s rows with SQL on a new database; the store on it.
async fn world() -> (World, PgMetadataStore) {
    let url = berth_testkit::services::postgres_database().await;
    let store = node(&url).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let org: i64 = sqlx::query_scalar(
        "INSERT INTO accounts (login, kind, created_at) VALUES ('acme', 'organization', 1000) \
         RETURNING id",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let repo: i64 = sqlx::query_scalar(
        "INSERT INTO source_repos (owner_id, name, visibility, created_at) \
         VALUES ($1, 'app', 'private', 1000) RETURNING id",
    )
    .bind(org)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO packages (name, owner_id, visibility, linked_repo_id, created_at) \
         VALUES ('acme/app', $1, 'private', $2, 1000)",
    )
    .bind(org)
    .bind(repo)
    .execute(&mut conn)
    .await
    .unwrap();
    let _ = conn.close().await;
    let world = World {
        url,
        org: AccountId(org),
        repo: RepoId(repo),
    };
    (world, store)
}

/// Another node on the database `url` names.
async fn node(url: &str) -> PgMetadataStore {
    PgMetadataStore::open(url, PgOptions::default())
        .await
        .expect("open")
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

fn guids(claimed: &[Claimed]) -> Vec<String> {
    claimed
        .iter()
        .map(|c| c.delivery.queued.guid.clone())
        .collect()
}

/// Many creations at once on two nodes never pass the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_on_two_nodes_never_pass_the_cap() {
    let (w, one) = world().await;
    let two = node(&w.url).await;
    let creations = (0..16).map(|i| {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        let scope = if i % 3 == 0 {
            HookScope::Repository(w.repo)
        } else {
            HookScope::Organization(w.org)
        };
        tokio::spawn(async move { store.create_hook(scope, &settings(false), 1_000, 5).await })
    });
    let created = futures_util::future::join_all(creations)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().as_ref().unwrap().is_some())
        .count();
    assert_eq!(created, 5);
    let stored = one
        .hooks_of(HookScope::Organization(w.org))
        .await
        .unwrap()
        .len()
        + one
            .hooks_of(HookScope::Repository(w.repo))
            .await
            .unwrap()
            .len();
    assert_eq!(stored, 5);
}

/// A lease that expired is taken over by another node; the first holder's attempt is then
/// refused, and the new holder's recorded.
#[tokio::test]
async fn an_expired_lease_is_taken_over_and_its_old_holder_refused() {
    let (w, one) = world().await;
    let two = node(&w.url).await;
    let hook = one
        .create_hook(HookScope::Organization(w.org), &settings(false), 1_000, 20)
        .await
        .unwrap()
        .unwrap();
    one.enqueue(&[delivery(hook, 1), delivery(hook, 2)], 1_000)
        .await
        .unwrap();
    let mine = one.claim_due(1_000, "one", 10_000, 16).await.unwrap();
    assert_eq!(guids(&mine), ["guid-1"]);
    assert!(
        two.claim_due(9_999, "two", 20_000, 16)
            .await
            .unwrap()
            .is_empty()
    );
    let theirs = two.claim_due(10_000, "two", 20_000, 16).await.unwrap();
    assert_eq!(
        guids(&theirs),
        ["guid-1"],
        "the same delivery, not the next"
    );
    let id = mine[0].delivery.id;
    let err = one
        .record_attempt(id, "one", &attempt(1, Some(200)), AttemptOutcome::Delivered)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::LeaseLost, "{err}");
    let hook_now = one.hook(hook).await.unwrap().unwrap();
    assert_eq!(hook_now.last_response.status, "unused", "nothing recorded");
    two.record_attempt(id, "two", &attempt(1, Some(200)), AttemptOutcome::Delivered)
        .await
        .unwrap();
    let (done, attempts) = one.delivery(hook, id).await.unwrap().unwrap();
    assert_eq!(done.state, DeliveryState::Delivered);
    assert_eq!(attempts.len(), 1);
    // Recorded once: the token is spent.
    let again = two
        .record_attempt(id, "two", &attempt(2, Some(200)), AttemptOutcome::Delivered)
        .await
        .unwrap_err();
    assert_eq!(again.kind(), StoreErrorKind::LeaseLost);
    assert_eq!(
        guids(&one.claim_due(10_000, "one", 20_000, 16).await.unwrap()),
        ["guid-2"]
    );
}

/// What the workers of the concurrency test saw.
#[derive(Default)]
struct Seen {
    /// Every delivery claimed, by id.
    claimed: HashSet<i64>,
    /// The delivery each hook has leased now, by hook id.
    leased: HashMap<i64, i64>,
    /// The last delivery claimed of each hook.
    last: HashMap<i64, i64>,
    /// How many deliveries each node claimed.
    by_node: [usize; 2],
}

/// Two nodes, each with several workers, empty one queue of many hooks at once: every
/// delivery is claimed exactly once, each hook's in id order, and never are two deliveries of
/// one hook leased together (checked by the workers and by a watcher reading the table).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_claiming_at_once_claim_each_delivery_once_and_one_per_hook() {
    const HOOKS: u32 = 8;
    const PER_HOOK: u32 = 25;
    let (w, one) = world().await;
    let two = node(&w.url).await;
    let mut hooks = Vec::new();
    for i in 0..HOOKS {
        let scope = if i % 2 == 0 {
            HookScope::Organization(w.org)
        } else {
            HookScope::Repository(w.repo)
        };
        hooks.push(
            one.create_hook(scope, &settings(false), 1_000, 100)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    // Interleaved across hooks, in several batches.
    let mut n = 0;
    for _ in 0..PER_HOOK / 5 {
        let mut batch = Vec::new();
        for _ in 0..5 {
            for hook in &hooks {
                n += 1;
                batch.push(delivery(*hook, n));
            }
        }
        one.enqueue(&batch, 1_000).await.unwrap();
    }
    let total = (HOOKS * PER_HOOK) as usize;
    assert_eq!(one.pending_deliveries().await.unwrap(), total as u64);

    let seen = Arc::new(Mutex::new(Seen::default()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let url = w.url.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut looks = 0u32;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let doubled: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT hook_id, count(*) FROM hook_deliveries \
                     WHERE state = 'pending' AND lease_token IS NOT NULL \
                     GROUP BY hook_id HAVING count(*) > 1",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                assert!(doubled.is_empty(), "two leased at once: {doubled:?}");
                looks += 1;
            }
            looks
        })
    };
    let mut workers = Vec::new();
    for worker in 0..6usize {
        let node = worker % 2;
        let store = if node == 0 { one.clone() } else { two.clone() };
        let seen = seen.clone();
        workers.push(tokio::spawn(async move {
            let token = format!("worker-{worker}");
            loop {
                let claimed = store.claim_due(1_000, &token, 1_000_000, 3).await.unwrap();
                if claimed.is_empty() {
                    if store.pending_deliveries().await.unwrap() == 0 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                {
                    let mut seen = seen.lock().unwrap();
                    seen.by_node[node] += claimed.len();
                    for c in &claimed {
                        let (id, hook) = (c.delivery.id.0, c.hook.id.0);
                        assert_eq!(c.delivery.queued.hook, c.hook.id);
                        assert!(seen.claimed.insert(id), "delivery {id} claimed twice");
                        if let Some(other) = seen.leased.insert(hook, id) {
                            panic!("hook {hook}: {id} claimed while {other} is leased");
                        }
                        let last = seen.last.insert(hook, id).unwrap_or(0);
                        assert!(id > last, "hook {hook}: {id} claimed after {last}");
                    }
                }
                // Hold the leases a moment, as a delivery would.
                tokio::time::sleep(Duration::from_millis(2)).await;
                for c in &claimed {
                    // Released from the record before the database releases the lease.
                    seen.lock().unwrap().leased.remove(&c.hook.id.0);
                    let outcome = if c.delivery.id.0 % 7 == 0 {
                        AttemptOutcome::Failed
                    } else {
                        AttemptOutcome::Delivered
                    };
                    store
                        .record_attempt(c.delivery.id, &token, &attempt(1, Some(200)), outcome)
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let looks = watcher.await.unwrap();
    assert!(looks > 0);

    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.claimed.len(), total, "every delivery claimed once");
        assert_eq!(seen.by_node.iter().sum::<usize>(), total, "and only once");
        assert!(seen.leased.is_empty());
        eprintln!(
            "claimed by node: {:?}; watcher looks: {looks}",
            seen.by_node
        );
    }
    assert_eq!(one.pending_deliveries().await.unwrap(), 0);
    assert_eq!(two.next_due().await.unwrap(), None);
    for hook in &hooks {
        let listed = one.deliveries(*hook, None, 1_000).await.unwrap();
        assert_eq!(listed.len(), PER_HOOK as usize);
        assert!(listed.iter().all(|d| d.attempts == 1));
    }
}

/// Workers racing for one due delivery: exactly one of them gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_of_one_delivery_lease_it_once() {
    let (w, one) = world().await;
    let two = node(&w.url).await;
    let hook = one
        .create_hook(HookScope::Organization(w.org), &settings(false), 1_000, 20)
        .await
        .unwrap()
        .unwrap();
    for round in 0..10u32 {
        one.enqueue(
            &[delivery(hook, round * 2), delivery(hook, round * 2 + 1)],
            1_000,
        )
        .await
        .unwrap();
        let claims = (0..8).map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                let token = format!("racer-{i}");
                let claimed = store.claim_due(1_000, &token, 1_000_000, 4).await.unwrap();
                (token, claimed)
            })
        });
        let winners: Vec<(String, Vec<Claimed>)> = futures_util::future::join_all(claims)
            .await
            .into_iter()
            .map(Result::unwrap)
            .filter(|(_, claimed)| !claimed.is_empty())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}");
        let (token, claimed) = &winners[0];
        assert_eq!(claimed.len(), 1, "only the hook's head");
        for number in [0, 1] {
            // Both of the round's deliveries, one after the other.
            let id = if number == 0 {
                claimed[0].delivery.id
            } else {
                let next = one.claim_due(1_000, token, 1_000_000, 4).await.unwrap();
                assert_eq!(next.len(), 1);
                next[0].delivery.id
            };
            one.record_attempt(id, token, &attempt(1, Some(204)), AttemptOutcome::Delivered)
                .await
                .unwrap();
        }
    }
    assert_eq!(one.pending_deliveries().await.unwrap(), 0);
}

/// A delivery queued in a transaction still open has an id below those queued after it and
/// committed first: the hook waits for it rather than hand the later one out first (and
/// then lease two of the hook's deliveries at once).
#[tokio::test]
async fn a_hook_with_a_delivery_being_queued_waits_for_it() {
    let (w, s) = world().await;
    let hook = s
        .create_hook(HookScope::Organization(w.org), &settings(false), 1_000, 20)
        .await
        .unwrap()
        .unwrap();
    let mut open = sqlx::PgConnection::connect(&w.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut open).await.unwrap();
    let early: i64 = sqlx::query_scalar(
        "INSERT INTO hook_deliveries (hook_id, guid, event, payload, redelivery, state, \
             next_attempt_at, created_at) \
         VALUES ($1, 'early', 'package', '{}', FALSE, 'pending', 1000, 1000) RETURNING id",
    )
    .bind(hook.0)
    .fetch_one(&mut open)
    .await
    .unwrap();
    s.enqueue(&[delivery(hook, 1)], 1_000).await.unwrap();
    assert!(
        s.claim_due(1_000, "a", 60_000, 16)
            .await
            .unwrap()
            .is_empty(),
        "the hook's queue is being written"
    );
    sqlx::query("COMMIT").execute(&mut open).await.unwrap();
    let first = s.claim_due(1_000, "a", 60_000, 16).await.unwrap();
    assert_eq!(guids(&first), ["early"]);
    assert_eq!(first[0].delivery.id.0, early);
    assert!(
        s.claim_due(1_000, "b", 60_000, 16)
            .await
            .unwrap()
            .is_empty()
    );
    s.record_attempt(
        first[0].delivery.id,
        "a",
        &attempt(1, Some(200)),
        AttemptOutcome::Delivered,
    )
    .await
    .unwrap();
    assert_eq!(
        guids(&s.claim_due(1_000, "b", 60_000, 16).await.unwrap()),
        ["guid-1"]
    );
}
