//! Property tests of the codec as a whole, with random inputs from proptest.
//!
//! - Messages survive the full path: `Request`/`Response` → `Frame` →
//!   `Frame::encode` (stuffing, CRC) → a byte stream of several frames with
//!   garbage between them, cut into random chunks → `Splitter` →
//!   `Message::decode`. The result is the identity, and the splitter reports
//!   exactly the garbage that was put in. Addresses, register IDs, units and
//!   mantissas are drawn with a bias towards the bytes that need stuffing
//!   (`80 40 0D 06 1B`).
//! - Logger (0xB8) requests and replies take part in that, and a logger reply
//!   of up to 60 rows of 12 registers decodes to itself.
//! - Stuffing: `unstuff(stuff(x)) == x` for any bytes, and the stuffed bytes
//!   hold no start, stop or ACK byte.
//! - `Frame::decode` and `Message::decode` never panic on arbitrary bytes, and
//!   what they accept encodes back (a valid frame to its exact bytes).
//! - The splitter never panics and accounts for every byte it was fed: after
//!   `finish`, the bytes of its Garbage and Malformed events, of its Frame
//!   events encoded again and one byte per ACK add up to the bytes pushed, and
//!   in order they are the stream itself.
//! - `Value`'s Display is exact: the printed decimal, parsed back by a helper
//!   of this file, is mantissa × 10^exponent with the exponent's precision.

use kmp::frame::{ACK, MAX_FRAME_LEN, START_FROM_METER, START_TO_METER};
use kmp::logger::{
    LogEntries, LogInfo, LogQuery, LogRegisters, LogTable, Logger, LoggerConfiguration,
    LoggerRequest, LoggerResponse,
};
use kmp::message::{Message, SoftwareRevision};
use kmp::stuffing::{needs_escape, stuff_into, unstuff};
use kmp::{Event, Frame, RegisterValue, Request, Response, Splitter, Unit, Value};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// The bytes that must be escaped inside a frame.
const SPECIAL: [u8; 5] = [START_TO_METER, START_FROM_METER, 0x0D, ACK, 0x1B];

/// CIDs whose data has a public layout, decoded into typed messages; any
/// other CID travels as `Raw`.
const TYPED_CIDS: [u8; 4] = [0x01, 0x02, 0x10, 0xB8];

// ---------------------------------------------------------------- strategies

/// Any byte, with the bytes that need stuffing drawn often.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![3 => any::<u8>(), 2 => select(SPECIAL.to_vec())]
}

fn bytes(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<u8>> {
    vec(byte(), len)
}

fn u16_of(bytes: [u8; 2]) -> u16 {
    u16::from_be_bytes(bytes)
}

/// A register ID a request may ask for (1..=65535).
fn requested_register() -> impl Strategy<Value = u16> {
    (byte(), byte())
        .prop_map(|(hi, lo)| u16_of([hi, lo]))
        .prop_filter("register 0 does not exist", |&id| id != 0)
}

/// A value: random sign, exponent -63..=63, mantissa of 1..=8 bytes that fits.
fn value() -> impl Strategy<Value = Value> {
    (any::<bool>(), -63i8..=63, bytes(1..=8)).prop_map(|(negative, exponent, mantissa)| {
        Value::from_parts(negative, big_endian(&mantissa), exponent, mantissa.len())
            .expect("a mantissa of `width` bytes fits `width`")
    })
}

fn big_endian(bytes: &[u8]) -> u128 {
    bytes
        .iter()
        .fold(0, |acc, &byte| (acc << 8) | u128::from(byte))
}

fn register_value() -> impl Strategy<Value = RegisterValue> {
    (byte(), byte(), byte(), value()).prop_map(|(hi, lo, unit, value)| RegisterValue {
        register: u16_of([hi, lo]),
        unit: Unit(unit),
        value,
    })
}

fn logger() -> impl Strategy<Value = Logger> {
    prop_oneof![3 => (0u8..=9).prop_map(Logger), 1 => byte().prop_map(Logger)]
}

fn log_registers(max: usize) -> impl Strategy<Value = LogRegisters> {
    vec(any::<u16>(), 1..=max).prop_map(|ids| LogRegisters::new(&ids).unwrap())
}

/// Subcommands without a public layout, kept raw.
fn other_subcommand() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("05..07 are typed", |sub| !(0x05..=0x07).contains(sub))
}

