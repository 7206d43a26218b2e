//! The system-call filter every sandboxed process runs under.
//!
//! The default is to allow: the toolchains and programs use hundreds of
//! system calls, and the namespaces, the dropped capabilities and the
//! unprivileged uid already refuse most dangerous ones. The filter denies, as
//! defence in depth, the calls that have been the way out of sandboxes or into
//! the kernel's less-trodden code: mounting, namespaces, tracing other
//! processes, keyrings, BPF, perf, io_uring, kexec, modules, `reboot`,
//! `chroot`, the LDT, NUMA memory policies, `fanotify`, uncommon `personality`
//! values, socket families other than Unix, IPv4 and IPv6 (the others are
//! rarely run kernel code, often a module the kernel loads on the first
//! `socket()` of the family), and the two terminal `ioctl`s that fake input
//! or change a line discipline. `docs/seccomp.md`
//! gives the reasons and compares the list with Docker's default profile.
//!
//! One classic-BPF program, written out here rather than generated: denied
//! calls fail with `EPERM`, and `clone3` fails with `ENOSYS` so that glibc
//! falls back to `clone` (whose flags a filter can inspect; `EPERM` from
//! `clone3` breaks thread creation in every runtime). A generic filter
//! compiler needs one filter per return value and emits a check per call and
//! ABI (about 600 instructions here); the kernel verifies, translates, JITs
//! and pre-evaluates a filter for every system call number each time a step
//! installs it, so this program is kept to about 90 instructions. It is built
//! once, at start-up.
//!
//! Arguments are compared on their low 32 bits only, which is exactly what
//! the kernel acts on for every argument checked here: `socket` and
//! `socketpair` take an `int` family, `ioctl` an `unsigned int` request and
//! `personality` an `unsigned int`, and the kernel's syscall wrappers
//! truncate the 64-bit register to that type before the call sees it; `clone`
//! takes an `unsigned long` but uses only `lower_32_bits(flags)` (the flags
//! above bit 31 exist for `clone3` alone). So `socket(AF_NETLINK | 1 << 32,
//! ..)` is a netlink socket to the kernel, and refused as one by the filter.

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
    SYS_OPEN_TREE_ATTR,
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
    // The LDT: only 16-bit and segmented code (Wine, DOSEMU) needs it; it
    // has been a use-after-free (CVE-2017-17053), and kernels may leave it
    // out (CONFIG_MODIFY_LDT_SYSCALL) for that reason.
    libc::SYS_modify_ldt,
    // Unprivileged (in part) since Linux 5.13: a notification subsystem no
    // program here needs.
    libc::SYS_fanotify_init,
    // NUMA memory policy and page migration (CVE-2018-10675 was
    // get_mempolicy): nothing here runs on a NUMA-aware allocator, and
    // Docker denies them too without CAP_SYS_NICE.
    libc::SYS_mbind,
    libc::SYS_get_mempolicy,
    libc::SYS_set_mempolicy,
    libc::SYS_set_mempolicy_home_node,
    libc::SYS_migrate_pages,
    libc::SYS_move_pages,
    libc::SYS_quotactl_fd,
];

/// `open_tree` with mount attributes (Linux 6.15; not yet in `libc`). The
/// number is the same on every architecture that numbers calls in common.
const SYS_OPEN_TREE_ATTR: i64 = 467;

/// Namespace flags `clone` may not be given (all in its low 32 bits).
/// `CLONE_NEWTIME` is listed for completeness: in `clone` (unlike `clone3`
/// and `unshare`) its bit is part of the exit signal, and no valid signal has
/// it, so refusing it costs nothing.
const CLONE_NAMESPACES: u32 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP
    | CLONE_NEWTIME) as u32;
const CLONE_NEWTIME: i32 = 0x80;

/// Where x86-64's x32 ABI numbers its system calls: kernels built with x32
/// accept them, so the filter refuses that whole ABI.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `personality(2)` values a program may use: query, and plain Linux.
const PERSONALITY_QUERY: u32 = 0xffff_ffff;
const PER_LINUX: u32 = 0;

/// The socket families `socket` and `socketpair` may create. Every other
/// family is code few machines ever run, much of it a module the kernel
/// loads on the first `socket()` call (TIPC: CVE-2021-43267; netlink,
/// vsock, packet, AF_ALG, ... ); refused with the filter's own `EPERM`, never
/// reaching the kernel's family lookup.
const SOCKET_FAMILIES: [u32; 3] = [
    libc::AF_UNIX as u32,
    libc::AF_INET as u32,
    libc::AF_INET6 as u32,
];

/// Terminal `ioctl` requests refused: `TIOCSTI` pushes bytes into a
/// terminal's input (a way to type commands into whoever owns it), and
/// `TIOCSETD` attaches a line discipline, code paths behind several kernel
/// bugs (CVE-2017-2636: n_hdlc) that may load modules too.
const DENIED_IOCTLS: [u32; 2] = [libc::TIOCSTI as u32, libc::TIOCSETD as u32];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

// Classic BPF, as in <linux/filter.h> and <linux/seccomp.h>.
/// BPF_LD (0x00) | BPF_W (0x00) | BPF_ABS (0x20).
const BPF_LD_W_ABS: u16 = 0x20;
/// BPF_JMP | BPF_JEQ | BPF_K, and the same with BPF_JSET.
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
/// The low 32 bits of the first and second arguments (little-endian).
const DATA_ARG0_LOW: u32 = 16;
const DATA_ARG1_LOW: u32 = 24;

/// The compiled filter, ready to be handed to each sandbox.
#[derive(Debug)]
pub(crate) struct SeccompFilters {
    program: Vec<u8>,
}

