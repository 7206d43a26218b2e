//! What the worker itself decides, with a fake sandbox standing in for a
//! real one (no root needed): what a user is told when the sandbox fails,
//! and the jobs it refuses before they reach the sandbox at all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use code_runner_queue::{
    EmbeddedQueue, Job, JobResult, Queue, SourceFile, TaskId, TaskState, Verdict,
};
use code_runner_sandbox::{Execution, LanguageTable, Program, Sandbox, SandboxError};
use code_runner_worker::{Worker, WorkerConfig};

/// A sandbox that fails every program the way the native one fails when a
/// slot cannot be set up: with an error that names host paths.
#[derive(Default)]
struct FailingSandbox {
    calls: AtomicUsize,
}

#[async_trait]
impl Sandbox for FailingSandbox {
    async fn execute(&self, _program: Program) -> Result<Execution, SandboxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(SandboxError::Setup {
            what: "slot keeper: prepare /work/slot-3/Foo.java under /sys/fs/cgroup/code-runner-42"
                .into(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "File exists"),
        })
    }
}

/// Runs every queued job on a one-slot worker and returns its final result.
async fn run_one(sandbox: Arc<FailingSandbox>, job: &Job) -> JobResult {
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(60)));
    queue.submit(job).await.unwrap();
    let config = WorkerConfig {
        poll_wait: Duration::from_millis(100),
        ..WorkerConfig::new(1)
    };
    let mut worker = Worker::new(
        queue.clone(),
        sandbox,
        Arc::new(LanguageTable::builtin()),
        config,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        worker.try_execute_jobs().await.unwrap();
        worker.wait_idle().await;
        if let Some(TaskState::Done(result)) = queue.state(&job.id).await.unwrap() {
            return result;
        }
        assert!(Instant::now() < deadline, "task {} never finished", job.id);
    }
}

#[tokio::test]
async fn a_sandbox_failure_tells_the_user_the_task_id_and_no_host_path() {
    let sandbox = Arc::new(FailingSandbox::default());
    let job = Job::new(TaskId::new(), "python", "print(1)", 0);
    let result = run_one(sandbox.clone(), &job).await;
    assert_eq!(sandbox.calls.load(Ordering::SeqCst), 1);
    assert_eq!(result.verdict, Verdict::InternalError);
    let message = result.message.unwrap();
    assert!(message.contains(&job.id.to_string()), "{message}");
    assert!(
        !message.contains('/'),
        "a host path reached the user: {message}"
    );
    assert!(!message.contains("prepare"), "{message}");
    assert_eq!(result.language, "python");
}

/// A job with an extra file that would take the main source's place (or a
/// name given twice, or not a plain name), as an API that does not refuse
/// them could queue: the worker answers it itself, as the user's mistake,
/// and the sandbox never sees it.
#[tokio::test]
async fn extra_files_that_clash_are_refused_before_the_sandbox() {
    let file = |name: &str| SourceFile {
        name: name.into(),
        content: String::new(),
    };
    let java = "public class Foo { public static void main(String[] a) {} }";
    let cases = [
        (
            "java",
            java,
            vec![file("Helper.java"), file("Foo.java")],
            "Foo.java",
        ),
        ("java", "class A {}", vec![file("Main.java")], "Main.java"),
        ("python", "print(1)", vec![file("main.py")], "main.py"),
        ("c", "", vec![file("a.h"), file("a.h")], "a.h"),
        ("c", "", vec![file("../a.h")], "../a.h"),
    ];
    for (language, code, files, culprit) in cases {
        let sandbox = Arc::new(FailingSandbox::default());
        let mut job = Job::new(TaskId::new(), language, code, 0);
        job.files = files;
        let result = run_one(sandbox.clone(), &job).await;
        assert_eq!(
            sandbox.calls.load(Ordering::SeqCst),
            0,
            "{culprit}: {result:?}"
        );
        assert_eq!(
            result.verdict,
            Verdict::CompileError,
            "{culprit}: {result:?}"
        );
        let message = result.message.unwrap();
        assert!(message.contains(&format!("'{culprit}'")), "{message}");
    }
}

/// A judged job naming a test set that is gone by the time it starts (it
/// expired after the API checked it): `judge_error` saying so, without
/// running anything; with the set stored, the job gets its tests.
#[tokio::test]
async fn a_job_whose_test_set_expired_is_a_judge_error_that_says_so() {
    let sandbox = Arc::new(FailingSandbox::default());
    let id = format!("sha256:{}", "a".repeat(64));
    let mut job = Job::new(TaskId::new(), "python", "print(1)", 0);
    job.judge = Some(code_runner_queue::judge::JudgeSpec {
        tests: Vec::new(),
        checker: Default::default(),
        interactor: None,
        stop_on_first_failure: false,
        testset: Some(id.clone()),
    });
    let result = run_one(sandbox.clone(), &job).await;
    assert_eq!(sandbox.calls.load(Ordering::SeqCst), 0);
    assert_eq!(result.verdict, Verdict::JudgeError);
    let message = result.message.unwrap();
    assert!(
        message.contains(&id) && message.contains("expired"),
        "{message}"
    );
    assert_eq!(result.judge.unwrap().tests.len(), 0);
}

/// A sandbox whose programs each take 20 ms, counting how many run at once.
#[derive(Default)]
struct CountingSandbox {
    inside: AtomicUsize,
    most: AtomicUsize,
    calls: AtomicUsize,
}

#[async_trait]
impl Sandbox for CountingSandbox {
    async fn execute(&self, _program: Program) -> Result<Execution, SandboxError> {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(SandboxError::Setup {
            what: "counted".into(),
            source: std::io::Error::other("counted"),
        })
    }
}

/// The most jobs in the sandbox at once when 12 queued jobs meet a worker
/// with 12 slots and `cpu_parallelism` places at its CPU gate.
async fn most_at_once(cpu_parallelism: usize) -> usize {
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(60)));
    for _ in 0..12 {
        let job = Job::new(TaskId::new(), "python", "print(1)", 0);
        queue.submit(&job).await.unwrap();
    }
    let sandbox = Arc::new(CountingSandbox::default());
    let config = WorkerConfig {
        poll_wait: Duration::from_millis(100),
        cpu_parallelism,
        // Longer than a job: only a job's end lets the next one in.
        cpu_hold: Duration::from_secs(10),
        ..WorkerConfig::new(12)
    };
    let mut worker = Worker::new(
        queue.clone(),
        sandbox.clone(),
        Arc::new(LanguageTable::builtin()),
        config,
    )
    .unwrap();
    assert_eq!(
        worker.try_execute_jobs().await.unwrap(),
        code_runner_worker::Outcome::Started(12)
    );
    worker.wait_idle().await;
    assert_eq!(sandbox.calls.load(Ordering::SeqCst), 12);
    sandbox.most.load(Ordering::SeqCst)
}

/// The worker takes all 12 jobs at once (they hold its slots and are
/// reported running), but only `--cpu-parallelism` of them are in the
/// sandbox at a time; with as many places as slots, all 12 are.
#[tokio::test]
async fn the_cpu_gate_lets_only_its_places_into_the_sandbox_at_once() {
    assert_eq!(most_at_once(3).await, 3);
    assert_eq!(most_at_once(12).await, 12);
}
