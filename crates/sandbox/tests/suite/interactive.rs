//! Interactive judge mode (`Sandbox::execute_interactive`): an interactor
//! and the submission run side by side on each test, joined by pipes, each
//! in a sandbox of its own under its own limits. A guessing game: the
//! interactor reads the secret from its `input` file and answers each guess
//! with `higher`, `lower` or `=`. Real programs in the real sandbox.

use std::sync::Arc;
use std::time::Duration;

use code_runner_sandbox::{
    CheckerProgram, Judged, Limits, Program, Sandbox, StepReport, Termination, TestOutcome, TestRun,
};

use super::judge::{checker, test};
use super::program;

/// The interactor, in C++: at most 40 guesses; 0 when guessed (and the
/// count written to its `output` file, which must be writable), 1 after
/// too many, 2 when the program stops talking (end of file).
pub const GUESSING_INTERACTOR: &str = r#"
#include <cstdio>
int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: interactor input output [answer]\n"); return 3; }
    FILE *in = fopen(argv[1], "r");
    long secret;
    if (!in || fscanf(in, "%ld", &secret) != 1) { fprintf(stderr, "no secret\n"); return 3; }
    FILE *out = fopen(argv[2], "w");
    if (!out) { fprintf(stderr, "cannot write output\n"); return 3; }
    if (argc > 3) {
        FILE *answer = fopen(argv[3], "r");
        long expected;
        if (!answer || fscanf(answer, "%ld", &expected) != 1 || expected != secret) {
            fprintf(stderr, "bad answer file\n"); return 3;
        }
    }
    for (int i = 0; i < 40; i++) {
        long guess;
        if (scanf("%ld", &guess) != 1) { fprintf(stderr, "no guess after %d\n", i); return 2; }
        if (guess == secret) {
            printf("=\n"); fflush(stdout);
            fprintf(out, "%d\n", i + 1); fclose(out);
            fprintf(stderr, "guessed in %d\n", i + 1);
            return 0;
        }
        printf(guess < secret ? "higher\n" : "lower\n");
        fflush(stdout);
    }
    fprintf(stderr, "too many guesses\n");
    return 1;
}
"#;

/// A binary search in Python.
pub const PYTHON_SEARCH: &str = r#"
lo, hi = 1, 10**9
while True:
    mid = (lo + hi) // 2
    print(mid, flush=True)
    reply = input()
    if reply == "=":
        break
    if reply == "higher":
        lo = mid + 1
    else:
        hi = mid - 1
"#;

/// A binary search in C++.
pub const CPP_SEARCH: &str = r#"
#include <iostream>
#include <string>
int main() {
    long lo = 1, hi = 1000000000;
    std::string reply;
    while (true) {
        long mid = (lo + hi) / 2;
        std::cout << mid << std::endl;
        if (!(std::cin >> reply)) return 4;
        if (reply == "=") return 0;
        if (reply == "higher") lo = mid + 1; else hi = mid - 1;
    }
}
"#;

fn guessing() -> CheckerProgram {
    checker("cpp", GUESSING_INTERACTOR)
}

/// Runs an interactive job, checking the observer saw what the job returns.
pub async fn interact(
    sandbox: &dyn Sandbox,
    program: Program,
    interactor: CheckerProgram,
    tests: Vec<TestRun>,
) -> Judged {
    let mut seen: Vec<TestOutcome> = Vec::new();
    let mut observer = |_: usize, outcome: &TestOutcome| {
        seen.push(outcome.clone());
        true
    };
    let judged = sandbox
        .execute_interactive(program, interactor, tests, &mut observer)
        .await
        .expect("sandbox works");
    assert_eq!(
        seen, judged.tests,
        "the observer was told what the job returned"
    );
    judged
}

