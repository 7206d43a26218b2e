//! Measures the native sandbox's cost per job against a bare run of the same
//! program, interleaved so both see the same machine load:
//! `cargo run --release -p code-runner-sandbox --example native_latency [runs] [spin [CPUS]]`.
//!
//! With `spin`, another slot runs a job of eight processes spinning on every
//! core the whole time (each slot capped at CPUS cores, 1 by default): how
//! much one job's CPU hunger slows everyone else's hello.

use std::process::Command;
use std::time::{Duration, Instant};

use code_runner_sandbox::{LanguageTable, Limits, NativeConfig, NativeSandbox, Program, Sandbox};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let spin = std::env::args().nth(2).as_deref() == Some("spin");
    let cpus_per_slot: f64 = std::env::args()
        .nth(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1.0);
    let sandbox = std::sync::Arc::new(
        NativeSandbox::new(NativeConfig {
            slots: 4,
            cpus_per_slot,
            ..NativeConfig::default()
        })
        .expect("native sandbox"),
    );
    let python = LanguageTable::builtin().get("python").unwrap().clone();
    if spin {
        let mut limits = Limits::RUN_DEFAULT;
        limits.wall_time = Duration::from_secs(600);
        limits.cpu_time = Duration::from_secs(600);
        let spinner = Program {
            language: python.clone(),
            source: "import os\nfor _ in range(3):\n    os.fork()\nwhile True:\n    pass\n".into(),
            stdin: Vec::new(),
            args: Vec::new(),
            files: Vec::new(),
            compile_limits: Limits::COMPILE_DEFAULT,
            run_limits: limits,
        };
        let sandbox = sandbox.clone();
        tokio::spawn(async move { sandbox.execute(spinner).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        println!("with 8 processes spinning in another slot ({cpus_per_slot} cores per slot)");
    }
    let (mut bare, mut boxed, mut inner) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 5 {
        let started = Instant::now();
        let status = Command::new("/usr/bin/python3")
            .args(["-c", "print('hi')"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        let bare_time = started.elapsed();
        assert!(status.status.success());
        let program = Program::new(python.clone(), "print('hi')");
        let started = Instant::now();
        let execution = sandbox.execute(program).await.unwrap();
        let boxed_time = started.elapsed();
        let run = execution.run.unwrap();
        assert_eq!(run.stdout, b"hi\n");
        if i >= 5 {
            bare.push(bare_time);
            boxed.push(boxed_time);
            inner.push(run.wall_time);
        }
    }
    for v in [&mut bare, &mut boxed, &mut inner] {
        v.sort();
    }
    println!(
        "bare python3 -c     p50 {:6.2} ms  p90 {:6.2} ms",
        percentile(&bare, 0.5),
        percentile(&bare, 0.9)
    );
    println!(
        "sandboxed execute   p50 {:6.2} ms  p90 {:6.2} ms",
        percentile(&boxed, 0.5),
        percentile(&boxed, 0.9)
    );
    println!("  of which the step p50 {:6.2} ms", percentile(&inner, 0.5));
}
