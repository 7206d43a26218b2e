//! Bounded echoes of what a request sent, for the `input` of a `422` issue.
//!
//! FastAPI names the offending value in every issue, and a request can make
//! that value as large as its body: a 2 MB string, a list of a million
//! numbers, an object of a million fields. An echo keeps the value's shape
//! but stops at [`ECHO_BUDGET`] bytes of JSON:
//!
//! - a long string is cut and ends in `…`;
//! - a long list keeps its first items and ends with a `"… N more items"`
//!   string;
//! - a large object keeps its first fields and gets a `"…"` field saying
//!   `"N more fields"`;
//! - anything nested deeper than [`MAX_DEPTH`] is shown as `"…"`.
//!
//! A value that fits is echoed exactly, so small requests get FastAPI's
//! answer unchanged. The echo is built while the JSON is read (a serde
//! visitor), so what it leaves out is skipped, never held as a JSON value.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Most bytes of JSON one echo takes (a little more for its `…` marks).
pub(crate) const ECHO_BUDGET: usize = 2 * 1024;
/// Deepest nesting an echo shows; deeper lists and objects become `"…"`.
pub(crate) const MAX_DEPTH: usize = 8;
/// What stands for whatever was left out.
pub(crate) const MARK: &str = "…";
/// Budget below which a list or object stops taking items.
const LOW: usize = 16;

/// The echo of a raw JSON value (a field of the body, or the whole body).
pub(crate) fn echo_raw(raw: &RawValue) -> Value {
    echo_json(raw.get())
}

/// The echo of JSON text that is known to be valid.
pub(crate) fn echo_json(json: &str) -> Value {
    let mut budget = ECHO_BUDGET;
    let mut reader = serde_json::Deserializer::from_str(json);
    Echo {
        budget: &mut budget,
        depth: 0,
    }
    .deserialize(&mut reader)
    // Only for JSON nested past serde_json's own recursion limit.
    .unwrap_or_else(|_| Value::String(MARK.to_owned()))
}

/// The echo of a string (a header, a query parameter, an argument).
pub(crate) fn echo_str(text: &str) -> Value {
    Value::String(cut(text, ECHO_BUDGET).into_owned())
}

/// `text`, cut so that it takes at most `budget` bytes as a JSON string
/// (quotes and escapes counted), ending in `…` when cut.
pub(crate) fn cut(text: &str, budget: usize) -> Cow<'_, str> {
    if json_len(text) <= budget {
        return Cow::Borrowed(text);
    }
    // Room for the quotes and the mark.
    let room = budget.saturating_sub(2 + MARK.len());
    let mut used = 0;
    let mut end = 0;
    for (at, c) in text.char_indices() {
        used += char_json_len(c);
        if used > room {
            break;
        }
        end = at + c.len_utf8();
    }
    Cow::Owned(format!("{}{MARK}", &text[..end]))
}

/// The bytes `text` takes as a JSON string, quotes included, as serde_json
/// writes it.
fn json_len(text: &str) -> usize {
    2 + text.chars().map(char_json_len).sum::<usize>()
}

fn char_json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if c < ' ' => 6,
        c => c.len_utf8(),
    }
}

/// Builds a bounded copy of the value it reads, spending `budget`.
struct Echo<'b> {
    budget: &'b mut usize,
    depth: usize,
}

