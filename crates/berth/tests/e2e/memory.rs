//! Memory the server holds: what a burst of pushes kept for reuse is handed back to the
//! kernel once the last upload ends (`berth/src/memory.rs`), so the pulls and reads that
//! follow do not carry it; while an upload still streams, it is kept.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{Server, begin_raw_patch, push_blob, start_upload};

const REPO: &str = "acme/memory";

/// The server's resident anonymous memory (its heap, mostly), in KiB, from `/proc`.
fn anonymous_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/<pid>/status")
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_kept_for_pushes_is_handed_back_when_the_last_upload_ends() {
    let server = Server::start();
    let pid = server.pid();
    // One push first, so what any push sets up once is there before the measure starts.
    push_blob(&server, REPO, vec![1u8; 1 << 20]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = anonymous_kib(pid);

    // An upload that keeps streaming: half its body now, the rest at the end.
    let location = start_upload(&server, REPO).await;
    let body = vec![7u8; 200_000];
    let mut streaming = begin_raw_patch(&server, &location, body.len()).await;
    streaming.write_all(&body[..100_000]).await.unwrap();

    // Bursts of 32 clients pushing at once, until the memory they leave freed is worth
    // handing back. Each upload writes its bytes as they arrive, so what the pushes leave is
    // their read buffers at the busiest moment: a loaded machine needs more of them at once.
    let mut kept = 0;
    for burst in 0..8u8 {
        let pushes = (0..32u8).map(|i| push_blob(&server, REPO, vec![burst * 32 + i; 16 << 20]));
        futures_util::future::join_all(pushes).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        kept = anonymous_kib(pid).saturating_sub(before);
        if kept >= 6 << 10 {
            break;
        }
    }
    assert!(
        kept >= 6 << 10,
        "the pushes should have left more than the 4 MiB worth handing back (kept {kept} KiB): this test shows nothing"
    );

    // The last upload ends: what the pushes kept goes back, within a second however slow
    // the machine.
    streaming.write_all(&body[100_000..]).await.unwrap();
    let mut response = [0u8; 12];
    streaming.read_exact(&mut response).await.unwrap();
    assert_eq!(&response, b"HTTP/1.1 202");
    let mut resident = anonymous_kib(pid).saturating_sub(before);
    for _ in 0..100 {
        if resident <= kept / 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        resident = anonymous_kib(pid).saturating_sub(before);
    }
    assert!(
        resident <= kept / 4,
        "{resident} KiB of the {kept} KiB the pushes kept are still resident after the last upload ended"
    );
}
