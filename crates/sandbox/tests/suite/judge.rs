//! Judge mode (`Sandbox::execute_tests`): one submission on many tests, each
//! a fresh step under its own limits, and custom checkers the submission
//! cannot reach. Real programs in the real sandbox; every backend runs these
//! (the docker backend through its own judge path: one compile, then a
//! fresh container per test).

use std::sync::Arc;
use std::time::Duration;

use code_runner_sandbox::{
    CheckerProgram, Judged, Limits, Program, Sandbox, StepReport, Termination, TestOutcome, TestRun,
};

use super::program;

/// A test with the default run limits.
pub fn test(stdin: &str, answer: &str) -> TestRun {
    TestRun {
        stdin: stdin.as_bytes().to_vec(),
        args: Vec::new(),
        limits: Limits::RUN_DEFAULT,
        answer: answer.as_bytes().to_vec(),
    }
}

pub fn checker(language: &str, source: &str) -> CheckerProgram {
    let mut run_limits = Limits::RUN_DEFAULT;
    run_limits.wall_time = Duration::from_secs(5);
    run_limits.cpu_time = Duration::from_secs(5);
    CheckerProgram {
        language: crate::language_table()
            .get(language)
            .expect("known language")
            .clone(),
        source: source.to_owned(),
        files: Vec::new(),
        compile_limits: Limits::COMPILE_DEFAULT,
        run_limits,
    }
}

/// Runs a judged job with an observer that records the indices it saw and
/// checks each outcome it is told is the one the job returns.
pub async fn judge(
    sandbox: &dyn Sandbox,
    program: Program,
    checker: Option<CheckerProgram>,
    tests: Vec<TestRun>,
) -> (Judged, Vec<usize>) {
    judge_until(sandbox, program, checker, tests, usize::MAX).await
}

/// `judge`, with an observer that stops the job after the test `stop_after`.
pub async fn judge_until(
    sandbox: &dyn Sandbox,
    program: Program,
    checker: Option<CheckerProgram>,
    tests: Vec<TestRun>,
    stop_after: usize,
) -> (Judged, Vec<usize>) {
    let mut seen: Vec<(usize, TestOutcome)> = Vec::new();
    let mut observer = |index: usize, outcome: &TestOutcome| {
        seen.push((index, outcome.clone()));
        index != stop_after
    };
    let judged = sandbox
        .execute_tests(program, checker, tests, &mut observer)
        .await
        .expect("sandbox works");
    assert_eq!(
        seen.iter().map(|(_, o)| o).collect::<Vec<_>>(),
        judged.tests.iter().collect::<Vec<_>>(),
        "the observer was told what the job returned"
    );
    (judged, seen.into_iter().map(|(i, _)| i).collect())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn checked(outcome: &TestOutcome) -> &StepReport {
    outcome
        .checker
        .as_ref()
        .unwrap_or_else(|| panic!("no checker step: {outcome:?}"))
}

/// A C program compiled once and run on 50 tests: each test's output is its
/// own, each test has a fresh `/tmp` (a file one test leaves there is gone
/// in the next), and the compiled binary is in `/work` for every test.
pub async fn judge_compiles_once_and_runs_many_tests(sandbox: Arc<dyn Sandbox>) {
    let source = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) {
    long n;
    if (scanf("%ld", &n) != 1) return 2;
    if (access("/tmp/mark", F_OK) == 0) puts("stale /tmp");
    FILE *mark = fopen("/tmp/mark", "w");
    if (!mark) puts("cannot write /tmp");
    else fclose(mark);
    if (access("/work/main", X_OK) != 0) puts("no binary in /work");
    printf("%ld\n", 2 * n);
    return 0;
}
"#;
    let tests = (0..50)
        .map(|n| test(&format!("{n}\n"), &format!("{}\n", 2 * n)))
        .collect();
    let (judged, seen) = judge(sandbox.as_ref(), program("c", source), None, tests).await;
    let compile = judged.compile.as_ref().expect("one compile step");
    assert!(compile.succeeded(), "{compile:?}");
    assert!(judged.checker_compile.is_none());
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
    assert_eq!(judged.tests.len(), 50);
    for (n, outcome) in judged.tests.iter().enumerate() {
        assert!(outcome.run.succeeded(), "test {n}: {outcome:?}");
        assert_eq!(
            text(&outcome.run.stdout),
            format!("{}\n", 2 * n),
            "test {n}"
        );
        assert!(outcome.checker.is_none());
    }
}

