//! Home Assistant MQTT discovery: the topics of each value, its JSON state
//! payload, and the retained `config` message that makes Home Assistant
//! create a sensor for it, on a device per meter.
//!
//! The classes and units follow Home Assistant's documented schema:
//! - the MQTT sensor options (`state_topic`, `value_template`,
//!   `unit_of_measurement`, `device_class`, `state_class`,
//!   `availability_topic`, `unique_id`, `device`):
//!   <https://www.home-assistant.io/integrations/sensor.mqtt/>, and the
//!   discovery topic `<discovery prefix>/<component>/<object id>/config`
//!   with an object id of `[a-zA-Z0-9_-]`:
//!   <https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery>;
//! - the sensor device classes, the units each accepts and the state
//!   classes each allows: <https://www.home-assistant.io/integrations/sensor/#device-class>,
//!   tabulated in Home Assistant's `homeassistant/components/sensor/const.py`
//!   (`DEVICE_CLASS_UNITS`, `DEVICE_CLASS_STATE_CLASSES`).
//!
//! Home Assistant rejects a discovery message whose unit its device class
//! does not accept, and then creates no entity at all. So a KMP unit that
//! has no accepted spelling (kvar, kVA, kA, ton, m³·°C) gets no device
//! class, only its unit and a state class, which any sensor may have.

use std::collections::{BTreeMap, BTreeSet};

use kmp::catalogue::{Model, info};
use kmp::unit::{Quantity, Unit};
use kmp::value::RegisterValue;
use serde_json::{Value as Json, json};

use super::DEFAULT_PREFIX;
use crate::config::Config;
use crate::outbox::Stored;

/// How Home Assistant should see one KMP unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaClass {
    /// `device_class`, if any fits.
    pub device_class: Option<&'static str>,
    /// `state_class`: `measurement`, `total_increasing`, or none for values
    /// that are not numbers to keep statistics of.
    pub state_class: Option<&'static str>,
    /// `unit_of_measurement` as Home Assistant spells it.
    pub unit: Option<&'static str>,
    /// The factor the value is multiplied by to be in `unit` (10 for the
    /// KMP units `GJ ×10`, `m³ ×10`, `ton ×10`), else 1.
    pub factor: u32,
    /// Whether the value is text (a date, a time, ASCII, flags): then the
    /// state is the payload's `text`.
    pub text: bool,
}

const MEASUREMENT: Option<&str> = Some("measurement");
const TOTAL_INCREASING: Option<&str> = Some("total_increasing");

