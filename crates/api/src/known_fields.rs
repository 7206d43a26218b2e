//! Reads a JSON body keeping only what a parser will look at, described by
//! a static [`Shape`]; everything else is skipped unread (serde's
//! `IgnoredAny`). A body padded with unknown fields then costs no more
//! memory than its known parts, where a whole `serde_json::Value` of it
//! would take many times its size. The compatibility APIs (`judge0`,
//! `piston`) read their bodies this way.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// What to keep of a JSON value. Where a value is not of the kind its shape
/// expects, a scalar is kept as it is and a list or an object is kept as an
/// empty marker of its kind (the parser then says what is wrong with it).
#[derive(Debug)]
pub(crate) enum Shape {
    /// The whole value.
    Whole,
    /// A scalar; a list or an object only as a marker.
    Scalar,
    /// An object keeping `fields`, each read as `each` unless `special`
    /// names another shape for it; other fields are skipped.
    Object {
        fields: &'static [&'static str],
        each: &'static Shape,
        special: &'static [(&'static str, &'static Shape)],
    },
    /// A list whose items are read as this shape.
    List(&'static Shape),
}

/// Reads `body`, one JSON value and nothing after it, as `shape` says.
pub(crate) fn read(body: &[u8], shape: &'static Shape) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Reader(shape).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Reads one value as its shape says.
struct Reader(&'static Shape);

impl<'de> DeserializeSeed<'de> for Reader {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.0 {
            Shape::Whole => Value::deserialize(deserializer),
            _ => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Reader {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        match self.0 {
            Shape::Object {
                fields,
                each,
                special,
            } => {
                while let Some(key) = map.next_key::<String>()? {
                    if let Some((_, shape)) = special.iter().find(|(name, _)| *name == key) {
                        kept.insert(key, map.next_value_seed(Reader(shape))?);
                    } else if fields.contains(&key.as_str()) {
                        kept.insert(key, map.next_value_seed(Reader(each))?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            _ => while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {},
        }
        Ok(Value::Object(kept))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut kept = Vec::new();
        match self.0 {
            Shape::List(item) => {
                while let Some(value) = seq.next_element_seed(Reader(item))? {
                    kept.push(value);
                }
            }
            _ => while seq.next_element::<IgnoredAny>()?.is_some() {},
        }
        Ok(Value::Array(kept))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}