/// Each test has its own limits: the one over its CPU time is `TimeLimit`,
/// the one over its memory `MemoryLimit`, the one over its output cap
/// `OutputLimit`, with its arguments its own; the tests around them are
/// untouched.
pub async fn judge_limits_are_per_test(sandbox: Arc<dyn Sandbox>) {
    let source = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    int n;
    if (scanf("%d", &n) != 1) return 2;
    if (n == 2) { volatile unsigned long x = 0; for (;;) x++; }
    if (n == 4) {
        for (int i = 0; i < 512; i++) { char *b = malloc(1 << 20); if (!b) return 9; memset(b, 1, 1 << 20); }
    }
    if (n == 6) { for (int i = 0; i < 100000; i++) puts("flood"); }
    printf("%d %s\n", n, argc > 1 ? argv[1] : "-");
    return 0;
}
"#;
    let mut tests: Vec<TestRun> = (1..=7).map(|n| test(&format!("{n}\n"), "")).collect();
    tests[1].limits.cpu_time = Duration::from_millis(500);
    // A wall clock far above the CPU limit: on two loaded cores the spinner
    // may get a tenth of a core, and must still end by its CPU limit.
    tests[1].limits.wall_time = Duration::from_secs(10);
    tests[3].limits.memory_bytes = 64 << 20;
    tests[5].limits.output_bytes = 1000;
    tests[6].args = vec!["seven".into()];
    let (judged, _) = judge(sandbox.as_ref(), program("c", source), None, tests).await;
    let ends: Vec<Termination> = judged.tests.iter().map(|t| t.run.termination).collect();
    assert_eq!(
        ends,
        [
            Termination::Exited,
            Termination::TimeLimit,
            Termination::Exited,
            Termination::MemoryLimit,
            Termination::Exited,
            Termination::OutputLimit,
            Termination::Exited,
        ],
        "{judged:?}"
    );
    let timed_out = &judged.tests[1].run;
    assert!(
        timed_out.wall_time < Duration::from_secs(8),
        "ended by the wall clock, not its CPU limit: {timed_out:?}"
    );
    for (n, expected) in [(0, "1 -\n"), (2, "3 -\n"), (4, "5 -\n"), (6, "7 seven\n")] {
        let run = &judged.tests[n].run;
        assert!(run.succeeded(), "test {n}: {run:?}");
        assert_eq!(text(&run.stdout), expected, "test {n}");
    }
    assert_eq!(judged.tests[5].run.stdout.len(), 1000);
}

/// The observer's `false` ends the job: no later test runs.
pub async fn judge_observer_stops_the_job(sandbox: Arc<dyn Sandbox>) {
    let source = "import sys\nprint(int(sys.stdin.read()) + 1)\n";
    let tests = (0..10).map(|n| test(&format!("{n}"), "")).collect();
    let (judged, seen) =
        judge_until(sandbox.as_ref(), program("python", source), None, tests, 3).await;
    assert_eq!(seen, [0, 1, 2, 3]);
    assert_eq!(judged.tests.len(), 4);
    assert!(judged.compile.is_none(), "python has no compile step");
    assert_eq!(text(&judged.tests[3].run.stdout), "4\n");
}

/// A submission that does not compile runs no test, and neither does a
/// checker that does not compile.
pub async fn judge_compile_errors_end_the_job(sandbox: Arc<dyn Sandbox>) {
    let tests = || vec![test("1\n", "1\n"), test("2\n", "2\n")];
    let (judged, seen) = judge(
        sandbox.as_ref(),
        program("c", "int main( { return 0; }"),
        Some(checker("cpp", COMPARE_CPP)),
        tests(),
    )
    .await;
    assert!(!judged.compile.as_ref().expect("compile").succeeded());
    assert!(judged.checker_compile.is_none(), "{judged:?}");
    assert!(judged.tests.is_empty() && seen.is_empty(), "{judged:?}");

    let (judged, seen) = judge(
        sandbox.as_ref(),
        program("python", ECHO),
        Some(checker("cpp", "int main( { return 0; }")),
        tests(),
    )
    .await;
    let compile = judged.checker_compile.as_ref().expect("checker compile");
    assert!(!compile.succeeded(), "{compile:?}");
    assert!(!compile.stderr.is_empty(), "no diagnostics: {compile:?}");
    assert!(judged.tests.is_empty() && seen.is_empty(), "{judged:?}");
}