/// The Home Assistant classes of a KMP unit.
pub fn ha_class(unit: Unit) -> HaClass {
    let symbol = unit.symbol().unwrap_or_default();
    let class = |device_class, state_class, unit| HaClass {
        device_class,
        state_class,
        unit,
        factor: 1,
        text: false,
    };
    let none = HaClass {
        device_class: None,
        state_class: None,
        unit: None,
        factor: 1,
        text: false,
    };
    match unit.quantity() {
        // Energy counters: HA's `energy` takes J, kJ, MJ, GJ, Wh, kWh, MWh,
        // GWh, cal, kcal, Mcal, Gcal and the state classes total and
        // total_increasing; the meter's registers only grow.
        Quantity::Energy => match symbol {
            "GJ ×10" => HaClass {
                factor: 10,
                ..class(Some("energy"), TOTAL_INCREASING, Some("GJ"))
            },
            "Cal" => class(Some("energy"), TOTAL_INCREASING, Some("cal")),
            "kCal" => class(Some("energy"), TOTAL_INCREASING, Some("kcal")),
            _ => class(Some("energy"), TOTAL_INCREASING, Some(symbol_static(unit))),
        },
        // HA's `reactive_energy` class is newer than many installations;
        // an unknown class would make older ones drop the entity.
        Quantity::ReactiveEnergy | Quantity::ApparentEnergy => {
            class(None, TOTAL_INCREASING, Some(symbol_static(unit)))
        }
        // `power` takes W, kW, MW, GW (and mW, TW, BTU/h), measurement only.
        Quantity::Power => class(Some("power"), MEASUREMENT, Some(symbol_static(unit))),
        // `reactive_power` takes var only, `apparent_power` VA only.
        Quantity::ReactivePower => class(None, MEASUREMENT, Some(symbol_static(unit))),
        Quantity::ApparentPower if symbol == "VA" => {
            class(Some("apparent_power"), MEASUREMENT, Some("VA"))
        }
        Quantity::ApparentPower => class(None, MEASUREMENT, Some(symbol_static(unit))),
        // `voltage` takes V and kV (with mV, µV, MV); `current` A and mA.
        Quantity::Voltage => class(Some("voltage"), MEASUREMENT, Some(symbol_static(unit))),
        Quantity::Current if symbol == "A" => class(Some("current"), MEASUREMENT, Some("A")),
        Quantity::Current => class(None, MEASUREMENT, Some(symbol_static(unit))),
        Quantity::Temperature => class(Some("temperature"), MEASUREMENT, Some("°C")),
        // A difference in kelvin under `temperature` would be converted as
        // an absolute temperature (30 K shown as −243 °C), and the newer
        // `temperature_delta` class is unknown to older installations.
        Quantity::TemperatureDifference => class(None, MEASUREMENT, Some("K")),
        // Volume counters: `volume` takes L and m³ with total and
        // total_increasing. Not `water`: a heat meter's volume is the
        // heating circuit's, which is no water consumption.
        Quantity::Volume => match symbol {
            "l" => class(Some("volume"), TOTAL_INCREASING, Some("L")),
            "US gal" => class(Some("volume"), TOTAL_INCREASING, Some("gal")),
            "m³ ×10" => HaClass {
                factor: 10,
                ..class(Some("volume"), TOTAL_INCREASING, Some("m³"))
            },
            _ => class(Some("volume"), TOTAL_INCREASING, Some("m³")),
        },
        // `volume_flow_rate` takes m³/h and L/h (among others), measurement.
        Quantity::VolumeFlow => match symbol {
            "l/h" => class(Some("volume_flow_rate"), MEASUREMENT, Some("L/h")),
            "US gal/min" => class(Some("volume_flow_rate"), MEASUREMENT, Some("gal/min")),
            _ => class(Some("volume_flow_rate"), MEASUREMENT, Some("m³/h")),
        },
        // Running sums used for average temperatures: they only grow.
        Quantity::VolumeTemperature => class(None, TOTAL_INCREASING, Some("m³·°C")),
        // `weight` has no tonne.
        Quantity::Mass => match symbol {
            "ton ×10" => HaClass {
                factor: 10,
                ..class(None, TOTAL_INCREASING, Some("ton"))
            },
            _ => class(None, TOTAL_INCREASING, Some("ton")),
        },
        Quantity::MassFlow => class(None, MEASUREMENT, Some("ton/h")),
        Quantity::Pressure => class(Some("pressure"), MEASUREMENT, Some("bar")),
        // `duration` takes d, h, min, s, ms and every state class; the hour
        // counters (operating hours, error hours) only grow.
        Quantity::Duration => match symbol {
            "h" => class(Some("duration"), TOTAL_INCREASING, Some("h")),
            "days" => class(Some("duration"), MEASUREMENT, Some("d")),
            _ => class(Some("duration"), MEASUREMENT, Some(symbol_static(unit))),
        },
        Quantity::Frequency => class(Some("frequency"), MEASUREMENT, Some("Hz")),
        Quantity::Speed => class(Some("speed"), MEASUREMENT, Some("m/s")),
        Quantity::Percent if symbol == "%RH" => class(Some("humidity"), MEASUREMENT, Some("%")),
        Quantity::Percent if symbol == "%" => class(None, MEASUREMENT, Some("%")),
        // Shares of something HA has no class for (O₂), pulse ratios,
        // angles, acidity, moisture, specific energy: plain measurements.
        Quantity::Percent
        | Quantity::PulseRatio
        | Quantity::Angle
        | Quantity::Acidity
        | Quantity::Moisture
        | Quantity::SpecificEnergy => class(None, MEASUREMENT, Some(symbol_static(unit))),
        Quantity::Date
        | Quantity::TimeOfDay
        | Quantity::DateTime
        | Quantity::Ascii
        | Quantity::BitField
        | Quantity::NetworkAddress => HaClass { text: true, ..none },
        // Serial numbers, info codes, counts: no unit, no statistics.
        Quantity::Number | Quantity::Unknown => none,
    }
}

