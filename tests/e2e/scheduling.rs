//! How the service's processes are scheduled: `SCHED_BATCH` by default for
//! the API, the worker and everything the worker starts (keepers, programs),
//! the host's policy with `--scheduling normal`; and a worker runs jobs on
//! one runtime thread (the default up to 8 cores) as on several.

use serde_json::Value;

use crate::helpers::{spawn_app, Options, TestApp};

/// `sched_getscheduler` as a job's program sees it: 0 `SCHED_OTHER`,
/// 3 `SCHED_BATCH`.
const POLICY: &str = "import os\nprint(os.sched_getscheduler(0))\n";

/// The policy of a service process, from the kernel (`/proc/PID/sched`).
fn policy_of(pid: u32) -> String {
    let sched = std::fs::read_to_string(format!("/proc/{pid}/sched")).unwrap();
    sched
        .lines()
        .find_map(|line| line.strip_prefix("policy"))
        .and_then(|rest| rest.split(':').nth(1))
        .map(|value| value.trim().to_owned())
        .unwrap_or_else(|| panic!("no policy in /proc/{pid}/sched:\n{sched}"))
}

async fn program_policy(app: &TestApp) -> String {
    let result: Value = app.run("python", POLICY).await;
    assert_eq!(result["verdict"], "ok", "{result}");
    result["stdout"].as_str().unwrap().trim().to_owned()
}

/// The API's, the worker's and a job's program's policy are all `want`.
async fn assert_policy_everywhere(app: &TestApp, want: &str) {
    for name in ["api", "worker-0"] {
        assert_eq!(policy_of(app.pid(name)), want, "{name}");
    }
    assert_eq!(program_policy(app).await, want);
}

#[tokio::test]
async fn the_service_and_its_programs_run_as_sched_batch_by_default() {
    let app = spawn_app(Options::default()).await;
    assert_policy_everywhere(&app, "3").await;
}

#[tokio::test]
async fn scheduling_normal_leaves_the_hosts_policy() {
    let app = spawn_app(Options {
        common_flags: vec!["--scheduling".into(), "normal".into()],
        ..Options::default()
    })
    .await;
    assert_policy_everywhere(&app, "0").await;
}

#[tokio::test]
async fn a_worker_on_several_runtime_threads_runs_jobs_too() {
    let app = spawn_app(Options {
        worker_flags: vec!["--runtime-threads".into(), "3".into()],
        ..Options::default()
    })
    .await;
    let threads = std::fs::read_dir(format!("/proc/{}/task", app.pid("worker-0")))
        .unwrap()
        .count();
    // The main thread and three runtime threads, at least.
    assert!(threads >= 4, "{threads} threads");
    for n in 0..3 {
        let result = app.run("python", &format!("print({n} * 7)")).await;
        assert_eq!(result["stdout"], format!("{}\n", n * 7), "{result}");
    }
}
