//! The sandbox suite against the native backend (bubblewrap + keeper + cgroups).
//! Needs root, `bwrap` and cgroups: a missing part fails the suite. CI runs
//! it on the host and again inside the unprivileged native worker container
//! (scripts/compose-native.sh), where `CODE_RUNNER_CGROUP_PATH` is set.

#[macro_use]
mod suite;
mod native_common;

use native_common::{run, sandbox};

use code_runner_sandbox::{KeeperCommand, NativeConfig, NativeSandbox};

/// The language table the suite's programs use: the built-in one.
fn language_table() -> code_runner_sandbox::LanguageTable {
    code_runner_sandbox::LanguageTable::builtin()
}

every_backend_test!(run);

/// Judge mode, what only the native backend promises (the default,
/// compile-per-test path of other backends does not): the submission is
/// compiled once — every test runs the very same binary file — and what a
/// test leaves in `/work` is there for the next; a test sees `/judge` empty
/// and not mounted; the checker runs in `/judge`, read-only, which holds
/// its source and the test's three files and nothing else, and sees `/work`
/// empty and not mounted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge_directories_and_one_compile_on_the_native_backend() {
    let solution = r#"
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
int main(void) {
    struct stat st;
    if (stat("/work/main", &st) != 0) { puts("no binary"); return 1; }
    int count = 0;
    FILE *f = fopen("/work/count", "r");
    if (f) { if (fscanf(f, "%d", &count) != 1) count = -100; fclose(f); }
    f = fopen("/work/count", "w");
    if (!f) return 2;
    fprintf(f, "%d", count + 1);
    fclose(f);
    int entries = 0, mounted = 0;
    DIR *d = opendir("/judge");
    struct dirent *e;
    while (d && (e = readdir(d))) if (e->d_name[0] != '.') entries++;
    f = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f)) if (strstr(line, " /judge ")) mounted = 1;
    printf("%lu %ld.%09ld count %d judge %d %d\n", (unsigned long)st.st_ino,
           (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, count + 1, entries, mounted);
    return 0;
}
"#;
    let checker = r#"
import os, sys
problems = []
if os.getcwd() != '/judge' or os.environ.get('HOME') != '/judge':
    problems.append('cwd %s home %s' % (os.getcwd(), os.environ.get('HOME')))
if os.listdir('/work'):
    problems.append('/work holds %r' % os.listdir('/work'))
with open('/proc/self/mountinfo') as f:
    points = [line.split()[4] for line in f]
if '/work' in points or '/judge' not in points:
    problems.append('mount points %r' % points)
if sorted(os.listdir('.')) != ['answer', 'input', 'main.py', 'output']:
    problems.append('/judge holds %r' % sorted(os.listdir('.')))
for name in ['planted', 'input', 'main.py']:
    try:
        open(name, 'a').close()
        problems.append('wrote ' + name)
    except OSError:
        pass
sys.stderr.write(repr(problems) if problems else 'fine')
sys.exit(3 if problems else 0)
"#;
    let tests = (0..5)
        .map(|n| suite::judge::test(&n.to_string(), ""))
        .collect();
    let (judged, _) = suite::judge::judge(
        sandbox().as_ref(),
        suite::program("c", solution),
        Some(suite::judge::checker("python", checker)),
        tests,
    )
    .await;
    assert!(
        judged.compile.as_ref().is_some_and(|c| c.succeeded()),
        "{judged:?}"
    );
    assert_eq!(judged.tests.len(), 5);
    let mut binaries = std::collections::BTreeSet::new();
    for (n, outcome) in judged.tests.iter().enumerate() {
        let out = String::from_utf8_lossy(&outcome.run.stdout).into_owned();
        let (binary, rest) = out
            .rsplit_once(" count ")
            .unwrap_or_else(|| panic!("{outcome:?}"));
        binaries.insert(binary.to_owned());
        assert_eq!(
            rest,
            format!("{} judge 0 0\n", n + 1),
            "test {n}: {outcome:?}"
        );
        let check = outcome.checker.as_ref().expect("checked");
        assert_eq!(
            String::from_utf8_lossy(&check.stderr),
            "fine",
            "test {n}: {check:?}"
        );
        assert_eq!(check.exit_code, Some(0));
    }
    assert_eq!(
        binaries.len(),
        1,
        "the binary changed between tests: {binaries:?}"
    );
}

