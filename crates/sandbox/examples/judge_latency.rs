//! Measures judge mode's cost per test on the native sandbox against a bare
//! run of the same binary, interleaved so both see the same machine load:
//!
//! ```text
//! cargo build --release -p code-runner-sandbox --bin code-runner-keeper
//! cargo run --release -p code-runner-sandbox --example judge_latency [TESTS] [checker]
//! ```
//!
//! One job of TESTS tests (1,000 by default) of a C program that reads an
//! integer and prints it. After each test the observer starts the same
//! program, compiled on the host with the same flags, bare (fork, exec,
//! stdin from memory, wait) and times it; a test's sandboxed time is from
//! the end of the observer's call for the test before to the start of its
//! own, so the bare runs are not counted in it. With `checker`, a C++
//! checker compares each output with the answer (one more step per test).
//! Finally, for scale, a few `execute` calls of the same program (a compile
//! and a run each: what a backend without `execute_tests` pays per test).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use code_runner_sandbox::{
    CheckerProgram, LanguageTable, Limits, NativeConfig, NativeSandbox, Program, Sandbox,
    TestObserver, TestOutcome, TestRun,
};

const SOURCE: &str =
    "#include <stdio.h>\nint main(void) { long n; if (scanf(\"%ld\", &n) != 1) return 1; printf(\"%ld\\n\", n); return 0; }\n";

const CHECKER: &str = r#"
#include <fstream>
#include <iterator>
#include <string>
static std::string slurp(const char *p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
int main(int, char **argv) { return slurp(argv[2]) == slurp(argv[3]) ? 0 : 1; }
"#;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{name:<34} p50 {:7.3} ms  p90 {:7.3} ms  p99 {:7.3} ms  (n={})",
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
        times.len()
    );
}

/// Times the sandboxed tests between its calls and a bare run inside each.
struct Measure {
    bare_binary: std::path::PathBuf,
    left_last: Option<Instant>,
    sandboxed: Vec<Duration>,
    steps: Vec<Duration>,
    checker_steps: Vec<Duration>,
    bare: Vec<Duration>,
    failures: usize,
}

#[async_trait]
impl TestObserver for Measure {
    async fn finished(&mut self, index: usize, outcome: &TestOutcome) -> bool {
        let entered = Instant::now();
        if let Some(left) = self.left_last {
            self.sandboxed.push(entered - left);
        }
        self.steps.push(outcome.run.wall_time);
        if let Some(checker) = &outcome.checker {
            self.checker_steps.push(checker.wall_time);
            if !checker.succeeded() {
                self.failures += 1;
            }
        }
        if outcome.run.stdout != format!("{index}\n").as_bytes() {
            self.failures += 1;
        }
        let started = Instant::now();
        let mut child = Command::new(&self.bare_binary)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("bare run");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{index}\n").as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        self.bare.push(started.elapsed());
        assert_eq!(output.stdout, format!("{index}\n").as_bytes());
        self.left_last = Some(Instant::now());
        true
    }
}

#[tokio::main]
async fn main() {
    let tests: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let with_checker = std::env::args().nth(2).as_deref() == Some("checker");
    let dir = std::env::temp_dir().join(format!("judge-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.c"), SOURCE).unwrap();
    let status = Command::new("/usr/bin/gcc")
        .args(["-std=gnu17", "-O2", "-pipe", "-o", "main", "main.c", "-lm"])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success());

    let sandbox = NativeSandbox::new(NativeConfig {
        slots: 2,
        ..NativeConfig::default()
    })
    .expect("native sandbox");
    let table = LanguageTable::builtin();
    let program = Program::new(table.get("c").unwrap().clone(), SOURCE);
    let checker = with_checker.then(|| CheckerProgram {
        language: table.get("cpp").unwrap().clone(),
        source: CHECKER.into(),
        files: Vec::new(),
        compile_limits: Limits::COMPILE_DEFAULT,
        run_limits: Limits::RUN_DEFAULT,
    });
    let runs = (0..tests)
        .map(|n| TestRun {
            stdin: format!("{n}\n").into_bytes(),
            args: Vec::new(),
            limits: Limits::RUN_DEFAULT,
            answer: format!("{n}\n").into_bytes(),
        })
        .collect();
    let mut measure = Measure {
        bare_binary: dir.join("main"),
        left_last: None,
        sandboxed: Vec::new(),
        steps: Vec::new(),
        checker_steps: Vec::new(),
        bare: Vec::new(),
        failures: 0,
    };
    let started = Instant::now();
    let judged = sandbox
        .execute_tests(program.clone(), checker, runs, &mut measure)
        .await
        .expect("judged");
    let total = started.elapsed();
    assert_eq!(judged.tests.len(), tests);
    assert_eq!(measure.failures, 0, "wrong outputs or checker verdicts");
    let compile = judged.compile.as_ref().unwrap().wall_time;
    println!(
        "one job, {tests} tests{}: {:.2} s in all (compile {:.0} ms{}), bare runs included",
        if with_checker {
            " with a C++ checker"
        } else {
            ""
        },
        total.as_secs_f64(),
        compile.as_secs_f64() * 1000.0,
        judged
            .checker_compile
            .as_ref()
            .map(|c| format!(
                ", checker compile {:.0} ms",
                c.wall_time.as_secs_f64() * 1000.0
            ))
            .unwrap_or_default(),
    );
    report("sandboxed, per test (end to end)", measure.sandboxed);
    report("  of which the run step", measure.steps);
    if with_checker {
        report("  of which the checker step", measure.checker_steps);
    }
    report("bare fork+exec+wait, same binary", measure.bare);

    let mut executes = Vec::new();
    for n in 0..20 {
        let started = Instant::now();
        let execution = sandbox
            .execute(Program {
                stdin: format!("{n}\n").into_bytes(),
                ..program.clone()
            })
            .await
            .unwrap();
        executes.push(started.elapsed());
        assert_eq!(execution.run.unwrap().stdout, format!("{n}\n").as_bytes());
    }
    report("execute (compile + run), per call", executes);
    let _ = std::fs::remove_dir_all(&dir);
}
