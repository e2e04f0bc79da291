//! Shared output: register names from the catalogue and the JSON form of a
//! register value, so every command prints values the same way.

use kmp::catalogue::{self, Model};
use kmp::value::RegisterValue;
use serde_json::{Value as Json, json};

pub use kmp::catalogue::export_name;

/// What register `id` holds, in words; empty when no catalogue has it.
pub fn description(model: Option<Model>, id: u16) -> &'static str {
    catalogue::lookup(model, id).map_or("", |info| info.name)
}

/// `{"register":60,"name":"E1","value":"1234.567","unit_code":8,"unit":"GJ"}`,
/// plus `"text"` with the natural form of dates, times, text and flags.
pub fn register_json(model: Option<Model>, entry: &RegisterValue) -> Json {
    let mut object = json!({
        "register": entry.register,
        "name": export_name(model, entry.register),
        "value": entry.value.to_string(),
        "unit_code": entry.unit.code(),
        "unit": entry.unit.to_string(),
    });
    if let (Some(text), Some(map)) = (entry.natural(), object.as_object_mut()) {
        map.insert("text".to_owned(), Json::String(text));
    }
    object
}

/// The value as a person reads it: the natural form where there is one.
pub fn display_value(entry: &RegisterValue) -> String {
    entry.natural().unwrap_or_else(|| entry.value.to_string())
}
