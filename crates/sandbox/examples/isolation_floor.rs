//! What the kernel work of a step's isolation costs on its own, with none
//! of the sandbox's code: `cargo run --release -p code-runner-sandbox
//! --example isolation_floor [rounds] [processes per round]` (as root).
//!
//! Two loops run python hellos side by side (one per core, as
//! `scripts/bench.sh`'s bare baseline does), in alternating rounds: plain
//! (fork, exec, wait) and isolated, where each hello first gets what every
//! step gets from the kernel: fresh PID, mount, IPC and UTS namespaces, a
//! fresh `/proc`, `/tmp` and `/dev/shm`, and their teardown at its end. The
//! example works in a private mount namespace of its own, so nothing is
//! mounted on the host. No seccomp filter, cgroup, user namespace or keeper:
//! the ratio of the two rates is the floor under the sandbox's cost, what
//! `native_throughput` (the sandbox alone) and `scripts/bench.sh`'s (c) (the
//! whole service) add to is measured from there.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::time::Instant;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn check(rc: libc::c_int, what: &str) {
    if rc < 0 {
        panic!("{what}: {}", std::io::Error::last_os_error());
    }
}

/// What the init (the cloned child) needs: the program's argv and envp.
struct Hello<'a> {
    isolated: bool,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
}

/// The cloned child, in both modes: with fresh namespaces its mounts first
/// (it is PID 1 of its PID namespace, as a step's init is), then the
/// program as its child; it exits with the program's status.
extern "C" fn init(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Hello`, in this child's copy of its
    // memory; only raw calls follow, then exec or exit.
    unsafe {
        let hello = &*arg.cast::<Hello>();
        if hello.isolated {
            let tmpfs = c"tmpfs".as_ptr();
            let opts = c"size=64m,nr_inodes=4096,mode=1777".as_ptr().cast();
            let nosuid = libc::MS_NOSUID | libc::MS_NODEV;
            if libc::mount(tmpfs, c"/tmp".as_ptr(), tmpfs, nosuid, opts) != 0
                || libc::mount(tmpfs, c"/dev/shm".as_ptr(), tmpfs, nosuid, opts) != 0
                || libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    nosuid | libc::MS_NOEXEC,
                    std::ptr::null(),
                ) != 0
            {
                libc::_exit(122);
            }
        }
        let program = libc::fork();
        if program == 0 {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            libc::dup2(null, 1);
            libc::execve(hello.argv[0], hello.argv.as_ptr(), hello.envp.as_ptr());
            libc::_exit(127);
        }
        let mut status = 0;
        libc::waitpid(program, &mut status, 0);
        libc::_exit(if status == 0 { 0 } else { 123 })
    }
}

/// One python hello, isolated or not; panics unless it exits 0. Both modes
/// make the same two processes (a clone, then the program forked from it),
/// so the difference between them is the namespaces and mounts alone.
fn hello(hello: &Hello, stack: &mut [u8]) {
    let mut flags = libc::SIGCHLD;
    if hello.isolated {
        flags |= libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    }
    // SAFETY: the child runs `init` on `stack`, its own copy (no CLONE_VM).
    unsafe {
        let top = stack.as_mut_ptr().add(stack.len() & !15).cast();
        let child = libc::clone(init, top, flags, std::ptr::from_ref(hello) as *mut _);
        check(child, "clone");
        let mut status = 0;
        libc::waitpid(child, &mut status, 0);
        assert_eq!(status, 0, "a hello failed (isolated: {})", hello.isolated);
    }
}

/// Hellos per second, `per_loop` in each of two loops at once.
fn rate(isolated: bool, per_loop: usize) -> f64 {
    let started = Instant::now();
    // SAFETY: fork in a single-threaded process; the child runs its loop
    // of raw calls and exits.
    let loops: Vec<libc::pid_t> = (0..2)
        .map(|_| unsafe {
            let pid = libc::fork();
            check(pid, "fork");
            if pid == 0 {
                let args = [c"/usr/bin/python3", c"-c", c"print('hi')"];
                let argv: Vec<*const libc::c_char> = args
                    .iter()
                    .map(|a| a.as_ptr())
                    .chain([std::ptr::null()])
                    .collect();
                let path = CString::new("PATH=/usr/bin:/bin").unwrap();
                let envp = [path.as_ptr(), std::ptr::null()];
                let hello_spec = Hello {
                    isolated,
                    argv: &argv,
                    envp: &envp,
                };
                let mut stack = vec![0u8; 64 << 10];
                for _ in 0..per_loop {
                    hello(&hello_spec, &mut stack);
                }
                libc::_exit(0);
            }
            pid
        })
        .collect();
    for pid in loops {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(status, 0, "a loop failed");
    }
    (2 * per_loop) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let (rounds, per_round) = (arg(1, 6), arg(2, 300));
    // SAFETY: no thread but this one yet; a private mount namespace for
    // this process, so the hellos' mounts never reach the host's.
    unsafe {
        check(
            libc::unshare(libc::CLONE_NEWNS),
            "unshare the mount namespace",
        );
        check(
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
            "make / private",
        );
    }
    rate(true, 20);
    rate(false, 20);
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let plain = rate(false, per_round / 2);
        let isolated = rate(true, per_round / 2);
        ratios.push(isolated / plain);
        println!(
            "round {round}: plain {plain:6.1} proc/s, isolated {isolated:6.1} proc/s: {:.1} % of plain",
            100.0 * isolated / plain
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median of {rounds} rounds: {:.1} % of plain",
        100.0 * ratios[ratios.len() / 2]
    );
}
