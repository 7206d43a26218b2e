//! `code-runner run FILE`: run one source file and print what it printed.
//!
//! Without `--server` the file runs here, in the native sandbox (root
//! needed); with `--server URL` it goes through a running service's HTTP API,
//! waiting for the result with `GET /results/{id}?wait=N` (answered the moment
//! the job finishes) and showing a spinner on a terminal meanwhile. Either
//! way it prints the program's stdout and stderr to its own, and exits with
//! the program's exit status (128 + N when a signal killed it, 124 on a time
//! limit, 1 on any other failure, with the reason on stderr).
//!
//! Remote runs are live (docs/live.md): the output is printed as the
//! program writes it, read from `GET /results/{id}/events`; with
//! `--interactive` the job runs over the WebSocket `/run-code/ws` and this
//! command's standard input is the program's, line by line as it is typed
//! (Ctrl-D ends it, Ctrl-C sends the program SIGINT).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use code_runner_sandbox::{LanguageTable, NativeSandbox, Program, Sandbox};
use serde::Deserialize;
use serde_json::json;

use crate::config::{CommonArgs, WorkerArgs};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The source file.
    pub file: PathBuf,
    /// Its language; by default guessed from the file's extension.
    #[arg(long, short)]
    pub language: Option<String>,
    /// A code-runner server (e.g. http://127.0.0.1:8000); default: run locally.
    #[arg(long, env = "CODE_RUNNER_SERVER")]
    pub server: Option<String>,
    /// A file whose contents are the program's standard input (`-`: this
    /// command's own standard input). Default: none.
    #[arg(long, value_name = "FILE")]
    pub stdin: Option<PathBuf>,
    /// An extra source file for the program (a header, a module, another
    /// class), written next to it under its own file name. Repeatable.
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// The server's API key, if it needs one.
    #[arg(long, env = "CODE_RUNNER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Judge the program against a folder of tests: pairs `NAME.in` (input)
    /// and `NAME.out` (expected output). Prints a verdict per test and exits
    /// 0 only when every test is accepted.
    #[arg(long, value_name = "DIR", conflicts_with = "stdin")]
    pub tests: Option<PathBuf>,
    /// The checker of `--tests`: exact, lines (default), tokens, float
    /// (tolerance 1e-6) or unordered.
    #[arg(long, requires = "tests")]
    pub checker: Option<String>,
    /// An interactive problem's interactor for `--tests` (its language from
    /// its file name): run beside the program on each test as `interactor
    /// input output [answer]`, each one's stdout the other's stdin; its exit
    /// code decides (0 accepted, 1 wrong answer, 2 presentation error).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tests",
        conflicts_with = "checker"
    )]
    pub interactor: Option<PathBuf>,
    /// With --server: connect this terminal's standard input to the running
    /// program (Ctrl-D ends the input, Ctrl-C interrupts the program).
    #[arg(long, requires = "server", conflicts_with_all = ["stdin", "tests"])]
    pub interactive: bool,
    /// Arguments for the program, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// The limits given explicitly (flag or environment), which a remote run
    /// asks the server for; the server's own apply otherwise. Set by `main`.
    #[arg(skip)]
    pub requested: RequestedLimits,
}

/// Limits the user asked for, as opposed to the flags' defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestedLimits {
    pub time_limit_ms: Option<u64>,
    pub memory_limit_mb: Option<u64>,
}

/// The fields of `GET /results/{id}` this client reads.
#[derive(Debug, Deserialize)]
pub(crate) struct ResultBody {
    status: String,
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    stderr: Option<String>,
    #[serde(default)]
    compile_output: Option<String>,
    #[serde(default)]
    exit_code: Option<i32>,
    #[serde(default)]
    signal: Option<i32>,
}

/// What the program is given besides its source.
struct Inputs {
    stdin: String,
    files: Vec<(String, String)>,
}

fn read_inputs(args: &RunArgs) -> anyhow::Result<Inputs> {
    let stdin = match &args.stdin {
        None => String::new(),
        Some(path) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            text
        }
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --stdin {}", path.display()))?,
    };
    let mut files = Vec::new();
    for path in &args.files {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("--file {}: no usable file name", path.display()))?
            .to_owned();
        let content = std::fs::read_to_string(path)
            .with_context(|| format!("reading --file {}", path.display()))?;
        files.push((name, content));
    }
    Ok(Inputs { stdin, files })
}

