//! Host uids for sandbox slots, leased so that no two sandboxes on this host
//! ever share one — not even sandboxes of different worker processes.
//!
//! A shared uid would let concurrent jobs count against each other's
//! `RLIMIT_NPROC` and, were a namespace to leak, touch each other's
//! processes. Each lease is an exclusive `flock` on a file named after the
//! uid; the kernel drops it when the worker exits, however it exits.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use crate::SandboxError;

/// How far past `first_uid` to look for free uids.
const SEARCH_SPAN: u32 = 1 << 20;

/// The uids this process holds, one per slot.
#[derive(Debug)]
pub(crate) struct UidLeases {
    uids: Vec<u32>,
    _locks: Vec<File>,
}

impl UidLeases {
    /// Leases `count` uids at or above `first_uid`.
    pub(crate) fn acquire(
        lock_dir: &Path,
        first_uid: u32,
        count: u32,
    ) -> Result<Self, SandboxError> {
        fs::create_dir_all(lock_dir).map_err(SandboxError::setup(format!(
            "create {}",
            lock_dir.display()
        )))?;
        let mut uids = Vec::with_capacity(count as usize);
        let mut locks = Vec::with_capacity(count as usize);
        let last = first_uid.saturating_add(SEARCH_SPAN);
        for uid in first_uid..last {
            if uids.len() == count as usize {
                break;
            }
            let path = lock_dir.join(uid.to_string());
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(SandboxError::setup(format!("open {}", path.display())))?;
            if file.try_lock().is_ok() {
                uids.push(uid);
                locks.push(file);
            }
        }
        if uids.len() < count as usize {
            return Err(SandboxError::Unavailable(format!(
                "only {} free sandbox uids from {first_uid}",
                uids.len()
            )));
        }
        Ok(Self {
            uids,
            _locks: locks,
        })
    }

    pub(crate) fn uid(&self, slot: u32) -> u32 {
        self.uids[slot as usize]
    }
}
