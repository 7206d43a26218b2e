//! The sandbox conformance suite, written once and run against every backend
//! (`tests/native.rs`, and the docker backend's test file): real programs in
//! the five languages, checked for output, status and limits.

pub mod attacks;
pub mod interactive;
pub mod judge;

pub use judge::{
    judge_checker_cannot_see_the_submission, judge_checker_failures_are_reported,
    judge_compile_errors_end_the_job, judge_compiles_once_and_runs_many_tests,
    judge_custom_checkers_in_cpp_and_python, judge_goes_on_after_a_test_that_breaks_its_slot,
    judge_limits_are_per_test, judge_observer_stops_the_job,
    judge_submission_cannot_reach_the_checker,
};

/// Every test of the suite, the interactive ones and the attacks (in
/// modules `interactive` and `attacks`), each a `#[tokio::test]` that calls
/// `$run(name, suite_function).await`: `$run` gives the suite function its
/// sandbox (`async fn run<F, Fut>(name: &str, test: F) where F:
/// FnOnce(Arc<dyn Sandbox>) -> Fut, Fut: Future<Output = ()>`).
macro_rules! every_backend_test {
    ($run:ident) => {
        every_backend_test!(@ ($) $run);
    };
    // `$d` is a `$` for the inner macros' own variables.
    (@ ($d:tt) $run:ident) => {
        macro_rules! suite_tests {
            ($d($d name:ident),* $d(,)?) => {$d(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $d name() {
                    $run(stringify!($d name), suite::$d name).await;
                }
            )*};
        }
        every_suite_test!(suite_tests);

        mod interactive {
            use super::*;
            macro_rules! interactive_tests {
                ($d($d name:ident),* $d(,)?) => {$d(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $d name() {
                        $run(stringify!($d name), suite::interactive::$d name).await;
                    }
                )*};
            }
            every_interactive_test!(interactive_tests);
        }

        mod attacks {
            use super::*;
            macro_rules! attack_tests {
                ($d($d name:ident),* $d(,)?) => {$d(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $d name() {
                        $run(stringify!($d name), suite::attacks::$d name).await;
                    }
                )*};
            }
            every_attack_test!(attack_tests);
        }
    };
}

/// Expands `$runner!(...)` over every suite function: the one list each
/// backend's test file runs, so no backend can skip a test by omission.
macro_rules! every_suite_test {
    ($runner:ident) => {
        $runner!(
            hello_in_every_language,
            failing_program_in_every_language,
            exact_bytes_and_unicode,
            compile_error_is_reported,
            wall_time_limit_kills_the_tree,
            cpu_time_limit,
            cpu_time_limit_counts_the_whole_tree,
            a_job_gets_at_most_its_cpu_share,
            memory_limit_kills,
            java_and_node_work_under_the_memory_limit,
            output_is_capped,
            process_limit_holds,
            stdin_reaches_the_program,
            args_and_extra_files_reach_the_program,
            isolation_basics,
            a_program_starts_with_default_signals,
            concurrent_jobs_run_in_parallel,
            judge_compiles_once_and_runs_many_tests,
            judge_limits_are_per_test,
            judge_observer_stops_the_job,
            judge_compile_errors_end_the_job,
            judge_custom_checkers_in_cpp_and_python,
            judge_checker_failures_are_reported,
            judge_submission_cannot_reach_the_checker,
            judge_checker_cannot_see_the_submission,
            judge_goes_on_after_a_test_that_breaks_its_slot,
        );
    };
}

/// Expands `$runner!(...)` over every attack in `attacks`.
/// Expands `$runner!(...)` over the interactive judge tests (both backends
/// run them; a backend without `execute_interactive` would not).
macro_rules! every_interactive_test {
    ($runner:ident) => {
        $runner!(
            interactive_guessing_game_in_python_and_cpp,
            interactive_submission_cannot_see_the_interactor,
            interactive_deadlock_ends_at_the_wall_limit,
            interactive_program_closing_its_output_early,
            interactive_flooding_interactor_ends,
            interactive_limits_are_each_sides_own,
            interactive_writes_after_the_other_side_ended_never_fail,
            interactive_a_message_ending_in_nul_is_passed_on,
        );
    };
}

