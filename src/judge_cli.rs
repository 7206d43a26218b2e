//! `code-runner run FILE --tests DIR`: judge a program against a folder of
//! tests, locally or through a server, and print a verdict per test.
//!
//! The folder holds pairs `NAME.in` (the test's standard input) and
//! `NAME.out` (its expected output), the convention of judges' test folders;
//! tests run in the natural order of their names (`2` before `10`). The
//! checker is `lines` unless `--checker` names another built-in one; with
//! `--interactor FILE` the interactor decides instead (and `NAME.out` is
//! optional: when present, it is the interactor's `answer`). The
//! command prints a table (test, verdict, time, memory, the checker's word)
//! and exits 0 only when every test is accepted (1 otherwise, 2 when the
//! program did not compile).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use code_runner_queue::judge::{CheckerSpec, JudgeReport, JudgeSpec, TestCase, TestResult};
use code_runner_queue::{Job, TaskId, Verdict};
use code_runner_sandbox::{Language, LanguageTable, NativeSandbox};
use code_runner_worker::judge::{execute_judged, JudgeLimits};

use crate::client::RunArgs;

/// The tests of a folder, in the natural order of their names. With
/// `answers_optional` (an interactive problem, whose interactor decides), a
/// missing `NAME.out` is an empty expected output.
pub fn read_tests(dir: &Path, answers_optional: bool) -> anyhow::Result<Vec<TestCase>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "in") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                names.push(stem.to_owned());
            }
        }
    }
    if names.is_empty() {
        bail!(
            "no tests in {}: expected NAME.in and NAME.out files",
            dir.display()
        );
    }
    names.sort_by_key(|name| natural_key(name));
    names
        .into_iter()
        .map(|name| {
            let read = |ext: &str| {
                let path = dir.join(format!("{name}.{ext}"));
                std::fs::read_to_string(&path).with_context(|| {
                    format!(
                        "reading {} (tests are NAME.in/NAME.out pairs)",
                        path.display()
                    )
                })
            };
            let answer = dir.join(format!("{name}.out"));
            Ok(TestCase {
                stdin: read("in")?,
                expected_output: if answers_optional && !answer.exists() {
                    String::new()
                } else {
                    read("out")?
                },
                name,
                args: Vec::new(),
                time_limit_ms: None,
                memory_limit_mb: None,
            })
        })
        .collect()
}

/// Numbers compare as numbers, the rest as text: `2` < `10` < `a`.
fn natural_key(name: &str) -> (u8, u64, String) {
    match name.parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, name.to_owned()),
    }
}

/// The built-in checker a `--checker` value names.
pub fn checker(name: Option<&str>) -> anyhow::Result<CheckerSpec> {
    let spec = match name.unwrap_or("lines") {
        "exact" => CheckerSpec::Exact,
        "lines" => CheckerSpec::Lines,
        "tokens" => CheckerSpec::Tokens,
        "unordered" => CheckerSpec::Unordered,
        "float" => CheckerSpec::Float {
            abs: Some(1e-6),
            rel: Some(1e-6),
        },
        other => {
            bail!("unknown checker {other:?}: exact, lines, tokens, float (1e-6) or unordered")
        }
    };
    Ok(spec)
}

/// Judges locally, in the native sandbox.
pub async fn judge_locally(
    args: &RunArgs,
    languages: &LanguageTable,
    language: &Arc<Language>,
    code: String,
    files: Vec<code_runner_queue::SourceFile>,
    spec: JudgeSpec,
) -> anyhow::Result<u8> {
    // One slot (an interactor runs in the slot's companion).
    let sandbox =
        NativeSandbox::new(args.worker.native_config(1)).context("starting the native sandbox")?;
    let mut job = Job::new(TaskId::new(), language.name.clone(), code, 0);
    job.files = files;
    job.time_limit_ms = args.requested.time_limit_ms;
    job.memory_limit_mb = args.requested.memory_limit_mb;
    job.judge = Some(spec.clone());
    let limits = JudgeLimits {
        run: args.worker.run_limits()?,
        compile: args.worker.compile_limits()?,
    };
    let result = execute_judged(None, &sandbox, languages, language, &job, &spec, limits, 0).await;
    if result.verdict == Verdict::CompileError {
        if let Some(output) = &result.compile_output {
            eprint!("{output}");
        }
    }
    let report = result.judge.unwrap_or_else(|| JudgeReport::new(Vec::new()));
    print_table(&report.tests);
    Ok(exit_code(
        result.verdict.as_str(),
        result.message.as_deref(),
    ))
}

