//! One line with several meters on it, as bytes in and bytes out.
//!
//! A [`Line`] cuts what the master sends into frames, hands each request to
//! the meter it is addressed to, and says what goes back on the wire and after
//! how long: the echo of an optical head, the meter's reply with the faults
//! drawn for it, or silence. It does no IO and reads no clock (the moment is
//! passed in), so the front ends stay thin and every behaviour is testable
//! byte for byte.
//!
//! Silence is what a real meter gives whenever it has nothing valid to answer:
//! a frame for another address, a frame with a bad CRC, a GetRegister with a
//! bad register count, a command without a public layout (except SetClock,
//! which is acknowledged), and the first frame that wakes a sleeping optical
//! port.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kmp::frame::{ACK, Direction, Frame, STOP};
use kmp::logger::LoggerResponse;
use kmp::message::{MessageError, cid_name};
use kmp::stuffing::{needs_escape, stuff_into};
use kmp::{Event, Request, Response, Splitter};

use super::meter::{Answer, Meter, Moment};

/// How the meters on a line behave, besides their values.
#[derive(Debug, Clone, PartialEq)]
pub struct LineConfig {
    /// Send every received byte back before replying, as optical heads do.
    pub echo: bool,
    /// The meter's think time between a request and its reply.
    pub reply_delay: Duration,
    /// Which faults to inject, and how often.
    pub faults: Faults,
    /// Idle time after which a meter's optical port falls asleep and misses
    /// the frame that wakes it; `None`: it never sleeps.
    pub sleep_after: Option<Duration>,
}

impl Default for LineConfig {
    /// No echo, a 20 ms reply delay, no faults, no sleep.
    fn default() -> Self {
        LineConfig {
            echo: false,
            reply_delay: Duration::from_millis(20),
            faults: Faults::default(),
            sleep_after: None,
        }
    }
}

/// Fault injection: the probability (0 to 1) of each fault per reply. The
/// faults are drawn independently, so several can hit the same reply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// The meter stays silent.
    pub no_reply: f64,
    /// The reply's CRC is wrong.
    pub bad_crc: f64,
    /// Random bytes come before the reply or inside it.
    pub garbage: f64,
    /// The reply is cut short, before its stop byte.
    pub truncate: f64,
    /// The reply comes after [`Faults::late_delay`] instead of the reply delay.
    pub late: f64,
    /// The delay of a late reply.
    pub late_delay: Duration,
}

impl Default for Faults {
    /// No faults; a late reply, if asked for, after 2.5 s (past the logger's
    /// default timeout of 1.6 s).
    fn default() -> Self {
        Faults {
            no_reply: 0.0,
            bad_crc: 0.0,
            garbage: 0.0,
            truncate: 0.0,
            late: 0.0,
            late_delay: Duration::from_millis(2_500),
        }
    }
}

/// A fault applied to a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Sent after the late delay.
    Late,
    /// Sent with a wrong CRC.
    BadCrc,
    /// Random bytes before the frame.
    GarbageBefore,
    /// Random bytes inside the frame.
    GarbageInside,
    /// Cut short before its stop byte.
    Truncated,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Late => "late",
            Fault::BadCrc => "bad CRC",
            Fault::GarbageBefore => "garbage before",
            Fault::GarbageInside => "garbage inside",
            Fault::Truncated => "truncated",
        })
    }
}

/// Why nothing goes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Silence {
    /// No meter has the address.
    NoMeter,
    /// The meter's optical port was asleep; this frame woke it.
    Asleep,
    /// The request's data does not fit its command.
    BadRequest(MessageError),
    /// The meter does not serve the command.
    Unsupported,
    /// The no-reply fault was drawn.
    NoReplyFault,
    /// The bytes were not a request frame: garbage, a malformed frame, a
    /// response or an ACK.
    NotARequest,
}

impl fmt::Display for Silence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Silence::NoMeter => f.write_str("no meter at this address"),
            Silence::Asleep => f.write_str("optical port asleep, woken by this frame"),
            Silence::BadRequest(error) => write!(f, "{error}"),
            Silence::Unsupported => f.write_str("command not served"),
            Silence::NoReplyFault => f.write_str("no-reply fault"),
            Silence::NotARequest => f.write_str("not a request"),
        }
    }
}

/// Bytes to send back after a delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// How long to wait before sending.
    pub delay: Duration,
    /// What to send.
    pub bytes: Vec<u8>,
}

