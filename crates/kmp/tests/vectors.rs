//! Checks the codec against every case of the shared KMP test vectors
//! (`tests/vectors/kmp-vectors.json`, a copy of `shared/vectors/`).
//!
//! Each case is decoded by the check function of its direction kind
//! (`to_meter`, `from_meter`, `either`, `to_meter_physical_only`,
//! `value_field`), which renders what the codec found as JSON; every key of
//! the case's `decoded` must then be present in that rendering with the same
//! value (register lists element by element). A key the rendering does not
//! have, or a direction kind without a check function, fails the case, so a
//! new vector can never be skipped silently. Where the direction allows, the
//! decoded message is encoded again and must give back the exact wire bytes,
//! and the byte stream goes through the [`Splitter`] too, which must agree
//! with [`Frame::decode`].

use kmp::frame::{ACK, Direction, START_TO_METER, STOP};
use kmp::logger::{LoggerRequest, LoggerResponse};
use kmp::message::{Message, MessageError, cid_name};
use kmp::stuffing::{stuff_into, unstuff};
use kmp::{Event, Frame, FrameError, RegisterValue, Request, Response, Splitter, Value};
use serde_json::{Map, Value as Json, json};

/// The vector file, embedded so the test needs no working directory.
const VECTORS: &str = include_str!("vectors/kmp-vectors.json");

/// The direction kinds the vector format defines; each has a check function.
const DIRECTION_KINDS: [&str; 5] = [
    "to_meter",
    "from_meter",
    "either",
    "to_meter_physical_only",
    "value_field",
];

/// One case of the vector file.
struct Case {
    description: String,
    direction: String,
    wire: Vec<u8>,
    decoded: Map<String, Json>,
}

impl Case {
    fn parse(json: &Json) -> Result<Case, String> {
        let object = json.as_object().ok_or("a case is not a JSON object")?;
        let text = |key: &str| {
            object
                .get(key)
                .and_then(Json::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("case has no string `{key}`"))
        };
        let decoded = object
            .get("decoded")
            .and_then(Json::as_object)
            .cloned()
            .ok_or("case has no object `decoded`")?;
        Ok(Case {
            description: text("description")?,
            direction: text("direction")?,
            wire: from_hex(&text("wire")?)?,
            decoded,
        })
    }
}

/// Checks one case with the check function of its direction kind.
fn check_case(case: &Case) -> Result<(), String> {
    match case.direction.as_str() {
        "to_meter" => check_to_meter(case),
        "from_meter" => check_from_meter(case),
        "either" => check_either(case),
        "to_meter_physical_only" => check_to_meter_physical_only(case),
        "value_field" => check_value_field(case),
        other => Err(format!(
            "direction `{other}` has no check function (known: {DIRECTION_KINDS:?})"
        )),
    }
}

/// A frame to the meter: decodes as a request, which encodes back to the wire.
fn check_to_meter(case: &Case) -> Result<(), String> {
    check_frame(case, Direction::ToMeter)
}

/// A frame from the meter: decodes as a response, which encodes back to the wire.
fn check_from_meter(case: &Case) -> Result<(), String> {
    check_frame(case, Direction::FromMeter)
}

/// Bytes valid in both directions (the ACK): the splitter finds what they
/// are, and the event encodes back to the wire.
fn check_either(case: &Case) -> Result<(), String> {
    let events = split(&case.wire);
    let [event] = events.as_slice() else {
        return Err(format!("splitter gave {} events: {events:?}", events.len()));
    };
    let (rendered, reencoded) = match event {
        Event::Ack => (json!({ "ack": true }), Some(vec![ACK])),
        Event::Frame(frame) => {
            let (rendered, message) = render_frame(frame)?;
            (rendered, Some(encode_message(&message, frame.address)))
        }
        Event::Malformed { error, .. } => (render_frame_error(error), None),
        Event::Garbage(bytes) => (json!({ "garbage": to_hex(bytes) }), None),
    };
    compare_decoded(&case.decoded, &rendered)?;
    if let Some(reencoded) = reencoded {
        expect_wire(&reencoded, &case.wire)?;
    }
    Ok(())
}

/// Stuffing only, without CRC: start byte to the meter, stuffed payload, stop.
fn check_to_meter_physical_only(case: &Case) -> Result<(), String> {
    let [START_TO_METER, stuffed @ .., STOP] = case.wire.as_slice() else {
        return Err("wire is not START_TO_METER .. STOP".to_owned());
    };
    let unstuffed = unstuff(stuffed).map_err(|error| format!("unstuffing failed: {error}"))?;
    compare_decoded(&case.decoded, &json!({ "unstuffed": to_hex(&unstuffed) }))?;
    let mut reencoded = vec![START_TO_METER];
    stuff_into(&unstuffed, &mut reencoded);
    reencoded.push(STOP);
    expect_wire(&reencoded, &case.wire)
}

