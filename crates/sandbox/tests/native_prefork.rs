//! The sandbox suite against the native backend with python's prefork on
//! (`prefork = true`: each python run forked from the slot's pristine
//! interpreter, see `keeper::prefork`), attacks included, unchanged; then
//! what only prefork has to show: a forked program is a fresh interpreter
//! to the job, and nothing of one job reaches the zygote or the next job.
//! Needs root, `bwrap` and cgroups: a missing part fails the suite.

#[macro_use]
mod suite;
mod native_common;

use native_common::{run, sandbox};

use code_runner_sandbox::{KeeperCommand, LanguageTable, NativeConfig, NativeSandbox};

/// The built-in table with `prefork = true` for python.
fn language_table() -> LanguageTable {
    let python = "run = [\"/usr/bin/python3\", \"main.py\"]\n";
    let table = code_runner_sandbox::DEFAULT_TABLE;
    assert!(table.contains(python), "python's run line moved");
    LanguageTable::parse(&table.replace(python, &format!("{python}prefork = true\n")))
        .expect("the table with prefork is valid")
}

every_backend_test!(run);

/// A program that prints what a script sees of its interpreter, then ends
/// the way `ending` says.
fn introspection(ending: &str) -> String {
    format!(
        r#"import sys, os, io
print(sys.argv, sys.orig_argv, sys.path[0], __file__, __name__, __package__, __spec__, __cached__)
print(type(__loader__).__name__, __loader__.name, __loader__.path)
print(sorted(os.environ.items()), os.getcwd(), os.getuid(), os.getgid())
for s in (sys.stdin, sys.stdout, sys.stderr):
    print(s.name, s.mode, s.encoding, s.errors, s.line_buffering, s.write_through, s.seekable(), s.buffer.raw.name)
print(sys.__stdout__ is sys.stdout, sys.flags, sys.executable)
import signal
print([signal.getsignal(s) for s in (signal.SIGINT, signal.SIGPIPE, signal.SIGTERM, signal.SIGCHLD, signal.SIGXFSZ)])
print(signal.pthread_sigmask(signal.SIG_BLOCK, []))
import resource
print([resource.getrlimit(r) for r in (resource.RLIMIT_CPU, resource.RLIMIT_FSIZE, resource.RLIMIT_NOFILE, resource.RLIMIT_CORE)])
print(sorted(os.listdir('/proc/self/fd')))
status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())
print([status[k].strip() for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp')])
print(open('/proc/self/oom_score_adj').read().strip(), os.getpgrp() == os.getpid(), os.getsid(0) == os.getpid())
print(sys.stdin.read())
def gone():
    print('atexit ran', flush=True)
import atexit
atexit.register(gone)
{ending}
"#
    )
}

/// Everything a script can see of its interpreter is what a fresh one
/// shows, but for the parent's pid (the zygote's minder is outside the
/// step: 0, where an exec'd program's init is 1): the same argv, paths,
/// streams, signals, limits, descriptors, capabilities and seccomp state,
/// and the same ends — an exception's traceback names only the script,
/// `sys.exit` with a message, an atexit hook, a syntax error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_program_sees_what_a_fresh_interpreter_shows() {
    let fresh = LanguageTable::builtin().get("python").unwrap().clone();
    let forked = language_table().get("python").unwrap().clone();
    assert!(forked.prefork && !fresh.prefork);
    let endings = [
        "print('end')",
        "raise ValueError('no')",
        "def f():\n    1/0\nf()",
        "sys.exit('a message')",
        "sys.exit(3)",
        "os._exit(5)",
        "print(",
        "import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.2), print('thread'))).start()",
        "raise KeyboardInterrupt",
        "class D:\n    def __del__(self):\n        print('finalized')\nd = D()",
        "f = open('/work/unclosed', 'w')\nf.write('kept')\nimport atexit\natexit.register(lambda: print(open('/work/unclosed').read() == ''))",
        "sys.stdout.write('no newline')",
        "print('to stderr', file=sys.stderr)\nsys.exit(None)",
    ];
    for ending in endings {
        let source = introspection(ending);
        let mut results = Vec::new();
        for language in [&fresh, &forked] {
            let mut program = suite::program("python", &source);
            program.language = language.clone();
            program.stdin = b"some input\n".to_vec();
            program.args = vec!["an arg".into(), "two".into()];
            let execution = suite::run(sandbox().as_ref(), program).await;
            let report = suite::ran(&execution).clone();
            let stdout = String::from_utf8_lossy(&report.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&report.stderr).into_owned();
            results.push((report.exit_code, report.signal, stdout, stderr));
        }
        assert_eq!(
            results[0], results[1],
            "ending {ending:?}: fresh, then forked"
        );
        // (os._exit drops what the block-buffered stdout held, and a
        // syntax error prints nothing, in both.)
        if !ending.starts_with("os._exit") && ending != "print(" && !ending.contains("Interrupt") {
            assert!(results[1].2.contains("some input"), "{:?}", results[1]);
        }
    }
}

/// What a job changes in its interpreter (a module's attribute, a builtin,
/// the random generator's seed, a cached import, `sys.path`) never reaches
/// the next job of the slot, which forks from the same zygote; and two
/// forks draw different random numbers (each is re-seeded from the kernel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_a_job_reaches_the_zygote_or_the_next_job() {
    let spoil = r#"import math, random, sys, builtins, collections
math.pi = 3
builtins.print_was = 'spoilt'
random.seed(1)
sys.path.insert(0, '/tmp/evil')
sys.modules['collections'].spoilt = True
import decimal
print(random.random())
"#;
    let check = r#"import math, random, sys, builtins, collections
print(math.pi == 3, hasattr(builtins, 'print_was'), '/tmp/evil' in sys.path,
      hasattr(collections, 'spoilt'), 'decimal' in sys.modules, random.random())
"#;
    // One slot, so every job forks from the same zygote.
    let config = NativeConfig {
        keeper: KeeperCommand {
            program: env!("CARGO_BIN_EXE_code-runner-keeper").into(),
            args: Vec::new(),
        },
        slots: 1,
        ..NativeConfig::default()
    };
    let sandbox = NativeSandbox::new(config).expect("native sandbox");
    let python = language_table().get("python").unwrap().clone();
    let run = |source: &str| {
        let mut program = suite::program("python", source);
        program.language = python.clone();
        program
    };
    let spoilt = suite::run(&sandbox, run(spoil)).await;
    let seeded = suite::stdout(&spoilt);
    let mut draws = std::collections::HashSet::new();
    for _ in 0..3 {
        let execution = suite::run(&sandbox, run(check)).await;
        let out = suite::stdout(&execution);
        let (flags, draw) = out.trim().rsplit_once(' ').expect("two parts");
        assert_eq!(flags, "False False False False False", "{out}");
        assert_ne!(draw, seeded.trim(), "the seed of an earlier job");
        draws.insert(draw.to_owned());
    }
    assert_eq!(
        draws.len(),
        3,
        "every fork draws its own numbers: {draws:?}"
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
