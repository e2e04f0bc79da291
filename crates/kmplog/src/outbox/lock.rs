//! One logger per outbox. Two loggers on one configuration would both poll
//! the meters (twice the battery, duplicates in every sink) and both write
//! the outbox, so the outbox is locked: a file next to it,
//! `<outbox>.lock`, held with an exclusive `flock` for as long as the
//! logger runs and naming the process that holds it.
//!
//! The kernel releases a `flock` when its holder dies, so a logger killed
//! with SIGKILL blocks no one; the file itself stays, and the next holder
//! writes its own name over the old one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock held; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct OutboxLock {
    _file: File,
}

/// The outbox cannot be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "the outbox {outbox} is in use by another kmplog ({holder}); stop that one first, or give this configuration an outbox of its own, for example: outbox = \"site-b-outbox.db\""
    )]
    Held {
        /// The outbox file.
        outbox: String,
        /// What the lock file says about its holder: `pid 4242 on host: kmplog run kmplog.toml`.
        holder: String,
    },
    /// The lock file cannot be created or locked.
    #[error("cannot lock the outbox through {lock}: {source}")]
    Io {
        /// The lock file.
        lock: String,
        /// Why.
        source: std::io::Error,
    },
}

/// `kmplog-outbox.db` → `kmplog-outbox.db.lock`.
pub fn lock_path(outbox: &Path) -> PathBuf {
    let mut name = outbox.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    outbox.with_file_name(name)
}

/// Takes the lock of `outbox`, or says who holds it.
pub fn acquire(outbox: &Path) -> Result<OutboxLock, LockError> {
    let lock = lock_path(outbox);
    let fail = |source| LockError::Io {
        lock: lock.display().to_string(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(fail)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            // The holder writes its name just after locking: a start at the
            // same instant may find the file still empty.
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "a process that has not written its name yet".to_owned(),
                named => named.to_owned(),
            };
            return Err(LockError::Held {
                outbox: outbox.display().to_string(),
                holder,
            });
        }
        Err(TryLockError::Error(source)) => return Err(fail(source)),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", holder_name()))
        .map_err(fail)?;
    Ok(OutboxLock { _file: file })
}

/// `pid 4242 on heat-pi: kmplog run /etc/kmplog.toml`.
fn holder_name() -> String {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|host| format!(" on {}", host.trim()))
        .unwrap_or_default();
    format!("pid {}{host}: {command}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("kmplog-outbox.db");
        let first = acquire(&outbox).unwrap();
        assert_eq!(lock_path(&outbox), dir.path().join("kmplog-outbox.db.lock"));
        let refused = acquire(&outbox).unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id()))
                && message.contains("in use by another kmplog"),
            "{message}"
        );
        drop(first);
        acquire(&outbox).expect("free again once the holder is gone");
    }
}