/// A bare `L | sigEx | mantissa` field: decodes whole, prints exactly, and
/// encodes back to the same bytes.
fn check_value_field(case: &Case) -> Result<(), String> {
    let (value, used) = Value::decode_field(&case.wire)
        .map_err(|error| format!("value field rejected: {error}"))?;
    if used != case.wire.len() {
        return Err(format!(
            "value field used {used} of {} bytes",
            case.wire.len()
        ));
    }
    compare_decoded(&case.decoded, &json!({ "value": value.to_string() }))?;
    let mut reencoded = Vec::new();
    value.encode_field(&mut reencoded);
    expect_wire(&reencoded, &case.wire)
}

/// The common part of `to_meter` and `from_meter`: [`Frame::decode`] and the
/// splitter agree, the rendering matches `decoded`, and a valid message
/// encodes back to the wire.
fn check_frame(case: &Case, direction: Direction) -> Result<(), String> {
    let decoded = Frame::decode(&case.wire);
    let events = split(&case.wire);
    let expected_events = match &decoded {
        Ok(frame) => vec![Event::Frame(frame.clone())],
        Err(error) => vec![Event::Malformed {
            error: error.clone(),
            bytes: case.wire.clone(),
        }],
    };
    if events != expected_events {
        return Err(format!(
            "splitter gave {events:?}, Frame::decode {decoded:?}"
        ));
    }
    match decoded {
        Err(error) => compare_decoded(&case.decoded, &render_frame_error(&error)),
        Ok(frame) => {
            if frame.direction != direction {
                return Err(format!("frame goes {:?}", frame.direction));
            }
            let (rendered, message) = render_frame(&frame)?;
            compare_decoded(&case.decoded, &rendered)?;
            expect_wire(&encode_message(&message, frame.address), &case.wire)
        }
    }
}

/// The JSON rendering of a valid frame and the message it carries.
fn render_frame(frame: &Frame) -> Result<(Json, Message), String> {
    let message = Message::decode(frame).map_err(|error| {
        format!(
            "frame decodes but its message does not: {error} ({})",
            render_message_error(&error)
        )
    })?;
    let mut rendered = Map::new();
    rendered.insert("address".into(), json!(frame.address));
    rendered.insert("cid".into(), json!(frame.cid));
    rendered.insert("command".into(), json!(cid_name(frame.cid)));
    match &message {
        Message::Request(request) => render_request(request, &mut rendered),
        Message::Response(response) => render_response(response, &mut rendered),
    }
    Ok((Json::Object(rendered), message))
}

fn render_request(request: &Request, rendered: &mut Map<String, Json>) {
    match request {
        Request::GetType | Request::GetSerialNo => {}
        Request::GetRegister(registers) => {
            rendered.insert("registers".into(), json!(registers.as_ref()));
        }
        Request::Logger(request) => {
            rendered.insert("subcommand".into(), json!(request.subcommand()));
            rendered.insert("logger_type".into(), json!(request.logger().0));
            match request {
                LoggerRequest::GetLogIdPastAbs {
                    log_id,
                    entries,
                    registers,
                    ..
                } => {
                    rendered.insert("log_id".into(), json!(log_id));
                    rendered.insert("entries".into(), json!(entries));
                    rendered.insert("registers".into(), json!(registers.as_ref()));
                }
                LoggerRequest::GetLogLastEntryPastAbs {
                    offset,
                    entries,
                    registers,
                    ..
                } => {
                    rendered.insert("offset".into(), json!(offset));
                    rendered.insert("entries".into(), json!(entries));
                    rendered.insert("registers".into(), json!(registers.as_ref()));
                }
                LoggerRequest::GetConfiguration { .. } => {}
                LoggerRequest::Other { data, .. } => {
                    rendered.insert("data".into(), json!(to_hex(data)));
                }
            }
        }
        Request::Raw { data, .. } => {
            rendered.insert("data".into(), json!(to_hex(data)));
        }
    }
}

