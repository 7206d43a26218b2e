//! The language table: how each language's source is named, compiled and run.
//!
//! The table is TOML (see `languages.toml` at the crate root, embedded in the
//! binary) and is parsed and checked once, at start-up, so a bad table stops
//! the service before it takes a job rather than failing the first one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

/// The table shipped with the binary.
pub const DEFAULT_TABLE: &str = include_str!("../languages.toml");

/// Why a language table was refused.
#[derive(Debug, thiserror::Error)]
pub enum LanguageTableError {
    #[error("cannot read language table {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("language table is not valid TOML")]
    Parse(#[from] toml::de::Error),
    #[error("language {language}: {problem}")]
    Invalid { language: String, problem: String },
}

/// How `{main}` is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MainFrom {
    /// `{main}` is always `Main`.
    #[default]
    Fixed,
    /// `{main}` is the first public top-level class of the source, so a Java
    /// program whose public class is `Solution` compiles as `Solution.java`
    /// and runs as `java Solution` instead of failing on the file name.
    JavaPublicClass,
}

/// One entry of the table, as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    #[serde(skip)]
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub extensions: Vec<String>,
    pub source_file: String,
    #[serde(default)]
    pub compile: Option<Vec<String>>,
    pub run: Vec<String>,
    #[serde(default)]
    pub mounts: Vec<PathBuf>,
    #[serde(default)]
    pub main_from: MainFrom,
    /// Run each program forked from a pristine interpreter the slot started
    /// ahead (native backend; python only: see `docs/prefork.md`).
    #[serde(default)]
    pub prefork: bool,
}

/// Values substituted into a language's templates for one job.
#[derive(Debug, Clone)]
pub struct Substitutions {
    pub main: String,
    pub memory_mb: u64,
}

impl Substitutions {
    fn apply(&self, template: &str) -> String {
        let heap_mb = (self.memory_mb / 2).max(16);
        template
            .replace("{main}", &self.main)
            .replace("{memory_mb}", &self.memory_mb.to_string())
            .replace("{heap_mb}", &heap_mb.to_string())
            .replace("{runtime_heap_mb}", &(self.memory_mb * 2).to_string())
    }
}

impl Language {
    /// The value of `{main}` for this source.
    pub fn main_name(&self, source: &str) -> String {
        match self.main_from {
            MainFrom::Fixed => "Main".to_owned(),
            MainFrom::JavaPublicClass => {
                java_public_class(source).unwrap_or_else(|| "Main".to_owned())
            }
        }
    }

    pub fn source_file(&self, subs: &Substitutions) -> String {
        subs.apply(&self.source_file)
    }

    pub fn compile_command(&self, subs: &Substitutions) -> Option<Vec<String>> {
        self.compile
            .as_ref()
            .map(|argv| argv.iter().map(|a| subs.apply(a)).collect())
    }

    pub fn run_command(&self, subs: &Substitutions) -> Vec<String> {
        self.run.iter().map(|a| subs.apply(a)).collect()
    }

    fn check(&self) -> Result<(), String> {
        if self.run.is_empty() {
            return Err("`run` is empty".into());
        }
        if self.compile.as_ref().is_some_and(|c| c.is_empty()) {
            return Err("`compile` is empty".into());
        }
        let probe = Substitutions {
            main: "Main".into(),
            memory_mb: 256,
        };
        let file = self.source_file(&probe);
        if file.is_empty() || file.contains('/') || file.starts_with('.') {
            return Err(format!("`source_file` {file:?} must be a plain file name"));
        }
        for argv in self.compile.iter().chain(std::iter::once(&self.run)) {
            let program = Path::new(&argv[0]);
            if !program.is_absolute() && !argv[0].starts_with("./") {
                return Err(format!(
                    "{:?} must be an absolute path (the sandbox has no PATH to search) or ./file",
                    argv[0]
                ));
            }
        }
        if let Some(path) = self.mounts.iter().find(|p| !p.is_absolute()) {
            return Err(format!("mount {} must be absolute", path.display()));
        }
        if self.prefork {
            // The zygote is a python interpreter that runs the source file
            // the way `python3 FILE` does; nothing else can be forked so (a
            // node or JVM process is multi-threaded from its start, and a
            // fork keeps only the calling thread).
            let interpreter = Path::new(&self.run[0]);
            let python = interpreter
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("python"));
            if !python || !interpreter.is_absolute() || self.run.len() != 2 || self.run[1] != file {
                return Err(format!(
                    "`prefork` needs `run = [\"/path/to/python3\", {file:?}]` (python only), got {:?}",
                    self.run
                ));
            }
            if self.compile.is_some() {
                return Err("`prefork` and `compile` cannot go together".into());
            }
        }
        Ok(())
    }
}