macro_rules! every_attack_test {
    ($runner:ident) => {
        $runner!(
            host_secrets_are_out_of_reach,
            dangerous_system_calls_are_refused,
            writes_outside_scratch_fail,
            network_is_unreachable,
            planted_links_and_special_files_are_never_followed,
            fork_bombs_are_contained,
            memory_bomb_over_many_processes_is_one_budget,
            disk_and_inode_fills_stop_at_their_limits,
            output_floods_and_silent_programs_end_with_a_reason,
            nothing_outlives_a_job_or_leaks_to_the_next,
            no_socket_ipc_object_or_memory_reaches_the_next_job,
            concurrent_jobs_see_nothing_of_each_other,
            compiler_cannot_read_host_files,
        );
    };
}

use std::sync::Arc;
use std::time::Duration;

use code_runner_sandbox::{Execution, Program, Sandbox, StepReport, Termination};

pub fn program(language: &str, source: &str) -> Program {
    let table = crate::language_table();
    Program::new(table.get(language).expect("known language").clone(), source)
}

pub async fn run(sandbox: &dyn Sandbox, program: Program) -> Execution {
    sandbox.execute(program).await.expect("sandbox works")
}

pub fn ran(execution: &Execution) -> &StepReport {
    execution
        .run
        .as_ref()
        .unwrap_or_else(|| panic!("no run step: {execution:?}"))
}

pub fn stdout(execution: &Execution) -> String {
    String::from_utf8_lossy(&ran(execution).stdout).into_owned()
}

pub const HELLO: [(&str, &str); 5] = [
    ("python", "print('hello')\n"),
    ("javascript", "console.log('hello')\n"),
    ("java", "public class Main { public static void main(String[] a) { System.out.println(\"hello\"); } }\n"),
    ("cpp", "#include <iostream>\nint main() { std::cout << \"hello\" << std::endl; }\n"),
    ("c", "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n"),
];

pub const FAILING: [(&str, &str); 5] = [
    ("python", "import sys\nprint('oops', file=sys.stderr)\nsys.exit(3)\n"),
    ("javascript", "console.error('oops'); process.exit(3)\n"),
    ("java", "public class Main { public static void main(String[] a) { System.err.println(\"oops\"); System.exit(3); } }\n"),
    ("cpp", "#include <iostream>\nint main() { std::cerr << \"oops\\n\"; return 3; }\n"),
    ("c", "#include <stdio.h>\nint main(void) { fputs(\"oops\\n\", stderr); return 3; }\n"),
];

pub async fn hello_in_every_language(sandbox: Arc<dyn Sandbox>) {
    let runs = HELLO.iter().map(|(lang, src)| {
        let sandbox = sandbox.clone();
        async move { (lang, run(sandbox.as_ref(), program(lang, src)).await) }
    });
    for (lang, execution) in futures_join_all(runs).await {
        let report = ran(&execution);
        assert!(report.succeeded(), "{lang}: {execution:?}");
        assert_eq!(stdout(&execution), "hello\n", "{lang}");
    }
}

pub async fn failing_program_in_every_language(sandbox: Arc<dyn Sandbox>) {
    for (lang, src) in FAILING {
        let execution = run(sandbox.as_ref(), program(lang, src)).await;
        let report = ran(&execution);
        assert_eq!(report.termination, Termination::Exited, "{lang}");
        assert_eq!(report.exit_code, Some(3), "{lang}: {execution:?}");
        assert_eq!(String::from_utf8_lossy(&report.stderr), "oops\n", "{lang}");
    }
}

pub async fn exact_bytes_and_unicode(sandbox: Arc<dyn Sandbox>) {
    let execution = run(
        sandbox.as_ref(),
        program("python", "import sys\nsys.stdout.write('héllo, 世界 🌍')"),
    )
    .await;
    assert_eq!(stdout(&execution), "héllo, 世界 🌍");
    let execution = run(
        sandbox.as_ref(),
        program(
            "c",
            "#include <stdio.h>\nint main(void){fputs(\"a\\n\\n\", stdout);}",
        ),
    )
    .await;
    assert_eq!(ran(&execution).stdout, b"a\n\n");
}

