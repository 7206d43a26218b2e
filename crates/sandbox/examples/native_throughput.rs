//! Measures the native sandbox's throughput alone (no API, queue or Redis)
//! against the bare program, in alternating rounds so that both see the
//! same machine: `cargo run --release -p code-runner-sandbox --example
//! native_throughput [rounds] [jobs per round] [at once]`.
//!
//! Bare: python hellos two at a time (one per core, as `scripts/bench.sh`
//! runs its baseline), each started as `subprocess` would. Sandboxed: the
//! same hellos through `NativeSandbox::execute`, `at once` of them in
//! flight (4 by default: the worker's default CPU gate on two cores), over
//! 50 slots. The ratio of the two rates is what the sandbox alone leaves of
//! bare throughput; `scripts/bench.sh`'s (c) adds the API, Redis and the
//! worker's queue handling to it.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use code_runner_sandbox::{LanguageTable, NativeConfig, NativeSandbox, Program, Sandbox};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// `jobs` bare hellos, two threads each running its half back to back.
fn bare(jobs: usize) -> f64 {
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..jobs / 2 {
                    let out = Command::new("/usr/bin/python3")
                        .args(["-c", "print('hi')"])
                        .env_clear()
                        .env("PATH", "/usr/bin:/bin")
                        .output()
                        .expect("python3");
                    assert_eq!(out.stdout, b"hi\n");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("bare thread");
    }
    (jobs / 2 * 2) as f64 / started.elapsed().as_secs_f64()
}

/// `jobs` sandboxed hellos, `at_once` in flight.
async fn sandboxed(sandbox: &Arc<NativeSandbox>, jobs: usize, at_once: usize) -> f64 {
    let python = LanguageTable::builtin().get("python").unwrap().clone();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..at_once {
        let (sandbox, python, next) = (sandbox.clone(), python.clone(), next.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < jobs {
                let program = Program::new(python.clone(), "print('hi')");
                let run = sandbox.execute(program).await.unwrap().run.unwrap();
                assert_eq!(run.stdout, b"hi\n");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("sandboxed task");
    }
    jobs as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (rounds, jobs, at_once) = (arg(1, 5), arg(2, 400), arg(3, 4));
    let sandbox = Arc::new(
        NativeSandbox::new(NativeConfig {
            slots: 50,
            ..NativeConfig::default()
        })
        .expect("native sandbox"),
    );
    // Warm-up: the slots' sandboxes start, the page cache fills.
    sandboxed(&sandbox, 200, at_once).await;
    bare(100);
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let b = bare(jobs);
        let s = sandboxed(&sandbox, jobs, at_once).await;
        ratios.push(s / b);
        println!(
            "round {round}: bare {b:6.1} proc/s, sandboxed {s:6.1} jobs/s ({at_once} at once): {:.0} % of bare",
            100.0 * s / b
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median of {rounds} rounds: {:.0} % of bare",
        100.0 * ratios[ratios.len() / 2]
    );
}