impl Echo<'_> {
    fn spend(&mut self, bytes: usize) {
        *self.budget = self.budget.saturating_sub(bytes);
    }

    fn child(&mut self) -> Echo<'_> {
        Echo {
            budget: self.budget,
            depth: self.depth + 1,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Echo<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Echo<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(mut self) -> Result<Value, E> {
        self.spend(4);
        Ok(Value::Null)
    }

    fn visit_bool<E>(mut self, value: bool) -> Result<Value, E> {
        self.spend(5);
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(mut self, value: i64) -> Result<Value, E> {
        self.spend(20);
        Ok(Value::from(value))
    }

    fn visit_u64<E>(mut self, value: u64) -> Result<Value, E> {
        self.spend(20);
        Ok(Value::from(value))
    }

    fn visit_f64<E>(mut self, value: f64) -> Result<Value, E> {
        self.spend(24);
        Ok(Value::from(value))
    }

    fn visit_str<E>(mut self, value: &str) -> Result<Value, E> {
        let text = cut(value, (*self.budget).max(2 + MARK.len())).into_owned();
        self.spend(json_len(&text));
        Ok(Value::String(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.spend(2);
        if self.depth >= MAX_DEPTH {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Value::String(MARK.to_owned()));
        }
        let mut items = Vec::new();
        while *self.budget >= LOW {
            match seq.next_element_seed(self.child())? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
        let mut more = 0usize;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            more += 1;
        }
        if more > 0 {
            items.push(Value::String(format!("{MARK} {more} more items")));
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.spend(2);
        if self.depth >= MAX_DEPTH {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Value::String(MARK.to_owned()));
        }
        let mut fields = Map::new();
        while *self.budget >= LOW {
            let Some(key) = map.next_key::<Cow<'de, str>>()? else {
                return Ok(Value::Object(fields));
            };
            let key = cut(&key, (*self.budget / 2).max(2 + MARK.len())).into_owned();
            self.spend(json_len(&key) + 1);
            let value = map.next_value_seed(self.child())?;
            fields.insert(key, value);
        }
        let mut more = 0usize;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
            more += 1;
        }
        if more > 0 {
            fields.insert(
                MARK.to_owned(),
                Value::String(format!("{more} more fields")),
            );
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn size(value: &Value) -> usize {
        serde_json::to_vec(value).unwrap().len()
    }

    #[test]
    fn small_values_are_echoed_exactly() {
        for text in [
            r#"{"language": 5, "stdin": [], "x": {"a": [1, 2.5, null, true, "é\n"]}}"#,
            r#""print(1)""#,
            "[]",
            "-7",
        ] {
            let exact: Value = serde_json::from_str(text).unwrap();
            assert_eq!(echo_json(text), exact, "{text}");
        }
    }

    #[test]
    fn a_million_numbers_echo_as_a_few_and_a_count() {
        let text = format!("[{}0]", "0,".repeat(99_999));
        let echo = echo_json(&text);
        assert!(size(&echo) <= ECHO_BUDGET + 64, "{}", size(&echo));
        let items = echo.as_array().unwrap();
        let shown = items.len() - 1;
        assert_eq!(
            items.last().unwrap(),
            &json!(format!("… {} more items", 100_000 - shown))
        );
    }

    #[test]
    fn long_strings_and_keys_are_cut_within_the_budget() {
        let text = json!({"a".repeat(100_000): "\u{1}".repeat(100_000), "b": "é".repeat(50_000)})
            .to_string();
        let echo = echo_json(&text);
        assert!(size(&echo) <= ECHO_BUDGET + 64, "{}", size(&echo));
        let (key, value) = echo.as_object().unwrap().iter().next().unwrap();
        assert!(key.ends_with(MARK) && key.starts_with("aaa"), "{key}");
        assert!(value.as_str().unwrap().ends_with(MARK));
        let cut = echo_str(&"é".repeat(50_000));
        assert!(size(&cut) <= ECHO_BUDGET);
        assert!(cut.as_str().unwrap().ends_with(MARK));
    }

    #[test]
    fn deep_and_wide_values_stay_within_the_budget() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(size(&echo_json(&deep)) <= ECHO_BUDGET);
        let wide = json!((0..10_000)
            .map(|n| (n.to_string(), json!([n, {"x": "y"}])))
            .collect::<Map<_, _>>())
        .to_string();
        let echo = echo_json(&wide);
        assert!(size(&echo) <= ECHO_BUDGET + 64, "{}", size(&echo));
        assert!(
            echo[MARK].as_str().unwrap().ends_with("more fields"),
            "{echo}"
        );
    }
}