/// See `suite::attacks::the_init_and_its_keeper_are_out_of_reach`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_and_its_keeper_are_out_of_reach() {
    run(
        "the_init_and_its_keeper_are_out_of_reach",
        suite::attacks::the_init_and_its_keeper_are_out_of_reach,
    )
    .await;
}

/// A job's first step on a reused slot finds its init waiting, cloned when
/// the last job was cleared (with its namespaces and mounts made and the
/// seccomp filter installed), and the process limit still counts that init
/// once: the program forks exactly as many processes as on a fresh slot, and
/// runs under the filter, as on a fresh slot. Kernel readings: how long
/// before the program its PID 1 was started (`/proc/*/stat`), where `fork`
/// failed (`EAGAIN` from the pids controller), the program's seccomp mode
/// and filter count (`/proc/self/status`), and a call only the filter
/// refuses (`sched_setattr` with the attributes the program already has,
/// which the kernel grants any process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_init_is_used_and_counted_once() {
    let config = NativeConfig {
        keeper: KeeperCommand {
            program: env!("CARGO_BIN_EXE_code-runner-keeper").into(),
            args: Vec::new(),
        },
        cgroup_path: std::env::var_os("CODE_RUNNER_CGROUP_PATH").map(Into::into),
        slots: 1,
        ..NativeConfig::default()
    };
    let sandbox = NativeSandbox::new(config).expect("native sandbox usable");
    let src = r#"
import os, time
def started(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])
ahead = started("self") - started(1)
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
seccomp = status["Seccomp"].strip() + "/" + status["Seccomp_filters"].strip()
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
attr = ctypes.create_string_buffer(56)
ctypes.memmove(attr, (56).to_bytes(4, "little"), 4)
rc = libc.syscall(314, 0, attr, 0)
setattr_errno = 0 if rc == 0 else ctypes.get_errno()
forked = 0
try:
    for _ in range(64):
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        forked += 1
except OSError:
    pass
print(forked, ahead, seccomp, setattr_errno, flush=True)
os._exit(0)
"#;
    let own_status = std::fs::read_to_string("/proc/self/status").expect("own status");
    let own_filters: u32 = own_status
        .lines()
        .find_map(|line| line.strip_prefix("Seccomp_filters:"))
        .map_or(0, |count| count.trim().parse().expect("a count"));
    let mut runs = Vec::new();
    for _ in 0..3 {
        let mut p = suite::program("python", src);
        p.run_limits.processes = 8;
        let execution = suite::run(&sandbox, p).await;
        let out = suite::stdout(&execution);
        let fields: Vec<&str> = out.split_whitespace().collect();
        let number = |i: usize| -> u64 {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .unwrap_or_else(|| panic!("{execution:?}"))
        };
        // Filter mode 2, ours on top of those this test runs under (a
        // container's profile, in CI's native container); `sched_setattr`
        // refused with EPERM.
        let filters = format!("2/{}", own_filters + 1);
        assert_eq!(
            fields.get(2..4),
            Some(&[filters.as_str(), "1"][..]),
            "{execution:?}"
        );
        runs.push((number(0), number(1)));
        // The slot waits for its next job meanwhile.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // The program is one of its 8 processes, on every run.
    assert!(runs.iter().all(|&(forked, _)| forked == 7), "{runs:?}");
    // Fresh slot: its init was cloned as the step started. Then the init
    // waited for the step since the last job's end: 300 ms, 30 ticks.
    assert!(runs[0].1 < 10, "{runs:?}");
    assert!(runs[1..].iter().all(|&(_, ahead)| ahead >= 20), "{runs:?}");
}
