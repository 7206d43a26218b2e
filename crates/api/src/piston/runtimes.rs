//! The language table as Piston shows it (`GET /api/v2/runtimes`), and the
//! choice of a runtime from a request's `language` and `version`.
//!
//! Piston names a language by its package (`c++`, not our `cpp`), gives
//! every runtime a SemVer version, and picks, among the installed versions
//! of a language, the highest one that satisfies the request's `version`: a
//! node-semver *range* (`*`, `3.x`, `3`, `3.11.0`, `>=3.10`, `2.x || 3.x`).
//! Here every language has one version, so choosing is a yes or no.
//!
//! Our table's versions are free text (`3.11`, `node 20`, `g++ 12 (C++17)`);
//! each is read as the SemVer its first number makes (`3.11.0`, `20.0.0`,
//! `12.0.0`), and that is the version Piston clients see and may send back.

use std::collections::HashSet;

use semver::{Version, VersionReq};
use serde::Serialize;

use crate::state::SupportedLanguage;

/// Piston's name and aliases for the languages it shares with the seed, by
/// our canonical name. Piston's aliases are accepted on the Piston API only
/// (and only where our table has no other language of that name).
const PISTON_NAMES: &[(&str, &str, &[&str])] = &[
    ("python", "python", &["py", "py3", "python3"]),
    (
        "javascript",
        "javascript",
        &["js", "node-js", "node-javascript"],
    ),
    ("java", "java", &[]),
    ("cpp", "c++", &["cpp", "g++"]),
    ("c", "c", &["gcc"]),
];

/// One runtime, as `GET /api/v2/runtimes` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Runtime {
    /// Piston's name of the language (`c++`).
    pub(crate) language: String,
    /// The SemVer read from our table's version (`3.11.0`).
    pub(crate) version: String,
    /// Every other name a request may use: ours, our table's aliases and
    /// Piston's.
    pub(crate) aliases: Vec<String>,
    /// The toolchain, when our table's version names one (`node`, `gcc`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) runtime: Option<String>,
    /// Our canonical name, put in jobs.
    #[serde(skip)]
    pub(crate) canonical: String,
    #[serde(skip)]
    semver: Version,
}

/// Every runtime, in table order.
#[derive(Debug)]
pub(crate) struct Runtimes {
    list: Vec<Runtime>,
}

impl Runtimes {
    pub(crate) fn new(languages: &[SupportedLanguage]) -> Self {
        // A name is claimed once: first by every language's own names (its
        // Piston name, canonical name and table aliases), then, where still
        // free, by Piston's aliases.
        let mut claimed: HashSet<String> = HashSet::new();
        let mut list: Vec<Runtime> = Vec::with_capacity(languages.len());
        for language in languages {
            let (name, _) = piston_name(&language.name);
            let own = std::iter::once(name.to_owned())
                .chain(std::iter::once(language.name.clone()))
                .chain(language.aliases.iter().cloned());
            let mut aliases = Vec::new();
            for alias in own {
                if claimed.insert(alias.clone()) && alias != name {
                    aliases.push(alias);
                }
            }
            let semver = coerce_version(&language.version);
            list.push(Runtime {
                language: name.to_owned(),
                version: semver.to_string(),
                aliases,
                runtime: toolchain(&language.version),
                canonical: language.name.clone(),
                semver,
            });
        }
        for runtime in &mut list {
            let (_, extra) = piston_name(&runtime.canonical);
            for alias in extra {
                if claimed.insert((*alias).to_owned()) {
                    runtime.aliases.push((*alias).to_owned());
                }
            }
        }
        Self { list }
    }

    pub(crate) fn all(&self) -> &[Runtime] {
        &self.list
    }

    /// The runtime a request names: `language` is a name or alias, `version`
    /// a node-semver range its version must satisfy.
    pub(crate) fn select(&self, language: &str, version: &str) -> Option<&Runtime> {
        let runtime = self
            .list
            .iter()
            .find(|r| r.language == language || r.aliases.iter().any(|a| a == language))?;
        let ranges = node_range(version)?;
        ranges
            .iter()
            .any(|range| range.matches(&runtime.semver))
            .then_some(runtime)
    }
}