/// Echoes its input: the submission of the checker tests.
pub const ECHO: &str = r#"
import sys, time
data = sys.stdin.read()
sys.stdout.write(data)
if data.startswith('exit'):
    sys.exit(3)
if data.startswith('sleep'):
    time.sleep(60)
"#;

/// A testlib-style checker: 0 when the output is the answer byte for byte,
/// 2 when only the spacing differs, 1 otherwise; its message names the input.
pub const COMPARE_CPP: &str = r#"
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>
static std::string slurp(const char *path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
static std::vector<std::string> tokens(const std::string &text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    std::string token;
    while (in >> token) out.push_back(token);
    return out;
}
int main(int argc, char **argv) {
    if (argc != 4) { std::cerr << "usage: checker input output answer"; return 3; }
    std::string input = slurp(argv[1]), output = slurp(argv[2]), answer = slurp(argv[3]);
    std::cerr << "input " << input.substr(0, input.find('\n')) << ": ";
    if (output == answer) { std::cerr << "ok"; return 0; }
    if (tokens(output) == tokens(answer)) { std::cerr << "spacing differs"; return 2; }
    std::cerr << "expected " << answer << ", found " << output;
    return 1;
}
"#;

/// The same checker in Python.
pub const COMPARE_PY: &str = r#"
import sys
if len(sys.argv) != 4:
    sys.stderr.write('usage: checker input output answer')
    sys.exit(3)
files = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        files.append(f.read().decode())
given, output, answer = files
sys.stderr.write('input %s: ' % given.split('\n')[0])
if output == answer:
    sys.stderr.write('ok')
    sys.exit(0)
if output.split() == answer.split():
    sys.stderr.write('spacing differs')
    sys.exit(2)
sys.stderr.write('expected %s, found %s' % (answer, output))
sys.exit(1)
"#;

/// Custom checkers in C++ and in Python: accepted (0), wrong answer (1),
/// presentation error (2), each with its message; the checker sees the
/// test's input, the submission's output and the answer; it runs after a
/// run that exited with an error code, not after one its limit ended.
pub async fn judge_custom_checkers_in_cpp_and_python(sandbox: Arc<dyn Sandbox>) {
    for (language, source) in [("cpp", COMPARE_CPP), ("python", COMPARE_PY)] {
        let mut sleeper = test("sleep\n", "sleep\n");
        sleeper.limits.wall_time = Duration::from_millis(500);
        let tests = vec![
            test("1 2\n", "1 2\n"),
            test("1 3\n", "1 2\n"),
            test("1  2\n", "1 2\n"),
            test("exit\n", "exit\n"),
            sleeper,
            test("4 5\n", "4 5\n"),
        ];
        let (judged, _) = judge(
            sandbox.as_ref(),
            program("python", ECHO),
            Some(checker(language, source)),
            tests,
        )
        .await;
        assert_eq!(
            judged.checker_compile.is_some(),
            language == "cpp",
            "{language}: {judged:?}"
        );
        if let Some(compile) = &judged.checker_compile {
            assert!(compile.succeeded(), "{language}: {compile:?}");
        }
        let expected = [
            (0, "input 1 2: ok"),
            (1, "input 1 3: expected 1 2\n, found 1 3\n"),
            (2, "input 1  2: spacing differs"),
            (0, "input exit: ok"),
        ];
        for (n, (code, message)) in expected.iter().enumerate() {
            let outcome = &judged.tests[n];
            let check = checked(outcome);
            assert_eq!(
                check.termination,
                Termination::Exited,
                "{language} {n}: {check:?}"
            );
            assert_eq!(check.exit_code, Some(*code), "{language} {n}: {outcome:?}");
            assert_eq!(text(&check.stderr), *message, "{language} {n}");
        }
        assert_eq!(judged.tests[3].run.exit_code, Some(3), "{language}");
        let slept = &judged.tests[4];
        assert_eq!(slept.run.termination, Termination::TimeLimit, "{language}");
        assert!(
            slept.checker.is_none(),
            "{language}: checked a run its limit ended"
        );
        assert_eq!(checked(&judged.tests[5]).exit_code, Some(0), "{language}");
    }
}

/// A checker that crashes, runs out of time, memory or output, or exits
/// with another code is reported as such (its own limits, not the test's),
/// and the job goes on: the next test is checked as usual.
pub async fn judge_checker_failures_are_reported(sandbox: Arc<dyn Sandbox>) {
    let source = r#"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>
int main(int argc, char **argv) {
    std::ifstream in(argv[1]);
    std::string what;
    in >> what;
    if (what == "crash") std::abort();
    if (what == "spin") { volatile unsigned long x = 0; for (;;) x++; }
    if (what == "hog") {
        std::vector<char *> keep;
        for (;;) { char *b = (char *)std::malloc(1 << 20); if (!b) return 9; std::memset(b, 1, 1 << 20); keep.push_back(b); }
    }
    if (what == "flood") for (;;) std::fputs("flooding the checker's stderr\n", stderr);
    if (what == "other") return 7;
    std::fputs("fine", stderr);
    return 0;
}
"#;
    let mut limited = checker("cpp", source);
    limited.run_limits.cpu_time = Duration::from_millis(500);
    limited.run_limits.wall_time = Duration::from_secs(5);
    limited.run_limits.memory_bytes = 64 << 20;
    limited.run_limits.output_bytes = 4096;
    let tests = ["crash", "fine", "spin", "hog", "flood", "other", "fine"]
        .into_iter()
        .map(|what| test(what, what))
        .collect();
    let (judged, _) = judge(
        sandbox.as_ref(),
        program("python", ECHO),
        Some(limited),
        tests,
    )
    .await;
    assert_eq!(judged.tests.len(), 7);
    let checks: Vec<&StepReport> = judged.tests.iter().map(checked).collect();
    assert_eq!(checks[0].signal, Some(libc::SIGABRT), "{:?}", checks[0]);
    assert_eq!(
        checks[2].termination,
        Termination::TimeLimit,
        "{:?}",
        checks[2]
    );
    assert!(
        checks[2].wall_time < Duration::from_secs(4),
        "{:?}",
        checks[2]
    );
    assert_eq!(
        checks[3].termination,
        Termination::MemoryLimit,
        "{:?}",
        checks[3]
    );
    assert_eq!(
        checks[4].termination,
        Termination::OutputLimit,
        "{:?}",
        checks[4]
    );
    assert_eq!(checks[5].exit_code, Some(7), "{:?}", checks[5]);
    for n in [1, 6] {
        assert!(checks[n].succeeded(), "test {n}: {:?}", checks[n]);
        assert_eq!(text(&checks[n].stderr), "fine");
    }
    for outcome in &judged.tests {
        assert!(outcome.run.succeeded(), "{outcome:?}");
    }
}

/// Looks everywhere a program may look (but the system's read-only trees)
/// for regular files holding `needle` (built at run time, so that the
/// program's own source does not hold it); prints what it found.
pub const SEARCH_PY: &str = r#"
import os, stat
def search(needle):
    found = []
    skip = {'/proc', '/sys', '/usr', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'}
    for root, dirs, files in os.walk('/'):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        for name in files:
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode) and info.st_size < (8 << 20):
                    with open(path, 'rb') as f:
                        if needle in f.read():
                            found.append(('holds the secret', path))
            except OSError:
                pass
    return found
def mounted(point):
    with open('/proc/self/mountinfo') as f:
        return any(line.split()[4] == point for line in f)
"#;

/// A hostile submission looks for the checker and the answer — lists
/// `/judge` through every path, looks for it in its mount table, searches
/// every file for the answer — and tries to replace the checker with one
/// that accepts anything. It finds nothing, writes nothing, and the
/// checker's verdict (wrong answer) stands, test after test.
pub async fn judge_submission_cannot_reach_the_checker(sandbox: Arc<dyn Sandbox>) {
    let hostile = format!(
        "{SEARCH_PY}{}",
        r#"
import sys
found = search(('ANSWER-' + 'SECRET').encode())
for d in ['/judge', '/proc/1/root/judge', '/proc/self/root/judge', '/proc/1/cwd/../judge']:
    try:
        names = os.listdir(d)
        if names:
            found.append(('listed', d, names))
    except OSError:
        pass
if mounted('/judge'):
    found.append(('mounted', '/judge'))
for target in ['/judge/main', '/judge/checker', '/judge/main.cpp', '/judge/answer', '/judge/planted']:
    try:
        with open(target, 'w') as f:
            f.write('#!/bin/sh\nexit 0\n')
        os.chmod(target, 0o755)
        found.append(('wrote', target))
    except OSError:
        pass
sys.stderr.write(repr(found) if found else '')
print('not the answer')
"#
    );
    let tests = vec![
        test("1\n", "ANSWER-SECRET 1\n"),
        test("2\n", "ANSWER-SECRET 2\n"),
    ];
    let (judged, _) = judge(
        sandbox.as_ref(),
        program("python", &hostile),
        Some(checker("cpp", COMPARE_CPP)),
        tests,
    )
    .await;
    assert_eq!(judged.tests.len(), 2);
    for (n, outcome) in judged.tests.iter().enumerate() {
        assert!(outcome.run.succeeded(), "test {n}: {outcome:?}");
        assert_eq!(
            text(&outcome.run.stderr),
            "",
            "test {n}: the submission reached the checker's files"
        );
        let check = checked(outcome);
        assert_eq!(
            check.exit_code,
            Some(1),
            "test {n}: the checker's verdict did not stand: {check:?}"
        );
        assert!(
            text(&check.stderr).starts_with(&format!("input {}: expected ANSWER-SECRET", n + 1)),
            "test {n}: {check:?}"
        );
    }
}

/// A hostile checker searches every file for the submission's source (a
/// secret in a comment); it finds nothing. Nor does anything it leaves in
/// `/tmp` reach its next run.
pub async fn judge_checker_cannot_see_the_submission(sandbox: Arc<dyn Sandbox>) {
    let hostile = format!(
        "{SEARCH_PY}{}",
        r#"
import sys
found = search(('SOLUTION-' + 'SECRET').encode())
if os.path.exists('/tmp/seen'):
    found.append('an earlier run left /tmp/seen')
open('/tmp/seen', 'w').write('x')
sys.stderr.write(repr(found) if found else 'nothing')
sys.exit(3 if found else 0)
"#
    );
    let solution = "# SOLUTION-SECRET: only the submission's files hold this\nprint(input())\n";
    let tests = vec![test("1\n", "1\n"), test("2\n", "2\n")];
    let (judged, _) = judge(
        sandbox.as_ref(),
        program("python", solution),
        Some(checker("python", &hostile)),
        tests,
    )
    .await;
    assert_eq!(judged.tests.len(), 2);
    for (n, outcome) in judged.tests.iter().enumerate() {
        assert!(outcome.run.succeeded(), "test {n}: {outcome:?}");
        let check = checked(outcome);
        assert_eq!(text(&check.stderr), "nothing", "test {n}: {check:?}");
        assert_eq!(check.exit_code, Some(0), "test {n}: {check:?}");
    }
}

/// A test that fills the slot's memory through tmpfs files after lowering
/// its OOM score (the attack that can take a slot's keeper down with it)
/// ends as `MemoryLimit`, and the job's later tests and their checker run
/// as usual.
pub async fn judge_goes_on_after_a_test_that_breaks_its_slot(sandbox: Arc<dyn Sandbox>) {
    let source = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    int n;
    if (scanf("%d", &n) != 1) return 2;
    if (n == 2) {
        int adj = open("/proc/self/oom_score_adj", O_WRONLY);
        if (adj >= 0) { write(adj, "-1000", 5); write(adj, "0", 1); close(adj); }
        adj = open("/proc/1/oom_score_adj", O_WRONLY);
        if (adj >= 0) { write(adj, "0", 1); close(adj); }
        static char block[1 << 20];
        memset(block, 'x', sizeof block);
        const char *files[] = {"/dev/shm/fill", "/tmp/fill"};
        for (int i = 0; i < 2; i++) {
            int fd = open(files[i], O_WRONLY | O_CREAT, 0600);
            while (fd >= 0 && write(fd, block, sizeof block) > 0) {}
        }
    }
    printf("%d\n", n);
    return 0;
}
"#;
    let mut tests: Vec<TestRun> = (1..=3)
        .map(|n| test(&format!("{n}\n"), &format!("{n}\n")))
        .collect();
    tests[1].limits.memory_bytes = 24 << 20;
    let (judged, _) = judge(
        sandbox.as_ref(),
        program("c", source),
        Some(checker("cpp", COMPARE_CPP)),
        tests,
    )
    .await;
    assert_eq!(judged.tests.len(), 3, "{judged:?}");
    assert_eq!(
        judged.tests[1].run.termination,
        Termination::MemoryLimit,
        "{judged:?}"
    );
    assert!(judged.tests[1].checker.is_none());
    for n in [0, 2] {
        let outcome = &judged.tests[n];
        assert!(outcome.run.succeeded(), "test {n}: {outcome:?}");
        assert_eq!(checked(outcome).exit_code, Some(0), "test {n}: {outcome:?}");
    }
}
