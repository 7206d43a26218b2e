//! The bubblewrap command line of a slot's sandbox: the user and network
//! namespaces, the read-only view of the toolchains, and the keeper as the
//! command, built in one place. Each step's own namespaces and writable
//! places are the keeper's (see `keeper`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The uid and gid the keeper and the program see inside the user namespace.
/// It maps to the slot's unprivileged host uid, never to host root.
const INNER_ID: &str = "1000";

/// Host files every toolchain needs besides `/usr`.
const BASE_FILES: [&str; 1] = ["/etc/ld.so.cache"];

/// One slot's sandbox, as bubblewrap arguments.
pub(crate) struct SlotArgs<'a> {
    /// Extra host paths the languages need, bound read-only.
    pub mounts: &'a [PathBuf],
    /// The keeper's command line.
    pub argv: &'a [OsString],
}

impl SlotArgs<'_> {
    pub(crate) fn build(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::with_capacity(64);
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&[
            "--unshare-user",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-net",
            "--unshare-cgroup-try",
            "--uid",
            INNER_ID,
            "--gid",
            INNER_ID,
            // The keeper needs them to make each step's namespaces and
            // mounts; they are good only inside this user namespace, and
            // the program drops them all before it runs.
            "--cap-add",
            "ALL",
            // No --disable-userns: it runs the command in a nested user
            // namespace that does not own the mount namespace, so the keeper
            // could not mount. The keeper closes user namespaces itself (see
            // `keeper`), and seccomp refuses them to programs.
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
            // Locally installed software (the worker's own binary, say) is
            // not the sandbox's business; a language that needs something
            // from there lists it in its `mounts`, bound after this.
            "--tmpfs",
            "/usr/local",
            "--remount-ro",
            "/usr/local",
        ]);
        // Merged-/usr hosts (Debian 12) have these as links into /usr.
        for dir in ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] {
            let host = Path::new("/").join(dir);
            match std::fs::read_link(&host) {
                Ok(target) => {
                    let target = target.to_string_lossy().into_owned();
                    push(&["--symlink", &target, &format!("/{dir}")]);
                }
                Err(_) if host.is_dir() => {
                    push(&["--ro-bind", &format!("/{dir}"), &format!("/{dir}")])
                }
                Err(_) => {}
            }
        }
        for file in BASE_FILES {
            push(&["--ro-bind-try", file, file]);
        }
        for mount in self.mounts {
            let mount = mount.to_string_lossy();
            push(&["--ro-bind-try", &mount, &mount]);
        }
        push(&[
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            // /dev is a tmpfs: read-only, it cannot hold data. Each step
            // mounts its own /dev/shm, /tmp and /proc over these.
            "--remount-ro",
            "/dev",
            "--dir",
            "/tmp",
            "--dir",
            "/work",
            // Where judge mode's custom checker lives (see `keeper`): an
            // empty, read-only directory unless the keeper mounts a tmpfs
            // over it, which no step of the submission ever sees.
            "--dir",
            "/judge",
            "--chdir",
            "/",
            // bubblewrap's root is a tmpfs; read-only, it cannot hold data.
            "--remount-ro",
            "/",
            "--clearenv",
            "--setenv",
            "PATH",
            "/usr/bin:/bin",
            "--",
        ]);
        args.extend(self.argv.iter().cloned());
        args
    }
}