/// Piston's name of our language `canonical`, and Piston's aliases for it.
fn piston_name(canonical: &str) -> (&str, &'static [&'static str]) {
    PISTON_NAMES
        .iter()
        .find(|(ours, _, _)| *ours == canonical)
        .map_or((canonical, &[]), |(_, piston, aliases)| (*piston, *aliases))
}

/// The SemVer a free-text version stands for: its first number, padded with
/// zeros (`3.11` → `3.11.0`, `g++ 12 (C++17)` → `12.0.0`); `0.0.0` when it
/// has none.
pub(crate) fn coerce_version(text: &str) -> Version {
    let start = text
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(text.len());
    let digits = &text[start..];
    let end = digits
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(digits.len());
    let mut parts = digits[..end]
        .split('.')
        .map(|part| part.parse::<u64>().unwrap_or(0));
    Version::new(
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// The toolchain our table's version names, if it starts with a word
/// (`node 20` → `node`, `gcc 12 (C17)` → `gcc`); Piston lists the package
/// a runtime comes from so.
fn toolchain(version: &str) -> Option<String> {
    let word = version.split_whitespace().next()?;
    (!word.starts_with(|c: char| c.is_ascii_digit())).then(|| word.to_ascii_lowercase())
}

/// A node-semver range as the `semver` crate's requirements, one per `||`
/// alternative; `None` when it is not a valid range (no runtime satisfies
/// it, as in node-semver).
///
/// The two dialects differ in spelling and in one meaning: a bare version
/// (`3.11.0`) is exact in node-semver but `^3.11.0` in Cargo's, so it is
/// given an explicit `=` (which, for a partial version such as `=3.11`,
/// Cargo reads as node's `3.11.x`). Comparators are separated by spaces in
/// node-semver and by commas in Cargo's; `a - b` is node's hyphen range.
pub(crate) fn node_range(range: &str) -> Option<Vec<VersionReq>> {
    range
        .split("||")
        .map(|alternative| {
            let alternative = alternative.trim();
            let comparators = match alternative.split_once(" - ") {
                Some((low, high)) => vec![
                    format!(">={}", strip_v(low.trim())),
                    format!("<={}", strip_v(high.trim())),
                ],
                None => comparators(alternative)?,
            };
            if comparators.is_empty() {
                return VersionReq::parse("*").ok();
            }
            VersionReq::parse(&comparators.join(", ")).ok()
        })
        .collect()
}

/// The comparators of one alternative, in Cargo's spelling: `>= 1.2` (an
/// operator apart from its version) joined, `v` prefixes dropped, bare
/// versions made exact.
fn comparators(alternative: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut pending_operator = String::new();
    for token in alternative.split_whitespace() {
        let split = token
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '~' | '^'))
            .unwrap_or(token.len());
        let (operator, version) = token.split_at(split);
        let operator = format!("{pending_operator}{operator}");
        if version.is_empty() {
            pending_operator = operator;
            continue;
        }
        pending_operator.clear();
        let version = strip_v(version);
        let wildcard = version
            .split('.')
            .any(|part| matches!(part, "x" | "X" | "*"));
        let operator = match operator.as_str() {
            "" | "=" if wildcard => "",
            "" => "=",
            other => other,
        };
        out.push(format!("{operator}{version}"));
    }
    pending_operator.is_empty().then_some(out)
}

