//! The machine's ceiling for the push phases: the least work any registry must do for them,
//! run with nothing else — each client's blob sent over loopback TCP to a thread that hashes it
//! (SHA-256) and appends it to a file, written back every [`berth_blob::WRITEBACK_EVERY`] bytes
//! by a helper thread as Berth's upload writer does ([`berth_blob::write_back`]), its room on
//! disk reserved ahead of the bytes as that writer reserves it for a request of known length
//! ([`berth_blob::reserve`]: the whole blob, or the piece), and made durable (`fdatasync`) at
//! the end.
//! No HTTP, no metadata, no hand-offs; the sending threads cost what the benchmark's clients
//! cost. The chunked variant sends `chunk_size` bytes, then waits for a one-byte
//! acknowledgement the receiver sends once those bytes are durable, as a `PATCH` answered
//! `202` only for durable bytes does.
//!
//! A server's push rate divided by this one is the share of the machine it turned into pushes;
//! a ratio target against another server is only reachable if that share allows it.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, ensure};
use sha2::{Digest as _, Sha256};

use crate::payload::Blob;
use crate::server::thread_cpu_seconds;

/// Bytes appended between two background writebacks: Berth's blob writer's.
const WRITEBACK_EVERY: usize = berth_blob::WRITEBACK_EVERY as usize;
/// The receiving threads' read buffer.
const READ_BUFFER: usize = 512 << 10;

/// How the clients send their blobs.
#[derive(Clone, Copy)]
pub enum Pattern {
    /// Each blob in one stream.
    Monolithic,
    /// Each blob in pieces of this many bytes, each acknowledged once durable.
    Chunked(usize),
}

/// What one run of the ceiling measured.
pub struct Run {
    /// MiB/s over the wall time until every blob is durable.
    pub rate: f64,
    /// CPU seconds the sending threads used (what the clients cost).
    pub senders_cpu_s: f64,
    /// CPU seconds the receiving and flushing threads used (what a registry must cost).
    pub receivers_cpu_s: f64,
    /// The directory of the files it wrote, removed when dropped. The caller chooses when: on
    /// these VMs' disks (mounted with `discard`) removing a GiB of durable files makes the host
    /// trim it for a while after, and a run measured in that while counts the host's work as
    /// steal.
    pub files: tempfile::TempDir,
}

/// Sends each blob of `blobs` from its own client thread to its own receiving thread at the
/// same time, and times it.
pub fn push_rate(blobs: &[Blob], pattern: Pattern) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let total = crate::phases::total_len(blobs);
    let started = Instant::now();
    let (senders_cpu_s, receivers_cpu_s) = std::thread::scope(|scope| -> anyhow::Result<_> {
        let (mut senders, mut receivers) = (Vec::new(), Vec::new());
        for (index, blob) in blobs.iter().enumerate() {
            senders.push(scope.spawn(move || send(addr, &blob.bytes, pattern)));
            let (socket, _) = listener.accept()?;
            let path = dir.path().join(index.to_string());
            let len = blob.bytes.len();
            receivers.push(scope.spawn(move || receive(socket, &path, len, pattern)));
        }
        let mut receivers_cpu_s = 0.0;
        for (receiver, blob) in receivers.into_iter().zip(blobs) {
            let received = receiver
                .join()
                .map_err(|_| anyhow::anyhow!("a receiving thread panicked"))??;
            ensure!(
                received.len == blob.bytes.len() && received.digest == blob.digest,
                "the ceiling run received {} bytes hashing to {}, not {}",
                received.len,
                received.digest,
                blob.digest
            );
            receivers_cpu_s += received.cpu_s;
        }
        let mut senders_cpu_s = 0.0;
        for sender in senders {
            senders_cpu_s += sender
                .join()
                .map_err(|_| anyhow::anyhow!("a sending thread panicked"))??;
        }
        Ok((senders_cpu_s, receivers_cpu_s))
    })?;
    Ok(Run {
        rate: total as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64(),
        senders_cpu_s,
        receivers_cpu_s,
        files: dir,
    })
}

