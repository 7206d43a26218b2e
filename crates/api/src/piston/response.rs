//! A finished job as Piston's `POST /api/v2/execute` answers it:
//! `{language, version, run, compile?}`, each stage
//! `{stdout, stderr, output, code, signal, message, status, cpu_time,
//! wall_time, memory}` with times in milliseconds and memory in bytes.
//!
//! What our result cannot say the way Piston does, and what is written
//! instead:
//! - `output` is `stdout` then `stderr`, not their interleaving in time
//!   (the sandbox keeps the two streams apart).
//! - The compile stage's own time and memory are not measured apart from
//!   the job's: its `cpu_time`, `wall_time` and `memory` are `null` after a
//!   successful compile, and the run stage's `cpu_time` includes the
//!   compiler's CPU time.
//! - The compiler's exit code is not kept: a failed compile reports
//!   `code: 1`, a successful one `code: 0`. Its diagnostics (stdout and
//!   stderr together) are the stage's `stderr` and `output`.
//! - `status`: `RE` (non-zero exit), `SG` (killed by a signal; also a
//!   memory limit, whose kill Piston's isolate reports so), `TO` (time
//!   limit), `OL` (output limit, either stream), `XX` (internal error,
//!   cancelled); `EL` is never given, as the output cap counts both streams.

use code_runner_queue::{JobResult, Verdict};
use serde::Serialize;

use super::runtimes::Runtime;

/// The body of a `200` answer.
#[derive(Debug, Serialize)]
pub(crate) struct ExecuteResponse {
    pub(crate) language: String,
    pub(crate) version: String,
    pub(crate) run: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compile: Option<Stage>,
}

/// One stage, compile or run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Stage {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) output: String,
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<&'static str>,
    pub(crate) message: Option<String>,
    pub(crate) status: Option<&'static str>,
    /// Milliseconds.
    pub(crate) cpu_time: Option<u64>,
    /// Milliseconds.
    pub(crate) wall_time: Option<u64>,
    /// Bytes.
    pub(crate) memory: Option<u64>,
}

impl ExecuteResponse {
    pub(crate) fn new(runtime: &Runtime, result: &JobResult) -> Self {
        let (compile, run) = stages(result);
        Self {
            language: runtime.language.clone(),
            version: runtime.version.clone(),
            run,
            compile,
        }
    }

    /// The answer for a job that did not finish within the longest wait
    /// (or whose result was gone): Piston's internal-error status, `XX`,
    /// with the reason, rather than a `5xx` that Piston clients do not read.
    pub(crate) fn unfinished(runtime: &Runtime, message: String) -> Self {
        Self {
            language: runtime.language.clone(),
            version: runtime.version.clone(),
            run: Stage {
                stdout: String::new(),
                stderr: String::new(),
                output: String::new(),
                code: None,
                signal: None,
                message: Some(message),
                status: Some("XX"),
                cpu_time: None,
                wall_time: None,
                memory: None,
            },
            compile: None,
        }
    }
}

/// The compile stage (for a compiled language) and the run stage.
fn stages(result: &JobResult) -> (Option<Stage>, Stage) {
    let diagnostics = result.compile_output.as_deref();
    if result.verdict == Verdict::CompileError {
        let text = diagnostics.unwrap_or_default();
        let (status, signal, code) = match result.message.as_deref() {
            None => (Some("RE"), None, Some(1)),
            Some(m) if m.starts_with("Compilation time limit") => {
                (Some("TO"), Some("SIGKILL"), None)
            }
            Some(m) if m.starts_with("Compilation memory limit") => {
                (Some("SG"), Some("SIGKILL"), None)
            }
            Some(m) if m.starts_with("Compilation output limit") => {
                (Some("OL"), Some("SIGKILL"), None)
            }
            // Refused before anything ran (its extra files could not be
            // set up): the message says why.
            Some(_) => (Some("XX"), None, None),
        };
        let stage = Stage {
            stdout: String::new(),
            stderr: text.to_owned(),
            output: text.to_owned(),
            code,
            signal,
            message: result.message.clone(),
            status,
            cpu_time: Some(result.cpu_time_ms),
            wall_time: None,
            memory: None,
        };
        // Piston copies a failed compile into `run`, for older clients.
        return match diagnostics {
            Some(_) => (Some(stage.clone()), stage),
            None => (None, stage),
        };
    }
    let compile = diagnostics.map(|text| Stage {
        stdout: String::new(),
        stderr: text.to_owned(),
        output: text.to_owned(),
        code: Some(0),
        signal: None,
        message: None,
        status: None,
        cpu_time: None,
        wall_time: None,
        memory: None,
    });
    let killed = Some("SIGKILL");
    let named = result.signal.map(signal_name);
    let (status, signal) = match result.verdict {
        Verdict::Ok => (None, named),
        Verdict::RuntimeError if named.is_some() => (Some("SG"), named),
        Verdict::RuntimeError => (Some("RE"), None),
        Verdict::TimeLimit => (Some("TO"), killed),
        Verdict::MemoryLimit => (Some("SG"), named.or(killed)),
        Verdict::OutputLimit => (Some("OL"), killed),
        _ => (Some("XX"), named),
    };
    let mut output = String::with_capacity(result.stdout.len() + result.stderr.len());
    output.push_str(&result.stdout);
    output.push_str(&result.stderr);
    let run = Stage {
        stdout: result.stdout.clone(),
        stderr: result.stderr.clone(),
        output,
        code: result.exit_code,
        signal,
        // The reason, without the stderr tail our message quotes (stderr
        // is right there).
        message: result
            .message
            .as_deref()
            .map(|m| m.lines().next().unwrap_or_default().to_owned()),
        status,
        cpu_time: Some(result.cpu_time_ms),
        wall_time: Some(result.wall_time_ms),
        memory: result.memory_peak_kib.map(|kib| kib * 1024),
    };
    (compile, run)
}

