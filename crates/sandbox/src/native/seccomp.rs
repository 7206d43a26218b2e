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
//! installs it, so this program is kept to about 130 instructions, and the
//! call number is found by a binary search, a path of at most 16 of them.
//! It is built once, at start-up.
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
    // A program's own time slice (EEVDF, Linux 6.12, up to 100 ms, no
    // privilege): the service's threads run as SCHED_BATCH and so never
    // preempt a program on being woken; a program that asked for long
    // slices would keep them (and every other job's keeper and program)
    // waiting that long. Nothing here needs it (glibc, the language
    // runtimes and `chrt` for the classic policies use sched_setscheduler).
    libc::SYS_sched_setattr,
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
/// BPF_JMP | BPF_JEQ | BPF_K, and the same with BPF_JGE and BPF_JSET.
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JGE_K: u16 = 0x05 | 0x30;
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
    /// A subtree of the search over call numbers.
    Node(u16),
}

/// The most call numbers a leaf of the search compares one by one.
const LEAF_CALLS: usize = 4;

#[derive(Debug, Clone, Copy)]
enum Insn {
    Load(u32),
    Jeq(u32, Target, Target),
    Jge(u32, Target, Target),
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
        // Every call number the filter does not simply allow, with where it
        // goes, searched as a binary tree (`search`): the kernel runs the
        // filter on every call number each time a step installs it, to
        // remember which it allows whatever the arguments (all but the
        // argument-checked ones below), so the path through the filter is
        // what each step pays for hundreds of times; a chain of one check
        // per call made it about 70 instructions long, the tree about ten.
        let mut calls: Vec<(u32, Target)> = DENIED.iter().map(|&nr| (nr as u32, Eperm)).collect();
        calls.extend([
            (libc::SYS_clone3 as u32, Enosys),
            (libc::SYS_ioctl as u32, IoctlCheck),
            (libc::SYS_clone as u32, CloneCheck),
            (libc::SYS_socket as u32, FamilyCheck),
            (libc::SYS_socketpair as u32, FamilyCheck),
            (libc::SYS_personality as u32, PersonalityCheck),
        ]);
        calls.sort_unstable_by_key(|&(nr, _)| nr);
        search(&calls, &mut code, &mut 0);
        let [unix, inet, inet6] = SOCKET_FAMILIES;
        let [tiocsti, tiocsetd] = DENIED_IOCTLS;
        code.extend([
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
                Insn::Jge(k, yes, no) => out.push((BPF_JGE_K, offset(yes)?, offset(no)?, k)),
                Insn::Jset(k, yes, no) => out.push((BPF_JSET_K, offset(yes)?, offset(no)?, k)),
                Insn::Ret(k) => out.push((BPF_RET_K, 0, 0, k)),
                Insn::Label(_) => {}
            }
        }
        Ok(out)
    }
}

