//! A job's private scratch directory: a fresh tmpfs of bounded size and inode
//! count, mounted by the worker and seen inside the sandbox as `/work`.
//!
//! The host side writes the source file before any job process exists and
//! afterwards only unmounts: it never opens, reads, chowns or deletes a path
//! the job could have replaced with a link, FIFO or device node.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::sys;
use crate::SandboxError;

/// Enough files for a compiler's temporaries and a program's own, few enough
/// that an inode-filling loop stops early.
const INODES: u64 = 4096;

/// A mounted scratch tmpfs, unmounted when dropped.
#[derive(Debug)]
pub(crate) struct Scratch {
    path: PathBuf,
    mounted: bool,
}

impl Scratch {
    /// Mounts a new scratch tmpfs at `root/name`, owned by `uid`.
    pub(crate) fn create(
        root: &Path,
        name: &str,
        uid: u32,
        size_bytes: u64,
    ) -> Result<Self, SandboxError> {
        let path = root.join(name);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(SandboxError::setup(format!("create {}", path.display())))?;
        let mut scratch = Scratch {
            path,
            mounted: false,
        };
        sys::mount_tmpfs(&scratch.path, size_bytes, INODES, uid).map_err(SandboxError::setup(
            format!("mount tmpfs on {}", scratch.path.display()),
        ))?;
        scratch.mounted = true;
        Ok(scratch)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the submitted source as `file_name`, owned by `uid`.
    pub(crate) fn write_file(
        &self,
        file_name: &str,
        contents: &[u8],
        uid: u32,
    ) -> Result<(), SandboxError> {
        let path = self.path.join(file_name);
        let what = || format!("write {}", path.display());
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(SandboxError::setup(what()))?;
        file.write_all(contents)
            .map_err(SandboxError::setup(what()))?;
        std::os::unix::fs::fchown(&file, Some(uid), Some(uid))
            .map_err(SandboxError::setup(what()))?;
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = sys::unmount(&self.path) {
                tracing::error!(path = %self.path.display(), error = %e, "cannot unmount scratch");
                return;
            }
        }
        // Empty once unmounted: nothing of the job's is left to follow.
        if let Err(e) = fs::remove_dir(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove scratch mount point");
        }
    }
}
