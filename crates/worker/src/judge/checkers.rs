//! The built-in checkers of judge mode: plain Rust in the worker, never run
//! inside a job's step, never trusting the program. Each compares what a
//! test's program printed with the test's expected output and says
//! accepted, or wrong answer with a short message naming where it differs.
//!
//! Decisions, the same for every test:
//!
//! - `exact`: bytes equal, nothing forgiven (a missing trailing newline is a
//!   difference).
//! - `lines` (the default): compared line by line after taking `\r` before
//!   each `\n` (CRLF reads as LF), the spaces and tabs at each line's end,
//!   and the empty lines at the end away; so a missing trailing newline, or
//!   an extra one, is forgiven.
//! - `tokens`: the sequences of whitespace-separated tokens (ASCII
//!   whitespace, `\r` included) are equal.
//! - `float`: tokens; two tokens that both read as numbers (Rust's `f64`
//!   syntax: `1e3`, `-0.5`, `inf`, `nan`; not hex) match when they differ by
//!   at most `abs` or by at most `rel` times the expected value's magnitude;
//!   `1e3` matches `1000`; `nan` matches only `nan`; an infinity only the
//!   same infinity. Other tokens must be equal. With neither tolerance
//!   given, numbers must be equal as numbers.
//! - `unordered`: the same multiset of lines (each line normalised as in
//!   `lines`, empty lines at the end ignored), in any order.

/// A built-in comparison of output against the expected answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Comparator {
    Exact,
    Lines,
    Tokens,
    Float { abs: Option<f64>, rel: Option<f64> },
    Unordered,
}

/// What a built-in checker decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Accepted,
    /// With a message saying where the output first differs.
    WrongAnswer(String),
}

/// The longest excerpt of a token or line a message quotes.
const QUOTE: usize = 40;

impl Comparator {
    /// Compares `output` (what the program printed) with `expected`.
    pub fn check(&self, output: &[u8], expected: &[u8]) -> Checked {
        match *self {
            Comparator::Exact => exact(output, expected),
            Comparator::Lines => lines(output, expected),
            Comparator::Tokens => tokens(output, expected, |a, b| a == b),
            Comparator::Float { abs, rel } => tokens(output, expected, |got, want| {
                float_match(got, want, abs, rel)
            }),
            Comparator::Unordered => unordered(output, expected),
        }
    }
}

fn exact(output: &[u8], expected: &[u8]) -> Checked {
    if output == expected {
        return Checked::Accepted;
    }
    let at = output
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(output.len().min(expected.len()));
    Checked::WrongAnswer(format!(
        "output differs from the expected output at byte {at} (output {} bytes, expected {} bytes)",
        output.len(),
        expected.len()
    ))
}

/// The lines of `text` as `lines` compares them.
fn normal_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .map(|line| {
            let end = line
                .iter()
                .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
                .map_or(0, |i| i + 1);
            &line[..end]
        })
        .collect();
    while lines.last().is_some_and(|line| line.is_empty()) {
        lines.pop();
    }
    lines
}

fn lines(output: &[u8], expected: &[u8]) -> Checked {
    let (got, want) = (normal_lines(output), normal_lines(expected));
    for (number, (g, w)) in got.iter().zip(&want).enumerate() {
        if g != w {
            return Checked::WrongAnswer(format!(
                "line {}: expected {}, got {}",
                number + 1,
                quote(w),
                quote(g)
            ));
        }
    }
    if got.len() != want.len() {
        return Checked::WrongAnswer(format!("expected {} lines, got {}", want.len(), got.len()));
    }
    Checked::Accepted
}