/// Emits the search for the call number (in the accumulator) among `calls`
/// (sorted, distinct): a `>=` split at the middle until at most
/// `LEAF_CALLS` remain, which are compared one by one; a number that is
/// none of them is allowed. Subtree labels are numbered from `nodes`.
fn search(calls: &[(u32, Target)], code: &mut Vec<Insn>, nodes: &mut u16) {
    if calls.len() <= LEAF_CALLS {
        for &(nr, target) in calls {
            code.push(Insn::Jeq(nr, target, Target::Next));
        }
        code.push(Insn::Ret(SECCOMP_RET_ALLOW));
        return;
    }
    let middle = calls.len() / 2;
    let upper = Target::Node(*nodes);
    *nodes += 1;
    code.push(Insn::Jge(calls[middle].0, upper, Target::Next));
    search(&calls[..middle], code, nodes);
    code.push(Insn::Label(upper));
    search(&calls[middle..], code, nodes);
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const ALLOW: u32 = SECCOMP_RET_ALLOW;
    const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const KILL: u32 = SECCOMP_RET_KILL_PROCESS;

    /// The program as the kernel receives it, decoded from the bytes.
    fn program() -> Vec<(u16, u8, u8, u32)> {
        let filters = SeccompFilters::compile().unwrap();
        let [bytes] = filters.programs();
        assert_eq!(bytes.len() % 8, 0);
        bytes
            .chunks_exact(8)
            .map(|i| {
                (
                    u16::from_ne_bytes([i[0], i[1]]),
                    i[2],
                    i[3],
                    u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
                )
            })
            .collect()
    }

    /// `struct seccomp_data`: nr, arch, instruction pointer, six arguments.
    fn data(arch: u32, nr: i64, args: &[u64]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[0..4].copy_from_slice(&(nr as i32).to_ne_bytes());
        out[4..8].copy_from_slice(&arch.to_ne_bytes());
        out[8..16].copy_from_slice(&0x7f00_dead_beefu64.to_ne_bytes());
        for (i, arg) in args.iter().enumerate() {
            out[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        out
    }

    /// What the kernel's `bpf_check_classic` and `seccomp_check_filter`
    /// demand, for the instructions this program uses: a length it takes,
    /// known opcodes, aligned 32-bit loads inside `seccomp_data`, forward
    /// jumps that stay inside the program, a return at the end.
    fn check_like_the_kernel(program: &[(u16, u8, u8, u32)]) {
        assert!(!program.is_empty() && program.len() <= 4096);
        for (pc, &(code, jt, jf, k)) in program.iter().enumerate() {
            match code {
                BPF_LD_W_ABS => assert!(k % 4 == 0 && k < 64, "load at {k} ({pc})"),
                BPF_JEQ_K | BPF_JGE_K | BPF_JSET_K => {
                    let furthest = pc + 1 + usize::from(jt.max(jf));
                    assert!(furthest < program.len(), "jump out at {pc}");
                }
                BPF_RET_K => {}
                other => panic!("unexpected opcode {other:#x} at {pc}"),
            }
        }
        assert_eq!(program.last().unwrap().0, BPF_RET_K);
    }

    /// A classic-BPF interpreter for the instructions the program uses (the
    /// kernel's semantics: jumps are offsets from the next instruction).
    fn run(program: &[(u16, u8, u8, u32)], data: &[u8; 64]) -> u32 {
        run_counting(program, data).0
    }

    /// `run`, and how many instructions it went through.
    fn run_counting(program: &[(u16, u8, u8, u32)], data: &[u8; 64]) -> (u32, usize) {
        let mut a = 0u32;
        let mut pc = 0usize;
        let mut steps = 0;
        loop {
            steps += 1;
            let (code, jt, jf, k) = program[pc];
            let jump = |taken: bool| {
                let to = pc + 1 + usize::from(if taken { jt } else { jf });
                assert!(to < program.len(), "jump out of the program at {pc}");
                to
            };
            pc = match code {
                BPF_LD_W_ABS => {
                    assert!(k % 4 == 0 && k < 64, "load at {k}");
                    let k = k as usize;
                    a = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                    pc + 1
                }
                BPF_JEQ_K => jump(a == k),
                BPF_JGE_K => jump(a >= k),
                BPF_JSET_K => jump(a & k != 0),
                BPF_RET_K => return (k, steps),
                other => panic!("unexpected opcode {other:#x} at {pc}"),
            };
        }
    }

    fn x86_64(nr: i64, args: &[u64]) -> u32 {
        run(&program(), &data(AUDIT_ARCH, nr, args))
    }

    #[test]
    fn program_is_well_formed_and_small() {
        let program = program();
        check_like_the_kernel(&program);
        // One check per denied call, a split per leaf and a return per
        // leaf of the search, a fixed head and tail.
        assert!(program.len() > DENIED.len() && program.len() < DENIED.len() + 70);
        assert!(program.len() < 140, "{} instructions", program.len());
        // No call is listed twice, and none of the argument-checked calls is
        // in the plain list (it would never reach its check).
        let mut seen = std::collections::HashSet::new();
        for &nr in DENIED {
            assert!(seen.insert(nr), "{nr} listed twice");
        }
        for nr in [
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_ioctl,
            libc::SYS_socket,
            libc::SYS_socketpair,
            libc::SYS_personality,
        ] {
            assert!(!seen.contains(&nr), "{nr}");
        }
    }

    /// Every call number, listed or not, gets what the lists say (with zero
    /// arguments: `socket` and `socketpair` of family 0 are refused, the
    /// other argument-checked calls allowed), through a short path: the
    /// kernel runs the filter on every number at each install.
    #[test]
    fn every_call_number_is_searched_right_and_fast() {
        let program = program();
        let mut longest = 0;
        for nr in 0..1024i64 {
            let (action, steps) = run_counting(&program, &data(AUDIT_ARCH, nr, &[0; 6]));
            let expected =
                if DENIED.contains(&nr) || nr == libc::SYS_socket || nr == libc::SYS_socketpair {
                    EPERM
                } else if nr == libc::SYS_clone3 {
                    ENOSYS
                } else {
                    ALLOW
                };
            assert_eq!(action, expected, "call {nr}");
            longest = longest.max(steps);
        }
        assert!(longest <= 16, "a path of {longest} instructions");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn denied_calls_fail_with_eperm_on_both_x86_64_abis() {
        for &nr in DENIED {
            assert_eq!(x86_64(nr, &[0; 6]), EPERM, "{nr}");
            assert_eq!(x86_64(nr | X32_SYSCALL_BIT as i64, &[0; 6]), EPERM);
        }
        // The x32 ABI, whatever the call: even plain `read`.
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_clone,
            libc::SYS_ioctl,
            libc::SYS_socket,
        ] {
            assert_eq!(x86_64(nr | X32_SYSCALL_BIT as i64, &[0; 6]), EPERM);
        }
        for (name, nr) in [
            ("modify_ldt", 154),
            ("mbind", 237),
            ("set_mempolicy", 238),
            ("get_mempolicy", 239),
            ("migrate_pages", 256),
            ("move_pages", 279),
            ("fanotify_init", 300),
            ("quotactl_fd", 443),
            ("set_mempolicy_home_node", 450),
            ("open_tree_attr", 467),
            ("ptrace", 101),
            ("mount", 165),
            ("unshare", 272),
            ("userfaultfd", 323),
            ("io_uring_setup", 425),
            ("kcmp", 312),
        ] {
            assert_eq!(x86_64(nr, &[0; 6]), EPERM, "{name}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn common_calls_are_allowed() {
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_close,
            libc::SYS_mmap,
            libc::SYS_munmap,
            libc::SYS_mprotect,
            libc::SYS_brk,
            libc::SYS_futex,
            libc::SYS_execve,
            libc::SYS_exit_group,
            libc::SYS_wait4,
            libc::SYS_rt_sigaction,
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_prctl,
            libc::SYS_seccomp,
            libc::SYS_getcpu,
            libc::SYS_sched_getaffinity,
            libc::SYS_madvise,
            libc::SYS_memfd_create,
            libc::SYS_pidfd_open,
            libc::SYS_connect,
            libc::SYS_sendto,
            libc::SYS_rseq,
        ] {
            assert_eq!(x86_64(nr, &[0; 6]), ALLOW, "{nr}");
        }
        // Call numbers the kernel does not know reach it (ENOSYS there).
        assert_eq!(x86_64(1000, &[0; 6]), ALLOW);
    }

    #[test]
    fn i386_calls_kill_the_process() {
        let program = program();
        for nr in [0, 1, 3, 11, 120, 0x4000_0001] {
            assert_eq!(run(&program, &data(AUDIT_ARCH_I386, nr, &[0; 6])), KILL);
        }
        assert_eq!(run(&program, &data(0, 0, &[0; 6])), KILL);
    }

    #[test]
    fn clone3_fails_with_enosys() {
        assert_eq!(x86_64(libc::SYS_clone3, &[0; 6]), ENOSYS);
        assert_eq!(x86_64(libc::SYS_clone3, &[u64::MAX; 6]), ENOSYS);
    }

    #[test]
    fn clone_may_make_threads_and_processes_but_no_namespace() {
        let sigchld = libc::SIGCHLD as u64;
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        for flags in [
            sigchld,
            thread,
            (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | sigchld,
            libc::CLONE_CHILD_SETTID as u64 | libc::CLONE_CHILD_CLEARTID as u64 | sigchld,
            libc::CLONE_PIDFD as u64 | sigchld,
            // The kernel ignores clone's upper 32 bits (`lower_32_bits`).
            (1 << 32) | sigchld,
        ] {
            assert_eq!(
                x86_64(libc::SYS_clone, &[flags, 0, 0, 0, 0, 0]),
                ALLOW,
                "{flags:#x}"
            );
        }
        for flag in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWCGROUP,
            CLONE_NEWTIME,
        ] {
            let flag = flag as u32 as u64;
            for flags in [
                flag,
                flag | sigchld,
                flag | thread,
                flag | (0xffff_ffff << 32),
            ] {
                assert_eq!(
                    x86_64(libc::SYS_clone, &[flags, 0, 0, 0, 0, 0]),
                    EPERM,
                    "{flags:#x}"
                );
            }
        }
    }

    #[test]
    fn only_plain_personalities() {
        for persona in [0, 0xffff_ffff, 1 << 32, 0xffff_ffff_ffff_ffff] {
            assert_eq!(
                x86_64(libc::SYS_personality, &[persona, 0, 0, 0, 0, 0]),
                ALLOW,
                "{persona:#x}"
            );
        }
        // READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, PER_LINUX32, UNAME26,
        // ADDR_COMPAT_LAYOUT, MMAP_PAGE_ZERO, PER_BSD.
        for persona in [
            0x040_0000,
            0x004_0000,
            0x8,
            0x2_0000,
            0x20_0000,
            0x10_0000,
            6,
            0xffff_fffe,
        ] {
            assert_eq!(
                x86_64(libc::SYS_personality, &[persona, 0, 0, 0, 0, 0]),
                EPERM,
                "{persona:#x}"
            );
        }
    }

    #[test]
    fn only_unix_and_internet_sockets() {
        for call in [libc::SYS_socket, libc::SYS_socketpair] {
            for family in [1u64, 2, 10] {
                for args in [[family, 1, 0, 0, 0, 0], [family, 0x80802, 6, 0, 0, 0]] {
                    assert_eq!(x86_64(call, &args), ALLOW, "{call} {family}");
                }
                // The kernel takes `int family`: the upper half is dropped.
                assert_eq!(x86_64(call, &[family | 7 << 32, 1, 0, 0, 0, 0]), ALLOW);
            }
            // AF_UNSPEC, AX25, NETLINK, PACKET, TIPC, ALG, VSOCK, XDP, beyond
            // AF_MAX, and the negative ones.
            for family in [0u64, 3, 16, 17, 30, 38, 40, 44, 46, 255, 0xffff_ffff] {
                assert_eq!(
                    x86_64(call, &[family, 3, 0, 0, 0, 0]),
                    EPERM,
                    "{call} {family}"
                );
                // `socket(AF_NETLINK | 1 << 32, ..)` is a netlink socket to
                // the kernel, and refused here on its low 32 bits likewise.
                assert_eq!(x86_64(call, &[family | 1 << 32, 3, 0, 0, 0, 0]), EPERM);
            }
        }
        // Other socket calls are not filtered by family.
        assert_eq!(x86_64(libc::SYS_bind, &[16, 0, 0, 0, 0, 0]), ALLOW);
    }

    #[test]
    fn terminal_input_and_line_disciplines_are_refused() {
        let ioctl =
            |fd: u64, request: u64| x86_64(libc::SYS_ioctl, &[fd, request, 0x7ffe_0000, 0, 0, 0]);
        for fd in [0, 1, 3, 0xffff_ffff] {
            assert_eq!(ioctl(fd, 0x5412), EPERM, "TIOCSTI");
            assert_eq!(ioctl(fd, 0x5423), EPERM, "TIOCSETD");
            // The kernel takes `unsigned int cmd`.
            assert_eq!(ioctl(fd, 0x5412 | 1 << 32), EPERM, "TIOCSTI, high bits");
            assert_eq!(ioctl(fd, 0x5423 | 0xffff_ffff << 32), EPERM);
            // TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX, TIOCGPGRP,
            // TIOCGETD (reading the discipline is fine).
            for request in [0x5401, 0x5413, 0x541b, 0x5421, 0x5451, 0x540f, 0x5424] {
                assert_eq!(ioctl(fd, request), ALLOW, "{request:#x}");
            }
        }
        // The request number as the fd argument means nothing.
        assert_eq!(ioctl(0x5412, 0x5401), ALLOW);
    }
}
