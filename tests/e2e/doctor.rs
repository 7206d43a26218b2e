//! `code-runner doctor`: on this host (everything the native sandbox needs
//! is here: exit 0), and with one part taken away through its own settings
//! -- bubblewrap, a toolchain, the cgroup, root -- each named as missing,
//! with its fix, and exit 1. Nothing of the host is changed.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use crate::helpers::BIN;

fn doctor(args: &[&str], configure: impl FnOnce(&mut Command)) -> (i32, String) {
    let mut command = Command::new(BIN);
    command
        .arg("doctor")
        .args(args)
        // The worker's environment must not leak into what is checked.
        .env_remove("CODE_RUNNER_BWRAP")
        .env_remove("CODE_RUNNER_LANGUAGES")
        .env_remove("CODE_RUNNER_CGROUP_PATH")
        .env_remove("CODE_RUNNER_FIRST_UID");
    configure(&mut command);
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run code-runner doctor");
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        stderr.is_empty(),
        "doctor wrote to stderr: {}",
        String::from_utf8_lossy(&stderr)
    );
    (status.code().expect("doctor exited"), stdout)
}

/// The line of `check` and the fix under it, when the check is missing.
fn missing<'a>(report: &'a str, check: &str) -> (&'a str, &'a str) {
    let mut lines = report.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("MISSING") && line[8..].trim_start().starts_with(check) {
            let fix = lines.next().unwrap_or_default();
            assert!(
                fix.trim_start().starts_with("fix: "),
                "no fix under {line:?}:\n{report}"
            );
            return (line, fix);
        }
    }
    panic!("no MISSING {check:?} in:\n{report}");
}

#[test]
fn doctor_passes_on_this_host() {
    let (code, report) = doctor(&[], |_| {});
    assert_eq!(code, 0, "{report}");
    assert!(!report.contains("MISSING"), "{report}");
    for check in [
        "root",
        "capabilities",
        "bubblewrap ",
        "user namespace (as uid 200000)",
        "namespaces in it",
        "bubblewrap sandbox",
        "seccomp",
        "cgroup ",
        "uid leases",
        "language c ",
        "language cpp",
        "language java ",
        "language javascript",
        "language python",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("ok") && l[8..].trim_start().starts_with(check)),
            "no ok {check:?} in:\n{report}"
        );
    }
    assert!(
        report.ends_with("everything the native sandbox needs is here\n"),
        "{report}"
    );
}

#[test]
fn doctor_names_a_missing_bubblewrap() {
    let (code, report) = doctor(&["--bwrap", "/nonexistent/bin/bwrap"], |_| {});
    assert_eq!(code, 1, "{report}");
    let (line, fix) = missing(&report, "bubblewrap ");
    assert!(line.contains("/nonexistent/bin/bwrap not found"), "{line}");
    assert!(fix.contains("apt-get install bubblewrap"), "{fix}");
    // The sandbox it would make cannot be tried either.
    missing(&report, "bubblewrap sandbox");
    // Everything else is still checked, and still fine.
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("language python")),
        "{report}"
    );
}

#[test]
fn doctor_names_a_missing_toolchain() {
    let table =
        std::env::temp_dir().join(format!("code-runner-doctor-{}.toml", std::process::id()));
    std::fs::write(
        &table,
        r#"
[python]
version = "3"
extensions = ["py"]
source_file = "main.py"
run = ["/usr/bin/python3", "main.py"]

[ruby]
version = "3"
extensions = ["rb"]
source_file = "main.rb"
mounts = ["/nonexistent/etc/ruby"]
run = ["/nonexistent/bin/ruby", "main.rb"]

[java]
version = "17"
extensions = ["java"]
source_file = "Main.java"
compile = ["/nonexistent/bin/javac", "Main.java"]
run = ["/usr/bin/java", "Main"]
"#,
    )
    .unwrap();
    let (code, report) = doctor(&["--languages", table.to_str().unwrap()], |_| {});
    std::fs::remove_file(&table).unwrap();
    assert_eq!(code, 1, "{report}");
    let (line, fix) = missing(&report, "language ruby");
    assert!(line.contains("/nonexistent/bin/ruby is missing"), "{line}");
    assert!(
        line.contains("/nonexistent/etc/ruby (bound into its sandbox) is missing"),
        "{line}"
    );
    assert!(fix.contains("install /nonexistent/bin/ruby"), "{fix}");
    let (line, fix) = missing(&report, "language java");
    assert!(line.contains("/nonexistent/bin/javac is missing"), "{line}");
    assert!(
        fix.contains("apt-get install openjdk-17-jdk-headless"),
        "{fix}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("language python")),
        "{report}"
    );
    assert_eq!(report.matches("\nMISSING").count(), 2, "{report}");
}

#[test]
fn doctor_names_a_cgroup_it_cannot_write() {
    let path = "/code-runner-doctor-test-absent";
    let (code, report) = doctor(&["--cgroup-path", path], |_| {});
    assert_eq!(code, 1, "{report}");
    let (line, fix) = missing(&report, "cgroup ");
    assert!(
        line.contains("cannot create a cgroup in") && line.contains(path),
        "{line}"
    );
    assert!(fix.contains("delegate"), "{fix}");
    // Nothing was made where it looked.
    assert!(!std::path::Path::new("/sys/fs/cgroup/memory")
        .join(&path[1..])
        .exists());
}

#[test]
fn doctor_names_a_worker_that_is_not_root() {
    let (code, report) = doctor(&[], |command| {
        command.uid(65534).gid(65534);
    });
    assert_eq!(code, 1, "{report}");
    let (line, fix) = missing(&report, "root");
    assert!(line.contains("running as uid 65534"), "{line}");
    assert!(fix.contains("user \"0:0\""), "{fix}");
}
