//! Judge mode's records (SPEC §7): what a judged job carries to its worker
//! (its tests, the checker, whether to stop on the first failure) and what
//! its result carries back (each test's verdict and a summary).
//!
//! Both travel inside the plain records ([`Job::judge`](crate::Job::judge),
//! [`JobResult::judge`](crate::JobResult::judge)) as optional fields, so a
//! record written before judge mode existed still reads, as a plain run.

use serde::{Deserialize, Serialize};

use crate::{SourceFile, Verdict};

/// The judge-mode part of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeSpec {
    /// The tests, in order (at least one; the API bounds how many); empty
    /// when the job names a stored test set instead (`testset`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestCase>,
    /// The stored test set (`sha256:<hex>`, SPEC §7) whose tests the job
    /// runs, fetched by the worker when the job starts: the job carries the
    /// reference, not a copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testset: Option<String>,
    #[serde(default)]
    pub checker: CheckerSpec,
    /// An interactive problem's interactor: run alongside the submission on
    /// each test, joined to it by pipes; its exit code decides the test
    /// (then `checker` is not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactor: Option<HelperProgram>,
    /// After the first test that is not accepted, run no more (the rest are
    /// `skipped`).
    #[serde(default)]
    pub stop_on_first_failure: bool,
}

impl JudgeSpec {
    /// Roughly the bytes the tests and the checker take in memory.
    pub fn size_bytes(&self) -> u64 {
        let tests: usize = self.tests.iter().map(TestCase::size_bytes).sum();
        let program_bytes = |language: &str, code: &str, files: &[SourceFile]| {
            language.len()
                + code.len()
                + files
                    .iter()
                    .map(|f| f.name.len() + f.content.len() + 48)
                    .sum::<usize>()
        };
        let checker = match &self.checker {
            CheckerSpec::Custom {
                language,
                code,
                files,
            } => program_bytes(language, code, files),
            _ => 0,
        };
        let interactor = self
            .interactor
            .as_ref()
            .map_or(0, |i| program_bytes(&i.language, &i.code, &i.files));
        (tests + checker + interactor) as u64
    }
}

/// A program of the judge's own (an interactor): its language, source and
/// extra files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperProgram {
    /// Canonical language name.
    pub language: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SourceFile>,
}

/// A stored test set (SPEC §7): its canonical JSON is this record's, and its
/// id `sha256:` and the hex SHA-256 of that JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSet {
    pub tests: Vec<TestCase>,
}

impl TestSet {
    /// Reads a stored set's JSON.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// One test of a judged job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    /// How results and messages name the test: the client's name, or its
    /// 1-based position in the list when it gave none.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdin: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expected_output: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// This test's wall-clock (and CPU) limit; `None`: the job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_ms: Option<u64>,
    /// This test's memory limit; `None`: the job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_mb: Option<u64>,
}

impl TestCase {
    /// The bytes of data a test carries: its stdin, expected output and
    /// arguments (what the API's `--max-test-bytes` counts), plus its name.
    pub fn data_bytes(&self) -> usize {
        self.stdin.len()
            + self.expected_output.len()
            + self.args.iter().map(String::len).sum::<usize>()
    }

    fn size_bytes(&self) -> usize {
        self.data_bytes() + self.name.len() + 24 * self.args.len() + 96
    }
}

/// How a test's output is judged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckerSpec {
    /// Bytes equal.
    Exact,
    /// Equal line by line, line ends and trailing blank lines forgiven.
    #[default]
    Lines,
    /// Equal whitespace-separated tokens.
    Tokens,
    /// Tokens; numbers equal within `abs` or `rel` (each non-negative).
    Float {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        abs: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rel: Option<f64>,
    },
    /// The same multiset of lines.
    Unordered,
    /// A checker program, run as `checker input output answer`.
    Custom {
        /// Canonical language name.
        language: String,
        code: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<SourceFile>,
    },
}

/// The judge-mode part of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeReport {
    /// One per test given, in order (skipped ones too).
    pub tests: Vec<TestResult>,
    pub summary: TestSummary,
}

impl JudgeReport {
    /// Roughly the bytes the report takes in memory.
    pub fn size_bytes(&self) -> u64 {
        self.tests
            .iter()
            .map(|t| {
                t.name.len()
                    + t.stdout.len()
                    + t.stderr.len()
                    + t.checker_message.as_ref().map_or(0, String::len)
                    + 128
            })
            .sum::<usize>() as u64
    }

    /// The report of `tests` (each with its final verdict), summed up.
    pub fn new(tests: Vec<TestResult>) -> Self {
        let summary = TestSummary::of(&tests);
        Self { tests, summary }
    }
}