/// One client: the blob in one write, or in acknowledged pieces. Returns the CPU seconds it
/// used.
fn send(addr: std::net::SocketAddr, bytes: &[u8], pattern: Pattern) -> anyhow::Result<f64> {
    let cpu = thread_cpu_seconds()?;
    let mut socket = TcpStream::connect(addr)?;
    socket.set_nodelay(true)?;
    match pattern {
        Pattern::Monolithic => socket.write_all(bytes)?,
        Pattern::Chunked(size) => {
            for piece in bytes.chunks(size) {
                socket.write_all(piece)?;
                let mut ack = [0u8; 1];
                socket.read_exact(&mut ack)?;
            }
        }
    }
    Ok(thread_cpu_seconds()? - cpu)
}

/// What one receiving thread got.
struct Received {
    len: usize,
    /// `sha256:<hex>`.
    digest: String,
    /// CPU seconds it and its flushing thread used.
    cpu_s: f64,
}

/// One receiver: hashes and appends everything read from `socket` (a blob of `expected`
/// bytes) to a new file at `path`; returns what it got once the file is durable.
fn receive(
    mut socket: TcpStream,
    path: &Path,
    expected: usize,
    pattern: Pattern,
) -> anyhow::Result<Received> {
    let cpu = thread_cpu_seconds()?;
    let mut file = File::create(path)?;
    let flusher = file.try_clone()?;
    let (flush, requests) = mpsc::sync_channel::<(usize, usize)>(1);
    let background = std::thread::spawn(move || -> anyhow::Result<f64> {
        let cpu = thread_cpu_seconds()?;
        while let Ok((from, to)) = requests.recv() {
            berth_blob::write_back(&flusher, from as u64, to as u64)?;
        }
        Ok(thread_cpu_seconds()? - cpu)
    });
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut hasher = Sha256::new();
    // `queued`: where the bytes not yet handed to a writeback begin.
    let (mut len, mut queued) = (0usize, 0usize);
    // Where the room reserved on disk ends.
    let mut reserved_to = 0u64;
    loop {
        // A chunked client waits for its acknowledgement: read no further than its piece.
        let want = match pattern {
            Pattern::Monolithic => buffer.len(),
            Pattern::Chunked(size) => (size - len % size).min(buffer.len()),
        };
        let read = socket.read(&mut buffer[..want])?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        // What a request announces: the whole blob, or the piece it is in.
        let announced_to = match pattern {
            Pattern::Monolithic => expected,
            Pattern::Chunked(size) => (len - len % size + size).min(expected),
        };
        if let Some((from, to)) =
            berth_blob::reservation(len as u64, read as u64, reserved_to, announced_to as u64)
        {
            berth_blob::reserve(&file, from, to)?;
            reserved_to = to;
        }
        file.write_all(&buffer[..read])?;
        len += read;
        // One writeback at a time: while one is queued, the bytes fold into the next.
        if len - queued >= WRITEBACK_EVERY && flush.try_send((queued, len)).is_ok() {
            queued = len;
        }
        if let Pattern::Chunked(size) = pattern
            && (len % size == 0 || len == expected)
        {
            file.sync_data()?;
            socket.write_all(&[1])?;
        }
    }
    drop(flush);
    let flusher_cpu_s = background
        .join()
        .map_err(|_| anyhow::anyhow!("the flushing thread panicked"))?
        .context("background flush")?;
    file.sync_data()?;
    Ok(Received {
        len,
        digest: format!("sha256:{}", hex::encode(hasher.finalize())),
        cpu_s: thread_cpu_seconds()? - cpu + flusher_cpu_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::random_blobs;

    #[test]
    fn both_patterns_deliver_every_blob() {
        // Blobs of 3 MiB in 1 MiB pieces: the chunked receiver must stop at each piece and
        // acknowledge it, or the sender waits forever; the digests are checked by the run.
        let blobs = random_blobs(2, 3 << 20, 7);
        for pattern in [Pattern::Monolithic, Pattern::Chunked(1 << 20)] {
            let run = push_rate(&blobs, pattern).unwrap();
            assert!(run.rate.is_finite() && run.rate > 0.0);
        }
    }

    #[test]
    fn a_blob_received_other_than_sent_fails_the_run() {
        let mut blobs = random_blobs(1, 1 << 20, 9);
        blobs[0].digest = random_blobs(1, 1 << 20, 10).remove(0).digest;
        let error = push_rate(&blobs, Pattern::Monolithic)
            .err()
            .expect("a wrong digest must fail the run");
        assert!(error.to_string().contains("hashing to"), "{error}");
    }
}