pub async fn compile_error_is_reported(sandbox: Arc<dyn Sandbox>) {
    for (lang, src) in [
        ("c", "int main( { return 0; }"),
        ("java", "public class Main { void f( }"),
    ] {
        let execution = run(sandbox.as_ref(), program(lang, src)).await;
        assert!(execution.run.is_none(), "{lang}: ran after a compile error");
        let compile = execution.compile.expect("compile step");
        assert!(!compile.succeeded());
        assert!(
            compile.stderr.len() + compile.stdout.len() > 0,
            "{lang}: no diagnostics"
        );
    }
}

pub async fn wall_time_limit_kills_the_tree(sandbox: Arc<dyn Sandbox>) {
    let mut p = program(
        "python",
        "import os, time\nif os.fork() == 0:\n    time.sleep(100)\ntime.sleep(100)\n",
    );
    p.run_limits.wall_time = Duration::from_millis(700);
    let execution = run(sandbox.as_ref(), p).await;
    let report = ran(&execution);
    assert_eq!(report.termination, Termination::TimeLimit);
    assert!(
        report.wall_time < Duration::from_millis(1700),
        "{:?}",
        report.wall_time
    );
}

/// A busy loop under a 1 s CPU limit and a 30 s wall limit ends at the CPU
/// limit: the wall clock (which would also say `TimeLimit`) is far away.
pub async fn cpu_time_limit(sandbox: Arc<dyn Sandbox>) {
    let mut p = program(
        "c",
        "int main(void){ volatile unsigned long x = 0; for(;;) x++; }",
    );
    p.run_limits.cpu_time = Duration::from_secs(1);
    // On two loaded cores (CI runs four tests at once) 1 s of CPU can take
    // several seconds of wall time: the wall limit is far, and the bound
    // below it still tells the CPU limit from the wall clock.
    p.run_limits.wall_time = Duration::from_secs(30);
    let execution = run(sandbox.as_ref(), p).await;
    let report = ran(&execution);
    assert_eq!(report.termination, Termination::TimeLimit, "{execution:?}");
    assert!(
        report.wall_time < Duration::from_secs(25),
        "ended by the wall clock, not the CPU limit: {execution:?}"
    );
    assert!(
        report.cpu_time >= Duration::from_millis(500),
        "{execution:?}"
    );
}

/// Eight processes that each stay under the CPU limit but together use
/// 6.4 s of CPU end as `TimeLimit`, long before the wall clock: the limit is
/// the whole tree's (the cgroup's count), not each process's `RLIMIT_CPU`.
pub async fn cpu_time_limit_counts_the_whole_tree(sandbox: Arc<dyn Sandbox>) {
    let source = r#"
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
int main(void) {
    for (int i = 0; i < 8; i++) {
        if (fork() == 0) {
            volatile unsigned long x = 0;
            while (cpu() < 0.8) x++;
            _exit(0);
        }
    }
    int status;
    while (wait(&status) > 0) {}
    puts("all done");
    return 0;
}
"#;
    let mut p = program("c", source);
    p.run_limits.cpu_time = Duration::from_secs(1);
    p.run_limits.wall_time = Duration::from_secs(30);
    let execution = run(sandbox.as_ref(), p).await;
    let report = ran(&execution);
    assert_eq!(report.termination, Termination::TimeLimit, "{execution:?}");
    assert!(!stdout(&execution).contains("all done"), "{execution:?}");
    assert!(
        report.wall_time < Duration::from_secs(25),
        "ended by the wall clock: {execution:?}"
    );
}