// Boxed: the logger strategies are deep, and the stream strategies nest
// several messages; unboxed, their value trees overflow a test thread's stack.
fn logger_request() -> BoxedStrategy<LoggerRequest> {
    prop_oneof![
        logger().prop_map(|logger| LoggerRequest::GetConfiguration { logger }),
        (logger(), any::<u32>(), any::<u16>(), log_registers(12)).prop_map(
            |(logger, log_id, entries, registers)| LoggerRequest::GetLogIdPastAbs {
                logger,
                log_id,
                entries,
                registers
            }
        ),
        (logger(), any::<u16>(), any::<u16>(), log_registers(12)).prop_map(
            |(logger, offset, entries, registers)| LoggerRequest::GetLogLastEntryPastAbs {
                logger,
                offset,
                entries,
                registers
            }
        ),
        (other_subcommand(), logger(), bytes(0..=16)).prop_map(|(subcommand, logger, data)| {
            LoggerRequest::Other {
                subcommand,
                logger,
                data,
            }
        }),
    ]
    .boxed()
}

/// A table of `rows` rows: row 1 random, later rows the same registers in the
/// same layout with random mantissas (all a later row can carry).
fn log_table(rows: std::ops::RangeInclusive<usize>, registers: usize) -> BoxedStrategy<LogTable> {
    (vec(register_value(), 1..=registers), rows, any::<u8>())
        .prop_flat_map(|(header, rows, empty_count)| {
            let later = header
                .iter()
                .map(|cell| vec(any::<u8>(), cell.value.width()))
                .collect::<Vec<_>>();
            vec(later, rows.saturating_sub(1)).prop_map(move |later_rows| {
                if rows == 0 {
                    return LogTable::empty(empty_count);
                }
                let mut table = vec![header.clone()];
                for mantissas in later_rows {
                    table.push(
                        header
                            .iter()
                            .zip(&mantissas)
                            .map(|(head, bytes)| RegisterValue {
                                value: head.value.with_mantissa_bytes(bytes).unwrap(),
                                ..*head
                            })
                            .collect(),
                    );
                }
                LogTable::new(table).unwrap()
            })
        })
        .boxed()
}

fn logger_response() -> BoxedStrategy<LoggerResponse> {
    prop_oneof![
        (
            logger(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            any::<bool>(),
            log_table(0..=6, 6)
        )
            .prop_map(|(logger, first_log_id, last_log_id, info, by_id, table)| {
                LoggerResponse::Entries(LogEntries {
                    query: if by_id {
                        LogQuery::IdPastAbs
                    } else {
                        LogQuery::LastEntryPastAbs
                    },
                    logger,
                    first_log_id,
                    last_log_id,
                    info: LogInfo(info),
                    table,
                })
            }),
        (
            logger(),
            vec(any::<u8>(), 10),
            any::<u16>(),
            log_registers(43)
        )
            .prop_map(|(logger, fields, depth, registers)| {
                let field = |index: usize| fields.get(index).copied().unwrap_or_default();
                LoggerResponse::Configuration(LoggerConfiguration {
                    logger,
                    date1_format: field(0),
                    date1: u16_of([field(1), field(2)]),
                    date2_format: field(3),
                    date2: u16_of([field(4), field(5)]),
                    max_records_format: field(6),
                    max_records: field(7),
                    interval_format: field(8),
                    interval: field(9),
                    depth,
                    registers,
                })
            }),
        (other_subcommand(), logger(), bytes(0..=16)).prop_map(|(subcommand, logger, data)| {
            LoggerResponse::Other {
                subcommand,
                logger,
                data,
            }
        }),
    ]
    .boxed()
}

fn raw_cid() -> impl Strategy<Value = u8> {
    let untyped: Vec<u8> = (0..=u8::MAX)
        .filter(|cid| !TYPED_CIDS.contains(cid))
        .collect();
    prop_oneof![3 => select(untyped), 2 => select(SPECIAL.to_vec())]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::GetType),
        Just(Request::GetSerialNo),
        vec(requested_register(), 1..=8).prop_map(|ids| Request::get_register(&ids).unwrap()),
        logger_request().prop_map(Request::Logger),
        (raw_cid(), bytes(0..=24)).prop_map(|(cid, data)| Request::Raw { cid, data }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (byte(), byte(), byte(), byte()).prop_map(|(hi, lo, letter, number)| Response::Type {
            meter_type: u16_of([hi, lo]),
            revision: SoftwareRevision { letter, number },
        }),
        (byte(), byte(), byte(), byte()).prop_map(|(a, b, c, d)| Response::SerialNo {
            serial: u32::from_be_bytes([a, b, c, d]),
        }),
        vec(register_value(), 0..=8).prop_map(Response::Registers),
        logger_response().prop_map(Response::Logger),
        (raw_cid(), bytes(0..=24)).prop_map(|(cid, data)| Response::Raw { cid, data }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        request().prop_map(Message::Request),
        response().prop_map(Message::Response),
    ]
}

/// Line noise between frames: anything but a start byte or an ACK, with the
/// stop and escape bytes drawn often.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let noise: Vec<u8> = (0..=u8::MAX).filter(|&byte| !is_boundary(byte)).collect();
    let noise_byte = prop_oneof![3 => select(noise), 2 => select(vec![0x0D, 0x1B])];
    prop_oneof![Just(Vec::new()), vec(noise_byte, 1..=6)]
}

