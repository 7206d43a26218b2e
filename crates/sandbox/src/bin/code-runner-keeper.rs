//! The keeper of a native sandbox slot, as its own executable (for the
//! sandbox crate's tests and for embedders); `code-runner keeper` is the same.

fn main() {
    code_runner_sandbox::native::keeper::main()
}