fn strip_v(version: &str) -> &str {
    version
        .strip_prefix(['v', 'V'])
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<SupportedLanguage> {
        let language = |name: &str, version: &str, aliases: &[&str]| SupportedLanguage {
            name: name.into(),
            version: version.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            file_name: format!("main.{name}"),
        };
        vec![
            language("python", "3.11", &["py", "python3"]),
            language("javascript", "node 20", &["js", "node", "nodejs"]),
            language("java", "OpenJDK 17", &[]),
            language("cpp", "g++ 12 (C++17)", &["c++", "cxx"]),
            language("c", "gcc 12 (C17)", &[]),
        ]
    }

    #[test]
    fn versions_are_read_as_semver() {
        assert_eq!(coerce_version("3.11").to_string(), "3.11.0");
        assert_eq!(coerce_version("node 20").to_string(), "20.0.0");
        assert_eq!(coerce_version("g++ 12 (C++17)").to_string(), "12.0.0");
        assert_eq!(coerce_version("1.2.3.4").to_string(), "1.2.3");
        assert_eq!(coerce_version("rolling").to_string(), "0.0.0");
    }

    #[test]
    fn runtimes_use_piston_names_and_aliases() {
        let runtimes = Runtimes::new(&table());
        let json = serde_json::to_value(runtimes.all()).unwrap();
        assert_eq!(
            json[0],
            serde_json::json!({"language": "python", "version": "3.11.0",
                               "aliases": ["py", "python3", "py3"]})
        );
        assert_eq!(json[1]["runtime"], "node");
        assert_eq!(json[1]["version"], "20.0.0");
        assert_eq!(json[3]["language"], "c++");
        assert_eq!(json[3]["aliases"], serde_json::json!(["cpp", "cxx", "g++"]));
        assert_eq!(json[3]["runtime"], "g++");
        assert_eq!(json[4]["aliases"], serde_json::json!(["gcc"]));
        for (name, canonical) in [
            ("c++", "cpp"),
            ("cpp", "cpp"),
            ("g++", "cpp"),
            ("py3", "python"),
            ("node-js", "javascript"),
            ("gcc", "c"),
            ("java", "java"),
        ] {
            assert_eq!(
                runtimes.select(name, "*").map(|r| r.canonical.as_str()),
                Some(canonical),
                "{name}"
            );
        }
        assert!(runtimes.select("rust", "*").is_none());
        assert!(runtimes.select("Python", "*").is_none());
    }

    #[test]
    fn an_alias_of_another_language_is_not_taken() {
        let mut languages = table();
        languages.push(SupportedLanguage {
            name: "gcc".into(),
            version: "1".into(),
            aliases: vec![],
            file_name: "x".into(),
        });
        let runtimes = Runtimes::new(&languages);
        assert_eq!(
            runtimes.select("gcc", "*").map(|r| r.canonical.as_str()),
            Some("gcc")
        );
        assert!(!runtimes.all()[4].aliases.contains(&"gcc".to_string()));
    }

    #[test]
    fn versions_are_chosen_as_node_semver_would() {
        let runtimes = Runtimes::new(&table());
        let python = |range: &str| runtimes.select("python", range).is_some();
        for range in [
            "*",
            "",
            "x",
            "3",
            "3.x",
            "3.X",
            "3.*",
            "3.11",
            "3.11.x",
            "3.11.0",
            "=3.11.0",
            "v3.11.0",
            ">=3.10",
            ">= 3.10",
            ">3.10.9 <3.12",
            "^3.9",
            "~3.11",
            "2.x || 3.x",
            "3.0.0 - 3.11.5",
        ] {
            assert!(python(range), "{range:?} should select python 3.11.0");
        }
        for range in [
            "3.12.0",
            "3.10",
            "3.10.0",
            "2",
            "<3",
            "^2",
            "~3.10",
            "4.x || 2.x",
            "latest",
            ">=",
            "3.11.1",
        ] {
            assert!(!python(range), "{range:?} should not select python 3.11.0");
        }
        // A bare full version is exact in node-semver (Cargo would read ^).
        assert!(runtimes.select("c++", "12.0.0").is_some());
        assert!(runtimes.select("c++", "11.0.0").is_none());
        assert!(runtimes.select("javascript", "20.11.1").is_none());
        assert!(runtimes.select("javascript", "20").is_some());
    }
}