/// Four threads spinning for 1.5 s of wall time get one core's worth of CPU
/// time (the per-job CPU quota), not every core of the machine: measured by
/// the kernel (the cgroup's CPU time), not by the program.
pub async fn a_job_gets_at_most_its_cpu_share(sandbox: Arc<dyn Sandbox>) {
    let source = r#"
#include <pthread.h>
#include <stdio.h>
#include <time.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
static double start;
static void *spin(void *arg) {
    volatile unsigned long x = 0;
    while (now() - start < 1.5) x++;
    return arg;
}
int main(void) {
    pthread_t threads[4];
    start = now();
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], 0, spin, 0);
    for (int i = 0; i < 4; i++) pthread_join(threads[i], 0);
    puts("done");
    return 0;
}
"#;
    let mut p = program("c", source);
    p.run_limits.cpu_time = Duration::from_secs(20);
    let execution = run(sandbox.as_ref(), p).await;
    let report = ran(&execution);
    assert!(report.succeeded(), "{execution:?}");
    assert!(
        report.wall_time >= Duration::from_millis(1400),
        "{execution:?}"
    );
    let share = report.cpu_time.as_secs_f64() / report.wall_time.as_secs_f64();
    assert!(
        share <= 1.3,
        "4 spinning threads used {share:.2} cores (cpu {:?} over wall {:?})",
        report.cpu_time,
        report.wall_time
    );
}

pub async fn memory_limit_kills(sandbox: Arc<dyn Sandbox>) {
    let mut p = program(
        "python",
        "x = bytearray(512 * 1024 * 1024)\nprint('allocated')\n",
    );
    p.run_limits.memory_bytes = 128 * 1024 * 1024;
    let execution = run(sandbox.as_ref(), p).await;
    let report = ran(&execution);
    assert_eq!(
        report.termination,
        Termination::MemoryLimit,
        "{execution:?}"
    );
    assert!(!stdout(&execution).contains("allocated"));
}

/// A JVM and Node that fill their memory are ended by the kernel's memory
/// cgroup (their heaps may grow to the whole limit, so the cgroup is what
/// stops them), and that alone makes the memory verdict: a program that
/// merely prints the runtimes' out-of-memory messages is not `MemoryLimit`.
pub async fn java_and_node_work_under_the_memory_limit(sandbox: Arc<dyn Sandbox>) {
    let java = "public class Main { public static void main(String[] a) { byte[][] keep = new byte[1000][]; \
                for (int i = 0; i < 1000; i++) keep[i] = new byte[1024 * 1024]; System.out.println(keep.length); } }";
    let execution = run(sandbox.as_ref(), program("java", java)).await;
    assert_eq!(
        ran(&execution).termination,
        Termination::MemoryLimit,
        "{execution:?}"
    );
    let node = "const a = []; for (;;) a.push(new Array(1e6).fill(1));";
    let execution = run(sandbox.as_ref(), program("javascript", node)).await;
    assert_eq!(
        ran(&execution).termination,
        Termination::MemoryLimit,
        "{execution:?}"
    );
    let fakers = [
        ("java", "public class Main { public static void main(String[] a) { \
                  System.err.println(\"Exception in thread \\\"main\\\" java.lang.OutOfMemoryError: Java heap space\"); System.exit(1); } }"),
        ("javascript", "console.error('FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory'); process.exit(134)"),
        ("python", "import sys\nprint('MemoryError', file=sys.stderr)\nsys.exit(1)"),
    ];
    for (language, source) in fakers {
        let execution = run(sandbox.as_ref(), program(language, source)).await;
        let report = ran(&execution);
        assert_eq!(
            report.termination,
            Termination::Exited,
            "{language}: {execution:?}"
        );
        assert!(
            report.exit_code.is_some_and(|code| code != 0),
            "{language}: {execution:?}"
        );
    }
}

pub async fn output_is_capped(sandbox: Arc<dyn Sandbox>) {
    let mut p = program("python", "while True:\n    print('x' * 1000)\n");
    p.run_limits.output_bytes = 64 * 1024;
    let execution = run(sandbox.as_ref(), p).await;
    let report = ran(&execution);
    assert_eq!(report.termination, Termination::OutputLimit);
    assert!(report.output_truncated);
    assert_eq!(report.stdout.len() + report.stderr.len(), 64 * 1024);
}

pub async fn process_limit_holds(sandbox: Arc<dyn Sandbox>) {
    let src = "import os\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n            import time; time.sleep(5); os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n, flush=True)\nos._exit(0)\n";
    let mut p = program("python", src);
    p.run_limits.processes = 16;
    let execution = run(sandbox.as_ref(), p).await;
    let forked: u32 = stdout(&execution)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{execution:?}"));
    assert!(forked < 16, "forked {forked}");
}