/// The unit's symbol with a static lifetime (the table's own strings).
fn symbol_static(unit: Unit) -> &'static str {
    unit.symbol().unwrap_or_default()
}

/// `name` made safe as one level of an MQTT topic: `/`, `+`, `#` and
/// control characters would split the level or act as wildcards.
pub fn topic_level(name: &str) -> String {
    name.chars()
        .map(|c| {
            if matches!(c, '/' | '+' | '#') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// `name` made safe as a Home Assistant object id (`[a-zA-Z0-9_-]`).
fn object_id_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The state topic of one value: `<prefix>/<bus>/<address>/<name>`.
pub fn state_topic(prefix: &str, bus: &str, address: u8, name: &str) -> String {
    format!(
        "{prefix}/{}/{address}/{}",
        topic_level(bus),
        topic_level(name)
    )
}

/// The node id a topic prefix gives unless one is chosen: the prefix made
/// safe as an object id (`kmplog`, `site_north` for `site/north`), so that
/// sites with their own prefixes on one broker have their own entities.
pub fn default_node_id(prefix: &str) -> String {
    object_id_part(prefix)
}

/// Whether `node_id` can be the first part of an object id and a unique id.
pub fn is_node_id(node_id: &str) -> bool {
    !node_id.is_empty()
        && node_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The object id of one value, also its unique id:
/// `<node>_<bus>_<address>_<name>`.
pub fn object_id(node_id: &str, bus: &str, address: u8, name: &str) -> String {
    format!(
        "{node_id}_{}_{address}_{}",
        object_id_part(bus),
        object_id_part(name)
    )
}

/// The discovery topic of one value:
/// `<discovery>/sensor/<node>_<bus>_<address>_<name>/config`.
pub fn config_topic(discovery: &str, node_id: &str, bus: &str, address: u8, name: &str) -> String {
    format!(
        "{discovery}/sensor/{}/config",
        object_id(node_id, bus, address, name)
    )
}

/// The JSON state of one reading: the exact value as text, its unit, the
/// time in RFC 3339, the status and the outbox key; the natural form as
/// `text`, the info code's `flags` where there are some, and in a cluster
/// the `instance` that read it.
pub fn state_payload(stored: &Stored, model: Option<Model>) -> Json {
    let reading = &stored.reading;
    let mut payload = json!({
        "value": reading.value.map(|(value, _)| value.to_string()),
        "unit": reading.value.map(|(_, unit)| unit.to_string()),
        "time": reading.time.to_string(),
        "status": reading.status.as_str(),
        "key": stored.key,
    });
    if let (Some(map), Some(instance)) = (payload.as_object_mut(), &stored.instance) {
        map.insert("instance".to_owned(), Json::from(instance.as_str()));
    }
    if let (Some(map), Some((value, unit))) = (payload.as_object_mut(), reading.value) {
        let entry = RegisterValue {
            register: reading.register,
            unit,
            value,
        };
        if let Some(text) = entry.natural() {
            map.insert("text".to_owned(), Json::String(text));
        }
        if let Some(flags) = info::register_flags(model, &entry) {
            let names = flags.iter().map(|flag| Json::from(flag.name)).collect();
            map.insert("flags".to_owned(), names);
        }
    }
    payload
}

/// What the discovery message of one value is made from.
#[derive(Debug, Clone, Copy)]
pub struct Entity<'a> {
    /// The topic prefix of the state topics.
    pub prefix: &'a str,
    /// What tells this logger's entities from another's on the same broker.
    pub node_id: &'a str,
    /// The bus name.
    pub bus: &'a str,
    /// The meter address.
    pub address: u8,
    /// The export name.
    pub name: &'a str,
    /// The register ID.
    pub register: u16,
    /// The unit the meter sent, when it sent a value.
    pub unit: Option<Unit>,
    /// The meter's model, when the configuration names it.
    pub model: Option<Model>,
}

/// What discovery takes from the configuration, and so follows through
/// reloads: each meter's model (the device's name) and the values the
/// requests read (the entities that should exist).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configured {
    /// The model of each bus and address whose requests name one.
    pub models: BTreeMap<(String, u8), Model>,
    /// Bus, address and export name of every value read.
    pub values: BTreeSet<(String, u8, String)>,
}

impl Configured {
    /// What `config` gives discovery.
    pub fn of(config: &Config) -> Configured {
        let mut configured = Configured::default();
        for bus in &config.buses {
            for request in &bus.requests {
                for &address in &request.addresses {
                    if let Some(model) = request.model {
                        configured
                            .models
                            .entry((bus.name.clone(), address))
                            .or_insert(model);
                    }
                    for item in &request.items {
                        configured.values.insert((
                            bus.name.clone(),
                            address,
                            item.export_name.clone(),
                        ));
                    }
                }
            }
        }
        configured
    }
}

/// A value whose discovery config has been published, with what it was
/// made of, to publish it again when the configuration changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The bus name.
    pub bus: String,
    /// The meter address.
    pub address: u8,
    /// The export name.
    pub name: String,
    /// The register ID.
    pub register: u16,
    /// The unit the meter sent.
    pub unit: Option<Unit>,
    /// The config as published.
    pub payload: String,
}

impl Discovered {
    /// The entity of this value under `prefix` and `node_id`, for `model`.
    pub fn entity<'a>(
        &'a self,
        prefix: &'a str,
        node_id: &'a str,
        model: Option<Model>,
    ) -> Entity<'a> {
        Entity {
            prefix,
            node_id,
            bus: &self.bus,
            address: self.address,
            name: &self.name,
            register: self.register,
            unit: self.unit,
            model,
        }
    }

    /// Whether it is still one of the `configured` values.
    pub fn is_configured(&self, configured: &Configured) -> bool {
        configured
            .values
            .contains(&(self.bus.clone(), self.address, self.name.clone()))
    }
}

