//! Tidy CSV tables: a header from the record type's fields, one row per record. A table without
//! rows still has its header, so that a reader finds its columns.

use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::{Error, Result};

/// The bytes of a CSV file: the header (the record type's field names, as serialised), then one
/// row per record.
pub fn csv_bytes<'de, T: Serialize + Deserialize<'de>>(rows: &[T]) -> Result<Vec<u8>> {
    let csv_error = |e: csv::Error| Error::Internal(format!("writing a CSV table: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record(field_names::<T>()).map_err(csv_error)?;
    }
    for r in rows {
        w.serialize(r).map_err(csv_error)?;
    }
    w.into_inner()
        .map_err(|e| Error::Internal(format!("writing a CSV table: {e}")))
}

/// The field names of a struct, read off its `Deserialize` implementation (which asks for them).
pub fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    // The deserializer stops at the struct's field list: the error is the expected outcome.
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

/// A deserializer that records the field names a struct asks for, then stops.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> std::result::Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names taken"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize)]
    struct Row<'a> {
        name: &'a str,
        #[serde(rename = "p_value")]
        p: Option<f64>,
        n: usize,
    }

    /// No rows: the header alone; rows: the same header above them.
    #[test]
    fn an_empty_table_keeps_its_header() {
        assert_eq!(csv_bytes::<Row>(&[]).unwrap(), b"name,p_value,n\n");
        let rows = [Row {
            name: "a, \"b\"",
            p: None,
            n: 3,
        }];
        assert_eq!(csv_bytes(&rows).unwrap(), b"name,p_value,n\n\"a, \"\"b\"\"\",,3\n");
    }
}