fn is_boundary(byte: u8) -> bool {
    matches!(byte, START_TO_METER | START_FROM_METER | ACK)
}

/// One frame on the line, with the garbage before it.
#[derive(Debug, Clone)]
struct Item {
    garbage: Vec<u8>,
    address: u8,
    message: Message,
}

fn item() -> impl Strategy<Value = Item> {
    (garbage(), byte(), message()).prop_map(|(garbage, address, message)| Item {
        garbage,
        address,
        message,
    })
}

/// A frame as on the line.
fn wire_frame() -> impl Strategy<Value = Vec<u8>> {
    (byte(), message()).prop_map(|(address, message)| to_frame(&message, address).encode())
}

/// A piece of a noisy stream for the accounting property.
fn segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // a valid frame
        3 => wire_frame(),
        // a frame cut short
        2 => (wire_frame(), any::<Index>())
            .prop_map(|(wire, cut)| wire[..cut.index(wire.len())].to_vec()),
        // a frame with one byte replaced
        2 => (wire_frame(), any::<Index>(), byte()).prop_map(|(mut wire, at, byte)| {
            let at = at.index(wire.len());
            wire[at] = byte;
            wire
        }),
        // noise, start bytes and ACKs included
        2 => bytes(1..=12),
        1 => Just(vec![ACK]),
    ]
}

/// A noisy stream: segments back to back.
fn noisy_stream() -> impl Strategy<Value = Vec<u8>> {
    vec(segment(), 0..=8).prop_map(|segments| segments.concat())
}

/// Frame length limits: the default, and small ones that bite.
fn max_len() -> impl Strategy<Value = usize> {
    prop_oneof![Just(MAX_FRAME_LEN), 1usize..=40]
}

/// Cut points into a stream: `chunks(stream, cuts)` splits it there.
fn cuts() -> impl Strategy<Value = Vec<Index>> {
    vec(any::<Index>(), 0..=12)
}

// ---------------------------------------------------------------- helpers

fn to_frame(message: &Message, address: u8) -> Frame {
    match message {
        Message::Request(request) => request.to_frame(address),
        Message::Response(response) => response.to_frame(address),
    }
}

/// `stream` cut at the given points, in order; the pieces cover it exactly.
fn chunks<'a>(stream: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    points
        .windows(2)
        .map(|pair| &stream[pair[0]..pair[1]])
        .collect()
}

/// Feeds `chunks` to a splitter and returns every event, `finish` included.
fn split(mut splitter: Splitter, chunks: &[&[u8]]) -> Vec<Event> {
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(splitter.feed(chunk));
    }
    events.extend(splitter.finish());
    events
}

/// The bytes on the line an event stands for.
fn event_bytes(event: &Event) -> Vec<u8> {
    match event {
        Event::Frame(frame) => frame.encode(),
        Event::Ack => vec![ACK],
        Event::Garbage(bytes) | Event::Malformed { bytes, .. } => bytes.clone(),
    }
}

/// A decimal as printed: sign, digits without leading zeros ("0" for zero)
/// and the power of ten of the last digit, with trailing zeros moved into the
/// exponent so equal numbers compare equal.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i32,
}

impl Decimal {
    fn normalised(negative: bool, digits: &str, exponent: i32) -> Decimal {
        let significant = digits.trim_start_matches('0');
        let trimmed = significant.trim_end_matches('0');
        if trimmed.is_empty() {
            return Decimal {
                negative: false,
                digits: "0".to_owned(),
                exponent: 0,
            };
        }
        let shift = i32::try_from(significant.len() - trimmed.len()).unwrap();
        Decimal {
            negative,
            digits: trimmed.to_owned(),
            exponent: exponent + shift,
        }
    }