fn both(outcome: &TestOutcome) -> (&StepReport, &StepReport) {
    let interactor = outcome
        .interactor
        .as_ref()
        .unwrap_or_else(|| panic!("no interactor step: {outcome:?}"));
    (&outcome.run, interactor)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn secrets() -> Vec<TestRun> {
    [1u64, 777, 123_456_789, 1_000_000_000]
        .iter()
        .enumerate()
        .map(|(i, secret)| {
            // The first test without an answer: the interactor then gets
            // two arguments only.
            let answer = if i == 0 {
                String::new()
            } else {
                secret.to_string()
            };
            test(&format!("{secret}\n"), &answer)
        })
        .collect()
}

/// Binary searches in Python and C++ find every secret; each test's
/// interactor exits 0 having counted the guesses, the submission exits 0,
/// and its stdout went to the interactor, not to us.
pub async fn interactive_guessing_game_in_python_and_cpp(sandbox: Arc<dyn Sandbox>) {
    for (language, source) in [("python", PYTHON_SEARCH), ("cpp", CPP_SEARCH)] {
        let judged = interact(
            sandbox.as_ref(),
            program(language, source),
            guessing(),
            secrets(),
        )
        .await;
        let compile = judged
            .checker_compile
            .as_ref()
            .expect("interactor compiled");
        assert!(compile.succeeded(), "{compile:?}");
        assert_eq!(judged.tests.len(), 4, "{language}");
        for outcome in &judged.tests {
            let (run, interactor) = both(outcome);
            assert!(run.succeeded(), "{language}: {outcome:?}");
            assert!(run.stdout.is_empty(), "{language}: {outcome:?}");
            assert_eq!(interactor.exit_code, Some(0), "{language}: {outcome:?}");
            assert!(
                text(&interactor.stderr).starts_with("guessed in "),
                "{language}: {outcome:?}"
            );
        }
    }
}

/// A program that tries every place the interactor's files could be (its
/// own directories, the interactor's processes) and guesses the secret if
/// it finds it, else guesses 1 forever: the interactor must give up after
/// 40 guesses (exit 1). Had the program found the secret, it would have
/// exited 0.
pub async fn interactive_submission_cannot_see_the_interactor(sandbox: Arc<dyn Sandbox>) {
    let peek = r#"
import glob, os, stat
found = None
for pattern in ["/work/input", "/work/answer", "/judge/input", "/judge/*", "/tmp/*",
                "/proc/*/cwd/input", "/proc/*/root/work/input", "/proc/*/fd/*"]:
    for path in glob.glob(pattern):
        try:
            # Regular files only: its own stdin is a pipe it must not drain.
            if not stat.S_ISREG(os.stat(path).st_mode):
                continue
            data = open(path).read().strip()
        except Exception:
            continue
        if data.isdigit() and data != "1":
            found = data
while True:
    print(found or 1, flush=True)
    if input() == "=":
        break
"#;
    let judged = interact(
        sandbox.as_ref(),
        program("python", peek),
        guessing(),
        vec![test("4242\n", "4242")],
    )
    .await;
    let (run, interactor) = both(&judged.tests[0]);
    assert_eq!(interactor.exit_code, Some(1), "{run:?} {interactor:?}");
    assert_eq!(text(&interactor.stderr), "too many guesses\n");
}

/// A program that never answers: the interactor waits for its first guess
/// and the program for nothing; the program is killed at its wall clock
/// (the test's limit, 1 s), then the interactor reads end of file and exits
/// 2 — well before its own, longer wall clock.
pub async fn interactive_deadlock_ends_at_the_wall_limit(sandbox: Arc<dyn Sandbox>) {
    let mut limits = Limits::RUN_DEFAULT;
    limits.wall_time = Duration::from_secs(1);
    limits.cpu_time = Duration::from_secs(1);
    let mut quiet = test("5\n", "");
    quiet.limits = limits;
    let judged = interact(
        sandbox.as_ref(),
        program("python", "import sys\nsys.stdin.read()\n"),
        guessing(),
        vec![quiet],
    )
    .await;
    let (run, interactor) = both(&judged.tests[0]);
    assert_eq!(run.termination, Termination::TimeLimit, "{run:?}");
    assert!(run.wall_time >= Duration::from_secs(1), "{run:?}");
    assert_eq!(interactor.exit_code, Some(2), "{interactor:?}");
    assert!(
        interactor.wall_time < Duration::from_secs(4),
        "{interactor:?}"
    );
}

/// The program closes its stdout at once: the interactor reads end of file
/// and exits 2 right away, long before the program's wall clock.
pub async fn interactive_program_closing_its_output_early(sandbox: Arc<dyn Sandbox>) {
    let closer = "import os, time\nos.close(1)\ntime.sleep(1.5)\n";
    let judged = interact(
        sandbox.as_ref(),
        program("python", closer),
        guessing(),
        vec![test("5\n", "")],
    )
    .await;
    let (run, interactor) = both(&judged.tests[0]);
    assert_eq!(interactor.exit_code, Some(2), "{interactor:?}");
    assert!(
        interactor.wall_time < run.wall_time,
        "{run:?} {interactor:?}"
    );
    assert!(run.succeeded(), "{run:?}");
}

/// An interactor that floods its stdout: the program reads a little and
/// exits; what the interactor writes from then on is read and dropped (no
/// broken pipe), so it floods on until its own wall clock (2 s here) ends
/// it, and the job goes on (the next test runs normally).
pub async fn interactive_flooding_interactor_ends(sandbox: Arc<dyn Sandbox>) {
    let flood = r#"
#include <cstdio>
#include <cstring>
int main(int argc, char **argv) {
    static char block[65536];
    memset(block, 'x', sizeof block);
    FILE *in = fopen(argv[1], "r");
    int mode = 0;
    if (in) fscanf(in, "%d", &mode);
    if (mode == 1) { for (;;) fwrite(block, 1, sizeof block, stdout); }
    long guess;
    if (scanf("%ld", &guess) != 1) return 2;
    return guess == 7 ? 0 : 1;
}
"#;
    // Answers first, then reads a little: flooded, it exits with the
    // interactor still writing; else it reads end of file once the
    // interactor is done.
    let reader = "import sys\nprint(7, flush=True)\nsys.stdin.buffer.read(100)\n";
    let mut flooder = checker("cpp", flood);
    flooder.run_limits.wall_time = Duration::from_secs(2);
    let judged = interact(
        sandbox.as_ref(),
        program("python", reader),
        flooder,
        vec![test("1\n", ""), test("0\n", "")],
    )
    .await;
    let (run, interactor) = both(&judged.tests[0]);
    assert!(run.succeeded(), "{run:?}");
    assert_eq!(
        interactor.termination,
        Termination::TimeLimit,
        "{interactor:?}"
    );
    assert!(
        interactor.wall_time < Duration::from_secs(4),
        "{interactor:?}"
    );
    // The second test: the interactor no longer floods and is answered 7.
    let (run, interactor) = both(&judged.tests[1]);
    assert!(run.succeeded(), "{run:?}");
    assert_eq!(interactor.exit_code, Some(0), "{interactor:?}");
}

/// Each side has its own limits: an interactor over its memory limit is
/// killed as such while the program, under a larger one, is unaffected;
/// and a submission that does not compile ends the job before any test.
pub async fn interactive_limits_are_each_sides_own(sandbox: Arc<dyn Sandbox>) {
    let hog = r#"
#include <cstdio>
#include <cstdlib>
#include <cstring>
int main() {
    long guess;
    if (scanf("%ld", &guess) != 1) return 2;
    for (int i = 0; i < 64; i++) { char *p = (char *)malloc(8 << 20); if (p) memset(p, 1, 8 << 20); }
    return 0;
}
"#;
    let mut small = checker("cpp", hog);
    small.run_limits.memory_bytes = 64 << 20;
    let guesser = "print(7, flush=True)\nimport time\ntime.sleep(0.3)\n";
    let judged = interact(
        sandbox.as_ref(),
        program("python", guesser),
        small,
        vec![test("7\n", "")],
    )
    .await;
    let (run, interactor) = both(&judged.tests[0]);
    assert_eq!(
        interactor.termination,
        Termination::MemoryLimit,
        "{interactor:?}"
    );
    assert!(run.succeeded(), "{run:?}");

    let judged = interact(
        sandbox.as_ref(),
        program("cpp", "int main( {"),
        guessing(),
        vec![test("7\n", "")],
    )
    .await;
    assert!(!judged.compile.as_ref().unwrap().succeeded());
    assert!(judged.checker_compile.is_none() && judged.tests.is_empty());
}

/// Writes after the other side is over never fail: an interactor that
/// answers after the program has exited exits 0 every time (20 tests, no
/// broken pipe however the two ends fall), and a program that writes after
/// the interactor has exited exits 0 too, in C and in Python (which would
/// otherwise die of `SIGPIPE` or exit 120 on `BrokenPipeError`).
pub async fn interactive_writes_after_the_other_side_ended_never_fail(sandbox: Arc<dyn Sandbox>) {
    let late_answer = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) {
    long guess;
    if (scanf("%ld", &guess) != 1) return 2;
    usleep(20000);
    puts(guess == 7 ? "=" : "no");
    fflush(stdout);
    return guess == 7 ? 0 : 1;
}
"#;
    let quick =
        "#include <stdio.h>\nint main(void) { printf(\"7\\n\"); fflush(stdout); return 0; }\n";
    let judged = interact(
        sandbox.as_ref(),
        program("c", quick),
        checker("c", late_answer),
        (0..20).map(|_| test("7\n", "")).collect(),
    )
    .await;
    assert_eq!(judged.tests.len(), 20);
    for outcome in &judged.tests {
        let (run, interactor) = both(outcome);
        assert!(run.succeeded(), "{run:?}");
        assert_eq!(interactor.exit_code, Some(0), "{interactor:?}");
    }
    let first_answer = r#"
#include <stdio.h>
int main(void) { long g; if (scanf("%ld", &g) != 1) return 2; return g == 7 ? 0 : 1; }
"#;
    let talker_c = "#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf(\"7\\n\"); fflush(stdout); usleep(200000); printf(\"bye\\n\"); fflush(stdout); return 0; }\n";
    let talker_py =
        "import time\nprint(7, flush=True)\ntime.sleep(0.2)\nprint('bye', flush=True)\n";
    for (language, talker) in [("c", talker_c), ("python", talker_py)] {
        let judged = interact(
            sandbox.as_ref(),
            program(language, talker),
            checker("c", first_answer),
            vec![test("7\n", "")],
        )
        .await;
        let (run, interactor) = both(&judged.tests[0]);
        assert_eq!(interactor.exit_code, Some(0), "{language}: {interactor:?}");
        assert!(run.succeeded(), "{language}: {run:?}");
    }
}

