//! The worker stopping jobs before they end, with the real native sandbox
//! and the embedded queue: a cancelled running job is killed (no process,
//! cgroup or scratch mount of it is left, and its sandbox slot is usable
//! again), and a shutdown lets running jobs finish within the grace period and
//! releases the ones that do not. Needs root and bubblewrap, like the sandbox
//! suite.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use code_runner_queue::{
    Cancelled, EmbeddedQueue, Job, Queue, Redelivery, TaskId, TaskState, Verdict,
};
use code_runner_sandbox::{LanguageTable, NativeConfig, NativeSandbox};
use code_runner_worker::{Worker, WorkerConfig};
use tokio::sync::oneshot;

const CAP: Duration = Duration::from_secs(30);

/// A worker with `slots` slots on the native sandbox, running until the
/// returned sender fires (or is dropped).
fn spawn_worker(
    queue: Arc<EmbeddedQueue>,
    slots: u32,
    shutdown_grace: Duration,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let sandbox = NativeSandbox::new(NativeConfig {
        slots,
        ..NativeConfig::default()
    })
    .expect("native sandbox usable (run as root with bubblewrap installed)");
    let config = WorkerConfig {
        shutdown_grace,
        cancel_check: Duration::from_millis(100),
        poll_wait: Duration::from_millis(200),
        redelivery: Redelivery {
            visibility_timeout: Duration::from_secs(60),
            max_deliveries: 3,
        },
        ..WorkerConfig::new(slots as usize)
    };
    let worker = Worker::new(
        queue,
        Arc::new(sandbox),
        Arc::new(LanguageTable::builtin()),
        config,
    )
    .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(worker.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    (stop, handle)
}

/// A python job that sleeps; `marker` is passed as an argument so its
/// processes can be found in `/proc`.
fn sleeper(marker: &str, seconds: u32) -> Job {
    let mut job = Job::new(
        TaskId::new(),
        "python",
        format!("import time\nprint('started', flush=True)\ntime.sleep({seconds})\nprint('slept')"),
        0,
    );
    job.args = vec![marker.to_owned()];
    job
}

fn processes_with(marker: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .count()
}

/// Slot cgroups of this process (`code-runner-<pid>/slot-<n>-<seq>`).
fn our_cgroups() -> Vec<PathBuf> {
    let parent = format!("code-runner-{}", std::process::id());
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let in_ours = dir.file_name().is_some_and(|name| name == parent.as_str());
                if in_ours && entry.file_name().to_string_lossy().starts_with("slot-") {
                    found.push(entry.path());
                }
                stack.push(entry.path());
            }
        }
    }
    found
}

