//! Three nodes sharing one PostgreSQL database share the limits each keeps in memory: failed
//! logins per address and the management API's hourly budgets, which every node syncs through
//! the database twice a second (`berth_http::shared_counts::SYNC`). Requests go to the nodes
//! in turn, as a round-robin balancer sends them; a node alone would let three times the
//! limit through.

use std::time::Duration;

use crate::common::cluster::Cluster;
use crate::common::github::Api;
use crate::common::{ADMIN, client_with_token, header};

/// Long enough for every node to sync twice: what a node's view of a key may lag.
const TWO_SYNCS: Duration = Duration::from_millis(1500);

/// A number header.
fn number(response: &reqwest::Response, name: &str) -> u64 {
    header(response, name).parse().expect("a number")
}

#[tokio::test]
async fn failed_logins_on_every_node_count_against_one_limit() {
    let limit = 6;
    let cluster = Cluster::start_with(3, &[("BERTH_AUTH_FAILURES_PER_MINUTE", "6")]);
    let bad = client_with_token("berthp_not-a-real-token");

    // Alone, each node would answer 401 six times: 18 failures before the first 429.
    let mut failures = 0;
    let refused = loop {
        let node = &cluster.nodes[failures % 3];
        let response = bad.get(node.url("/v2/")).send().await.unwrap();
        if response.status() == 429 {
            break response;
        }
        assert_eq!(response.status(), 401, "failure {failures}");
        failures += 1;
        assert!(
            failures < 3 * limit,
            "no node refused: the nodes count alone"
        );
        // About as fast as a script guessing passwords; the slack below is a second of it.
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert!(
        (limit..=limit + 6).contains(&failures),
        "{failures} failures let through for a limit of {limit}"
    );
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after));

    // Once every node heard the count, every node refuses the address.
    tokio::time::sleep(TWO_SYNCS).await;
    for (i, node) in cluster.nodes.iter().enumerate() {
        let response = bad.get(node.url("/v2/")).send().await.unwrap();
        assert_eq!(response.status(), 429, "node {i}");
        assert!(response.headers().contains_key("retry-after"), "node {i}");
    }
}

#[tokio::test]
async fn an_api_budget_spent_round_robin_runs_out_on_every_node_near_its_limit() {
    let limit = 30;
    let cluster = Cluster::start_with(3, &[("BERTH_API_RATE_LIMIT_PER_HOUR", "30")]);
    // A token no request of the harness spent anything of.
    let token = cluster.nodes[0].admin(&["create-token", ADMIN, "--scopes", "read:packages"]);

    // Alone, each node would serve 30: 90 requests before the first 403.
    let mut served = 0;
    let mut highest_used = 0;
    loop {
        let node = &cluster.nodes[served % 3];
        let response = Api::new(node, &token)
            .request("GET", "/user")
            .send()
            .await
            .unwrap();
        if response.status() == 403 {
            assert_eq!(number(&response, "x-ratelimit-remaining"), 0);
            break;
        }
        assert_eq!(response.status(), 200, "request {served}");
        highest_used = highest_used.max(number(&response, "x-ratelimit-used"));
        served += 1;
        assert!(served < 3 * limit, "no node refused: the nodes count alone");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        (limit..=limit + 12).contains(&served),
        "{served} requests served for a budget of {limit}"
    );
    // Alone, a node's `x-ratelimit-used` would count its third of the requests.
    assert!(
        highest_used as usize > limit / 2,
        "the nodes' headers count every node's requests: {highest_used} of {served}"
    );

    // Once every node heard the count, every node answers 403 with nothing remaining, and
    // the window is the same everywhere.
    tokio::time::sleep(TWO_SYNCS).await;
    let mut resets = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let response = Api::new(node, &token)
            .request("GET", "/user")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "node {i}");
        assert_eq!(number(&response, "x-ratelimit-remaining"), 0, "node {i}");
        assert_eq!(
            number(&response, "x-ratelimit-limit"),
            limit as u64,
            "node {i}"
        );
        resets.push(number(&response, "x-ratelimit-reset"));
    }
    assert!(
        resets.iter().all(|reset| *reset == resets[0]),
        "one shared window: {resets:?}"
    );
}
