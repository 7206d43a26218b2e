//! Turns what the sandbox saw into the task's result: a verdict, the seed's
//! human-readable message, and the program's output as text.

use code_runner_queue::{JobResult, Verdict};
use code_runner_sandbox::{Execution, Limits, StepReport, Termination};

/// How much of stderr a runtime-error message quotes.
const STDERR_TAIL: usize = 4096;

/// The result of a finished execution.
pub fn job_result(
    execution: &Execution,
    limits: &Limits,
    started_at_ms: u64,
    finished_at_ms: u64,
) -> JobResult {
    let compile_output = execution.compile.as_ref().map(|c| {
        let mut text = lossy(&c.stdout);
        text.push_str(&lossy(&c.stderr));
        text
    });
    let (verdict, message, step) = match (&execution.compile, &execution.run) {
        (_, Some(run)) => {
            let (verdict, message) = run_verdict(run, limits);
            (verdict, message, Some(run))
        }
        (Some(compile), None) => {
            let message = match compile.termination {
                Termination::TimeLimit => Some("Compilation time limit exceeded".to_owned()),
                Termination::MemoryLimit => Some("Compilation memory limit exceeded".to_owned()),
                Termination::OutputLimit => Some("Compilation output limit exceeded".to_owned()),
                // The diagnostics are stored once, in `compile_output`; the
                // API puts them in the failure message it answers with.
                Termination::Exited => None,
            };
            (Verdict::CompileError, message, None)
        }
        (None, None) => (
            Verdict::InternalError,
            Some("the sandbox ran nothing".to_owned()),
            None,
        ),
    };
    let cpu = execution
        .compile
        .iter()
        .chain(execution.run.iter())
        .map(|s| s.cpu_time.as_millis() as u64)
        .sum();
    JobResult {
        verdict,
        message,
        stdout: step.map(|s| lossy(&s.stdout)).unwrap_or_default(),
        stderr: step.map(|s| lossy(&s.stderr)).unwrap_or_default(),
        compile_output,
        exit_code: step.and_then(|s| s.exit_code),
        signal: step.and_then(|s| s.signal),
        output_truncated: step.is_some_and(|s| s.output_truncated),
        wall_time_ms: step.map(|s| s.wall_time.as_millis() as u64).unwrap_or(0),
        compile_time_ms: execution
            .compile
            .as_ref()
            .map(|c| c.wall_time.as_millis() as u64),
        cpu_time_ms: cpu,
        memory_peak_kib: step
            .and_then(|s| s.memory_peak_bytes)
            .map(|bytes| bytes / 1024),
        started_at_ms,
        finished_at_ms,
        // The caller knows the job; the sandbox does not.
        submitted_at_ms: 0,
        language: String::new(),
        language_version: String::new(),
        judge: None,
    }
}

fn run_verdict(run: &StepReport, limits: &Limits) -> (Verdict, Option<String>) {
    match run.termination {
        Termination::TimeLimit => (
            Verdict::TimeLimit,
            Some(format!(
                "Time limit exceeded ({})",
                seconds(limits.wall_time.as_millis() as u64)
            )),
        ),
        Termination::MemoryLimit => (
            Verdict::MemoryLimit,
            Some(format!(
                "Memory limit exceeded ({} MiB)",
                limits.memory_mb()
            )),
        ),
        Termination::OutputLimit => (
            Verdict::OutputLimit,
            Some(format!(
                "Output limit exceeded ({} bytes)",
                limits.output_bytes
            )),
        ),
        Termination::Exited if run.succeeded() => (Verdict::Ok, None),
        Termination::Exited => {
            let reason = match (run.exit_code, run.signal) {
                (_, Some(signal)) => format!("Killed by signal {signal} ({})", signal_name(signal)),
                (Some(code), None) => format!("Exited with code {code}"),
                (None, None) => "Exited abnormally".to_owned(),
            };
            let tail = stderr_tail(&run.stderr);
            let message = if tail.trim().is_empty() {
                reason
            } else {
                format!("{reason}\n{tail}")
            };
            (Verdict::RuntimeError, Some(message))
        }
    }
}

fn stderr_tail(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    lossy(&stderr[start..])
}

fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.3} s", ms as f64 / 1000.0)
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => "signal",
    }
}

/// Program output as text: UTF-8, invalid bytes replaced (SPEC §2).
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