/// What came of one frame (or run of garbage) received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reply goes back.
    Reply {
        /// The bytes and their delay.
        reply: Reply,
        /// What the reply says, in words (`3 registers`, `ACK`).
        answer: String,
        /// The faults applied to it.
        faults: Vec<Fault>,
    },
    /// Nothing goes back.
    Silent(Silence),
}

/// One request (or other input) and what came of it, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// What was received, in words (`63 GetRegister 60,68`).
    pub received: String,
    /// What came of it.
    pub outcome: Outcome,
}

impl Exchange {
    /// The reply to send, if any.
    pub fn reply(&self) -> Option<&Reply> {
        match &self.outcome {
            Outcome::Reply { reply, .. } => Some(reply),
            Outcome::Silent(_) => None,
        }
    }
}

impl fmt::Display for Exchange {
    /// `63 GetRegister 60,68 -> 2 registers, 31 bytes after 20 ms`, with the
    /// faults in brackets, or `5 GetType -> silent: no meter at this address`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> ", self.received)?;
        match &self.outcome {
            Outcome::Reply {
                reply,
                answer,
                faults,
            } => {
                write!(
                    f,
                    "{answer}, {} bytes after {} ms",
                    reply.bytes.len(),
                    reply.delay.as_millis()
                )?;
                if !faults.is_empty() {
                    let faults: Vec<String> = faults.iter().map(Fault::to_string).collect();
                    write!(f, " [{}]", faults.join(", "))?;
                }
                Ok(())
            }
            Outcome::Silent(silence) => write!(f, "silent: {silence}"),
        }
    }
}

/// What the line sends back for the bytes received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// The echo, sent at once (empty without echo).
    pub echo: Vec<u8>,
    /// One entry per frame or run of garbage received, in order.
    pub exchanges: Vec<Exchange>,
}

/// The optical ports of the meters: when each (by index in the meter list)
/// last received a frame, as time since start. An optical port belongs to its
/// meter, not to a connection, so all lines share one `Ports`.
#[derive(Debug, Clone)]
pub struct Ports {
    last_heard: Arc<Mutex<Vec<Option<Duration>>>>,
}

impl Ports {
    /// The ports of `count` meters, all asleep.
    pub fn new(count: usize) -> Ports {
        Ports {
            last_heard: Arc::new(Mutex::new(vec![None; count])),
        }
    }

    /// Whether port `index` is awake for a frame at `now`, given that ports
    /// sleep after `sleep_after` idle; notes the frame either way.
    fn wake(&self, index: usize, now: Duration, sleep_after: Duration) -> bool {
        // The state is a list of instants, valid whatever a panicking holder
        // left half done.
        let mut last_heard = self
            .last_heard
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(last_heard) = last_heard.get_mut(index) else {
            return true;
        };
        let awake = matches!(*last_heard, Some(last) if now.saturating_sub(last) <= sleep_after);
        *last_heard = Some(now);
        awake
    }
}

/// One line: its meters, their optical ports, its frame splitter and its
/// fault dice.
#[derive(Debug)]
pub struct Line {
    meters: Arc<[Meter]>,
    ports: Ports,
    config: Arc<LineConfig>,
    splitter: Splitter,
    rng: fastrand::Rng,
}