/// A message that ends in a NUL byte reaches the other side at once (the
/// docker backend's relay holds back what could begin its init's record,
/// but not for long).
pub async fn interactive_a_message_ending_in_nul_is_passed_on(sandbox: Arc<dyn Sandbox>) {
    let greeter = r#"
#include <unistd.h>
int main(void) {
    char reply[3];
    if (write(1, "hello\0", 6) != 6) return 3;
    ssize_t got = 0;
    while (got < 3) { ssize_t n = read(0, reply + got, 3 - got); if (n <= 0) return 2; got += n; }
    return reply[0] == 'o' && reply[1] == 'k' ? 0 : 1;
}
"#;
    let replier = r#"
#include <unistd.h>
int main(void) {
    char buf[6];
    ssize_t got = 0;
    while (got < 6) { ssize_t n = read(0, buf + got, 6 - got); if (n <= 0) return 2; got += n; }
    return write(1, "ok\n", 3) == 3 ? 0 : 3;
}
"#;
    let mut limits = Limits::RUN_DEFAULT;
    limits.wall_time = Duration::from_secs(3);
    let mut nul = test("", "");
    nul.limits = limits;
    let judged = interact(
        sandbox.as_ref(),
        program("c", replier),
        checker("c", greeter),
        vec![nul],
    )
    .await;
    let (run, interactor) = both(&judged.tests[0]);
    assert!(run.succeeded(), "{run:?}");
    assert_eq!(interactor.exit_code, Some(0), "{interactor:?}");
    assert!(run.wall_time < Duration::from_secs(2), "{run:?}");
}
