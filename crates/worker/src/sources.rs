//! A job's extra files, checked before they reach the sandbox.
//!
//! Each extra file is written next to the program's own source under its own
//! name, so a file named like that source (for Java: after the code's public
//! class, `Foo.java` for `public class Foo`) would take its place, and a
//! name given twice would keep only one of the files; a sandbox handed such
//! a job fails setting it up. The API refuses these requests, but a job may
//! have been queued by another API version: the worker answers it itself, as
//! the user's mistake (`compile_error`, nothing run), with the same rule
//! ([`SourceFile::name_clashes`]) and the sandbox's own naming of the source.

use code_runner_queue::{Job, NameClash, SourceFile};
use code_runner_sandbox::language::Substitutions;
use code_runner_sandbox::{Language, Limits};

/// Why the job's extra files cannot be given to the sandbox, as a message
/// for the user; `None` when they can.
pub(crate) fn refusal(language: &Language, job: &Job, run_limits: &Limits) -> Option<String> {
    files_refusal(language, &job.code, &job.files, run_limits)
}

/// [`refusal`] for any program, queued or not (`code-runner run` runs one
/// without a queue): why `files` cannot go next to `code`'s source.
pub fn files_refusal(
    language: &Language,
    code: &str,
    files: &[SourceFile],
    run_limits: &Limits,
) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    if let Some(file) = files
        .iter()
        .find(|file| !code_runner_sandbox::is_plain_file_name(&file.name))
    {
        return Some(format!(
            "Extra file '{}' is not a plain file name (no directories, not hidden); nothing was run",
            file.name
        ));
    }
    // As the sandbox names it (`NativeSandbox::run_job`, `DockerSandbox`).
    let main_file = language.source_file(&Substitutions {
        main: language.main_name(code),
        memory_mb: run_limits.memory_mb(),
    });
    let (index, clash) = SourceFile::name_clashes(Some(&main_file), files)
        .into_iter()
        .next()?;
    let name = &files[index].name;
    Some(match clash {
        NameClash::MainSource => format!(
            "Extra file '{name}' has the name the program's own source is saved under; \
             give it another name (nothing was run)"
        ),
        NameClash::Repeated { first } => format!(
            "Extra file '{name}' is given twice (files {first} and {index}); \
             each extra file needs a name of its own (nothing was run)"
        ),
    })
}
