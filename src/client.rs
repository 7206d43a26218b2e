//! `code-runner run FILE`: run one source file and print what it printed.
//!
//! Without `--server` the file runs here, in the native sandbox (root
//! needed); with `--server URL` it goes through a running service's HTTP API.
//! Either way the command exits with the program's exit status (128 + N when
//! a signal killed it, 124 on a time limit, 1 on any other failure).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use code_runner_sandbox::{LanguageTable, NativeSandbox, Program, Sandbox};
use serde::Deserialize;

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
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
}

/// The fields of `GET /results/{id}` this client reads.
#[derive(Debug, Deserialize)]
struct ResultBody {
    status: String,
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    stderr: Option<String>,
    #[serde(default)]
    exit_code: Option<i32>,
    #[serde(default)]
    signal: Option<i32>,
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
    match &args.server {
        Some(server) => run_remote(server, &language.name, code).await,
        None => run_local(&args, &languages, &language.name, code).await,
    }
}

async fn run_local(
    args: &RunArgs,
    languages: &LanguageTable,
    language: &str,
    code: String,
) -> anyhow::Result<u8> {
    let sandbox =
        NativeSandbox::new(args.worker.native_config(1)).context("starting the native sandbox")?;
    let program = Program {
        language: languages.get(language).expect("resolved above").clone(),
        source: code,
        stdin: Vec::new(),
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
        serde_json::to_value(result.verdict)?
            .as_str()
            .unwrap_or("internal_error"),
        result.exit_code,
        result.signal,
        result.message.as_deref(),
    ))
}

async fn run_remote(server: &str, language: &str, code: String) -> anyhow::Result<u8> {
    let server = server.trim_end_matches('/');
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{server}/run-code"))
        .json(&serde_json::json!({ "language": language, "code": code }))
        .send()
        .await
        .with_context(|| format!("sending the job to {server}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("reading the server's answer")?;
    if !status.is_success() {
        bail!("the server refused the job ({status}): {body}");
    }
    let task_id = body["task_id"]
        .as_str()
        .context("no task_id in the answer")?
        .to_owned();
    let mut delay = Duration::from_millis(20);
    loop {
        let body: ResultBody = client
            .get(format!("{server}/results/{task_id}"))
            .send()
            .await
            .context("polling the result")?
            .error_for_status()
            .context("polling the result")?
            .json()
            .await
            .context("reading the result")?;
        if body.status != "PENDING" {
            let stdout = body.stdout.clone().unwrap_or_else(|| {
                body.result["output"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            });
            print_output(&stdout, body.stderr.as_deref().unwrap_or_default())?;
            let verdict = body.verdict.clone().unwrap_or_else(|| {
                if body.status == "SUCCESS" {
                    "ok".into()
                } else {
                    "runtime_error".into()
                }
            });
            return Ok(exit_status(
                &verdict,
                body.exit_code,
                body.signal,
                body.result.as_str(),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(250));
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