impl Line {
    /// A line with `meters` on it, whose optical ports are `ports`; `seed`
    /// makes its faults reproducible.
    pub fn new(meters: Arc<[Meter]>, ports: Ports, config: Arc<LineConfig>, seed: u64) -> Line {
        Line {
            meters,
            ports,
            config,
            splitter: Splitter::new(),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Takes bytes from the master received at `at`; a frame split over
    /// several calls is answered when its stop byte arrives.
    pub fn receive(&mut self, bytes: &[u8], at: Moment) -> Output {
        let echo = if self.config.echo {
            bytes.to_vec()
        } else {
            Vec::new()
        };
        self.splitter.push(bytes);
        let mut exchanges = Vec::new();
        while let Some(event) = self.splitter.next_event() {
            exchanges.push(self.handle(event, at));
        }
        Output { echo, exchanges }
    }

    fn handle(&mut self, event: Event, at: Moment) -> Exchange {
        let not_a_request = |received: String| Exchange {
            received,
            outcome: Outcome::Silent(Silence::NotARequest),
        };
        match event {
            Event::Frame(frame) if frame.direction == Direction::ToMeter => {
                self.handle_request(&frame, at)
            }
            Event::Frame(frame) => not_a_request(format!("response frame from {}", frame.address)),
            Event::Ack => not_a_request("ACK".to_owned()),
            Event::Garbage(bytes) => not_a_request(format!("{} bytes of garbage", bytes.len())),
            Event::Malformed { error, .. } => not_a_request(format!("malformed frame ({error})")),
        }
    }

    fn handle_request(&mut self, frame: &Frame, at: Moment) -> Exchange {
        let request = Request::decode(frame);
        let received = match &request {
            Ok(Request::GetRegister(ids)) => {
                let ids: Vec<String> = ids.iter().map(u16::to_string).collect();
                format!("{} GetRegister {}", frame.address, ids.join(","))
            }
            _ => format!("{} {}", frame.address, cid_name(frame.cid)),
        };
        let outcome = match self
            .meters
            .iter()
            .position(|m| m.address() == frame.address)
        {
            None => Outcome::Silent(Silence::NoMeter),
            Some(index) if !self.wake(index, at.elapsed) => Outcome::Silent(Silence::Asleep),
            Some(index) => match request {
                Err(error) => Outcome::Silent(Silence::BadRequest(error)),
                Ok(request) => {
                    let answer = self
                        .meters
                        .get(index)
                        .and_then(|meter| meter.answer(&request, at));
                    match answer {
                        None => Outcome::Silent(Silence::Unsupported),
                        Some(answer) => self.deliver(answer, frame.address),
                    }
                }
            },
        };
        Exchange { received, outcome }
    }

    /// Whether meter `index` is awake for a frame at `now`; notes the frame.
    fn wake(&self, index: usize, now: Duration) -> bool {
        self.config
            .sleep_after
            .is_none_or(|sleep_after| self.ports.wake(index, now, sleep_after))
    }

    /// The reply for `answer`, with the faults drawn for it. An ACK can be
    /// dropped or late; the other faults need a frame.
    fn deliver(&mut self, answer: Answer, address: u8) -> Outcome {
        let faults = self.config.faults;
        if self.draw(faults.no_reply) {
            return Outcome::Silent(Silence::NoReplyFault);
        }
        let mut applied = Vec::new();
        let delay = if self.draw(faults.late) {
            applied.push(Fault::Late);
            faults.late_delay
        } else {
            self.config.reply_delay
        };
        let (bytes, answer) = match answer {
            Answer::Ack => (vec![ACK], "ACK".to_owned()),
            Answer::Response(response) => {
                let frame = response.to_frame(address);
                (self.corrupt(&frame, &mut applied), describe(&response))
            }
        };
        Outcome::Reply {
            reply: Reply { delay, bytes },
            answer,
            faults: applied,
        }
    }

    /// `frame` on the wire, with the CRC, garbage and truncation faults drawn.
    fn corrupt(&mut self, frame: &Frame, applied: &mut Vec<Fault>) -> Vec<u8> {
        let faults = self.config.faults;
        let mut wire = if self.draw(faults.bad_crc) {
            applied.push(Fault::BadCrc);
            let error = self.rng.u16(1..);
            encode_with_crc_error(frame, error)
        } else {
            frame.encode()
        };
        if self.draw(faults.garbage) {
            // Garbage holds no byte with a meaning on the line, so that it
            // cannot start, end or escape anything: before the frame the
            // master must skip it; inside, it breaks the frame's CRC.
            let count = self.rng.usize(1..=8);
            let rng = &mut self.rng;
            let garbage: Vec<u8> = std::iter::repeat_with(|| rng.u8(..))
                .filter(|&byte| !needs_escape(byte))
                .take(count)
                .collect();
            let (at, fault) = if self.rng.bool() {
                (0, Fault::GarbageBefore)
            } else {
                (self.rng.usize(1..wire.len().max(2)), Fault::GarbageInside)
            };
            wire.splice(at..at, garbage);
            applied.push(fault);
        }
        // Keep at least the start byte and the (possibly escaped) address,
        // so that the master can tell whose reply was cut short.
        let named = if wire.get(1) == Some(&kmp::frame::ESCAPE) {
            3
        } else {
            2
        };
        if self.draw(faults.truncate) && wire.len() > named {
            // The stop byte stands only at the end, so any cut loses it.
            let keep = self.rng.usize(named..wire.len());
            wire.truncate(keep);
            applied.push(Fault::Truncated);
        }
        wire
    }

    fn draw(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.f64() < probability
    }
}

/// `frame` on the wire with its CRC XORed with `error` (non-zero), so that
/// the CRC check fails while the framing and stuffing stay valid.
fn encode_with_crc_error(frame: &Frame, error: u16) -> Vec<u8> {
    let mut body = vec![frame.address, frame.cid];
    body.extend_from_slice(&frame.data);
    let crc = kmp::crc::checksum(&body) ^ error;
    body.extend_from_slice(&crc.to_be_bytes());
    let mut wire = vec![frame.direction.start_byte()];
    stuff_into(&body, &mut wire);
    wire.push(STOP);
    wire
}

/// What a response says, in words.
fn describe(response: &Response) -> String {
    match response {
        Response::Type {
            meter_type,
            revision,
        } => format!("type 0x{meter_type:04X} revision {revision}"),
        Response::SerialNo { serial } => format!("serial {serial}"),
        Response::Registers(values) if values.len() == 1 => "1 register".to_owned(),
        Response::Registers(values) => format!("{} registers", values.len()),
        Response::Logger(LoggerResponse::Entries(entries)) => format!(
            "{} rows of the {} logger from log id {} (info {})",
            entries.table.rows().len(),
            entries.logger,
            entries.first_log_id,
            entries.info
        ),
        Response::Logger(response) => format!("{} logger", response.logger()),
        Response::Raw { cid, .. } => cid_name(*cid),
    }
}

#[cfg(test)]
mod tests {
    use kmp::catalogue::Model;
    use kmp::frame::FrameError;

    use super::*;

    fn fails_crc(bytes: &[u8]) -> bool {
        matches!(Frame::decode(bytes), Err(FrameError::Crc { .. }))
    }

    fn meters() -> Arc<[Meter]> {
        vec![
            Meter::new(1, Model::Multical603),
            Meter::new(63, Model::Multical403),
            Meter::new(5, Model::Kamstrup382),
        ]
        .into()
    }

    fn line(config: LineConfig) -> Line {
        seeded(config, 7)
    }

    fn seeded(config: LineConfig, seed: u64) -> Line {
        Line::new(meters(), Ports::new(3), Arc::new(config), seed)
    }

    fn moment(millis: u64) -> Moment {
        Moment::after(1_763_987_696, Duration::from_millis(millis))
    }

    fn request(address: u8, request: &Request) -> Vec<u8> {
        request.to_frame(address).encode()
    }

    fn get_register(address: u8, ids: &[u16]) -> Vec<u8> {
        request(address, &Request::get_register(ids).unwrap())
    }

    /// The one exchange `bytes` cause on a fresh line with `config`.
    fn exchange(config: LineConfig, bytes: &[u8]) -> Exchange {
        let output = line(config).receive(bytes, moment(0));
        assert_eq!(output.exchanges.len(), 1, "{output:?}");
        output.exchanges.into_iter().next().unwrap()
    }

    fn replied_bytes(exchange: &Exchange) -> Vec<u8> {
        exchange.reply().expect("a reply").bytes.clone()
    }

    fn faults(faults: Faults) -> LineConfig {
        LineConfig {
            faults,
            ..LineConfig::default()
        }
    }

    #[test]
    fn only_the_addressed_meter_answers() {
        for (address, answers) in [(1, true), (63, true), (5, true), (2, false), (255, false)] {
            let exchange = exchange(
                LineConfig::default(),
                &request(address, &Request::GetSerialNo),
            );
            match exchange.reply() {
                Some(reply) => {
                    assert!(answers, "{address} answered");
                    let frame = Frame::decode(&reply.bytes).unwrap();
                    assert_eq!(
                        (frame.direction, frame.address),
                        (Direction::FromMeter, address)
                    );
                    let serial = meters()
                        .iter()
                        .find(|m| m.address() == address)
                        .unwrap()
                        .serial();
                    assert_eq!(Response::decode(&frame), Ok(Response::SerialNo { serial }));
                    assert_eq!(reply.delay, Duration::from_millis(20));
                }
                None => {
                    assert!(!answers, "{address} silent");
                    assert_eq!(exchange.outcome, Outcome::Silent(Silence::NoMeter));
                }
            }
        }
    }

    #[test]
    fn silent_where_a_meter_is_silent() {
        let mut bad_crc = get_register(63, &[60]);
        let crc_lo = bad_crc.len() - 2;
        bad_crc[crc_lo] ^= 0x01;
        let bad_count = Frame::new(Direction::ToMeter, 63, 0x10, vec![9, 0, 60]).encode();
        let response = Response::SerialNo { serial: 1 }.to_frame(63).encode();
        let put_register = request(
            63,
            &Request::Raw {
                cid: 0x11,
                data: vec![0, 1],
            },
        );
        for (bytes, silence) in [
            (bad_crc, Silence::NotARequest),
            (
                bad_count,
                Silence::BadRequest(MessageError::RegisterCount { count: 9 }),
            ),
            (response, Silence::NotARequest),
            (put_register, Silence::Unsupported),
            (vec![ACK], Silence::NotARequest),
        ] {
            let outcome = line(LineConfig::default()).receive(&bytes, moment(0));
            let outcomes: Vec<Outcome> = outcome.exchanges.into_iter().map(|e| e.outcome).collect();
            assert_eq!(outcomes, [Outcome::Silent(silence)], "{bytes:02X?}");
        }
    }

    #[test]
    fn set_clock_is_acknowledged() {
        let set_clock = request(
            1,
            &Request::Raw {
                cid: 0x09,
                data: vec![25, 11, 24],
            },
        );
        assert_eq!(
            replied_bytes(&exchange(LineConfig::default(), &set_clock)),
            [ACK]
        );
    }

    #[test]
    fn register_replies_leave_out_unknown_registers_and_may_be_empty() {
        for (address, ids, expected) in [
            (1, &[60, 68, 1][..], &[60, 68][..]),
            (5, &[1, 60], &[1]),
            (5, &[60], &[]),
        ] {
            let bytes = replied_bytes(&exchange(
                LineConfig::default(),
                &get_register(address, ids),
            ));
            let Ok(Response::Registers(values)) = Response::decode(&Frame::decode(&bytes).unwrap())
            else {
                panic!("not a register response");
            };
            let got: Vec<u16> = values.iter().map(|value| value.register).collect();
            assert_eq!(got, expected, "{address} {ids:?}");
        }
    }

    #[test]
    fn a_frame_split_over_reads_is_answered_at_its_stop_byte() {
        let bytes = get_register(63, &[60, 68]);
        let mut line = line(LineConfig::default());
        let (head, tail) = bytes.split_at(4);
        assert!(line.receive(head, moment(0)).exchanges.is_empty());
        let output = line.receive(tail, moment(5));
        assert_eq!(output.exchanges.len(), 1);
        assert!(output.exchanges[0].reply().is_some());
    }

    #[test]
    fn echo_returns_every_byte_received() {
        let bytes = [vec![0x01, 0x02], get_register(1, &[60])].concat();
        for (echo, expected) in [(true, bytes.clone()), (false, vec![])] {
            let config = LineConfig {
                echo,
                ..LineConfig::default()
            };
            let output = line(config).receive(&bytes, moment(0));
            assert_eq!(output.echo, expected);
            assert_eq!(output.exchanges.len(), 2, "garbage, then the request");
            assert!(output.exchanges[1].reply().is_some());
        }
    }

    #[test]
    fn each_fault_does_what_it_says() {
        let ask = get_register(63, &[60, 68, 74, 80, 86, 87]);
        let clean = replied_bytes(&exchange(LineConfig::default(), &ask));
        let always = |set: fn(&mut Faults)| {
            let mut faults = Faults::default();
            set(&mut faults);
            faults
        };

        let silent = exchange(faults(always(|f| f.no_reply = 1.0)), &ask);
        assert_eq!(silent.outcome, Outcome::Silent(Silence::NoReplyFault));

        let late = exchange(faults(always(|f| f.late = 1.0)), &ask);
        assert_eq!(late.reply().unwrap().delay, Duration::from_millis(2_500));
        assert_eq!(replied_bytes(&late), clean);

        for seed in 0..50 {
            let mut line = seeded(faults(always(|f| f.bad_crc = 1.0)), seed);
            let exchange = line.receive(&ask, moment(0)).exchanges.remove(0);
            let bytes = replied_bytes(&exchange);
            assert!(fails_crc(&bytes), "{bytes:02X?}");

            let mut line = seeded(faults(always(|f| f.truncate = 1.0)), seed);
            let bytes = replied_bytes(&line.receive(&ask, moment(0)).exchanges.remove(0));
            assert!(!bytes.is_empty() && bytes.len() < clean.len());
            assert!(!bytes.contains(&STOP), "{bytes:02X?}");
            assert_eq!(bytes, clean[..bytes.len()]);

            let mut line = seeded(faults(always(|f| f.garbage = 1.0)), seed);
            let exchange = line.receive(&ask, moment(0)).exchanges.remove(0);
            let bytes = replied_bytes(&exchange);
            assert!(bytes.len() > clean.len());
            let Outcome::Reply { faults, .. } = &exchange.outcome else {
                unreachable!()
            };
            let events: Vec<Event> = Splitter::new().feed(&bytes).collect();
            match faults[..] {
                [Fault::GarbageBefore] => {
                    assert!(matches!(events[0], Event::Garbage(_)), "{events:?}");
                    assert_eq!(bytes[bytes.len() - clean.len()..], clean);
                }
                [Fault::GarbageInside] => {
                    assert!(
                        !events.iter().any(|e| matches!(e, Event::Frame(_))),
                        "{events:?}"
                    )
                }
                _ => panic!("{faults:?}"),
            }
        }
    }

    #[test]
    fn an_ack_can_only_be_dropped_or_late() {
        let all = Faults {
            bad_crc: 1.0,
            garbage: 1.0,
            truncate: 1.0,
            late: 1.0,
            ..Faults::default()
        };
        let set_clock = request(
            1,
            &Request::Raw {
                cid: 0x09,
                data: vec![],
            },
        );
        let exchange = exchange(faults(all), &set_clock);
        assert_eq!(replied_bytes(&exchange), [ACK]);
        assert_eq!(exchange.reply().unwrap().delay, all.late_delay);
    }

    #[test]
    fn faults_are_reproducible_from_the_seed() {
        let half = Faults {
            no_reply: 0.5,
            bad_crc: 0.5,
            garbage: 0.5,
            truncate: 0.5,
            late: 0.5,
            ..Faults::default()
        };
        let run = |seed| {
            let mut line = seeded(faults(half), seed);
            (0..40)
                .map(|i| line.receive(&get_register(1, &[60, 86]), moment(i * 1000)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn a_sleeping_port_misses_the_frame_that_wakes_it() {
        let config = LineConfig {
            sleep_after: Some(Duration::from_secs(10)),
            ..LineConfig::default()
        };
        let mut line = line(config);
        let ask = |line: &mut Line, address, millis| {
            line.receive(&request(address, &Request::GetType), moment(millis))
                .exchanges
                .remove(0)
                .outcome
        };
        let asleep = Outcome::Silent(Silence::Asleep);
        assert_eq!(ask(&mut line, 63, 0), asleep, "asleep at start");
        assert!(matches!(ask(&mut line, 63, 500), Outcome::Reply { .. }));
        assert!(matches!(ask(&mut line, 63, 9_000), Outcome::Reply { .. }));
        assert_eq!(
            ask(&mut line, 1, 9_500),
            asleep,
            "each meter sleeps on its own"
        );
        assert_eq!(ask(&mut line, 63, 30_000), asleep, "idle past 10 s");
        assert!(matches!(ask(&mut line, 63, 31_000), Outcome::Reply { .. }));
    }

    #[test]
    fn lines_share_the_optical_ports() {
        let config = Arc::new(LineConfig {
            sleep_after: Some(Duration::from_secs(10)),
            ..LineConfig::default()
        });
        let ports = Ports::new(3);
        let mut lines =
            [1, 2].map(|seed| Line::new(meters(), ports.clone(), Arc::clone(&config), seed));
        let get_type = request(63, &Request::GetType);
        let outcome = |line: &mut Line, millis| {
            line.receive(&get_type, moment(millis))
                .exchanges
                .remove(0)
                .outcome
        };
        assert_eq!(outcome(&mut lines[0], 0), Outcome::Silent(Silence::Asleep));
        assert!(
            matches!(outcome(&mut lines[1], 1_000), Outcome::Reply { .. }),
            "woken on the other line"
        );
    }

    #[test]
    fn exchanges_read_well_in_the_log() {
        let ok = exchange(LineConfig::default(), &get_register(63, &[60, 68]));
        let text = ok.to_string();
        assert!(
            text.starts_with("63 GetRegister 60,68 -> 2 registers, "),
            "{text}"
        );
        assert!(text.ends_with(" bytes after 20 ms"), "{text}");
        let late = exchange(
            faults(Faults {
                late: 1.0,
                ..Faults::default()
            }),
            &request(1, &Request::GetSerialNo),
        );
        assert!(late.to_string().ends_with("after 2500 ms [late]"), "{late}");
        let none = exchange(LineConfig::default(), &request(9, &Request::GetType));
        assert_eq!(
            none.to_string(),
            "9 GetType -> silent: no meter at this address"
        );
    }
}