async fn wait_until<F: FnMut() -> bool>(what: &str, mut check: F) {
    let deadline = Instant::now() + CAP;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn final_state(queue: &EmbeddedQueue, id: &TaskId) -> code_runner_queue::JobResult {
    let deadline = Instant::now() + CAP;
    loop {
        if let Some(TaskState::Done(result)) = queue.state(id).await.unwrap() {
            return result;
        }
        assert!(Instant::now() < deadline, "task {id} never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Submits two sleeping jobs on a two-slot worker, waits until both run,
/// cancels them and checks they are killed at once and end as cancelled.
async fn cancel_two_running_jobs(queue: &EmbeddedQueue, marker: &str) {
    let jobs = [sleeper(marker, 60), sleeper(marker, 60)];
    for job in &jobs {
        queue.submit(job).await.unwrap();
    }
    wait_until("both jobs run", || processes_with(marker) >= 2).await;
    for job in &jobs {
        let cancelled = queue.cancel(&job.id, 1).await.unwrap();
        assert!(matches!(cancelled, Cancelled::Now(_)), "{cancelled:?}");
    }
    let t0 = Instant::now();
    wait_until("the cancelled jobs' processes are gone", || {
        processes_with(marker) == 0
    })
    .await;
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "stopping took {:?}",
        t0.elapsed()
    );
    for job in &jobs {
        let result = final_state(queue, &job.id).await;
        assert_eq!(result.verdict, Verdict::Cancelled);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_running_jobs_kills_them_at_once() {
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(600)));
    let (stop, worker) = spawn_worker(queue.clone(), 2, Duration::from_secs(10));
    let marker = format!("cancel-me-{}", TaskId::new());
    cancel_two_running_jobs(&queue, &marker).await;
    wait_until("the stopped jobs' processes are gone", || {
        processes_with(&marker) == 0
    })
    .await;
    stop.send(()).unwrap();
    tokio::time::timeout(CAP, worker).await.unwrap().unwrap();
}

/// What a dropped `NativeSandbox::execute` future must also give back: its
/// slot (else, once every slot has had a job stopped, the next job panics
/// with "a free slot behind the semaphore") and its step cgroups (else they
/// stay until the next start-up sweep).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_jobs_give_back_their_slots_and_cgroups() {
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(600)));
    let (stop, worker) = spawn_worker(queue.clone(), 2, Duration::from_secs(10));
    let marker = format!("cancel-me-{}", TaskId::new());
    // Every slot gets a stopped job, twice over.
    cancel_two_running_jobs(&queue, &marker).await;
    cancel_two_running_jobs(&queue, &marker).await;
    wait_until("the stopped jobs' cgroups are removed", || {
        our_cgroups().is_empty()
    })
    .await;
    let ok = Job::new(TaskId::new(), "python", "print('after')", 0);
    let ok2 = Job::new(TaskId::new(), "python", "print('after')", 0);
    queue.submit(&ok).await.unwrap();
    queue.submit(&ok2).await.unwrap();
    for id in [ok.id, ok2.id] {
        let result = final_state(&queue, &id).await;
        assert_eq!(result.verdict, Verdict::Ok, "{result:?}");
        assert_eq!(result.stdout, "after\n");
    }
    stop.send(()).unwrap();
    tokio::time::timeout(CAP, worker).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_short_jobs_and_releases_long_ones() {
    let queue = Arc::new(EmbeddedQueue::new(Duration::from_secs(600)));
    let (stop, worker) = spawn_worker(queue.clone(), 2, Duration::from_secs(2));
    let marker = format!("shutdown-{}", TaskId::new());
    let short = sleeper(&marker, 1);
    let long = sleeper(&marker, 60);
    let queued = sleeper(&marker, 1);
    queue.submit(&short).await.unwrap();
    queue.submit(&long).await.unwrap();
    wait_until("both jobs run", || processes_with(&marker) >= 2).await;
    queue.submit(&queued).await.unwrap();

    let t0 = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(CAP, worker).await.unwrap().unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "shutdown took {took:?} with a 2 s grace period"
    );
    // The released job's slot was killed as the worker stopped; the kernel
    // takes a moment to reap a killed process tree on a loaded machine. A
    // job that truly outlived its worker sleeps on for a minute.
    let reaped = Instant::now() + Duration::from_secs(3);
    while processes_with(&marker) > 0 && Instant::now() < reaped {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(processes_with(&marker), 0, "a job outlived its worker");

    // The short job finished and stored its result.
    let result = final_state(&queue, &short.id).await;
    assert_eq!(result.stdout, "started\nslept\n");
    // The long one was released: pending, and another worker takes it at once
    // without it counting as a delivery.
    assert_eq!(
        queue.state(&long.id).await.unwrap(),
        Some(TaskState::Pending)
    );
    let policy = Redelivery {
        visibility_timeout: Duration::from_secs(3600),
        max_deliveries: 3,
    };
    let again = queue.reclaim("next", 10, &policy).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.id, long.id);
    assert_eq!(again[0].attempt, 1);
    // The job that was still queued was never taken.
    let waiting = queue
        .reserve("next", 10, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].job.id, queued.id);
}
