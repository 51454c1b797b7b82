//! Where the bench keeps its files: one directory per run, under which every server's data
//! directory, the ceiling's files and the page-warming file are created, each in a block group
//! of its own where the file system can arrange that.
//!
//! On ext4 without a journal (these VMs' disks), creating a file makes the kernel step over
//! every inode of the group deleted within the last minute or more (`recently_deleted`), one
//! buffer lookup each; and ext4 puts a directory made under an ordinary directory, and the files
//! made in it, in its parent's group. So the thousands of files that one server deletes while
//! it runs (Distribution removes each upload's directory), or that the end of the previous run
//! removed, made the next server's file creations slower: Berth's small images cost 1.5 ms more
//! server CPU each right after 10,000 deletions elsewhere under `/tmp` (BENCHMARKS.md, "Lean and
//! steady, part 18"). Under a directory marked as the top of a hierarchy (`FS_TOPDIR_FL`,
//! `chattr +T`), ext4's Orlov allocator spreads each new directory to a group of its own, so a
//! server pays only for its own deletions, as it would on a machine of its own.

use std::path::Path;

use tempfile::TempDir;

/// Creates this run's directory in the system's temporary directory, marks it as the top of a
/// hierarchy where the file system supports that (a note is printed where it does not), and
/// makes it the directory every later `tempfile` call of the process creates in. The caller
/// keeps it until the end: dropping it removes everything the run left.
pub fn isolate() -> anyhow::Result<TempDir> {
    let root = TempDir::with_prefix("berth-bench-run-")?;
    if let Err(error) = mark_top(root.path()) {
        println!(
            "note: {} cannot be marked as a top directory ({error}); one server's deletions \
             may slow the next server's file creations",
            root.path().display()
        );
    }
    if let Err(already) = tempfile::env::override_temp_dir(root.path()) {
        anyhow::bail!(
            "the bench's temporary directory was already set to {}",
            already.display()
        );
    }
    Ok(root)
}

/// Sets `FS_TOPDIR_FL` on the directory `dir`, keeping its other flags.
fn mark_top(dir: &Path) -> rustix::io::Result<()> {
    use rustix::fs::{IFlags, ioctl_getflags, ioctl_setflags};
    let dir = std::fs::File::open(dir).map_err(|error| {
        rustix::io::Errno::from_io_error(&error).unwrap_or(rustix::io::Errno::IO)
    })?;
    let flags = ioctl_getflags(&dir)?;
    ioctl_setflags(&dir, flags | IFlags::TOPDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    #[test]
    fn a_directory_is_marked_as_top_or_its_file_system_has_no_such_flag() {
        let dir = tempfile::tempdir().unwrap();
        match mark_top(dir.path()) {
            Ok(()) => {
                let flags = rustix::fs::ioctl_getflags(std::fs::File::open(dir.path()).unwrap());
                assert!(flags.unwrap().contains(rustix::fs::IFlags::TOPDIR));
            }
            // tmpfs, XFS and others: no such flag. Anything else is a bug of `mark_top`.
            Err(error) => assert!(
                [Errno::NOTTY, Errno::OPNOTSUPP, Errno::INVAL].contains(&error),
                "{error}"
            ),
        }
    }
}