fn tokens(output: &[u8], expected: &[u8], same: impl Fn(&[u8], &[u8]) -> bool) -> Checked {
    let split = |text: &'_ [u8]| -> Vec<Vec<u8>> {
        text.split(|b| b.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    let (got, want) = (split(output), split(expected));
    for (number, (g, w)) in got.iter().zip(&want).enumerate() {
        if !same(g, w) {
            return Checked::WrongAnswer(format!(
                "token {}: expected {}, got {}",
                number + 1,
                quote(w),
                quote(g)
            ));
        }
    }
    if got.len() != want.len() {
        return Checked::WrongAnswer(format!("expected {} tokens, got {}", want.len(), got.len()));
    }
    Checked::Accepted
}

fn number(token: &[u8]) -> Option<f64> {
    std::str::from_utf8(token).ok()?.parse().ok()
}

fn float_match(got: &[u8], want: &[u8], abs: Option<f64>, rel: Option<f64>) -> bool {
    let (Some(g), Some(w)) = (number(got), number(want)) else {
        return got == want;
    };
    if g.is_nan() || w.is_nan() {
        return g.is_nan() && w.is_nan();
    }
    if g.is_infinite() || w.is_infinite() {
        return g == w;
    }
    let diff = (g - w).abs();
    let within_abs = abs.is_some_and(|abs| diff <= abs);
    let within_rel = rel.is_some_and(|rel| diff <= rel * w.abs());
    diff == 0.0 || within_abs || within_rel
}

fn unordered(output: &[u8], expected: &[u8]) -> Checked {
    let (mut got, mut want) = (normal_lines(output), normal_lines(expected));
    if got.len() != want.len() {
        return Checked::WrongAnswer(format!("expected {} lines, got {}", want.len(), got.len()));
    }
    got.sort_unstable();
    want.sort_unstable();
    match want.iter().zip(&got).find(|(w, g)| w != g) {
        None => Checked::Accepted,
        Some((w, _)) => Checked::WrongAnswer(format!(
            "the expected line {} is missing (lines compared in any order)",
            quote(w)
        )),
    }
}

/// A short, printable rendering of a line or token for a message.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut short: String = text.chars().take(QUOTE).collect();
    if text.chars().count() > QUOTE {
        short.push('…');
    }
    format!("{short:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(c: Comparator, out: &str, exp: &str) -> bool {
        c.check(out.as_bytes(), exp.as_bytes()) == Checked::Accepted
    }

    #[test]
    fn exact_forgives_nothing() {
        assert!(ok(Comparator::Exact, "3\n", "3\n"));
        assert!(!ok(Comparator::Exact, "3", "3\n"));
        assert!(!ok(Comparator::Exact, "3\r\n", "3\n"));
        assert!(!ok(Comparator::Exact, "3 \n", "3\n"));
        let Checked::WrongAnswer(message) = Comparator::Exact.check(b"abc", b"abd") else {
            panic!()
        };
        assert!(message.contains("byte 2"), "{message}");
    }

    #[test]
    fn lines_forgive_line_ends_and_trailing_blank_lines() {
        let c = Comparator::Lines;
        assert!(ok(c, "1 2\n3\n", "1 2\n3\n"));
        assert!(ok(c, "1 2\n3", "1 2\n3\n"), "a missing trailing newline");
        assert!(
            ok(c, "1 2\n3\n\n\n", "1 2\n3\n"),
            "extra empty lines at the end"
        );
        assert!(
            ok(c, "1 2  \t\r\n3\r\n", "1 2\n3\n"),
            "CRLF and trailing blanks"
        );
        assert!(!ok(c, "1  2\n3\n", "1 2\n3\n"), "inner spaces count");
        assert!(!ok(c, " 1 2\n3\n", "1 2\n3\n"), "leading spaces count");
        assert!(!ok(c, "1 2\n\n3\n", "1 2\n3\n"), "inner empty lines count");
        assert!(!ok(c, "1 2\n", "1 2\n3\n"));
        assert!(ok(c, "", ""));
        assert!(ok(c, "\n\n", ""));
        let Checked::WrongAnswer(message) = c.check(b"a\nb\nX\n", b"a\nb\nc\n") else {
            panic!()
        };
        assert_eq!(message, "line 3: expected \"c\", got \"X\"");
    }

    #[test]
    fn tokens_ignore_all_whitespace() {
        let c = Comparator::Tokens;
        assert!(ok(c, "1   2\r\n\t3", "1 2 3\n"));
        assert!(ok(c, "", "  \n"));
        assert!(!ok(c, "1 2", "1 2 3"));
        assert!(!ok(c, "12 3", "1 2 3"));
        assert!(!ok(c, "1e3", "1000"), "tokens are text");
    }

    #[test]
    fn float_tolerances_and_special_values() {
        let c = Comparator::Float {
            abs: Some(1e-6),
            rel: None,
        };
        assert!(ok(c, "0.3333333", "0.333333333"));
        assert!(!ok(c, "0.3334", "0.333333333"));
        assert!(ok(c, "1e3", "1000"), "numbers compare as numbers");
        assert!(ok(c, "yes 1.0000001", "yes 1"));
        assert!(!ok(c, "no 1", "yes 1"), "other tokens exactly");
        assert!(ok(c, "nan", "NaN"));
        assert!(!ok(c, "nan", "0"));
        assert!(!ok(c, "0", "nan"));
        assert!(ok(c, "inf", "infinity"));
        assert!(!ok(c, "-inf", "inf"));
        assert!(!ok(c, "1e308", "inf"));
        let rel = Comparator::Float {
            abs: None,
            rel: Some(1e-3),
        };
        assert!(ok(rel, "1000000.5", "1000000"));
        assert!(!ok(rel, "1.01", "1"));
        let either = Comparator::Float {
            abs: Some(0.5),
            rel: Some(1e-9),
        };
        assert!(ok(either, "1.4", "1"), "within abs though not rel");
        let exact_numbers = Comparator::Float {
            abs: None,
            rel: None,
        };
        assert!(ok(exact_numbers, "2.50", "2.5"));
        assert!(!ok(exact_numbers, "2.5000001", "2.5"));
        assert!(!ok(c, "0x10", "16"), "no hex");
    }

    #[test]
    fn unordered_is_a_multiset_of_lines() {
        let c = Comparator::Unordered;
        assert!(ok(c, "b\na\nc\n", "a\nb\nc\n"));
        assert!(ok(c, "b \r\na\n", "a\nb"));
        assert!(!ok(c, "a\na\nb\n", "a\nb\nb\n"), "counts matter");
        assert!(!ok(c, "a\nb\n", "a\nb\nc\n"));
        let Checked::WrongAnswer(message) = c.check(b"a\nx\n", b"a\nb\n") else {
            panic!()
        };
        assert!(message.contains("\"b\""), "{message}");
    }

    #[test]
    fn messages_quote_briefly() {
        let long = "x".repeat(500);
        let Checked::WrongAnswer(message) = Comparator::Lines.check(long.as_bytes(), b"y") else {
            panic!()
        };
        assert!(message.len() < 120, "{message}");
    }
}