pub async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let code = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let languages = args.common.language_table()?;
    let language = match &args.language {
        Some(name) => languages
            .resolve(name)
            .with_context(|| format!("unknown language {name:?}"))?,
        None => languages.for_file(&args.file).with_context(|| {
            format!(
                "cannot tell the language of {}; pass --language",
                args.file.display()
            )
        })?,
    }
    .clone();
    let inputs = read_inputs(&args)?;
    if let Some(dir) = &args.tests {
        let spec = code_runner_queue::judge::JudgeSpec {
            tests: crate::judge_cli::read_tests(dir, args.interactor.is_some())?,
            checker: crate::judge_cli::checker(args.checker.as_deref())?,
            interactor: match &args.interactor {
                Some(path) => Some(crate::judge_cli::interactor(path, &languages)?),
                None => None,
            },
            stop_on_first_failure: false,
            testset: None,
        };
        return match &args.server {
            Some(server) => {
                run_remote(server, &args, &language.name, code, inputs, Some(&spec)).await
            }
            None => {
                let files = source_files(&inputs);
                crate::judge_cli::judge_locally(&args, &languages, &language, code, files, spec)
                    .await
            }
        };
    }
    match &args.server {
        Some(server) => run_remote(server, &args, &language.name, code, inputs, None).await,
        None => run_local(&args, &languages, &language.name, code, inputs).await,
    }
}

async fn run_local(
    args: &RunArgs,
    languages: &LanguageTable,
    language: &str,
    code: String,
    inputs: Inputs,
) -> anyhow::Result<u8> {
    let language = languages.get(language).expect("resolved above").clone();
    let files = source_files(&inputs);
    if let Some(refusal) =
        code_runner_worker::files_refusal(&language, &code, &files, &args.worker.run_limits()?)
    {
        anyhow::bail!("{refusal}");
    }
    let sandbox =
        NativeSandbox::new(args.worker.native_config(1)).context("starting the native sandbox")?;
    let program = Program {
        language,
        source: code,
        stdin: inputs.stdin.into_bytes(),
        args: args.args.clone(),
        files: inputs.files,
        compile_limits: args.worker.compile_limits()?,
        run_limits: args.worker.run_limits()?,
    };
    let limits = program.run_limits;
    let execution = sandbox.execute(program).await?;
    let result = code_runner_worker::job_result(&execution, &limits, 0, 0);
    print_output(&result.stdout, &result.stderr)?;
    if let (Some(output), None) = (&result.compile_output, &execution.run) {
        eprint!("{output}");
    }
    Ok(exit_status(
        result.verdict.as_str(),
        result.exit_code,
        result.signal,
        result.message.as_deref(),
    ))
}

