//! The bubblewrap command line for one step: the namespaces, the read-only
//! view of the toolchains and the writable places, built in one place.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::limits::Limits;

/// The uid and gid the program sees inside its user namespace. It maps to the
/// slot's unprivileged host uid, never to host root.
const INNER_ID: &str = "1000";

/// Host files every toolchain needs besides `/usr`.
const BASE_FILES: [&str; 1] = ["/etc/ld.so.cache"];

/// One step's sandbox, as bubblewrap arguments.
pub(crate) struct BwrapArgs<'a> {
    pub scratch: &'a Path,
    pub mounts: &'a [PathBuf],
    pub limits: &'a Limits,
    /// Inherited descriptors holding the seccomp filters.
    pub seccomp_fds: &'a [i32],
    pub argv: &'a [String],
}

impl BwrapArgs<'_> {
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
            "--disable-userns",
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
        let scratch_size = self.limits.scratch_bytes.to_string();
        push(&[
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            // /dev is a tmpfs: read-only, it cannot hold data. POSIX shared
            // memory gets its own bounded tmpfs, mounted after the remount.
            "--remount-ro",
            "/dev",
            "--size",
            &scratch_size,
            "--tmpfs",
            "/dev/shm",
            "--size",
            &scratch_size,
            "--tmpfs",
            "/tmp",
        ]);
        args.extend([
            "--bind".into(),
            self.scratch.as_os_str().to_owned(),
            "/work".into(),
        ]);
        for fd in self.seccomp_fds {
            args.extend(["--add-seccomp-fd".into(), fd.to_string().into()]);
        }
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&[
            "--chdir",
            "/work",
            // bubblewrap's root is a tmpfs; read-only, it cannot hold data.
            "--remount-ro",
            "/",
            "--clearenv",
            "--setenv",
            "PATH",
            "/usr/bin:/bin",
            "--setenv",
            "HOME",
            "/work",
            "--setenv",
            "LANG",
            "C.UTF-8",
            "--setenv",
            "TMPDIR",
            "/tmp",
            "--",
        ]);
        args.extend(self.argv.iter().map(OsString::from));
        args
    }
}