pub async fn stdin_reaches_the_program(sandbox: Arc<dyn Sandbox>) {
    let mut p = program(
        "python",
        "import sys\nprint(sys.stdin.read().upper(), end='')",
    );
    p.stdin = b"abc\ndef".to_vec();
    let execution = run(sandbox.as_ref(), p).await;
    assert_eq!(stdout(&execution), "ABC\nDEF");
}

pub async fn isolation_basics(sandbox: Arc<dyn Sandbox>) {
    let src = r#"
import os, socket
checks = {}
checks['uid'] = os.getuid() != 0
checks['env'] = 'HOME' in os.environ and not any(k.startswith('CODE_RUNNER') or k == 'SECRET' for k in os.environ)
checks['shadow'] = not os.path.exists('/etc/shadow')
checks['root_home'] = not os.path.exists('/root')
try:
    open('/usr/evil', 'w'); checks['ro_usr'] = False
except OSError:
    checks['ro_usr'] = True
try:
    socket.create_connection(('1.1.1.1', 80), timeout=1); checks['net'] = False
except OSError:
    checks['net'] = True
checks['pid1'] = len([p for p in os.listdir('/proc') if p.isdigit()]) < 5
print(sorted(k for k, v in checks.items() if not v))
"#;
    let execution = run(sandbox.as_ref(), program("python", src)).await;
    assert_eq!(stdout(&execution), "[]\n", "{execution:?}");
}

/// A program starts as it would from a shell: no signal ignored, blocked or
/// caught (the keeper's runtime ignores SIGPIPE and catches SIGSEGV and
/// SIGBUS; an ignored signal stays ignored across `exec`). The kernel's
/// own account, read by a C program, which changes none of them.
pub async fn a_program_starts_with_default_signals(sandbox: Arc<dyn Sandbox>) {
    let src = r#"
#include <stdio.h>
#include <string.h>
int main(void) {
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    while (status && fgets(line, sizeof line, status)) {
        if (!strncmp(line, "SigBlk:", 7) || !strncmp(line, "SigIgn:", 7) || !strncmp(line, "SigCgt:", 7)) {
            fputs(line, stdout);
        }
    }
    return 0;
}
"#;
    let execution = run(sandbox.as_ref(), program("c", src)).await;
    assert_eq!(
        stdout(&execution),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\n",
        "{execution:?}"
    );
}

pub async fn concurrent_jobs_run_in_parallel(sandbox: Arc<dyn Sandbox>) {
    let started = std::time::Instant::now();
    let runs = (0..10).map(|_| {
        let sandbox = sandbox.clone();
        async move {
            run(
                sandbox.as_ref(),
                program("python", "import time\ntime.sleep(1)\nprint('done')"),
            )
            .await
        }
    });
    for execution in futures_join_all(runs).await {
        assert_eq!(stdout(&execution), "done\n");
    }
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

/// Joins futures concurrently on the current runtime (spawned tasks, so they
/// really overlap).
pub async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

pub async fn args_and_extra_files_reach_the_program(sandbox: Arc<dyn Sandbox>) {
    let mut p = program(
        "python",
        "import sys, helper\nprint(helper.greet(sys.argv[1:]))\n",
    );
    p.args = vec!["a b".into(), "--x".into(), String::new()];
    p.files = vec![(
        "helper.py".into(),
        "def greet(args):\n    return repr(args)\n".into(),
    )];
    let execution = run(sandbox.as_ref(), p).await;
    assert_eq!(stdout(&execution), "['a b', '--x', '']\n", "{execution:?}");

    let mut p = program(
        "c",
        "#include <stdio.h>\n#include \"answer.h\"\nint main(int c, char **v) { printf(\"%d %s\\n\", ANSWER, v[1]); }\n",
    );
    p.args = vec!["arg".into()];
    p.files = vec![("answer.h".into(), "#define ANSWER 42\n".into())];
    let execution = run(sandbox.as_ref(), p).await;
    assert_eq!(stdout(&execution), "42 arg\n", "{execution:?}");

    let mut p = program("python", "print(1)");
    p.files = vec![("../escape.py".into(), String::new())];
    assert!(sandbox.execute(p).await.is_err(), "a path as a file name");
}
