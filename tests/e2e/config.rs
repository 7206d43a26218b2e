//! Start-up refuses limits that make no sense, with a clear error, rather
//! than taking them as "unlimited".

use std::process::Command;

use crate::helpers::BIN;

fn refused(args: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("run code-runner");
    assert!(!output.status.success(), "{args:?} was accepted");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn zero_negative_huge_or_non_numeric_limits_are_refused() {
    for (flag, value) in [
        ("--time-limit-ms", "0"),
        ("--time-limit-ms", "-5"),
        ("--time-limit-ms", "0.5"),
        ("--time-limit-ms", "ten"),
        ("--time-limit-ms", "99999999999999999999"),
        ("--memory-limit-mb", "0"),
        ("--memory-limit-mb", "1"),
        ("--max-processes", "0"),
        ("--output-limit-bytes", "0"),
        ("--concurrency", "0"),
        ("--compile-time-limit-ms", "0"),
    ] {
        let arg = format!("{flag}={value}");
        let stderr = refused(&["worker", "--redis-url", "redis://127.0.0.1:1/", &arg]);
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
}

#[test]
fn the_same_checks_apply_to_environment_variables() {
    let output = Command::new(BIN)
        .args(["worker", "--redis-url", "redis://127.0.0.1:1/"])
        .env("CODE_RUNNER_MEMORY_LIMIT_MB", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("memory-limit-mb"));
}