fn render_response(response: &Response, rendered: &mut Map<String, Json>) {
    match response {
        Response::Type {
            meter_type,
            revision,
        } => {
            rendered.insert("meter_type".into(), json!(format!("0x{meter_type:04X}")));
            rendered.insert("software_revision".into(), json!(revision.to_string()));
        }
        Response::SerialNo { serial } => {
            rendered.insert("serial".into(), json!(serial));
        }
        Response::Registers(registers) => {
            let registers: Vec<Json> = registers
                .iter()
                .map(|entry| {
                    let mut register = json!({
                        "register": entry.register,
                        "unit_code": entry.unit.code(),
                        "unit": entry.unit.to_string(),
                        "value": entry.value.to_string(),
                    });
                    if let (Some(natural), Some(object)) =
                        (entry.natural(), register.as_object_mut())
                    {
                        object.insert("natural".into(), json!(natural));
                    }
                    register
                })
                .collect();
            rendered.insert("registers".into(), Json::Array(registers));
        }
        Response::Logger(response) => {
            rendered.insert("subcommand".into(), json!(response.subcommand()));
            rendered.insert("logger_type".into(), json!(response.logger().0));
            match response {
                LoggerResponse::Entries(entries) => {
                    rendered.insert("first_log_id".into(), json!(entries.first_log_id));
                    rendered.insert("last_log_id".into(), json!(entries.last_log_id));
                    rendered.insert("info".into(), json!(entries.info.0));
                    let rows: Vec<Json> = entries
                        .table
                        .rows()
                        .iter()
                        .map(|row| Json::Array(row.iter().map(render_row_cell).collect()))
                        .collect();
                    rendered.insert("rows".into(), Json::Array(rows));
                }
                LoggerResponse::Configuration(configuration) => {
                    rendered.insert("depth".into(), json!(configuration.depth));
                    rendered.insert("registers".into(), json!(configuration.registers.as_ref()));
                }
                LoggerResponse::Other { data, .. } => {
                    rendered.insert("data".into(), json!(to_hex(data)));
                }
            }
        }
        Response::Raw { data, .. } => {
            rendered.insert("data".into(), json!(to_hex(data)));
        }
    }
}

/// One value of a logger row: as a register of GetRegister, its natural
/// form under `text`.
fn render_row_cell(cell: &RegisterValue) -> Json {
    let mut rendered = json!({
        "register": cell.register,
        "unit_code": cell.unit.code(),
        "unit": cell.unit.to_string(),
        "value": cell.value.to_string(),
    });
    if let (Some(text), Some(object)) = (cell.natural(), rendered.as_object_mut()) {
        object.insert("text".into(), json!(text));
    }
    rendered
}

/// A frame error as the vectors name it: `error` is the kind, the other keys
/// its details.
fn render_frame_error(error: &FrameError) -> Json {
    match error {
        FrameError::Empty => json!({ "error": "empty" }),
        FrameError::MissingStart { found } => {
            json!({ "error": "missing_start", "byte": format!("0x{found:02X}") })
        }
        FrameError::Truncated { len } => json!({ "error": "truncated", "len": len }),
        FrameError::UnexpectedByte { offset, byte } => json!({
            "error": "unexpected_byte", "offset": offset, "byte": format!("0x{byte:02X}")
        }),
        FrameError::EscapeAtEnd { offset } => {
            json!({ "error": "escape_at_end", "offset": offset })
        }
        FrameError::BadEscape { offset, byte } => json!({
            "error": "bad_escape", "offset": offset, "byte": format!("0x{byte:02X}")
        }),
        FrameError::TooShort { len } => json!({ "error": "too_short", "len": len }),
        FrameError::TooLong { max } => json!({ "error": "too_long", "max": max }),
        FrameError::Crc { expected, found } => json!({
            "error": "crc",
            "crc_expected": format!("0x{expected:04X}"),
            "crc_found": format!("0x{found:04X}"),
        }),
    }
}

/// The kind of a message error, for the failure text.
fn render_message_error(error: &MessageError) -> &'static str {
    match error {
        MessageError::RegisterCount { .. } => "register_count",
        MessageError::RegisterZero => "register_zero",
        MessageError::Length { .. } => "length",
        MessageError::RegisterEntryTruncated { .. } => "register_entry_truncated",
        MessageError::Value { .. } => "value",
        MessageError::Logger(_) => "logger",
    }
}

/// The wire bytes of a decoded message, encoded again.
fn encode_message(message: &Message, address: u8) -> Vec<u8> {
    match message {
        Message::Request(request) => request.to_frame(address).encode(),
        Message::Response(response) => response.to_frame(address).encode(),
    }
}

/// Every key of `expected` must be in `actual` with an equal value; objects
/// inside arrays are compared the same way, arrays element by element.
fn compare_decoded(expected: &Map<String, Json>, actual: &Json) -> Result<(), String> {
    compare(&Json::Object(expected.clone()), actual, "decoded")
}

