//! The limiters' shared counters: nodes adding into one database's windows at once.

use berth_core::ports::{SharedCount, SharedCounters, now_millis};
use berth_meta_postgres::{PgMetadataStore, PgOptions};

/// An hour, in milliseconds.
const HOUR: i64 = 3_600_000;

/// Two nodes on one fresh database.
async fn two_nodes() -> (PgMetadataStore, PgMetadataStore) {
    let url = berth_testkit::services::postgres_database().await;
    let a = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .unwrap();
    let b = PgMetadataStore::open(&url, PgOptions::default())
        .await
        .unwrap();
    (a, b)
}

/// `(key, delta)` pairs as the port takes them.
fn deltas(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(k, d)| (k.to_string(), *d)).collect()
}

/// The totals of an answer.
fn totals(counts: &[SharedCount]) -> Vec<u64> {
    counts.iter().map(|c| c.total).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_from_two_nodes_at_once_add_up_without_deadlocking() {
    let (a, b) = two_nodes().await;
    let now = now_millis();
    // Each node sends 40 batches of the same three keys, in opposite orders, concurrently.
    let send = |node: PgMetadataStore, keys: [&'static str; 3]| {
        tokio::spawn(async move {
            for _ in 0..40 {
                let batch = deltas(&[(keys[0], 1), (keys[1], 2), (keys[2], 3)]);
                node.add_counts(&batch, HOUR, now).await.unwrap();
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(send(a.clone(), ["api:x", "api:y", "api:z"]));
        tasks.push(send(b.clone(), ["api:z", "api:y", "api:x"]));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let read = a
        .add_counts(
            &deltas(&[("api:x", 0), ("api:y", 0), ("api:z", 0)]),
            HOUR,
            now,
        )
        .await
        .unwrap();
    // x got 1 from a's batches and 3 from b's (and z the other way round): 120 batches each.
    assert_eq!(
        totals(&read),
        vec![3 * 40 * (1 + 3), 3 * 40 * 4, 3 * 40 * 4]
    );
    assert!(read.iter().all(|c| c.started_at == now));
}

#[tokio::test]
async fn a_window_ends_and_the_next_count_begins_a_new_one() {
    let (a, b) = two_nodes().await;
    let t0 = 1_700_000_000_000;
    let window = 60_000;
    let first = a
        .add_counts(&deltas(&[("login:10.0.0.1", 2)]), window, t0)
        .await
        .unwrap();
    assert_eq!(
        first,
        vec![SharedCount {
            total: 2,
            started_at: t0
        }]
    );
    // The other node, later in the window: its count joins the same window.
    let later = b
        .add_counts(&deltas(&[("login:10.0.0.1", 3)]), window, t0 + 59_999)
        .await
        .unwrap();
    assert_eq!(
        later,
        vec![SharedCount {
            total: 5,
            started_at: t0
        }]
    );
    // The window lasts `window` from its first count: then the count begins again.
    let next = a
        .add_counts(&deltas(&[("login:10.0.0.1", 1)]), window, t0 + window)
        .await
        .unwrap();
    assert_eq!(
        next,
        vec![SharedCount {
            total: 1,
            started_at: t0 + window
        }]
    );
}

#[tokio::test]
async fn keys_are_independent_and_a_total_never_goes_below_zero() {
    let (a, b) = two_nodes().await;
    let now = now_millis();
    a.add_counts(
        &deltas(&[("api:cred:1", 5), ("api:addr:10.0.0.1", 1)]),
        HOUR,
        now,
    )
    .await
    .unwrap();
    let answer = b
        .add_counts(
            &deltas(&[
                ("api:addr:10.0.0.1", 1),
                ("api:cred:2", 1),
                ("api:cred:1", -2),
                // A key given twice is added twice.
                ("api:cred:2", 1),
            ]),
            HOUR,
            now + 1,
        )
        .await
        .unwrap();
    assert_eq!(totals(&answer), vec![2, 2, 3, 2]);
    assert_eq!(answer[1].started_at, now + 1, "a new key, a new window");
    assert_eq!(
        answer[2].started_at, now,
        "an existing key keeps its window"
    );
    // Giving back more than was counted (a 304 after a window's count was lost) stops at zero,
    // and the next count starts from there.
    let back = a
        .add_counts(&deltas(&[("api:cred:1", -10)]), HOUR, now + 2)
        .await
        .unwrap();
    assert_eq!(totals(&back), vec![0]);
    let again = a
        .add_counts(&deltas(&[("api:cred:1", 1)]), HOUR, now + 3)
        .await
        .unwrap();
    assert_eq!(totals(&again), vec![1]);
    assert!(a.add_counts(&[], HOUR, now).await.unwrap().is_empty());
}

#[tokio::test]
async fn ended_windows_are_forgotten_and_live_ones_kept() {
    let (a, _) = two_nodes().await;
    let t0 = 1_700_000_000_000;
    a.add_counts(&deltas(&[("login:a", 4)]), 60_000, t0)
        .await
        .unwrap();
    a.add_counts(&deltas(&[("api:b", 4)]), HOUR, t0)
        .await
        .unwrap();
    // At t0 + 2 min the login window has ended, the API one has not.
    assert_eq!(a.forget_counts(t0 + 120_000).await.unwrap(), 1);
    assert_eq!(a.forget_counts(t0 + 120_000).await.unwrap(), 0);
    let kept = a
        .add_counts(&deltas(&[("api:b", 0), ("login:a", 0)]), HOUR, t0 + 120_000)
        .await
        .unwrap();
    assert_eq!(
        kept,
        vec![
            SharedCount {
                total: 4,
                started_at: t0
            },
            SharedCount {
                total: 0,
                started_at: t0 + 120_000
            },
        ]
    );
}
