//! Judge mode on the worker's side (issue 12): one submission, many tests, a
//! verdict for each. The sandbox compiles once and runs each test in a fresh
//! step (`Sandbox::execute_tests`); this module decides each test's verdict.
//! The built-in comparisons are [`checkers`], plain Rust here: a program's
//! output is only ever data to them.

pub mod checkers;
pub mod run;

pub use run::{execute_judged, JudgeLimits};