/// The judge fields of a `POST /run-code` body.
pub fn request_fields(body: &mut serde_json::Value, spec: &JudgeSpec) -> anyhow::Result<()> {
    body["tests"] = serde_json::to_value(&spec.tests)?;
    match &spec.interactor {
        Some(interactor) => body["interactor"] = serde_json::to_value(interactor)?,
        None => body["checker"] = serde_json::to_value(&spec.checker)?,
    }
    Ok(())
}

/// The interactor `--interactor` names: its source, in the language its
/// file name says.
pub fn interactor(
    path: &std::path::Path,
    languages: &code_runner_sandbox::LanguageTable,
) -> anyhow::Result<code_runner_queue::judge::HelperProgram> {
    let code = std::fs::read_to_string(path)
        .with_context(|| format!("reading --interactor {}", path.display()))?;
    let language = languages
        .for_file(path)
        .with_context(|| format!("cannot tell the language of {}", path.display()))?;
    Ok(code_runner_queue::judge::HelperProgram {
        language: language.name.clone(),
        code,
        files: Vec::new(),
    })
}

/// Prints a judged result read from a server, and the exit status.
pub fn report_remote(body: &serde_json::Value) -> anyhow::Result<u8> {
    let tests: Vec<TestResult> = serde_json::from_value(body["tests"].clone()).unwrap_or_default();
    let verdict = body["verdict"].as_str().unwrap_or("internal_error");
    if verdict == "compile_error" {
        if let Some(output) = body["compile_output"].as_str() {
            eprint!("{output}");
        }
    }
    print_table(&tests);
    Ok(exit_code(verdict, body["result"].as_str()))
}

fn print_table(tests: &[TestResult]) {
    if tests.is_empty() {
        return;
    }
    let width = tests.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<width$}  {:<18}  {:>8}  {:>10}  note",
        "test", "verdict", "time", "memory"
    );
    for test in tests {
        let memory = test.memory_peak_kib.map_or_else(
            || "?".to_owned(),
            |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
        );
        let note = test
            .checker_message
            .as_deref()
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default();
        println!(
            "{:<width$}  {:<18}  {:>6} ms  {:>10}  {}",
            test.name,
            test.verdict.as_str(),
            test.time_ms,
            memory,
            note
        );
    }
    let passed = tests
        .iter()
        .filter(|t| t.verdict == Verdict::Accepted)
        .count();
    println!("{passed}/{} accepted", tests.len());
}

fn exit_code(verdict: &str, message: Option<&str>) -> u8 {
    match verdict {
        "accepted" => 0,
        "compile_error" => 2,
        _ => {
            if let Some(message) = message {
                eprintln!("{message}");
            }
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_are_read_in_natural_order_and_need_their_answers() {
        let dir = std::env::temp_dir().join(format!("judge-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, input, output) in [("10", "10", "20"), ("2", "2", "4"), ("a", "x", "y")] {
            std::fs::write(dir.join(format!("{name}.in")), input).unwrap();
            std::fs::write(dir.join(format!("{name}.out")), output).unwrap();
        }
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let tests = read_tests(&dir, false).unwrap();
        let names: Vec<_> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["2", "10", "a"]);
        assert_eq!(tests[0].stdin, "2");
        assert_eq!(tests[0].expected_output, "4");
        std::fs::write(dir.join("3.in"), "3").unwrap();
        let error = read_tests(&dir, false).unwrap_err();
        assert!(format!("{error:#}").contains("3.out"), "{error:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
