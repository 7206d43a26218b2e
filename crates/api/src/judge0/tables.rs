//! Judge0's fixed tables as this service fills them: language ids (of
//! Judge0 CE 1.13.1 and of the hosted 1.14.0) mapped to our canonical
//! language names, and the fourteen statuses.
//!
//! Each of our languages is *listed* under one id, the one the official SDK
//! picks for it when `/about` says 1.13.1 (71, 63, 62, 52, 50); the other
//! ids clients hard-code for the same language are *accepted* too, so a
//! request naming 113 (Python on ce.judge0.com) runs as Python.

use crate::state::SupportedLanguage;

/// A Judge0 language id we accept and the canonical name it runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdMapping {
    pub(crate) id: u32,
    /// Our canonical language name (`python`, ...).
    pub(crate) canonical: &'static str,
    /// How Judge0 names the language before its version, e.g. `Python`.
    pub(crate) label: &'static str,
    /// The id our `/languages` lists for this language.
    pub(crate) primary: bool,
}

const fn id(id: u32, canonical: &'static str, label: &'static str, primary: bool) -> IdMapping {
    IdMapping {
        id,
        canonical,
        label,
        primary,
    }
}

/// Every Judge0 id we accept (compat.md §1.9), listed ids first.
pub(crate) const IDS: &[IdMapping] = &[
    id(71, "python", "Python", true),
    id(63, "javascript", "JavaScript", true),
    id(62, "java", "Java", true),
    id(52, "cpp", "C++", true),
    id(50, "c", "C", true),
    // Python 3.11 / 3.12 / 3.13 on ce.judge0.com; the SDK's 1.14.0 PYTHON.
    id(92, "python", "Python", false),
    id(100, "python", "Python", false),
    id(109, "python", "Python", false),
    id(113, "python", "Python", false),
    // Node.js 18 / 20 / 22.
    id(93, "javascript", "JavaScript", false),
    id(97, "javascript", "JavaScript", false),
    id(102, "javascript", "JavaScript", false),
    // JDK 17.
    id(91, "java", "Java", false),
    // GCC 8.3 / 9.2 / 14.1.
    id(53, "cpp", "C++", false),
    id(54, "cpp", "C++", false),
    id(105, "cpp", "C++", false),
    // GCC 7.4 / 8.3 / 14.1.
    id(48, "c", "C", false),
    id(49, "c", "C", false),
    id(103, "c", "C", false),
];

/// Ids Judge0 keeps as archived for our languages: a request naming one
/// gets Judge0's "is archived" error rather than "doesn't exist".
pub(crate) const ARCHIVED: &[u32] = &[
    4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 26, 27, 28, 29, 30, 34, 35,
];

/// The mapping of a Judge0 id, when it names a language the service runs.
pub(crate) fn by_id(language_id: u32, languages: &[SupportedLanguage]) -> Option<IdMapping> {
    IDS.iter()
        .copied()
        .find(|m| m.id == language_id && languages.iter().any(|l| l.name == m.canonical))
}

/// The id `/languages` lists for one of our canonical names.
pub(crate) fn primary_id(canonical: &str) -> Option<u32> {
    IDS.iter()
        .find(|m| m.primary && m.canonical == canonical)
        .map(|m| m.id)
}

/// Judge0's display name for a language: `Python (3.11)`, with our
/// toolchain's version rather than Judge0's.
pub(crate) fn display_name(mapping: IdMapping, languages: &[SupportedLanguage]) -> String {
    let version = languages
        .iter()
        .find(|l| l.name == mapping.canonical)
        .map_or("", |l| l.version.as_str());
    format!("{} ({version})", mapping.label)
}

/// Judge0's statuses, id and description (compat.md §1.5).
pub(crate) const STATUSES: [(u8, &str); 14] = [
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
];

/// The description of status `id` (1–14).
pub(crate) fn status_description(id: u8) -> &'static str {
    STATUSES
        .iter()
        .find(|(i, _)| *i == id)
        .map_or("Internal Error", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn five() -> Vec<SupportedLanguage> {
        ["python", "javascript", "java", "cpp", "c"]
            .into_iter()
            .map(|name| SupportedLanguage {
                name: name.into(),
                version: "1".into(),
                aliases: Vec::new(),
                file_name: "main".into(),
            })
            .collect()
    }

    #[test]
    fn the_sdk_ids_of_both_versions_resolve() {
        let languages = five();
        for (ids, canonical) in [
            ([71, 113], "python"),
            ([63, 102], "javascript"),
            ([62, 91], "java"),
            ([52, 105], "cpp"),
            ([50, 103], "c"),
        ] {
            for language_id in ids {
                assert_eq!(
                    by_id(language_id, &languages).map(|m| m.canonical),
                    Some(canonical),
                    "id {language_id}"
                );
            }
        }
        assert_eq!(by_id(76, &languages), None, "C++ (Clang) is not ours");
        assert_eq!(by_id(71, &languages[1..]), None, "python not configured");
    }

    #[test]
    fn each_language_has_one_listed_id() {
        assert_eq!(primary_id("python"), Some(71));
        assert_eq!(primary_id("javascript"), Some(63));
        assert_eq!(primary_id("java"), Some(62));
        assert_eq!(primary_id("cpp"), Some(52));
        assert_eq!(primary_id("c"), Some(50));
        assert_eq!(primary_id("rust"), None);
    }

    #[test]
    fn statuses_are_judge0s_fourteen() {
        let ids: Vec<u8> = STATUSES.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, (1..=14).collect::<Vec<u8>>());
        assert_eq!(status_description(4), "Wrong Answer");
        assert_eq!(status_description(6), "Compilation Error");
    }
}
