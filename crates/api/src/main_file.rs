//! The name a worker saves a program's own source under, as the API can tell
//! it, so that an extra file of that name is refused with a `422` instead of
//! taking the source's place in the sandbox.
//!
//! The API is handed one file name per language ([`SupportedLanguage`]'s
//! `file_name`: `main.py`, `Main.java`, ...), the name with the default
//! class. That is the whole answer for every language but Java, whose source
//! the worker names after the code's first `public` top-level type (`public
//! class Foo` is saved as `Foo.java`, since javac requires it). So for a
//! `.java` file name this module reads that type from the code the way the
//! sandbox's language table does (`code_runner_sandbox::Language::main_name`).
//!
//! That is a copy of the sandbox's scan, kept here so that the API does not
//! depend on the sandbox crate (api → queue ← worker → sandbox); a test
//! checks that both agree on every shipped language and a set of sources.
//! Should they ever disagree, the worker still refuses the job cleanly, as a
//! `compile_error`, before it reaches the sandbox: the worker's check is the
//! authority, this one spares the user the round trip.
//!
//! [`SupportedLanguage`]: crate::SupportedLanguage

use std::borrow::Cow;

/// The name the program `code` is saved under, for a language whose source
/// is saved as `file_name` by default.
pub(crate) fn main_file_name<'a>(file_name: &'a str, code: &str) -> Cow<'a, str> {
    if file_name.ends_with(".java") {
        if let Some(class) = java_public_class(code) {
            return Cow::Owned(format!("{class}.java"));
        }
    }
    Cow::Borrowed(file_name)
}

/// The name of the first `public` top-level class, interface, enum or record.
///
/// A plain token scan, good enough for the sources people submit: it skips
/// comments and string literals so that `// public class Foo` is not taken.
/// (The same scan as the sandbox's language table; see the module's doc.)
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
    use code_runner_sandbox::language::Substitutions;
    use code_runner_sandbox::LanguageTable;

    use super::*;

    /// Sources whose main name is easy to get wrong.
    const SOURCES: &[&str] = &[
        "",
        "print('hi')",
        "int main(void) { return 0; }",
        "class A { public static void main(String[] a) {} }",
        "public class Main { public static void main(String[] a) {} }",
        "import java.util.*;\npublic class Solution { }",
        "// public class Fake {}\n/* public class Nope */\nclass Helper { public class Inner {} }\n\
         public final class Real { String s = \"public class InString\"; }",
        "public abstract class Shape {}\npublic class Later {}",
        "public abstract class Shape {}",
        "public interface Greeter {}",
        "public enum Colour { RED }",
        "public record Point(int x, int y) {}",
        "class Outer { public class Nested {} }",
        "public class $Odd_1 {}",
        "public class Über {}",
        "char c = '{'; public class AfterBrace {}",
    ];

    /// The API's prediction is what the sandbox really uses, for every
    /// language of the shipped table, given the file name the binary hands
    /// the API (the default `{main}`, as `src/roles.rs` computes it).
    #[test]
    fn agrees_with_the_sandboxs_language_table() {
        let table = LanguageTable::builtin();
        for language in table.iter() {
            let name_for =
                |main: String| language.source_file(&Substitutions { main, memory_mb: 0 });
            let default_file_name = name_for(language.main_name(""));
            for source in SOURCES {
                let sandbox = name_for(language.main_name(source));
                let api = main_file_name(&default_file_name, source);
                assert_eq!(api, sandbox, "{}: {source:?}", language.name);
            }
        }
    }

    #[test]
    fn java_sources_are_named_after_their_public_class() {
        assert_eq!(
            main_file_name("Main.java", "public class Foo {}"),
            "Foo.java"
        );
        assert_eq!(main_file_name("Main.java", "class Foo {}"), "Main.java");
        assert_eq!(main_file_name("main.py", "public class Foo {}"), "main.py");
    }
}