    /// Parses `-?[0-9]+(\.[0-9]+)?`; also returns the number of fraction digits.
    fn parse(text: &str) -> Option<(Decimal, usize)> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        let dotted = unsigned.contains('.');
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(fraction)
            || (dotted && fraction.is_empty())
        {
            return None;
        }
        let exponent = -i32::try_from(fraction.len()).ok()?;
        let decimal = Decimal::normalised(negative, &format!("{whole}{fraction}"), exponent);
        Some((decimal, fraction.len()))
    }
}

// ---------------------------------------------------------------- checks

/// Encodes `items` into one stream (with `tail` garbage after the last frame),
/// splits it in the chunks `cuts` gives and decodes it: the identity.
fn check_stream_round_trip(items: &[Item], tail: &[u8], cuts: &[Index]) {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for item in items {
        let frame = to_frame(&item.message, item.address);
        let wire = frame.encode();
        assert_eq!(Frame::decode(&wire), Ok(frame.clone()), "wire {wire:02X?}");
        if !item.garbage.is_empty() {
            expected.push(Event::Garbage(item.garbage.clone()));
        }
        expected.push(Event::Frame(frame));
        stream.extend_from_slice(&item.garbage);
        stream.extend_from_slice(&wire);
    }
    if !tail.is_empty() {
        expected.push(Event::Garbage(tail.to_vec()));
    }
    stream.extend_from_slice(tail);

    let events = split(Splitter::new(), &chunks(&stream, cuts));
    assert_eq!(events, expected, "stream {stream:02X?}");

    let frames = events.iter().filter_map(|event| match event {
        Event::Frame(frame) => Some(frame),
        _ => None,
    });
    for (frame, item) in frames.zip(items) {
        assert_eq!(frame.address, item.address);
        assert_eq!(
            Message::decode(frame).as_ref(),
            Ok(&item.message),
            "frame {frame:?}"
        );
    }
}

fn check_stuffing_round_trip(plain: &[u8]) {
    let mut stuffed = Vec::new();
    stuff_into(plain, &mut stuffed);
    let escapes = plain.iter().filter(|&&byte| needs_escape(byte)).count();
    assert_eq!(
        stuffed.len(),
        plain.len() + escapes,
        "stuffed {stuffed:02X?}"
    );
    assert!(
        !stuffed
            .iter()
            .any(|&byte| matches!(byte, START_TO_METER | START_FROM_METER | 0x0D | ACK)),
        "stuffed bytes hold a start, stop or ACK byte: {stuffed:02X?}"
    );
    assert_eq!(unstuff(&stuffed).as_deref(), Ok(plain));
}

/// Decoding arbitrary bytes returns, never panics; what decodes encodes back:
/// a frame to its exact bytes, a message to a frame that decodes to it again.
fn check_decode_is_total(wire: &[u8]) {
    let Ok(frame) = Frame::decode(wire) else {
        return;
    };
    assert_eq!(frame.encode(), wire, "frame {frame:?}");
    if let Ok(message) = Message::decode(&frame) {
        let again = to_frame(&message, frame.address);
        assert_eq!(
            Frame::decode(&again.encode()).map(|frame| Message::decode(&frame)),
            Ok(Ok(message)),
            "re-encoded {again:?}"
        );
    }
}

/// The splitter never panics and reports every byte once, in order.
fn check_splitter_accounts_for_every_byte(stream: &[u8], cuts: &[Index], max_len: usize) {
    let events = split(Splitter::with_max_len(max_len), &chunks(stream, cuts));
    let total: usize = events.iter().map(|event| event_bytes(event).len()).sum();
    assert_eq!(
        total,
        stream.len(),
        "max_len {max_len}, stream {stream:02X?}, events {events:?}"
    );
    let replayed: Vec<u8> = events.iter().flat_map(event_bytes).collect();
    assert_eq!(replayed, stream, "max_len {max_len}, events {events:?}");
    for event in &events {
        if let Event::Frame(frame) = event {
            assert_eq!(Frame::decode(&frame.encode()).as_ref(), Ok(frame));
            let _ = Message::decode(frame);
        }
    }
}