/// What happened on one test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    pub name: String,
    /// `accepted`, `wrong_answer`, `presentation_error`, `time_limit`,
    /// `memory_limit`, `runtime_error`, `output_limit`, `judge_error` or
    /// `skipped`.
    pub verdict: Verdict,
    pub time_ms: u64,
    pub cpu_time_ms: u64,
    /// `None` when not measured (or not run).
    pub memory_peak_kib: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The program's standard output (UTF-8, invalid bytes replaced), cut
    /// at the per-test cap.
    pub stdout: String,
    /// True when `stdout` was cut (by the sandbox's output cap or the
    /// result's per-test cap).
    #[serde(default)]
    pub stdout_truncated: bool,
    pub stderr: String,
    #[serde(default)]
    pub stderr_truncated: bool,
    /// Why the checker decided as it did: a built-in checker's note on
    /// where the output differs, a custom checker's stderr.
    pub checker_message: Option<String>,
}

impl TestResult {
    /// A test that did not run.
    pub fn skipped(name: String) -> Self {
        Self {
            name,
            verdict: Verdict::Skipped,
            time_ms: 0,
            cpu_time_ms: 0,
            memory_peak_kib: None,
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stdout_truncated: false,
            stderr: String::new(),
            stderr_truncated: false,
            checker_message: None,
        }
    }
}

/// The counts of a judged job's tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSummary {
    /// Tests given.
    pub total: usize,
    /// Tests accepted.
    pub passed: usize,
    /// Tests run and not accepted.
    pub failed: usize,
    /// Tests not run (after a failure with `stop_on_first_failure`).
    #[serde(default)]
    pub skipped: usize,
    /// The name of the first test not accepted; `None` when all were.
    pub first_failure: Option<String>,
}

impl TestSummary {
    pub fn of(tests: &[TestResult]) -> Self {
        let count = |f: &dyn Fn(Verdict) -> bool| tests.iter().filter(|t| f(t.verdict)).count();
        Self {
            total: tests.len(),
            passed: count(&|v| v == Verdict::Accepted),
            failed: count(&|v| !matches!(v, Verdict::Accepted | Verdict::Skipped)),
            skipped: count(&|v| v == Verdict::Skipped),
            first_failure: tests
                .iter()
                .find(|t| !matches!(t.verdict, Verdict::Accepted | Verdict::Skipped))
                .map(|t| t.name.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Job, JobResult, TaskId};

    #[test]
    fn records_without_judge_fields_still_read() {
        let job = Job::new(TaskId::new(), "python", "print(1)", 5);
        let mut value = serde_json::to_value(&job).unwrap();
        assert!(
            value.get("judge").is_none(),
            "plain jobs are written as before"
        );
        value.as_object_mut().unwrap().remove("judge");
        let back: Job = serde_json::from_value(value).unwrap();
        assert_eq!(back.judge, None);
        let result = JobResult::internal_error("x", 1);
        let value = serde_json::to_value(&result).unwrap();
        assert!(value.get("judge").is_none());
        let back: JobResult = serde_json::from_value(value).unwrap();
        assert_eq!(back.judge, None);
    }

    #[test]
    fn a_judged_job_round_trips() {
        let mut job = Job::new(TaskId::new(), "cpp", "int main(){}", 5);
        job.judge = Some(JudgeSpec {
            tests: vec![TestCase {
                name: "1".into(),
                stdin: "1 2\n".into(),
                expected_output: "3\n".into(),
                args: vec![],
                time_limit_ms: Some(500),
                memory_limit_mb: None,
            }],
            testset: None,
            checker: CheckerSpec::Float {
                abs: Some(1e-6),
                rel: None,
            },
            interactor: Some(HelperProgram {
                language: "cpp".into(),
                code: "int main(){return 0;}".into(),
                files: vec![],
            }),
            stop_on_first_failure: true,
        });
        let text = serde_json::to_string(&job).unwrap();
        assert!(
            text.contains(r#""checker":{"type":"float","abs":1e-6}"#),
            "{text}"
        );
        let back: Job = serde_json::from_str(&text).unwrap();
        assert_eq!(back, job);
        let checker: CheckerSpec = serde_json::from_str(r#"{"type":"lines"}"#).unwrap();
        assert_eq!(checker, CheckerSpec::Lines);
    }

    #[test]
    fn the_summary_counts_and_names_the_first_failure() {
        let mut tests: Vec<TestResult> = ["a", "b", "c", "d"]
            .map(|n| TestResult::skipped(n.into()))
            .into();
        tests[0].verdict = Verdict::Accepted;
        tests[1].verdict = Verdict::WrongAnswer;
        tests[2].verdict = Verdict::TimeLimit;
        let summary = TestSummary::of(&tests);
        assert_eq!(
            summary,
            TestSummary {
                total: 4,
                passed: 1,
                failed: 2,
                skipped: 1,
                first_failure: Some("b".into()),
            }
        );
    }
}