impl SeccompFilters {
    pub(crate) fn compile() -> Result<Self, SandboxError> {
        let program = Program::build().assemble()?;
        let mut bytes = Vec::with_capacity(program.len() * 8);
        for (code, jt, jf, k) in program {
            bytes.extend_from_slice(&code.to_ne_bytes());
            bytes.push(jt);
            bytes.push(jf);
            bytes.extend_from_slice(&k.to_ne_bytes());
        }
        Ok(Self { program: bytes })
    }

    /// The programs (`struct sock_filter` arrays, native byte order), to be
    /// installed in this order: the docker backend's container init and the
    /// native keeper install them themselves.
    pub(crate) fn programs(&self) -> [&[u8]; 1] {
        [&self.program]
    }
}

/// Where a jump goes: the next instruction, or one of the shared endings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Next,
    Allow,
    Eperm,
    Enosys,
    Kill,
    CloneCheck,
    PersonalityCheck,
    FamilyCheck,
    IoctlCheck,
}

#[derive(Debug, Clone, Copy)]
enum Insn {
    Load(u32),
    Jeq(u32, Target, Target),
    Jset(u32, Target, Target),
    Ret(u32),
    /// Marks where a shared target starts (not an instruction).
    Label(Target),
}

struct Program(Vec<Insn>);

impl Program {
    fn build() -> Self {
        use Insn::*;
        use Target::*;
        let mut code = vec![Load(DATA_ARCH), Jeq(AUDIT_ARCH, Next, Kill), Load(DATA_NR)];
        if cfg!(target_arch = "x86_64") {
            code.push(Jset(X32_SYSCALL_BIT, Eperm, Next));
        }
        code.push(Jeq(libc::SYS_clone3 as u32, Enosys, Next));
        // The calls whose arguments decide come first: of the allowed calls,
        // they alone run the filter each time (the kernel remembers which
        // call numbers the filter allows whatever the arguments, and skips
        // it for those), and `ioctl` and `clone` are frequent.
        code.extend([
            Jeq(libc::SYS_ioctl as u32, IoctlCheck, Next),
            Jeq(libc::SYS_clone as u32, CloneCheck, Next),
            Jeq(libc::SYS_socket as u32, FamilyCheck, Next),
            Jeq(libc::SYS_socketpair as u32, FamilyCheck, Next),
            Jeq(libc::SYS_personality as u32, PersonalityCheck, Next),
        ]);
        for &nr in DENIED {
            code.push(Jeq(nr as u32, Eperm, Next));
        }
        let [unix, inet, inet6] = SOCKET_FAMILIES;
        let [tiocsti, tiocsetd] = DENIED_IOCTLS;
        code.extend([
            Ret(SECCOMP_RET_ALLOW),
            // Classic BPF only jumps forward: every ending comes last.
            Label(IoctlCheck),
            Load(DATA_ARG1_LOW),
            Jeq(tiocsti, Eperm, Next),
            Jeq(tiocsetd, Eperm, Allow),
            Label(CloneCheck),
            Load(DATA_ARG0_LOW),
            Jset(CLONE_NAMESPACES, Eperm, Allow),
            Label(FamilyCheck),
            Load(DATA_ARG0_LOW),
            Jeq(unix, Allow, Next),
            Jeq(inet, Allow, Next),
            Jeq(inet6, Allow, Eperm),
            Label(PersonalityCheck),
            Load(DATA_ARG0_LOW),
            Jeq(PERSONALITY_QUERY, Allow, Next),
            Jeq(PER_LINUX, Allow, Eperm),
            Label(Allow),
            Ret(SECCOMP_RET_ALLOW),
            Label(Eperm),
            Ret(SECCOMP_RET_ERRNO | libc::EPERM as u32),
            Label(Enosys),
            Ret(SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
            Label(Kill),
            Ret(SECCOMP_RET_KILL_PROCESS),
        ]);
        Program(code)
    }

    /// Lays the program out: `(code, jt, jf, k)` per instruction, with jump
    /// targets as the forward offsets classic BPF wants.
    fn assemble(&self) -> Result<Vec<(u16, u8, u8, u32)>, SandboxError> {
        let mut labels = Vec::new();
        let mut index = 0usize;
        for insn in &self.0 {
            match insn {
                Insn::Label(target) => labels.push((*target, index)),
                _ => index += 1,
            }
        }
        let mut out = Vec::with_capacity(index);
        for insn in &self.0 {
            let here = out.len();
            let offset = |target: Target| -> Result<u8, SandboxError> {
                if target == Target::Next {
                    return Ok(0);
                }
                let (_, at) = labels
                    .iter()
                    .find(|(label, _)| *label == target)
                    .ok_or_else(|| SandboxError::Unavailable(format!("seccomp: no {target:?}")))?;
                at.checked_sub(here + 1)
                    .and_then(|jump| u8::try_from(jump).ok())
                    .ok_or_else(|| SandboxError::Unavailable("seccomp: jump out of range".into()))
            };
            match *insn {
                Insn::Load(offset_in_data) => out.push((BPF_LD_W_ABS, 0, 0, offset_in_data)),
                Insn::Jeq(k, yes, no) => out.push((BPF_JEQ_K, offset(yes)?, offset(no)?, k)),
                Insn::Jset(k, yes, no) => out.push((BPF_JSET_K, offset(yes)?, offset(no)?, k)),
                Insn::Ret(k) => out.push((BPF_RET_K, 0, 0, k)),
                Insn::Label(_) => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile() {
        let filters = SeccompFilters::compile().unwrap();
        let [program] = filters.programs();
        assert_eq!(program.len() % 8, 0);
        let instructions = program.len() / 8;
        // One check per denied call plus a fixed head and tail.
        assert!(instructions > DENIED.len() && instructions < DENIED.len() + 30);
    }
}