/// `value` printed, parsed back, is its mantissa × 10^exponent, with as many
/// fraction digits as a negative exponent says and no point otherwise.
fn check_display_is_exact(value: &Value) {
    let text = value.to_string();
    let (printed, fraction_digits) =
        Decimal::parse(&text).unwrap_or_else(|| panic!("`{text}` is not a decimal"));
    let exact = Decimal::normalised(
        value.is_negative(),
        &value.mantissa().to_string(),
        value.exponent().into(),
    );
    assert_eq!(printed, exact, "{value:?} printed as `{text}`");
    let signed = value.is_negative() && value.mantissa() != 0;
    assert_eq!(
        text.starts_with('-'),
        signed,
        "{value:?} printed as `{text}`"
    );
    let precision = usize::from((-value.exponent()).max(0).unsigned_abs());
    assert_eq!(fraction_digits, precision, "{value:?} printed as `{text}`");
}

// ---------------------------------------------------------------- properties

proptest! {
    // 512 cases a property by default; PROPTEST_CASES asks for more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(512),
        // Integration tests have no lib.rs beside them to place a regressions file.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn messages_survive_encode_stuff_split_and_decode(
        items in vec(item(), 1..=5),
        tail in garbage(),
        cuts in cuts(),
    ) {
        check_stream_round_trip(&items, &tail, &cuts);
    }

    #[test]
    fn logger_replies_of_many_rows_decode_to_themselves(table in log_table(0..=60, 12)) {
        let response = LoggerResponse::Entries(LogEntries {
            query: LogQuery::IdPastAbs,
            logger: Logger::HOURLY,
            first_log_id: 1_460,
            last_log_id: 1_460,
            info: LogInfo(LogInfo::HEAD_INCLUDED),
            table,
        });
        prop_assert_eq!(LoggerResponse::decode(&response.encode()), Ok(response));
    }

    #[test]
    fn unstuffing_undoes_stuffing(plain in vec(any::<u8>(), 0..=64), biased in bytes(0..=64)) {
        check_stuffing_round_trip(&plain);
        check_stuffing_round_trip(&biased);
    }

    #[test]
    fn frame_decode_never_panics_on_arbitrary_bytes(wire in vec(any::<u8>(), 0..=64)) {
        check_decode_is_total(&wire);
    }

    #[test]
    fn frame_decode_never_panics_on_frame_like_bytes(
        start in select(vec![START_TO_METER, START_FROM_METER]),
        body in bytes(0..=48),
        // A valid frame with one byte replaced, to get past the CRC at times.
        mutated in (wire_frame(), any::<Index>(), byte()),
    ) {
        check_decode_is_total(&[&[start][..], &body, &[0x0D]].concat());
        let (mut wire, at, replacement) = mutated;
        let at = at.index(wire.len());
        wire[at] = replacement;
        check_decode_is_total(&wire);
    }

    #[test]
    fn splitter_accounts_for_every_byte(
        stream in noisy_stream(),
        cuts in cuts(),
        max_len in max_len(),
    ) {
        check_splitter_accounts_for_every_byte(&stream, &cuts, max_len);
    }

    #[test]
    fn splitter_accounts_for_every_byte_of_arbitrary_input(
        stream in vec(any::<u8>(), 0..=256),
        cuts in cuts(),
        max_len in max_len(),
    ) {
        check_splitter_accounts_for_every_byte(&stream, &cuts, max_len);
    }

    #[test]
    fn value_display_is_exact(
        negative in any::<bool>(),
        exponent in -63i8..=63,
        mantissa in vec(any::<u8>(), 1..=16),
    ) {
        let value = Value::from_parts(negative, big_endian(&mantissa), exponent, mantissa.len())
            .expect("a mantissa of `width` bytes fits `width`");
        check_display_is_exact(&value);
    }

    #[test]
    fn value_display_is_exact_for_meter_values(value in value()) {
        check_display_is_exact(&value);
    }
}

/// The parser of this file, on decimals whose reading is known, so that the
/// Display property cannot pass through a parser that accepts anything.
#[test]
fn decimal_helper_reads_what_it_should() {
    let decimal = |negative, digits: &str, exponent| Decimal {
        negative,
        digits: digits.to_owned(),
        exponent,
    };
    for (text, expected) in [
        ("34.00", Some((decimal(false, "34", 0), 2))),
        ("0.251", Some((decimal(false, "251", -3), 3))),
        ("-123.45", Some((decimal(true, "12345", -2), 2))),
        ("255000", Some((decimal(false, "255", 3), 0))),
        ("-0.00", Some((decimal(false, "0", 0), 2))),
        ("0", Some((decimal(false, "0", 0), 0))),
        ("", None),
        ("-", None),
        ("1.", None),
        (".5", None),
        ("1e3", None),
        ("+1", None),
        ("1.2.3", None),
    ] {
        assert_eq!(Decimal::parse(text), expected, "parsing `{text}`");
    }
}