/// Linux's name of a signal, as Piston reports it.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(signal)
        .ok()
        .and_then(|n| NAMES.get(n))
        .filter(|name| !name.is_empty())
        .copied()
        .unwrap_or("SIGUNKNOWN")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piston::runtimes::Runtimes;
    use crate::state::SupportedLanguage;
    use serde_json::json;

    fn result(verdict: Verdict) -> JobResult {
        let mut result = JobResult::internal_error("x", 0);
        result.verdict = verdict;
        result.message = None;
        result.stdout = "out\n".into();
        result.stderr = "err\n".into();
        result.exit_code = Some(0);
        result.wall_time_ms = 154;
        result.cpu_time_ms = 8;
        result.memory_peak_kib = Some(1133);
        result
    }

    fn runtime(name: &str) -> Runtime {
        let table = vec![SupportedLanguage {
            name: name.into(),
            version: "gcc 12 (C17)".into(),
            aliases: vec![],
            file_name: "main.c".into(),
        }];
        Runtimes::new(&table).all()[0].clone()
    }

    #[test]
    fn a_success_has_piston_units_and_no_status() {
        let body = serde_json::to_value(ExecuteResponse::new(
            &runtime("python"),
            &result(Verdict::Ok),
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({
                "language": "python",
                "version": "12.0.0",
                "run": {
                    "stdout": "out\n", "stderr": "err\n", "output": "out\nerr\n",
                    "code": 0, "signal": null, "message": null, "status": null,
                    "cpu_time": 8, "wall_time": 154, "memory": 1133 * 1024,
                }
            })
        );
    }

    #[test]
    fn a_compiled_language_has_a_compile_stage() {
        let mut ok = result(Verdict::Ok);
        ok.compile_output = Some("warning: x\n".into());
        let body = serde_json::to_value(ExecuteResponse::new(&runtime("cpp"), &ok)).unwrap();
        assert_eq!(body["language"], "c++");
        assert_eq!(body["compile"]["code"], 0);
        assert_eq!(body["compile"]["stderr"], "warning: x\n");
        assert_eq!(body["compile"]["status"], json!(null));
        assert_eq!(body["run"]["stdout"], "out\n");
    }

    #[test]
    fn a_failed_compile_is_copied_into_run() {
        let mut failed = result(Verdict::CompileError);
        failed.compile_output = Some("main.c:1: error: expected ';'\n".into());
        failed.stdout.clear();
        failed.stderr.clear();
        failed.exit_code = None;
        let (compile, run) = stages(&failed);
        let compile = compile.expect("a compile stage");
        assert_eq!(compile, run);
        assert_eq!(run.code, Some(1));
        assert_eq!(run.status, Some("RE"));
        assert_eq!(run.stderr, "main.c:1: error: expected ';'\n");
        assert_eq!(run.output, run.stderr);
        assert_eq!(run.stdout, "");

        failed.message = Some("Compilation time limit exceeded".into());
        let (_, run) = stages(&failed);
        assert_eq!(
            (run.status, run.signal, run.code),
            (Some("TO"), Some("SIGKILL"), None)
        );
    }

    #[test]
    fn verdicts_map_to_piston_statuses() {
        let mut cases = Vec::new();
        let mut exited = result(Verdict::RuntimeError);
        exited.exit_code = Some(3);
        exited.message = Some("Exited with code 3\nerr".into());
        cases.push((exited, Some("RE"), None, Some(3)));
        let mut segv = result(Verdict::RuntimeError);
        segv.exit_code = None;
        segv.signal = Some(11);
        cases.push((segv, Some("SG"), Some("SIGSEGV"), None));
        let mut slow = result(Verdict::TimeLimit);
        slow.exit_code = None;
        cases.push((slow, Some("TO"), Some("SIGKILL"), None));
        let mut big = result(Verdict::MemoryLimit);
        big.exit_code = None;
        cases.push((big, Some("SG"), Some("SIGKILL"), None));
        let mut loud = result(Verdict::OutputLimit);
        loud.exit_code = None;
        cases.push((loud, Some("OL"), Some("SIGKILL"), None));
        let mut broken = result(Verdict::InternalError);
        broken.exit_code = None;
        cases.push((broken, Some("XX"), None, None));
        for (result, status, signal, code) in cases {
            let (compile, run) = stages(&result);
            assert!(compile.is_none());
            assert_eq!(
                (run.status, run.signal, run.code),
                (status, signal, code),
                "{:?}",
                result.verdict
            );
        }
        let mut exited = result(Verdict::RuntimeError);
        exited.message = Some("Exited with code 3\nTraceback...".into());
        assert_eq!(
            stages(&exited).1.message.as_deref(),
            Some("Exited with code 3")
        );
    }

    #[test]
    fn unknown_memory_stays_null() {
        let mut unmeasured = result(Verdict::Ok);
        unmeasured.memory_peak_kib = None;
        assert_eq!(stages(&unmeasured).1.memory, None);
    }

    #[test]
    fn signals_have_their_linux_names() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(31), "SIGSYS");
        assert_eq!(signal_name(0), "SIGUNKNOWN");
        assert_eq!(signal_name(64), "SIGUNKNOWN");
        assert_eq!(signal_name(-1), "SIGUNKNOWN");
    }
}
