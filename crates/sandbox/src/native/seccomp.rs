//! The system-call filter every sandboxed process runs under.
//!
//! The default is to allow: the toolchains and programs use hundreds of
//! system calls, and the namespaces, the dropped capabilities and the
//! unprivileged uid already refuse most dangerous ones. The filter denies, as
//! defence in depth, the calls that have been the way out of sandboxes or into
//! the kernel's less-trodden code: mounting, namespaces, tracing other
//! processes, keyrings, BPF, perf, io_uring, kexec, modules, `reboot`,
//! `chroot`, uncommon `personality` values, and more.
//!
//! Two filters, because one filter has one "match" action: denied calls fail
//! with `EPERM`, and `clone3` fails with `ENOSYS` so that glibc falls back to
//! `clone` (whose flags a filter can inspect; `EPERM` from `clone3` breaks
//! thread creation in every runtime). Both are compiled once, at start-up.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::SandboxError;

/// Calls denied outright.
const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    libc::SYS_pidfd_getfd,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_syslog,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_lookup_dcookie,
    libc::SYS_vhangup,
    libc::SYS_uselib,
    libc::SYS_ustat,
    libc::SYS_sysfs,
    libc::SYS_nfsservctl,
];

/// Namespace flags `clone` may not be given.
const CLONE_NAMESPACES: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// Where x86-64's x32 ABI numbers its system calls; kernels built with x32
/// accept them, so every denied call is denied under both numbers.
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// `personality(2)` values a program may use: query, and plain Linux.
const PERSONALITY_QUERY: u64 = 0xffff_ffff;
const PER_LINUX: u64 = 0;

/// The compiled filters, ready to be handed to each sandbox.
#[derive(Debug)]
pub(crate) struct SeccompFilters {
    denied: Vec<u8>,
    enosys: Vec<u8>,
}

impl SeccompFilters {
    pub(crate) fn compile() -> Result<Self, SandboxError> {
        let arch = TargetArch::try_from(std::env::consts::ARCH)
            .map_err(|e| SandboxError::Unavailable(format!("seccomp: {e}")))?;
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for &nr in DENIED {
            rules.insert(nr, Vec::new());
            if arch == TargetArch::x86_64 {
                rules.insert(nr | X32_SYSCALL_BIT, Vec::new());
            }
        }
        rules.insert(libc::SYS_clone, clone_namespace_rules()?);
        rules.insert(libc::SYS_personality, vec![personality_rule()?]);
        let denied = compile(rules, libc::EPERM, arch)?;
        let enosys = compile(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            libc::ENOSYS,
            arch,
        )?;
        Ok(Self { denied, enosys })
    }

    /// The two programs (`struct sock_filter` arrays, native byte order),
    /// to be installed in this order: the docker backend's container init
    /// installs them itself.
    pub(crate) fn programs(&self) -> [&[u8]; 2] {
        [&self.denied, &self.enosys]
    }
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
    arch: TargetArch,
) -> Result<Vec<u8>, SandboxError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| SandboxError::Unavailable(format!("seccomp filter: {e}")))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e| SandboxError::Unavailable(format!("seccomp filter: {e:?}")))?;
    // The kernel's `struct sock_filter`, in native byte order.
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    Ok(bytes)
}

fn clone_namespace_rules() -> Result<Vec<SeccompRule>, SandboxError> {
    CLONE_NAMESPACES
        .iter()
        .map(|&flag| {
            let has_flag = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )
            .map_err(|e| SandboxError::Unavailable(format!("seccomp rule: {e}")))?;
            SeccompRule::new(vec![has_flag])
                .map_err(|e| SandboxError::Unavailable(format!("seccomp rule: {e}")))
        })
        .collect()
}

fn personality_rule() -> Result<SeccompRule, SandboxError> {
    let condition = |value| {
        SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, value)
            .map_err(|e| SandboxError::Unavailable(format!("seccomp rule: {e}")))
    };
    SeccompRule::new(vec![condition(PERSONALITY_QUERY)?, condition(PER_LINUX)?])
        .map_err(|e| SandboxError::Unavailable(format!("seccomp rule: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile() {
        let filters = SeccompFilters::compile().unwrap();
        assert!(filters.denied.len() > 8 * DENIED.len());
        assert_eq!(filters.denied.len() % 8, 0);
        assert!(!filters.enosys.is_empty());
    }
}
