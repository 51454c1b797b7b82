//! The limiters' shared counters: nodes adding into one database's windows at once.

use berth_core::ports::{CountDelta, Millis, SharedCount, SharedCounters, now_millis};
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

/// `(key, delta)` pairs as the port takes them, counted by a node since `since`.
fn deltas(pairs: &[(&str, i64)], since: Millis) -> Vec<CountDelta> {
    pairs
        .iter()
        .map(|(key, delta)| CountDelta {
            key: key.to_string(),
            delta: *delta,
            since,
        })
        .collect()
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
                let batch = deltas(&[(keys[0], 1), (keys[1], 2), (keys[2], 3)], now);
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
    let read = deltas(&[("api:x", 0), ("api:y", 0), ("api:z", 0)], now);
    let read = a.add_counts(&read, HOUR, now).await.unwrap();
    // x got 1 from a's batches and 3 from b's (and z the other way round): 120 batches each.
    assert_eq!(
        totals(&read),
        vec![3 * 40 * (1 + 3), 3 * 40 * 4, 3 * 40 * 4]
    );
    assert!(read.iter().all(|c| c.started_at == now));
}

#[tokio::test]
async fn a_window_begins_at_the_first_count_and_a_new_one_when_it_ends() {
    let (a, b) = two_nodes().await;
    let t0 = 1_700_000_000_000;
    let window = 60_000;
    let key = "login:10.0.0.1";
    // Node a counted its first failure 300 ms before it handed the count over.
    let first = a
        .add_counts(&deltas(&[(key, 2)], t0 - 300), window, t0)
        .await
        .unwrap();
    let started_at = t0 - 300;
    assert_eq!(
        first,
        vec![SharedCount {
            total: 2,
            started_at
        }]
    );
    // The other node, later in the window: its count joins the same window.
    let later = b
        .add_counts(&deltas(&[(key, 3)], t0 + 50_000), window, t0 + 50_000)
        .await
        .unwrap();
    assert_eq!(
        later,
        vec![SharedCount {
            total: 5,
            started_at
        }]
    );
    // The window lasts `window` from its first count: then the count begins again, not
    // before the old window's end (a node whose clock says its window began earlier).
    let end = started_at + window;
    let next = a
        .add_counts(&deltas(&[(key, 1)], end - 100), window, end)
        .await
        .unwrap();
    assert_eq!(
        next,
        vec![SharedCount {
            total: 1,
            started_at: end
        }]
    );
    // A `since` a whole window back would begin a window already over: it begins so as to
    // be live now.
    let much_later = end + 10 * window;
    let stale = b
        .add_counts(
            &deltas(&[(key, 1)], much_later - 2 * window),
            window,
            much_later,
        )
        .await
        .unwrap();
    assert_eq!(stale[0].started_at, much_later - window + 1);
}

#[tokio::test]
async fn keys_are_independent_and_a_total_never_goes_below_zero() {
    let (a, b) = two_nodes().await;
    let now = now_millis();
    let first = deltas(&[("api:cred:1", 5), ("api:addr:10.0.0.1", 1)], now);
    a.add_counts(&first, HOUR, now).await.unwrap();
    let second = deltas(
        &[
            ("api:addr:10.0.0.1", 1),
            ("api:cred:2", 1),
            ("api:cred:1", -2),
            // A key given twice is added twice.
            ("api:cred:2", 1),
        ],
        now + 1,
    );
    let answer = b.add_counts(&second, HOUR, now + 1).await.unwrap();
    assert_eq!(totals(&answer), vec![2, 2, 3, 2]);
    assert_eq!(answer[1].started_at, now + 1, "a new key, a new window");
    assert_eq!(
        answer[2].started_at, now,
        "an existing key keeps its window"
    );
    // Giving back more than was counted (a 304 after a window's count was lost) stops at zero,
    // and the next count starts from there.
    let back = deltas(&[("api:cred:1", -10)], now);
    assert_eq!(
        totals(&a.add_counts(&back, HOUR, now + 2).await.unwrap()),
        vec![0]
    );
    let again = deltas(&[("api:cred:1", 1)], now);
    assert_eq!(
        totals(&a.add_counts(&again, HOUR, now + 3).await.unwrap()),
        vec![1]
    );
    assert!(a.add_counts(&[], HOUR, now).await.unwrap().is_empty());
}

#[tokio::test]
async fn ended_windows_are_forgotten_and_live_ones_kept() {
    let (a, _) = two_nodes().await;
    let t0 = 1_700_000_000_000;
    let login = deltas(&[("login:a", 4)], t0);
    a.add_counts(&login, 60_000, t0).await.unwrap();
    let api = deltas(&[("api:b", 4)], t0);
    a.add_counts(&api, HOUR, t0).await.unwrap();
    // At t0 + 2 min the login window has ended, the API one has not.
    let t1 = t0 + 120_000;
    assert_eq!(a.forget_counts(t1).await.unwrap(), 1);
    assert_eq!(a.forget_counts(t1).await.unwrap(), 0);
    let read = deltas(&[("api:b", 0), ("login:a", 0)], t1);
    let kept = a.add_counts(&read, HOUR, t1).await.unwrap();
    assert_eq!(
        kept,
        vec![
            SharedCount {
                total: 4,
                started_at: t0
            },
            SharedCount {
                total: 0,
                started_at: t1
            },
        ]
    );
}
