//! JSON result files read back into their typed records. serde_json writes a NaN `f64` as `null`;
//! [`nan_if_null`] reads such a field back as NaN, so a record that holds an undefined value
//! round-trips.

use std::path::Path;

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

/// The record of a JSON file; an unreadable file or one that does not fit `T` names the file and
/// says what it was expected to be (`what`, e.g. "a run summary").
pub fn read<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::input(path, format!("not {what}: {e}")))
}

/// An `f64` field written by serde_json, where `null` stands for NaN.
pub fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, Deserialize)]
    struct R {
        #[serde(deserialize_with = "nan_if_null")]
        x: f64,
    }

    #[test]
    fn nan_round_trips_through_null() {
        let text = serde_json::to_string(&R { x: f64::NAN }).unwrap();
        assert_eq!(text, r#"{"x":null}"#);
        assert!(serde_json::from_str::<R>(&text).unwrap().x.is_nan());
        assert_eq!(serde_json::from_str::<R>(r#"{"x":0.5}"#).unwrap().x, 0.5);
    }
}