/// The checked language table, keyed by canonical name.
#[derive(Debug, Clone)]
pub struct LanguageTable {
    languages: BTreeMap<String, Arc<Language>>,
}

impl LanguageTable {
    /// The table embedded in the binary.
    pub fn builtin() -> Self {
        // The embedded table is checked by a unit test, so this cannot fail in a
        // released binary.
        Self::parse(DEFAULT_TABLE).expect("embedded languages.toml is valid")
    }

    pub fn from_file(path: &Path) -> Result<Self, LanguageTableError> {
        let text = std::fs::read_to_string(path).map_err(|source| LanguageTableError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, LanguageTableError> {
        let raw: BTreeMap<String, Language> = toml::from_str(text)?;
        let mut languages = BTreeMap::new();
        let mut seen_names = BTreeMap::new();
        for (name, mut language) in raw {
            language.name = name.clone();
            language
                .check()
                .map_err(|problem| LanguageTableError::Invalid {
                    language: name.clone(),
                    problem,
                })?;
            for alias in std::iter::once(&name).chain(&language.aliases) {
                if let Some(other) = seen_names.insert(alias.clone(), name.clone()) {
                    return Err(LanguageTableError::Invalid {
                        language: name.clone(),
                        problem: format!("name or alias {alias:?} is also used by {other}"),
                    });
                }
            }
            languages.insert(name, Arc::new(language));
        }
        if languages.is_empty() {
            return Err(LanguageTableError::Invalid {
                language: "(none)".into(),
                problem: "the table defines no language".into(),
            });
        }
        Ok(Self { languages })
    }

    /// The language with this canonical name.
    pub fn get(&self, name: &str) -> Option<&Arc<Language>> {
        self.languages.get(name)
    }

    /// The language with this name or alias.
    pub fn resolve(&self, name_or_alias: &str) -> Option<&Arc<Language>> {
        self.get(name_or_alias).or_else(|| {
            self.languages
                .values()
                .find(|l| l.aliases.iter().any(|a| a == name_or_alias))
        })
    }

    /// The language whose extension this file has.
    pub fn for_file(&self, path: &Path) -> Option<&Arc<Language>> {
        let ext = path.extension()?.to_str()?;
        self.languages
            .values()
            .find(|l| l.extensions.iter().any(|e| e == ext))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Language>> {
        self.languages.values()
    }

    /// Every host path a sandbox of any language may need bound.
    pub fn all_mounts(&self) -> impl Iterator<Item = &PathBuf> {
        self.languages.values().flat_map(|l| l.mounts.iter())
    }
}

/// The name of the first `public` top-level class, interface, enum or record.
///
/// A plain token scan, good enough for the sources people submit: it skips
/// comments and string literals so that `// public class Foo` is not taken.
fn java_public_class(source: &str) -> Option<String> {
    let tokens = java_tokens(source);
    let mut depth = 0usize;
    for window in tokens.windows(3) {
        match window[0].as_str() {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0
            && window[0] == "public"
            && matches!(
                window[1].as_str(),
                "class" | "interface" | "enum" | "record"
            )
            && is_java_identifier(&window[2])
        {
            return Some(window[2].clone());
        }
    }
    // `public final class X` / `public abstract class X`.
    let mut depth = 0usize;
    for window in tokens.windows(4) {
        match window[0].as_str() {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0
            && window[0] == "public"
            && matches!(window[1].as_str(), "final" | "abstract" | "strictfp")
            && matches!(
                window[2].as_str(),
                "class" | "interface" | "enum" | "record"
            )
            && is_java_identifier(&window[3])
        {
            return Some(window[3].clone());
        }
    }
    None
}

fn is_java_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        && s.len() <= 200
}

/// Identifiers and braces of a Java source, without comments and literals.
fn java_tokens(source: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = '\0';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '"' | '\'' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
            }
            '{' | '}' => tokens.push(c.to_string()),
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let mut word = c.to_string();
                while let Some(&d) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' || d == '$' {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(word);
            }
            _ => {}
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_is_valid_and_has_the_five_languages() {
        let table = LanguageTable::parse(DEFAULT_TABLE).unwrap();
        for name in ["python", "javascript", "java", "cpp", "c"] {
            assert!(table.get(name).is_some(), "{name} missing");
        }
        assert_eq!(table.resolve("py").unwrap().name, "python");
        assert_eq!(table.for_file(Path::new("x/hello.cc")).unwrap().name, "cpp");
    }

    #[test]
    fn java_main_class_comes_from_the_public_class() {
        let src = "// public class Fake {}\nimport java.util.*;\n/* public class Nope */\n\
                   class Helper { public class Inner {} }\npublic final class Solution { }";
        assert_eq!(java_public_class(src).as_deref(), Some("Solution"));
        assert_eq!(java_public_class("class A {}"), None);
        let java = LanguageTable::builtin().get("java").unwrap().clone();
        assert_eq!(java.main_name("class A {}"), "Main");
    }

    #[test]
    fn substitutions_fill_templates() {
        let java = LanguageTable::builtin().get("java").unwrap().clone();
        let subs = Substitutions {
            main: "Solution".into(),
            memory_mb: 256,
        };
        assert_eq!(java.source_file(&subs), "Solution.java");
        let run = java.run_command(&subs);
        // Above the limit: the kernel's cgroup, not the JVM, ends a program
        // that uses too much.
        assert!(run.contains(&"-Xmx512m".to_string()));
        assert_eq!(run.last().unwrap(), "Solution");
    }

    #[test]
    fn bad_tables_are_refused() {
        let relative = "[x]\nversion='1'\nsource_file='a'\nrun=['python3']\n";
        assert!(LanguageTable::parse(relative).is_err());
        let dup = "[x]\nversion='1'\nsource_file='a'\nrun=['/a']\naliases=['y']\n\
                   [y]\nversion='1'\nsource_file='a'\nrun=['/a']\n";
        assert!(LanguageTable::parse(dup).is_err());
        let path = "[x]\nversion='1'\nsource_file='../a'\nrun=['/a']\n";
        assert!(LanguageTable::parse(path).is_err());
        assert!(LanguageTable::parse("").is_err());
        let node =
            "[x]\nversion='1'\nsource_file='a.js'\nrun=['/usr/bin/node','a.js']\nprefork=true\n";
        assert!(LanguageTable::parse(node).is_err());
        let python =
            "[x]\nversion='1'\nsource_file='a.py'\nrun=['/usr/bin/python3','a.py']\nprefork=true\n";
        assert!(
            LanguageTable::parse(python)
                .unwrap()
                .get("x")
                .unwrap()
                .prefork
        );
        let flags = "[x]\nversion='1'\nsource_file='a.py'\nrun=['/usr/bin/python3','-u','a.py']\nprefork=true\n";
        assert!(LanguageTable::parse(flags).is_err());
    }
}