/// The status topic: `online` while connected, `offline` as the last will.
pub fn status_topic(prefix: &str) -> String {
    format!("{prefix}/status")
}

/// The retained discovery `config` payload of one value.
pub fn config_payload(entity: &Entity<'_>) -> Json {
    let Entity {
        prefix,
        node_id,
        bus,
        address,
        name,
        register,
        unit,
        model,
    } = *entity;
    let class = unit.map_or(
        HaClass {
            device_class: None,
            state_class: None,
            unit: None,
            factor: 1,
            text: false,
        },
        ha_class,
    );
    // A failed or suspect read renders `None`, which Home Assistant takes
    // as "unknown": a gap rather than a fall and a jump back on a counter.
    let field = if class.text { "text" } else { "value" };
    let value = if class.factor == 1 {
        format!("value_json.{field}")
    } else {
        format!("(value_json.{field} | float * {})", class.factor)
    };
    let value_template = format!(
        "{{{{ {value} if value_json.status == 'ok' and value_json.{field} is not none else None }}}}"
    );
    let object_id = object_id(node_id, bus, address, name);
    let device_id = format!("{node_id}_{}_{address}", object_id_part(bus));
    let model_name = model.map(Model::name);
    let model_name_or_kind = model_name.unwrap_or("Kamstrup meter");
    // Two sites' meters with one bus name and address would show as two
    // devices of one name; the default node id tells nothing.
    let device_name = if node_id == default_node_id(DEFAULT_PREFIX) {
        format!("{model_name_or_kind} at {bus}/{address}")
    } else {
        format!("{model_name_or_kind} at {bus}/{address} ({node_id})")
    };
    let mut device = json!({
        "identifiers": [device_id],
        "name": device_name,
        "manufacturer": "Kamstrup",
    });
    if let (Some(model), Some(map)) = (model_name, device.as_object_mut()) {
        map.insert("model".to_owned(), Json::from(model));
    }
    let state_topic = state_topic(prefix, bus, address, name);
    let mut config = json!({
        "name": name,
        "unique_id": object_id,
        "state_topic": state_topic,
        "value_template": value_template,
        "availability_topic": status_topic(prefix),
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "device": device,
    });
    if let Some(map) = config.as_object_mut() {
        if let Some(unit) = class.unit {
            map.insert("unit_of_measurement".to_owned(), Json::from(unit));
        }
        if let Some(device_class) = class.device_class {
            map.insert("device_class".to_owned(), Json::from(device_class));
        }
        if let Some(state_class) = class.state_class {
            map.insert("state_class".to_owned(), Json::from(state_class));
        }
        // The info code's flags and every reading's status and key as
        // attributes, so automations can react to a raised flag.
        map.insert("json_attributes_topic".to_owned(), Json::from(state_topic));
        let attributes = if info::is_info_register(model, register) {
            "{{ {'flags': value_json.flags, 'status': value_json.status, 'time': value_json.time} | tojson }}"
        } else {
            "{{ {'status': value_json.status, 'time': value_json.time} | tojson }}"
        };
        map.insert(
            "json_attributes_template".to_owned(),
            Json::from(attributes),
        );
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{Reading, Status};
    use jiff::Timestamp;

    fn test_time() -> Timestamp {
        "2026-11-25T08:00:00Z".parse().unwrap()
    }

    /// Home Assistant's device classes with the units each accepts and the
    /// state classes each allows, as `DEVICE_CLASS_UNITS` and
    /// `DEVICE_CLASS_STATE_CLASSES` in `homeassistant/components/sensor/const.py`
    /// list them (the classes kmplog uses), and
    /// <https://www.home-assistant.io/integrations/sensor/#device-class>.
    const HA_SCHEMA: &[(&str, &[&str], &[&str])] = &[
        (
            "energy",
            &[
                "J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal",
                "Mcal", "Gcal",
            ],
            &["total", "total_increasing"],
        ),
        (
            "power",
            &["mW", "W", "kW", "MW", "GW", "TW", "BTU/h"],
            &["measurement"],
        ),
        ("apparent_power", &["VA"], &["measurement"]),
        ("voltage", &["V", "mV", "µV", "kV", "MV"], &["measurement"]),
        ("current", &["A", "mA"], &["measurement"]),
        ("temperature", &["°C", "°F", "K"], &["measurement"]),
        ("frequency", &["Hz", "kHz", "MHz", "GHz"], &["measurement"]),
        ("humidity", &["%"], &["measurement"]),
        (
            "speed",
            &[
                "m/s", "km/h", "mph", "kn", "ft/s", "in/d", "in/h", "mm/d", "mm/h", "mm/s",
            ],
            &["measurement"],
        ),
        (
            "volume",
            &["mL", "L", "m³", "ft³", "CCF", "fl. oz.", "gal"],
            &["total", "total_increasing"],
        ),
        (
            "volume_flow_rate",
            &[
                "m³/h", "m³/s", "ft³/min", "L/h", "L/min", "L/s", "gal/min", "mL/s",
            ],
            &["measurement"],
        ),
        (
            "pressure",
            &[
                "Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi",
            ],
            &["measurement"],
        ),
        (
            "duration",
            &["d", "h", "min", "s", "ms"],
            &["measurement", "total", "total_increasing"],
        ),
    ];

    /// The state classes any sensor may have.
    const STATE_CLASSES: &[&str] = &["measurement", "total", "total_increasing"];

    fn stored(name: &str, register: u16, value: Option<&str>, unit: u8, status: Status) -> Stored {
        Stored {
            seq: 7,
            key: "00ff-7".to_owned(),
            instance: None,
            reading: Reading {
                time: test_time(),
                bus: "boiler-room".to_owned(),
                address: 3,
                request: "Main".to_owned(),
                register,
                name: name.to_owned(),
                value: value.map(|text| (text.parse().unwrap(), Unit(unit))),
                status,
            },
        }
    }

    #[test]
    fn every_known_unit_maps_to_what_home_assistant_accepts() {
        for code in 0..=u8::MAX {
            let unit = Unit(code);
            let class = ha_class(unit);
            if let Some(state_class) = class.state_class {
                assert!(
                    STATE_CLASSES.contains(&state_class),
                    "{unit}: {state_class}"
                );
            }
            let Some(device_class) = class.device_class else {
                continue;
            };
            let (_, units, state_classes) = HA_SCHEMA
                .iter()
                .find(|(name, _, _)| *name == device_class)
                .unwrap_or_else(|| panic!("{unit}: {device_class} is not in HA's schema table"));
            let ha_unit = class.unit.expect("a device class needs a unit");
            assert!(
                units.contains(&ha_unit),
                "{unit}: {device_class} does not accept {ha_unit}"
            );
            let state_class = class
                .state_class
                .expect("a numeric class has a state class");
            assert!(
                state_classes.contains(&state_class),
                "{unit}: {device_class} does not allow {state_class}"
            );
        }
    }

    #[test]
    fn the_mapping_unit_by_unit() {
        type Row = (
            u8,
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            u32,
        );
        let expected: &[Row] = &[
            (0x00, None, None, None, 1),
            (
                0x01,
                Some("energy"),
                Some("total_increasing"),
                Some("Wh"),
                1,
            ),
            (
                0x02,
                Some("energy"),
                Some("total_increasing"),
                Some("kWh"),
                1,
            ),
            (
                0x03,
                Some("energy"),
                Some("total_increasing"),
                Some("MWh"),
                1,
            ),
            (
                0x04,
                Some("energy"),
                Some("total_increasing"),
                Some("GWh"),
                1,
            ),
            (0x05, Some("energy"), Some("total_increasing"), Some("J"), 1),
            (
                0x06,
                Some("energy"),
                Some("total_increasing"),
                Some("kJ"),
                1,
            ),
            (
                0x07,
                Some("energy"),
                Some("total_increasing"),
                Some("MJ"),
                1,
            ),
            (
                0x08,
                Some("energy"),
                Some("total_increasing"),
                Some("GJ"),
                1,
            ),
            (
                0x09,
                Some("energy"),
                Some("total_increasing"),
                Some("cal"),
                1,
            ),
            (
                0x0A,
                Some("energy"),
                Some("total_increasing"),
                Some("kcal"),
                1,
            ),
            (
                0x0B,
                Some("energy"),
                Some("total_increasing"),
                Some("Mcal"),
                1,
            ),
            (
                0x0C,
                Some("energy"),
                Some("total_increasing"),
                Some("Gcal"),
                1,
            ),
            (0x0E, None, Some("total_increasing"), Some("kvarh"), 1),
            (0x12, None, Some("total_increasing"), Some("kVAh"), 1),
            (0x15, Some("power"), Some("measurement"), Some("W"), 1),
            (0x16, Some("power"), Some("measurement"), Some("kW"), 1),
            (0x17, Some("power"), Some("measurement"), Some("MW"), 1),
            (0x19, None, Some("measurement"), Some("var"), 1),
            (
                0x1D,
                Some("apparent_power"),
                Some("measurement"),
                Some("VA"),
                1,
            ),
            (0x1E, None, Some("measurement"), Some("kVA"), 1),
            (0x21, Some("voltage"), Some("measurement"), Some("V"), 1),
            (0x22, Some("current"), Some("measurement"), Some("A"), 1),
            (0x23, Some("voltage"), Some("measurement"), Some("kV"), 1),
            (0x24, None, Some("measurement"), Some("kA"), 1),
            (
                0x25,
                Some("temperature"),
                Some("measurement"),
                Some("°C"),
                1,
            ),
            (0x26, None, Some("measurement"), Some("K"), 1),
            (0x27, Some("volume"), Some("total_increasing"), Some("L"), 1),
            (
                0x28,
                Some("volume"),
                Some("total_increasing"),
                Some("m³"),
                1,
            ),
            (
                0x29,
                Some("volume_flow_rate"),
                Some("measurement"),
                Some("L/h"),
                1,
            ),
            (
                0x2A,
                Some("volume_flow_rate"),
                Some("measurement"),
                Some("m³/h"),
                1,
            ),
            (0x2B, None, Some("total_increasing"), Some("m³·°C"), 1),
            (0x2C, None, Some("total_increasing"), Some("ton"), 1),
            (0x2D, None, Some("measurement"), Some("ton/h"), 1),
            (
                0x2E,
                Some("duration"),
                Some("total_increasing"),
                Some("h"),
                1,
            ),
            (0x34, Some("pressure"), Some("measurement"), Some("bar"), 1),
            (
                0x37,
                Some("volume"),
                Some("total_increasing"),
                Some("m³"),
                10,
            ),
            (0x38, None, Some("total_increasing"), Some("ton"), 10),
            (
                0x39,
                Some("energy"),
                Some("total_increasing"),
                Some("GJ"),
                10,
            ),
            (0x3A, Some("duration"), Some("measurement"), Some("min"), 1),
            (0x3C, Some("duration"), Some("measurement"), Some("s"), 1),
            (0x3D, Some("duration"), Some("measurement"), Some("ms"), 1),
            (0x3E, Some("duration"), Some("measurement"), Some("d"), 1),
            (0x42, None, Some("measurement"), Some("l/imp"), 1),
            (0x43, Some("frequency"), Some("measurement"), Some("Hz"), 1),
            (
                0x46,
                Some("volume"),
                Some("total_increasing"),
                Some("gal"),
                1,
            ),
            (0x55, Some("humidity"), Some("measurement"), Some("%"), 1),
            (0x4B, None, None, None, 1),
        ];
        for &(code, device_class, state_class, unit, factor) in expected {
            let class = ha_class(Unit(code));
            assert_eq!(
                (
                    class.device_class,
                    class.state_class,
                    class.unit,
                    class.factor,
                    class.text
                ),
                (device_class, state_class, unit, factor, false),
                "unit 0x{code:02X} ({})",
                Unit(code)
            );
        }
        for code in [0x2F, 0x30, 0x31, 0x32, 0x35, 0x36, 0x3B, 0x3F, 0x40] {
            let class = ha_class(Unit(code));
            assert_eq!(
                (
                    class.device_class,
                    class.state_class,
                    class.unit,
                    class.text
                ),
                (None, None, None, true),
                "unit 0x{code:02X} ({}) is text without classes",
                Unit(code)
            );
        }
    }

    #[test]
    fn topics_are_safe_levels_and_object_ids() {
        assert_eq!(
            state_topic("kmplog", "boiler-room", 3, "E1"),
            "kmplog/boiler-room/3/E1"
        );
        assert_eq!(state_topic("site/a", "b+#/x", 3, "T1"), "site/a/b___x/3/T1");
        assert_eq!(
            config_topic("homeassistant", "kmplog", "boiler-room", 3, "E1"),
            "homeassistant/sensor/kmplog_boiler-room_3_E1/config"
        );
        assert_eq!(object_id("kmplog", "b.ü", 1, "E1"), "kmplog_b___1_E1");
        assert_eq!(default_node_id("kmplog"), "kmplog");
        assert_eq!(default_node_id("site/north"), "site_north");
        assert_eq!(default_node_id("heat-2"), "heat-2");
        assert!(is_node_id("North_2-b"));
        for bad in ["", "a/b", "a b", "ü"] {
            assert!(!is_node_id(bad), "{bad:?}");
        }
        assert_eq!(status_topic("kmplog"), "kmplog/status");
    }

    #[test]
    fn the_state_payload_keeps_the_exact_value_and_the_key() {
        let payload = state_payload(&stored("T1", 86, Some("63.440"), 0x25, Status::Ok), None);
        assert_eq!(
            payload,
            json!({
                "value": "63.440",
                "unit": "°C",
                "time": "2026-11-25T08:00:00Z",
                "status": "ok",
                "key": "00ff-7",
            })
        );
        let timeout = state_payload(&stored("T1", 86, None, 0x25, Status::Timeout), None);
        assert_eq!(timeout["value"], Json::Null);
        assert_eq!(timeout["unit"], Json::Null);
        assert_eq!(timeout["status"], "timeout");
        let mut in_a_cluster = stored("T1", 86, None, 0x25, Status::Timeout);
        in_a_cluster.instance = Some("meters-2".to_owned());
        assert_eq!(state_payload(&in_a_cluster, None)["instance"], "meters-2");
        let info = state_payload(
            &stored("INFO", 99, Some("3"), 0x00, Status::Ok),
            Some(Model::Multical603),
        );
        assert_eq!(
            info["flags"],
            json!(["supply_voltage_interrupted", "low_battery"])
        );
    }

    #[test]
    fn a_discovery_message_field_by_field() {
        let entity = Entity {
            prefix: "kmplog",
            node_id: "kmplog",
            bus: "boiler-room",
            address: 3,
            name: "E1",
            register: 60,
            unit: Some(Unit(0x08)),
            model: Some(Model::Multical603),
        };
        let config = config_payload(&entity);
        let fields: Vec<&str> = config
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // Every field is an option of HA's MQTT sensor schema.
        for field in &fields {
            assert!(
                [
                    "name",
                    "unique_id",
                    "state_topic",
                    "value_template",
                    "availability_topic",
                    "payload_available",
                    "payload_not_available",
                    "qos",
                    "device",
                    "unit_of_measurement",
                    "device_class",
                    "state_class",
                    "json_attributes_topic",
                    "json_attributes_template",
                ]
                .contains(field),
                "{field} is no MQTT sensor option"
            );
        }
        assert_eq!(config["name"], "E1");
        assert_eq!(config["unique_id"], "kmplog_boiler-room_3_E1");
        assert_eq!(config["state_topic"], "kmplog/boiler-room/3/E1");
        assert_eq!(config["availability_topic"], "kmplog/status");
        assert_eq!(config["payload_available"], "online");
        assert_eq!(config["payload_not_available"], "offline");
        assert_eq!(config["unit_of_measurement"], "GJ");
        assert_eq!(config["device_class"], "energy");
        assert_eq!(config["state_class"], "total_increasing");
        assert_eq!(config["qos"], 1);
        assert_eq!(
            config["value_template"],
            "{{ value_json.value if value_json.status == 'ok' and value_json.value is not none else None }}"
        );
        assert_eq!(
            config["device"],
            json!({
                "identifiers": ["kmplog_boiler-room_3"],
                "name": "MULTICAL 603 at boiler-room/3",
                "manufacturer": "Kamstrup",
                "model": "MULTICAL 603",
            })
        );
        assert_eq!(config["json_attributes_topic"], "kmplog/boiler-room/3/E1");

        let scaled = config_payload(&Entity {
            unit: Some(Unit(0x39)),
            model: None,
            ..entity
        });
        assert_eq!(
            scaled["value_template"],
            "{{ (value_json.value | float * 10) if value_json.status == 'ok' and value_json.value is not none else None }}"
        );
        assert_eq!(scaled["device"]["name"], "Kamstrup meter at boiler-room/3");
        assert!(scaled["device"].get("model").is_none());

        let date = config_payload(&Entity {
            name: "DATE",
            unit: Some(Unit(0x30)),
            ..entity
        });
        assert!(date.get("device_class").is_none());
        assert!(date.get("state_class").is_none());
        assert!(date.get("unit_of_measurement").is_none());
        assert_eq!(
            date["value_template"],
            "{{ value_json.text if value_json.status == 'ok' and value_json.text is not none else None }}"
        );

        let info = config_payload(&Entity {
            name: "INFO",
            register: 99,
            unit: Some(Unit(0x00)),
            ..entity
        });
        assert!(
            info["json_attributes_template"]
                .as_str()
                .unwrap()
                .contains("value_json.flags")
        );
    }

    /// Defect: two sites with the same bus name and address on one broker
    /// had one unique id, one device and one discovery topic, so the
    /// second site's config replaced the first's entity.
    #[test]
    fn two_prefixes_give_their_own_entities_and_devices() {
        let entity = |prefix| {
            let node_id = default_node_id(prefix);
            let config = config_payload(&Entity {
                prefix,
                node_id: &node_id,
                bus: "gateway",
                address: 1,
                name: "E1",
                register: 60,
                unit: Some(Unit(0x08)),
                model: Some(Model::Multical603),
            });
            let topic = config_topic("homeassistant", &node_id, "gateway", 1, "E1");
            (topic, config)
        };
        let (north_topic, north) = entity("site/north");
        let (south_topic, south) = entity("site/south");
        assert_eq!(
            north_topic,
            "homeassistant/sensor/site_north_gateway_1_E1/config"
        );
        assert_eq!(
            south_topic,
            "homeassistant/sensor/site_south_gateway_1_E1/config"
        );
        assert_eq!(north["unique_id"], "site_north_gateway_1_E1");
        assert_eq!(south["unique_id"], "site_south_gateway_1_E1");
        assert_eq!(
            north["device"]["identifiers"],
            json!(["site_north_gateway_1"])
        );
        assert_eq!(
            south["device"]["identifiers"],
            json!(["site_south_gateway_1"])
        );
        assert_eq!(
            north["device"]["name"],
            "MULTICAL 603 at gateway/1 (site_north)"
        );
        assert_eq!(north["state_topic"], "site/north/gateway/1/E1");
        assert_eq!(south["state_topic"], "site/south/gateway/1/E1");
    }
}