fn compare(expected: &Json, actual: &Json, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Json::Object(expected), Json::Object(actual)) => {
            for (key, value) in expected {
                let Some(found) = actual.get(key) else {
                    return Err(format!(
                        "{path}.{key} is not checked by this test: the decoder gives no such field (it gives {:?})",
                        actual.keys().collect::<Vec<_>>()
                    ));
                };
                compare(value, found, &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        (Json::Array(expected), Json::Array(actual)) => {
            if expected.len() != actual.len() {
                return Err(format!(
                    "{path}: expected {} entries, decoded {}: {actual:?}",
                    expected.len(),
                    actual.len()
                ));
            }
            expected
                .iter()
                .zip(actual)
                .enumerate()
                .try_for_each(|(index, (expected, actual))| {
                    compare(expected, actual, &format!("{path}[{index}]"))
                })
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{path}: expected {expected}, decoded {actual}")),
    }
}

fn expect_wire(reencoded: &[u8], wire: &[u8]) -> Result<(), String> {
    if reencoded == wire {
        Ok(())
    } else {
        Err(format!(
            "re-encoded to {}, not the wire {}",
            to_hex(reencoded),
            to_hex(wire)
        ))
    }
}

/// All events the splitter finds in `wire`, fed byte by byte.
fn split(wire: &[u8]) -> Vec<Event> {
    let mut splitter = Splitter::new();
    let mut events = Vec::new();
    for byte in wire.chunks(1) {
        events.extend(splitter.feed(byte));
    }
    events.extend(splitter.finish());
    events
}

fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return Err(format!("`{text}` is not hex bytes"));
    }
    (0..text.len())
        .step_by(2)
        .map(|at| {
            text.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("`{text}` is not hex bytes"))
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02X}")).collect()
}

fn load_cases() -> Vec<Case> {
    let json: Json = serde_json::from_str(VECTORS).expect("the vector file is JSON");
    json.as_array()
        .expect("the vector file is a list of cases")
        .iter()
        .enumerate()
        .map(|(index, case)| {
            Case::parse(case).unwrap_or_else(|error| panic!("case {index}: {error}"))
        })
        .collect()
}

#[test]
fn every_vector_decodes_and_reencodes() {
    let cases = load_cases();
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(index, case)| {
            check_case(case).err().map(|error| {
                format!(
                    "case {index} ({}, {}): {error}",
                    case.direction, case.description
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_direction_kind_has_a_vector() {
    let cases = load_cases();
    for kind in DIRECTION_KINDS {
        assert!(
            cases.iter().any(|case| case.direction == kind),
            "no vector of direction `{kind}`: its check function would go untested"
        );
    }
}

/// The checker itself: cases that are wrong in one way each must fail, so a
/// vector the checker does not understand can never pass unnoticed.
#[test]
fn checker_rejects_what_it_does_not_check() {
    for (case, reason) in [
        (
            json!({"direction": "sideways", "wire": "06", "decoded": {"ack": true}}),
            "has no check function",
        ),
        (
            json!({"direction": "to_meter", "wire": "803F01058A0D",
                   "decoded": {"address": 63, "colour": "red"}}),
            "decoded.colour is not checked",
        ),
        (
            json!({"direction": "to_meter", "wire": "803F01058A0D", "decoded": {"address": 62}}),
            "decoded.address: expected 62",
        ),
        (
            json!({"direction": "from_meter", "wire": "803F01058A0D", "decoded": {}}),
            "frame goes ToMeter",
        ),
        (
            json!({"direction": "from_meter", "wire": "403F0201234567E9560D",
                   "decoded": {"error": "crc"}}),
            "decoded.error is not checked",
        ),
        (
            json!({"direction": "from_meter", "wire": "403F0201234567E9570D",
                   "decoded": {"error": "crc", "crc_expected": "0xE957"}}),
            "decoded.crc_expected: expected \"0xE957\"",
        ),
        (
            json!({"direction": "from_meter", "wire": "403F10001B7F160411012AF02463030D",
                   "decoded": {"registers": [{"register": 128, "value": "1959120400000000000000000", "scale": 1}]}}),
            "decoded.registers[0].scale is not checked",
        ),
        (
            json!({"direction": "from_meter", "wire": "403F10001B7F160411012AF02463030D",
                   "decoded": {"registers": [{"register": 128}, {"register": 129}]}}),
            "expected 2 entries, decoded 1",
        ),
        (
            json!({"direction": "value_field", "wire": "024300FB00", "decoded": {"value": "0.251"}}),
            "used 4 of 5 bytes",
        ),
        (
            json!({"direction": "value_field", "wire": "024300FB", "decoded": {"value": "0.2510"}}),
            "decoded.value: expected \"0.2510\"",
        ),
        (
            json!({"direction": "to_meter_physical_only", "wire": "801BE40D", "decoded": {"unstuffed": "1B", "crc": "0x0000"}}),
            "decoded.crc is not checked",
        ),
        (
            json!({"direction": "either", "wire": "06", "decoded": {"ack": false}}),
            "decoded.ack: expected false",
        ),
    ] {
        let mut case = case;
        if let Some(object) = case.as_object_mut() {
            object.insert("description".into(), json!(reason));
        }
        let case = Case::parse(&case).unwrap();
        let result = check_case(&case);
        assert!(
            result.as_ref().is_err_and(|error| error.contains(reason)),
            "case meant to fail with `{reason}` gave {result:?}"
        );
    }
}