async fn run_remote(
    server: &str,
    args: &RunArgs,
    language: &str,
    code: String,
    inputs: Inputs,
    judge: Option<&code_runner_queue::judge::JudgeSpec>,
) -> anyhow::Result<u8> {
    let server = server.trim_end_matches('/');
    let client = reqwest::Client::new();
    let with_key = |request: reqwest::RequestBuilder| match &args.api_key {
        Some(key) => request.header("X-API-Key", key),
        None => request,
    };
    let mut body = json!({ "language": language, "code": code });
    if !inputs.stdin.is_empty() {
        body["stdin"] = json!(inputs.stdin);
    }
    if !args.args.is_empty() {
        body["args"] = json!(args.args);
    }
    if !inputs.files.is_empty() {
        body["files"] = inputs
            .files
            .iter()
            .map(|(name, content)| json!({ "name": name, "content": content }))
            .collect();
    }
    if let Some(ms) = args.requested.time_limit_ms {
        body["time_limit_ms"] = json!(ms);
    }
    if let Some(mb) = args.requested.memory_limit_mb {
        body["memory_limit_mb"] = json!(mb);
    }
    if let Some(spec) = judge {
        crate::judge_cli::request_fields(&mut body, spec)?;
    }
    if args.interactive {
        return crate::live_cli::interactive(server, args.api_key.as_deref(), &body).await;
    }
    // A plain run streams its output (`?stream=true`, read as SSE).
    let stream = judge.is_none();
    let submit_url = if stream {
        format!("{server}/run-code?stream=true")
    } else {
        format!("{server}/run-code")
    };
    let response = with_key(client.post(submit_url))
        .json(&body)
        .send()
        .await
        .with_context(|| format!("sending the job to {server}"))?;
    let status = response.status();
    let answer: serde_json::Value = response
        .json()
        .await
        .context("reading the server's answer")?;
    if !status.is_success() {
        bail!(
            "the server refused the job ({status}): {}",
            describe(&answer)
        );
    }
    let task_id = answer["task_id"]
        .as_str()
        .context("no task_id in the answer")?
        .to_owned();

    if stream {
        let request = with_key(client.get(format!("{server}/results/{task_id}/events")));
        if let Some(whole) = crate::live_cli::follow(request).await? {
            let body: ResultBody = serde_json::from_value(whole).context("reading the result")?;
            return Ok(finish_remote(body, false));
        }
        // A server without events: wait for the result as before.
    }
    let spinner = Spinner::start_if_terminal();
    let body = loop {
        let asked = Instant::now();
        let response = with_key(client.get(format!("{server}/results/{task_id}?wait=1")))
            .send()
            .await
            .context("waiting for the result")?;
        let status = response.status();
        if !status.is_success() {
            let answer: serde_json::Value = response.json().await.unwrap_or_default();
            bail!("cannot read the result ({status}): {}", describe(&answer));
        }
        let whole: serde_json::Value = response.json().await.context("reading the result")?;
        let body: ResultBody =
            serde_json::from_value(whole.clone()).context("reading the result")?;
        if body.status != "PENDING" {
            if judge.is_some() {
                drop(spinner);
                return crate::judge_cli::report_remote(&whole);
            }
            break body;
        }
        if let Some(spinner) = &spinner {
            spinner.set(if body.state.as_deref() == Some("running") {
                "running"
            } else {
                "queued"
            });
        }
        // A server without `?wait` answers at once: do not spin on it.
        if asked.elapsed() < Duration::from_millis(100) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    drop(spinner);
    let stdout = body.stdout.clone().unwrap_or_else(|| {
        body.result["output"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    print_output(&stdout, body.stderr.as_deref().unwrap_or_default())?;
    Ok(finish_remote(body, true))
}

/// The exit status of a finished remote run (its output already printed),
/// printing the compile output when the compile failed and
/// `print_compile_output`.
pub(crate) fn finish_remote(body: ResultBody, print_compile_output: bool) -> u8 {
    let verdict = body.verdict.clone().unwrap_or_else(|| {
        if body.status == "SUCCESS" {
            "ok".into()
        } else {
            "runtime_error".into()
        }
    });
    if verdict == "compile_error" {
        if let Some(output) = &body.compile_output {
            if print_compile_output {
                eprint!("{output}");
            }
            return exit_status(&verdict, None, None, Some("compilation failed"));
        }
    }
    exit_status(&verdict, body.exit_code, body.signal, body.result.as_str())
}

/// The `detail` of an error answer, readably.
fn describe(answer: &serde_json::Value) -> String {
    match &answer["detail"] {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(issues) => issues
            .iter()
            .map(|issue| {
                let loc: Vec<String> = issue["loc"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|part| match part {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                format!("{}: {}", loc.join("."), issue["msg"].as_str().unwrap_or(""))
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => answer.to_string(),
    }
}

/// A one-line spinner on stderr while the job waits, erased when dropped.
struct Spinner {
    state: Arc<Mutex<&'static str>>,
    task: tokio::task::JoinHandle<()>,
}

impl Spinner {
    fn start_if_terminal() -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let state = Arc::new(Mutex::new("queued"));
        let shown = state.clone();
        let task = tokio::spawn(async move {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let started = Instant::now();
            for frame in FRAMES.iter().cycle() {
                let state = *shown.lock().unwrap_or_else(|p| p.into_inner());
                eprint!(
                    "\r\x1b[2K{frame} {state} {:.1}s",
                    started.elapsed().as_secs_f64()
                );
                let _ = std::io::stderr().flush();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Some(Self { state, task })
    }

    fn set(&self, state: &'static str) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.task.abort();
        eprint!("\r\x1b[2K");
        let _ = std::io::stderr().flush();
    }
}

fn print_output(stdout: &str, stderr: &str) -> anyhow::Result<()> {
    std::io::stdout().write_all(stdout.as_bytes())?;
    std::io::stdout().flush()?;
    std::io::stderr().write_all(stderr.as_bytes())?;
    Ok(())
}

/// The exit status that stands for a verdict, printing the reason when the
/// program did not simply exit.
fn exit_status(
    verdict: &str,
    exit_code: Option<i32>,
    signal: Option<i32>,
    message: Option<&str>,
) -> u8 {
    match (verdict, exit_code, signal) {
        ("ok", _, _) => 0,
        ("runtime_error", Some(code), None) => code.clamp(0, 255) as u8,
        ("runtime_error", _, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
        (verdict, _, _) => {
            if let Some(message) = message {
                eprintln!("code-runner: {message}");
            }
            if verdict == "time_limit" {
                124
            } else {
                1
            }
        }
    }
}

/// The extra files as the queue's records.
fn source_files(inputs: &Inputs) -> Vec<code_runner_queue::SourceFile> {
    inputs
        .files
        .iter()
        .map(|(name, content)| code_runner_queue::SourceFile {
            name: name.clone(),
            content: content.clone(),
        })
        .collect()
}
