//! Latency of a python hello world on the docker backend, with and without
//! the pool of pre-started containers, against a bare
//! `docker run --rm <image> python3 -c "print('hi')"` measured in the same run.
//! `scripts/bench-docker.sh` builds and runs it.
//!
//! Usage: docker_latency [--runs N] [--image IMAGE] [--runtime RUNTIME]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use code_runner_sandbox::{DockerConfig, DockerSandbox, LanguageTable, Limits, Program, Sandbox};

struct Args {
    runs: usize,
    image: String,
    runtime: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        runs: 30,
        image: "code-runner-runner:latest".into(),
        runtime: "runc".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => args.runs = value.parse().expect("--runs N"),
            "--image" => args.image = value,
            "--runtime" => args.runtime = value,
            _ => panic!("unknown flag {flag}"),
        }
    }
    args
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn hello() -> Program {
    Program::new(
        LanguageTable::builtin().get("python").unwrap().clone(),
        "print('hi')",
    )
}

async fn job(sandbox: &DockerSandbox) -> Duration {
    let started = Instant::now();
    let execution = sandbox.execute(hello()).await.expect("sandbox works");
    let elapsed = started.elapsed();
    let run = execution.run.expect("ran");
    assert_eq!(run.stdout, b"hi\n", "{run:?}");
    elapsed
}

fn bare_docker_run(image: &str, runtime: &str) -> Duration {
    let started = Instant::now();
    let output = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--runtime",
            runtime,
            "--entrypoint",
            "/usr/bin/python3",
            image,
            "-c",
            "print('hi')",
        ])
        .output()
        .expect("docker CLI");
    let elapsed = started.elapsed();
    assert_eq!(output.stdout, b"hi\n", "{output:?}");
    elapsed
}

fn report(name: &str, samples: &[Duration]) {
    println!(
        "{name:<44} p50 {:>7.1} ms   p90 {:>7.1} ms   min {:>7.1} ms   n={}",
        ms(percentile(samples, 50.0)),
        ms(percentile(samples, 90.0)),
        ms(percentile(samples, 0.0)),
        samples.len()
    );
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let config = |name: &str, pool_size: usize| DockerConfig {
        image: args.image.clone(),
        runtime: args.runtime.clone(),
        instance: format!("bench-{}-{name}", std::process::id()),
        pool_size,
        pool_profiles: vec![Limits::RUN_DEFAULT],
        ..DockerConfig::default()
    };
    let warmups = 3;

    // Bare `docker run`, the same image and runtime.
    let mut bare = Vec::new();
    for i in 0..warmups + args.runs {
        let d = bare_docker_run(&args.image, &args.runtime);
        if i >= warmups {
            bare.push(d);
        }
    }

    // No pool: every job creates and starts its container.
    let cold = Arc::new(
        DockerSandbox::new(config("cold", 0))
            .await
            .expect("sandbox"),
    );
    let mut no_pool = Vec::new();
    for i in 0..warmups + args.runs {
        let d = job(&cold).await;
        if i >= warmups {
            no_pool.push(d);
        }
    }
    cold.close().await;

    // The pool, warm before each job (jobs arriving slower than it refills).
    let warm = Arc::new(
        DockerSandbox::new(config("pool", 2))
            .await
            .expect("sandbox"),
    );
    let mut pooled = Vec::new();
    for i in 0..warmups + args.runs {
        assert!(warm.wait_for_pools(Duration::from_secs(60)).await);
        let d = job(&warm).await;
        if i >= warmups {
            pooled.push(d);
        }
    }
    // Back to back: as fast as jobs come, the pool drains to its refill rate.
    assert!(warm.wait_for_pools(Duration::from_secs(60)).await);
    let mut back_to_back = Vec::new();
    let started = Instant::now();
    for _ in 0..args.runs {
        back_to_back.push(job(&warm).await);
    }
    let rate = args.runs as f64 / started.elapsed().as_secs_f64();
    warm.close().await;

    println!(
        "python hello world on the docker backend (image {}, runtime {}), {} runs each:",
        args.image, args.runtime, args.runs
    );
    report("bare `docker run --rm IMAGE python3 -c ...`", &bare);
    report("docker sandbox, no pool", &no_pool);
    report("docker sandbox, pool (warm)", &pooled);
    report("docker sandbox, pool, back to back", &back_to_back);
    println!("back to back: {rate:.1} jobs/s with one job at a time");
    let p50 = ms(percentile(&pooled, 50.0));
    println!(
        "target: p50 with the pool <= 100 ms: {}",
        if p50 <= 100.0 { "met" } else { "NOT met" }
    );
}
