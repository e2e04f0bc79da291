//! Shared output: register names from the catalogue and the JSON form of a
//! register value, so every command prints values the same way.
//!
//! The JSON form is a [`Serialize`] impl ([`RegisterJson`]) that writes
//! straight from the decoded value, so that `sniff` can print a recording at
//! the speed of the codec; [`register_json`] makes a `serde_json::Value` of
//! it for commands that build bigger objects.

use std::fmt;

use kmp::catalogue::info::register_flags;
use kmp::catalogue::{ExportName, Model};
use kmp::value::RegisterValue;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value as Json;

pub use kmp::catalogue::export_name;

/// What register `id` holds, in words; empty when no catalogue has it.
pub fn description(model: Option<Model>, id: u16) -> &'static str {
    kmp::catalogue::lookup(model, id).map_or("", |info| info.name)
}

/// `{"register":60,"name":"E1","value":"1234.567","unit_code":8,"unit":"GJ"}`,
/// plus `"text"` with the natural form of dates, times, text and flags, and
/// for the info code (register 99) `"flags"`: the names of the bits set, as
/// the model's table names them (`[]` for 0).
pub fn register_json(model: Option<Model>, entry: &RegisterValue) -> Json {
    // Serializing into a `Value` cannot fail: every key is a string.
    serde_json::to_value(RegisterJson { model, entry }).unwrap_or_default()
}

/// One register value in its JSON form (see [`register_json`]), serialized
/// without building a `serde_json::Value` or the strings of its fields.
#[derive(Debug, Clone, Copy)]
pub struct RegisterJson<'a> {
    /// The meter's model, for the export name and the info code's flags.
    pub model: Option<Model>,
    /// The value.
    pub entry: &'a RegisterValue,
}

impl Serialize for RegisterJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let RegisterJson { model, entry } = *self;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("register", &entry.register)?;
        map.serialize_entry("name", &Shown(ExportName::new(model, entry.register)))?;
        map.serialize_entry("value", &Shown(&entry.value))?;
        map.serialize_entry("unit_code", &entry.unit.code())?;
        map.serialize_entry("unit", &Shown(entry.unit))?;
        if let Some(text) = entry.natural() {
            map.serialize_entry("text", &text)?;
        }
        if let Some(flags) = register_flags(model, entry) {
            let names: Vec<&str> = flags.iter().map(|flag| flag.name).collect();
            map.serialize_entry("flags", &names)?;
        }
        map.end()
    }
}

/// A [`fmt::Display`] value serialized as a JSON string, formatted straight
/// into the output.
#[derive(Debug, Clone, Copy)]
pub struct Shown<T>(pub T);

impl<T: fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// The value as a person reads it: the natural form where there is one, and
/// for a non-zero info code the number with its flags, `8 (t1_sensor_fault)`.
pub fn display_value(model: Option<Model>, entry: &RegisterValue) -> String {
    let text = entry.natural().unwrap_or_else(|| entry.value.to_string());
    match register_flags(model, entry) {
        Some(flags) if !flags.is_empty() => {
            let names: Vec<&str> = flags.iter().map(|flag| flag.name).collect();
            format!("{text} ({})", names.join(", "))
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use kmp::{Unit, Value};

    use serde_json::json;

    use super::*;

    fn entry(register: u16, mantissa: i128) -> RegisterValue {
        RegisterValue {
            register,
            unit: Unit(0),
            value: Value::new(mantissa, 0).unwrap(),
        }
    }

    #[test]
    fn info_code_has_its_flags() {
        let json = register_json(Some(Model::Multical602), &entry(99, 8 + 256));
        assert_eq!(json["name"], "INFO");
        assert_eq!(json["value"], "264");
        assert_eq!(
            json["flags"],
            json!(["t1_sensor_fault", "leak_heating_system"])
        );
        // Without a model, the MULTICAL 603 table.
        let json = register_json(None, &entry(99, 2));
        assert_eq!(json["flags"], json!(["low_battery"]));
        assert_eq!(register_json(None, &entry(99, 0))["flags"], json!([]));
        // Other registers, and the info-event counter, have none.
        for other in [entry(113, 8), entry(60, 8)] {
            assert!(register_json(None, &other).get("flags").is_none());
        }
    }

    #[test]
    fn info_code_is_shown_with_its_flags() {
        let model = Some(Model::Multical602);
        assert_eq!(display_value(model, &entry(99, 8)), "8 (t1_sensor_fault)");
        assert_eq!(
            display_value(None, &entry(99, 3)),
            "3 (supply_voltage_interrupted, low_battery)"
        );
        assert_eq!(display_value(model, &entry(99, 0)), "0");
        assert_eq!(display_value(model, &entry(60, 8)), "8");
    }
}
