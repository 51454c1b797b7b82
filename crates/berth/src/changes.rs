//! The signal `berth admin` leaves for a `berth serve` running on the same data directory:
//! after every command it replaces `access.changed` with a new file, and the server's access
//! cache ([`berth_core::access::CachedAccessStore`]) checks that file's identity on every
//! cached read (one `stat`), so a token revoked or a role changed from the command line
//! applies to the server's very next request.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_core::access::cache::ChangeSignal;

fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join("access.changed")
}

/// Replaces the marker with a new file (a new inode, whatever the clock's granularity).
pub fn announce(data_dir: &Path) -> std::io::Result<()> {
    let fresh = data_dir.join(format!("access.changed.{}", std::process::id()));
    let mut file = std::fs::File::create(&fresh)?;
    writeln!(file, "{}", berth_core::ports::now_millis())?;
    drop(file);
    std::fs::rename(&fresh, marker(data_dir))
}

/// The marker's identity (inode and modification time): what changes when `announce` runs.
/// 0 while there is no marker.
pub fn signal(data_dir: &Path) -> ChangeSignal {
    let marker = marker(data_dir);
    Arc::new(move || match std::fs::metadata(&marker) {
        Ok(meta) => {
            meta.ino().rotate_left(32)
                ^ (meta.mtime() as u64).wrapping_mul(1_000_000_007)
                ^ meta.mtime_nsec() as u64
        }
        Err(_) => 0,
    })
}
