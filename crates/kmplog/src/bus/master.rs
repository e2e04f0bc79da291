//! The master transaction: send one request and read until the reply frame
//! from the addressed meter arrives or the timeout passes.
//!
//! The timeout is for the reply to *start*: a meter that has sent nothing
//! when it passes is silent. A reply that is still arriving is read on, as
//! long as no gap between bytes is longer than the line's [gap](MasterSettings::gap)
//! (20 byte times, at least 100 ms; 300 ms on a gateway, whose line speed
//! kmplog does not know), up to a hard bound: the timeout plus the time the
//! expected reply takes on the line (at 1200 baud, the slowest KMP line,
//! when its speed is not known). A register poll expects no length, so its
//! short reply must be whole within the timeout, as the cluster's lease
//! counts it; a logger page of 350 bytes gets the 3.2 s it takes at 1200
//! baud.
//!
//! A reply cut off by the hard bound keeps coming after the attempt has
//! given up. Before each request, and each retry, the master therefore
//! discards what the line holds, and after an attempt that ended while
//! bytes were arriving it first waits for the line to fall quiet for a gap:
//! those bytes are counted as [`LineFault::Stale`], never taken as the
//! answer to the new request. A frame from another address, to another
//! command or to another logger query (subcommand and logger differ) is not
//! the answer either.
//!
//! A master may be given a moment by which everything it writes must have
//! ended ([`Master::set_write_by`]: in a cluster, the deadline of the bus's
//! lease). Right before writing each attempt, after the pause and the
//! drain, it checks that the attempt can end by then (the request's bytes,
//! the timeout and the expected reply's time on the line); if not, it does
//! not write, and the exchange ends with [`TransportError::NoRoom`].
//!
//! On the way it ignores our own echo, garbage, frames for other addresses and
//! frames of another master, and records each as a [`LineFault`] so callers can
//! count line trouble. What the meter did (answered, answered badly, kept
//! silent) is an [`Outcome`], never an error; only a failing line is an `Err`.

use std::fmt;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use kmp::frame::{Direction, FrameError};
use kmp::message::{MessageError, Request, Response, cid_name};
use kmp::splitter::{Event, Splitter};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use crate::transport::{Line, TransportError};

/// How to treat our own request coming back, as optical heads send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EchoMode {
    /// Recognise our own request among the received frames and drop it.
    #[default]
    Auto,
    /// The line echoes: drop as many received bytes as were sent, as long
    /// as they are the bytes sent.
    On,
    /// The line does not echo: a request frame seen is another master's.
    Off,
}

/// Timing and retries of the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterSettings {
    /// How long to wait for the reply to start after the request has been
    /// sent (see the module documentation for how long it may then take).
    pub timeout: Duration,
    /// Further attempts after a silent or corrupt reply.
    pub retries: u32,
    /// Pause before a retry: a sleeping optical port needs a moment after
    /// the frame that woke it.
    pub retry_pause: Duration,
    /// Echo handling.
    pub echo: EchoMode,
    /// Time one byte takes on the line (11 bit times at 8N2), added to the
    /// timeout for each byte of the request, which the port still has to
    /// send when the write returns, and setting the gap and the hard bound
    /// of a reply. Zero when unknown, as behind a TCP gateway.
    pub byte_time: Duration,
    /// A shorter wait for the first attempt, when the meter's optical port
    /// is expected asleep and the first frame will only wake it.
    pub wake_timeout: Option<Duration>,
}

impl Default for MasterSettings {
    /// 1600 ms timeout, one retry after 200 ms, echo auto.
    fn default() -> Self {
        MasterSettings {
            timeout: Duration::from_millis(1600),
            retries: 1,
            retry_pause: Duration::from_millis(200),
            echo: EchoMode::Auto,
            byte_time: Duration::ZERO,
            wake_timeout: None,
        }
    }
}

/// Time a byte takes at 1200 baud 8N2, the slowest line KMP meters speak:
/// what a reply is given on a line whose speed kmplog does not know.
const SLOWEST_BYTE_TIME: Duration = Duration::from_nanos(11 * 1_000_000_000 / 1200);

/// The gap between bytes that ends a reply on a line whose speed kmplog does
/// not know: a gateway may hold bytes back to send them in packets.
const UNTIMED_GAP: Duration = Duration::from_millis(300);

/// The shortest gap that ends a reply on a fast serial line: USB adapters
/// deliver bytes in batches (16 ms apart on FTDI chips), and the process may
/// be scheduled late.
const SHORTEST_GAP: Duration = Duration::from_millis(100);

/// Byte times of silence that end a reply on a serial line of known speed.
const GAP_BYTES: u32 = 20;

impl MasterSettings {
    /// The silence between bytes after which the line counts as quiet: the
    /// end of a reply that is still incomplete, or of stale bytes.
    pub fn gap(&self) -> Duration {
        if self.byte_time.is_zero() {
            UNTIMED_GAP
        } else {
            self.byte_time.saturating_mul(GAP_BYTES).max(SHORTEST_GAP)
        }
    }

    /// How long `bytes` bytes take on the line, at 1200 baud when its speed
    /// is not known.
    fn line_time(&self, bytes: usize) -> Duration {
        let byte_time = if self.byte_time.is_zero() {
            SLOWEST_BYTE_TIME
        } else {
            self.byte_time
        };
        byte_time.saturating_mul(u32::try_from(bytes).unwrap_or(u32::MAX))
    }

    /// The settings of `request`'s transactions on `bus`, on a line whose
    /// bytes take `byte_time` each.
    pub fn for_request(
        bus: &crate::config::BusConfig,
        request: &crate::config::RequestConfig,
        byte_time: Duration,
    ) -> MasterSettings {
        MasterSettings {
            timeout: request.timeout,
            retries: request.retries,
            retry_pause: bus.retry_pause,
            echo: bus.echo,
            byte_time,
            wake_timeout: None,
        }
    }
}

/// What the meter did, after all attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A valid reply.
    Response(Response),
    /// A single ACK byte (the reply to SetClock).
    Ack,
    /// Nothing from the addressed meter within the timeout.
    NoReply,
    /// A reply frame from the meter that could not be decoded (CRC error,
    /// truncated, bad stuffing).
    BadFrame(FrameError),
    /// A valid frame whose content does not fit the command.
    BadMessage(MessageError),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Response(_) => f.write_str("reply"),
            Outcome::Ack => f.write_str("ACK"),
            Outcome::NoReply => f.write_str("no reply"),
            Outcome::BadFrame(error) => write!(f, "invalid reply frame: {error}"),
            Outcome::BadMessage(error) => write!(f, "invalid reply: {error}"),
        }
    }
}

/// Something on the line that was not the awaited reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFault {
    /// Bytes outside any frame.
    Garbage(usize),
    /// A frame that could not be decoded.
    Malformed(FrameError),
    /// A reply from another address.
    WrongAddress(u8),
    /// A reply from the addressed meter to another command.
    WrongCommand(u8),
    /// A logger reply from the addressed meter to another logger request
    /// (another subcommand or logger): its subcommand and logger bytes.
    WrongLoggerQuery(u8, u8),
    /// A request frame that is not our echo: another master on the line.
    ForeignRequest(u8),
    /// An ACK where a frame was awaited.
    UnexpectedAck,
    /// Bytes left on the line from before this request (the late end of a
    /// reply given up on, noise), discarded before it was sent.
    Stale(usize),
}

impl fmt::Display for LineFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineFault::Garbage(count) => write!(f, "{count} bytes of garbage"),
            LineFault::Malformed(error) => write!(f, "invalid frame: {error}"),
            LineFault::WrongAddress(address) => write!(f, "reply from address {address}"),
            LineFault::WrongCommand(cid) => write!(f, "reply to {}", cid_name(*cid)),
            LineFault::WrongLoggerQuery(subcommand, logger) => write!(
                f,
                "reply to {} of logger {logger}",
                kmp::logger::subcommand_name(*subcommand)
            ),
            LineFault::ForeignRequest(address) => {
                write!(f, "request to address {address} from another master")
            }
            LineFault::UnexpectedAck => f.write_str("unexpected ACK"),
            LineFault::Stale(count) => {
                write!(f, "{count} bytes left over from an earlier transaction")
            }
        }
    }
}

/// The result of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// What the meter did.
    pub outcome: Outcome,
    /// Requests sent (1 plus retries used).
    pub attempts: u32,
    /// Whether the first attempt got nothing at all from the meter (as when
    /// it only woke a sleeping optical port).
    pub first_silent: bool,
    /// Everything else seen on the line meanwhile.
    pub faults: Vec<LineFault>,
}

/// Runs transactions on one line. It owns the line: nothing else may read or
/// write it, so at most one request is ever in flight.
pub struct Master<L> {
    line: L,
    name: String,
    settings: MasterSettings,
    splitter: Splitter,
    /// When the last byte came from the line.
    last_byte: Option<Instant>,
    /// The last attempt ended while bytes were still arriving: the next one
    /// waits for the line to fall quiet first.
    unsettled: bool,
    /// The moment by which every attempt written must have ended.
    write_by: Option<Instant>,
}

/// How one attempt ended.
enum Attempt {
    Done(Outcome),
    /// Nothing usable; `Some` when the meter sent a corrupt reply.
    Failed(Option<Outcome>),
}

impl<L: Line> Master<L> {
    /// A master on `line`; `name` says which line in errors.
    pub fn new(line: L, name: impl Into<String>, settings: MasterSettings) -> Self {
        Master {
            line,
            name: name.into(),
            settings,
            splitter: Splitter::new(),
            last_byte: None,
            unsettled: false,
            write_by: None,
        }
    }

    /// Changes timeout, retries and echo handling for the next transactions
    /// (each request of a queue has its own).
    pub fn set_settings(&mut self, settings: MasterSettings) {
        self.settings = settings;
    }

    /// Sets the moment by which every attempt of the next transactions must
    /// end, or none; an attempt that could end later is not written
    /// ([`TransportError::NoRoom`]).
    pub fn set_write_by(&mut self, write_by: Option<Instant>) {
        self.write_by = write_by;
    }

    /// Sends `request` to the meter at `address` and waits for its reply,
    /// retrying as configured.
    pub async fn transact(
        &mut self,
        address: u8,
        request: &Request,
    ) -> Result<Exchange, TransportError> {
        self.transact_expecting(address, request, 0).await
    }

    /// As [`Master::transact`], for a reply of up to `reply_bytes` bytes: once
    /// it has started, each attempt reads it for as long as they take on the
    /// line (a logger page of 400 bytes takes 3.7 s at 1200 baud), unless
    /// the line falls quiet first.
    pub async fn transact_expecting(
        &mut self,
        address: u8,
        request: &Request,
        reply_bytes: usize,
    ) -> Result<Exchange, TransportError> {
        let receiving = self.settings.line_time(reply_bytes);
        let wire = request.to_frame(address).encode();
        let mut faults = Vec::new();
        let mut last_failure = None;
        let mut first_silent = false;
        for attempt in 1..=self.settings.retries.saturating_add(1) {
            let timeout = if attempt == 1 {
                self.settings.wake_timeout.unwrap_or(self.settings.timeout)
            } else {
                tokio::time::sleep(self.settings.retry_pause).await;
                self.settings.timeout
            };
            match self
                .attempt(address, request, &wire, timeout, receiving, &mut faults)
                .await?
            {
                Attempt::Done(outcome) => {
                    return Ok(Exchange {
                        outcome,
                        attempts: attempt,
                        first_silent,
                        faults,
                    });
                }
                Attempt::Failed(failure) => {
                    first_silent |= attempt == 1 && failure.is_none();
                    last_failure = failure.or(last_failure);
                }
            }
        }
        let attempts = self.settings.retries.saturating_add(1);
        Ok(Exchange {
            outcome: last_failure.unwrap_or(Outcome::NoReply),
            attempts,
            first_silent,
            faults,
        })
    }

    /// One request and its reply: `timeout` for the reply to start, then
    /// `receiving` for it to arrive at most.
    async fn attempt(
        &mut self,
        address: u8,
        request: &Request,
        wire: &[u8],
        timeout: Duration,
        receiving: Duration,
        faults: &mut Vec<LineFault>,
    ) -> Result<Attempt, TransportError> {
        self.drain(faults).await?;
        let sending = self
            .settings
            .byte_time
            .saturating_mul(u32::try_from(wire.len()).unwrap_or(u32::MAX));
        // The last check before the line: after the pause and the drain,
        // whatever they took.
        let needed = sending + timeout + receiving;
        if self
            .write_by
            .is_some_and(|write_by| Instant::now() + needed > write_by)
        {
            return Err(TransportError::NoRoom {
                endpoint: self.name.clone(),
                needed,
            });
        }
        self.line
            .write_all(wire)
            .await
            .map_err(|source| self.io_error(source))?;
        self.line
            .flush()
            .await
            .map_err(|source| self.io_error(source))?;
        let start_by = Instant::now() + sending + timeout;
        let hard_bound = start_by + receiving;
        let gap = self.settings.gap();
        let mut heard = None;
        let mut echo_left = if self.settings.echo == EchoMode::On {
            wire
        } else {
            &[][..]
        };
        let mut buffer = [0u8; 512];
        loop {
            // Silence ends the attempt only once the reply had its time to
            // start; bytes that keep coming hold it open up to the bound.
            let deadline = heard.map_or(start_by, |last: Instant| {
                (last + gap).max(start_by).min(hard_bound)
            });
            let received =
                match tokio::time::timeout_at(deadline, self.line.read(&mut buffer)).await {
                    Err(_elapsed) => {
                        self.unsettled = heard.is_some_and(|last| last + gap > deadline);
                        // A reply cut short shows only now, when no stop byte came.
                        let events: Vec<Event> = self.splitter.finish().collect();
                        let ended = events.into_iter().find_map(|event| {
                            judge(event, address, request, wire, self.settings.echo, faults)
                        });
                        return Ok(ended.unwrap_or(Attempt::Failed(None)));
                    }
                    Ok(Err(source)) => return Err(self.io_error(source)),
                    Ok(Ok(0)) => return Err(self.closed()),
                    Ok(Ok(count)) => buffer.get(..count).unwrap_or_default(),
                };
            heard = Some(Instant::now());
            self.last_byte = heard;
            let echoed = received
                .iter()
                .zip(echo_left)
                .take_while(|(got, sent)| got == sent)
                .count();
            echo_left = if echoed == received.len() {
                echo_left.get(echoed..).unwrap_or_default()
            } else {
                &[]
            };
            self.splitter
                .push(received.get(echoed..).unwrap_or_default());
            while let Some(event) = self.splitter.next_event() {
                if let Some(attempt) =
                    judge(event, address, request, wire, self.settings.echo, faults)
                {
                    // A corrupt reply may be followed by the rest of it.
                    self.unsettled = matches!(attempt, Attempt::Failed(_));
                    return Ok(attempt);
                }
            }
        }
    }

    /// Bytes that arrive between transactions (the late end of a reply given
    /// up on, noise) belong to no request: discard them before sending, and
    /// report them, instead of mistaking them for the answer. After an
    /// attempt that ended while bytes were arriving, or when stale bytes are
    /// found, wait until the line has been quiet for a gap (at most the line
    /// time of the longest frame).
    async fn drain(&mut self, faults: &mut Vec<LineFault>) -> Result<(), TransportError> {
        let mut stale: usize = self.splitter.finish().map(|event| event_len(&event)).sum();
        let gap = self.settings.gap();
        let limit = Instant::now() + self.settings.line_time(kmp::frame::MAX_FRAME_LEN);
        let mut buffer = [0u8; 512];
        loop {
            let quiet_at = self
                .last_byte
                .filter(|_| self.unsettled || stale > 0)
                .map(|last| (last + gap).min(limit));
            let count = match quiet_at {
                Some(quiet_at) if Instant::now() < quiet_at => {
                    match tokio::time::timeout_at(quiet_at, self.line.read(&mut buffer)).await {
                        Err(_quiet) => break,
                        Ok(read) => read.map_err(|source| self.io_error(source))?,
                    }
                }
                _ => match self.read_ready(&mut buffer).await? {
                    Some(count) => count,
                    None => break,
                },
            };
            if count == 0 {
                return Err(self.closed());
            }
            stale += count;
            self.last_byte = Some(Instant::now());
        }
        self.unsettled = false;
        if stale > 0 {
            faults.push(LineFault::Stale(stale));
        }
        Ok(())
    }

    /// Reads what the line holds already, without waiting: `None` if nothing.
    async fn read_ready(&mut self, buffer: &mut [u8]) -> Result<Option<usize>, TransportError> {
        let mut read_buf = ReadBuf::new(buffer);
        let line = &mut self.line;
        let polled = std::future::poll_fn(|cx| {
            Poll::Ready(Pin::new(&mut *line).poll_read(cx, &mut read_buf))
        })
        .await;
        match polled {
            Poll::Pending => Ok(None),
            Poll::Ready(Ok(())) => Ok(Some(read_buf.filled().len())),
            Poll::Ready(Err(source)) => Err(self.io_error(source)),
        }
    }

    fn closed(&self) -> TransportError {
        TransportError::Closed {
            endpoint: self.name.clone(),
        }
    }

    fn io_error(&self, source: std::io::Error) -> TransportError {
        TransportError::Io {
            endpoint: self.name.clone(),
            source,
        }
    }
}

/// Decides what one event means for the transaction: `Some` ends the attempt.
fn judge(
    event: Event,
    address: u8,
    request: &Request,
    wire: &[u8],
    echo: EchoMode,
    faults: &mut Vec<LineFault>,
) -> Option<Attempt> {
    match event {
        Event::Frame(frame) if frame.direction == Direction::ToMeter => {
            let is_echo = echo != EchoMode::Off && frame.encode() == wire;
            if !is_echo {
                faults.push(LineFault::ForeignRequest(frame.address));
            }
            None
        }
        Event::Frame(frame) if frame.address != address => {
            faults.push(LineFault::WrongAddress(frame.address));
            None
        }
        Event::Frame(frame) if frame.cid != request.cid() => {
            faults.push(LineFault::WrongCommand(frame.cid));
            None
        }
        // Logger requests share one CID: a reply to another of them (one
        // that came late) starts with other subcommand and logger bytes.
        Event::Frame(frame)
            if let Request::Logger(query) = request
                && let [subcommand, logger, ..] = frame.data[..]
                && [subcommand, logger] != [query.subcommand(), query.logger().0] =>
        {
            faults.push(LineFault::WrongLoggerQuery(subcommand, logger));
            None
        }
        Event::Frame(frame) => Some(match Response::decode(&frame) {
            Ok(response) => Attempt::Done(Outcome::Response(response)),
            Err(error) => Attempt::Failed(Some(Outcome::BadMessage(error))),
        }),
        Event::Ack if request.cid() == kmp::Command::SetClock.cid() => {
            Some(Attempt::Done(Outcome::Ack))
        }
        Event::Ack => {
            faults.push(LineFault::UnexpectedAck);
            None
        }
        Event::Garbage(bytes) => {
            faults.push(LineFault::Garbage(bytes.len()));
            None
        }
        // A corrupt reply ends the attempt at once: the meter has spoken and
        // will not speak again, so waiting out the timeout gains nothing.
        Event::Malformed { error, bytes } if is_reply_from(&bytes, address) => {
            faults.push(LineFault::Malformed(error.clone()));
            Some(Attempt::Failed(Some(Outcome::BadFrame(error))))
        }
        Event::Malformed { error, .. } => {
            faults.push(LineFault::Malformed(error));
            None
        }
    }
}

/// How many bytes on the line an event stands for.
fn event_len(event: &Event) -> usize {
    match event {
        Event::Frame(frame) => frame.encode().len(),
        Event::Ack => 1,
        Event::Garbage(bytes) | Event::Malformed { bytes, .. } => bytes.len(),
    }
}

/// Whether raw frame bytes start like a reply from `address` (unstuffed
/// address byte, or the stuffed form of an address that needs escaping).
fn is_reply_from(bytes: &[u8], address: u8) -> bool {
    match bytes {
        [
            kmp::frame::START_FROM_METER,
            kmp::frame::ESCAPE,
            escaped,
            ..,
        ] => escaped ^ 0xFF == address,
        [kmp::frame::START_FROM_METER, first, ..] => *first == address,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmp::Frame;
    use kmp::unit::Unit;
    use kmp::value::{RegisterValue, Value};
    use tokio::io::{AsyncReadExt, DuplexStream};

    const ADDRESS: u8 = 63;

    fn settings(retries: u32, echo: EchoMode) -> MasterSettings {
        MasterSettings {
            retries,
            echo,
            ..MasterSettings::default()
        }
    }

    fn registers_reply(address: u8) -> Vec<u8> {
        let value = RegisterValue {
            register: 60,
            unit: Unit(8),
            value: Value::new(123_456, -3).unwrap(),
        };
        Response::Registers(vec![value]).to_frame(address).encode()
    }

    /// Plays a line: waits for each request, then writes the scripted bytes
    /// (`None` = stay silent for that attempt).
    async fn meter(mut line: DuplexStream, script: Vec<Option<Vec<u8>>>) {
        let mut splitter = Splitter::new();
        let mut buffer = [0u8; 256];
        for reply in script {
            'request: loop {
                let count = line.read(&mut buffer).await.unwrap();
                for event in splitter.feed(&buffer[..count]) {
                    if matches!(event, Event::Frame(_)) {
                        break 'request;
                    }
                }
            }
            if let Some(bytes) = reply {
                line.write_all(&bytes).await.unwrap();
            }
        }
        // Keep the line open so the master times out instead of seeing EOF.
        let _ = line.read(&mut buffer).await;
    }

    async fn run(script: Vec<Option<Vec<u8>>>, settings: MasterSettings) -> Exchange {
        let (logger_end, meter_end) = tokio::io::duplex(1024);
        tokio::spawn(meter(meter_end, script));
        let mut master = Master::new(logger_end, "test line", settings);
        let request = Request::get_register(&[60]).unwrap();
        master.transact(ADDRESS, &request).await.unwrap()
    }

    fn expected_registers() -> Outcome {
        Outcome::Response(
            Response::decode(&Frame::decode(&registers_reply(ADDRESS)).unwrap()).unwrap(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn reply_after_noise_echo_and_other_meters() {
        let echo = Request::get_register(&[60])
            .unwrap()
            .to_frame(ADDRESS)
            .encode();
        let noisy = [
            vec![0xFF, 0x00],
            echo,
            registers_reply(17),
            registers_reply(ADDRESS),
        ]
        .concat();
        let exchange = run(vec![Some(noisy)], settings(0, EchoMode::Auto)).await;
        assert_eq!(exchange.outcome, expected_registers());
        assert_eq!(
            exchange.faults,
            [LineFault::Garbage(2), LineFault::WrongAddress(17)]
        );
    }

    /// Our own request coming back before the reply, in each echo mode.
    #[tokio::test(start_paused = true)]
    async fn each_echo_mode_handles_our_request_coming_back() {
        let echo = Request::get_register(&[60])
            .unwrap()
            .to_frame(ADDRESS)
            .encode();
        for (mode, faults) in [
            (EchoMode::Auto, vec![]),
            (EchoMode::On, vec![]),
            (EchoMode::Off, vec![LineFault::ForeignRequest(ADDRESS)]),
        ] {
            let line = [echo.clone(), registers_reply(ADDRESS)].concat();
            let exchange = run(vec![Some(line)], settings(0, mode)).await;
            assert_eq!(
                (exchange.outcome, exchange.faults),
                (expected_registers(), faults),
                "{mode:?}"
            );
        }
    }

    /// A late answer to another logger request, same address and CID, is
    /// not taken for the answer to this one.
    #[tokio::test(start_paused = true)]
    async fn reply_to_another_logger_request_is_not_the_answer() {
        use kmp::logger::{LogEntries, LogInfo, LogQuery, LogTable, Logger, LoggerRequest};
        let entries = |logger: Logger| {
            Response::Logger(kmp::logger::LoggerResponse::Entries(LogEntries {
                query: LogQuery::LastEntryPastAbs,
                logger,
                first_log_id: 7,
                last_log_id: 7,
                info: LogInfo(0),
                table: LogTable::empty(1),
            }))
        };
        let (logger_end, meter_end) = tokio::io::duplex(1024);
        let line = [
            entries(Logger::DAILY).to_frame(ADDRESS).encode(),
            entries(Logger::HOURLY).to_frame(ADDRESS).encode(),
        ]
        .concat();
        tokio::spawn(meter(meter_end, vec![Some(line)]));
        let mut master = Master::new(logger_end, "test line", settings(0, EchoMode::Auto));
        let request = Request::Logger(LoggerRequest::GetLogLastEntryPastAbs {
            logger: Logger::HOURLY,
            offset: 0xFFFF,
            entries: 1,
            registers: kmp::logger::LogRegisters::new(&[60]).unwrap(),
        });
        let exchange = master.transact(ADDRESS, &request).await.unwrap();
        assert_eq!(
            (exchange.outcome, exchange.faults),
            (
                Outcome::Response(entries(Logger::HOURLY)),
                vec![LineFault::WrongLoggerQuery(0x07, Logger::DAILY.0)]
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silent_meter_is_no_reply_after_every_attempt() {
        let exchange = run(vec![None, None], settings(1, EchoMode::Auto)).await;
        assert_eq!((exchange.outcome, exchange.attempts), (Outcome::NoReply, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn wake_up_retry_gets_the_reply() {
        let exchange = run(
            vec![None, Some(registers_reply(ADDRESS))],
            settings(1, EchoMode::Auto),
        )
        .await;
        assert_eq!(
            (exchange.outcome, exchange.attempts),
            (expected_registers(), 2)
        );
    }

    /// A reply that starts just before the timeout and trickles in, as from a
    /// gateway in front of a slow line, is read whole after the timeout.
    #[tokio::test(start_paused = true)]
    async fn reply_still_arriving_at_the_timeout_is_read_on() {
        let (logger_end, mut meter_end) = tokio::io::duplex(1024);
        let settings = settings(0, EchoMode::Auto);
        let timeout = settings.timeout;
        let byte_time = Duration::from_millis(30);
        tokio::spawn(async move {
            let mut request = [0u8; 64];
            let _ = meter_end.read(&mut request).await.unwrap();
            tokio::time::sleep(timeout - Duration::from_millis(10)).await;
            for byte in registers_reply(ADDRESS) {
                meter_end.write_all(&[byte]).await.unwrap();
                tokio::time::sleep(byte_time).await;
            }
            let _ = meter_end.read(&mut request).await;
        });
        let mut master = Master::new(logger_end, "test line", settings);
        let start = Instant::now();
        let exchange = master
            .transact_expecting(ADDRESS, &Request::get_register(&[60]).unwrap(), 64)
            .await
            .unwrap();
        assert_eq!(exchange.outcome, expected_registers());
        let reply_time = byte_time * u32::try_from(registers_reply(ADDRESS).len()).unwrap();
        assert!(
            start.elapsed() >= timeout + reply_time - Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
    }

    /// The time a long reply may take is not waited for when it never starts.
    #[tokio::test(start_paused = true)]
    async fn silence_is_no_reply_at_the_timeout_whatever_the_length_expected() {
        let (logger_end, meter_end) = tokio::io::duplex(1024);
        tokio::spawn(meter(meter_end, vec![None]));
        let settings = settings(0, EchoMode::Auto);
        let timeout = settings.timeout;
        let mut master = Master::new(logger_end, "test line", settings);
        let start = Instant::now();
        let exchange = master
            .transact_expecting(ADDRESS, &Request::GetSerialNo, 1000)
            .await
            .unwrap();
        assert_eq!(exchange.outcome, Outcome::NoReply);
        assert_eq!(start.elapsed(), timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn corrupt_reply_is_retried_then_reported() {
        let mut corrupt = registers_reply(ADDRESS);
        // The unit byte (0x08 → 0x09): the CRC no longer matches.
        assert_eq!(corrupt[5], 0x08);
        corrupt[5] = 0x09;
        let exchange = run(
            vec![Some(corrupt.clone()), Some(corrupt)],
            settings(1, EchoMode::Auto),
        )
        .await;
        assert!(
            matches!(exchange.outcome, Outcome::BadFrame(FrameError::Crc { .. })),
            "{exchange:?}"
        );
        assert_eq!(exchange.attempts, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn truncated_reply_is_reported_at_the_timeout() {
        let reply = registers_reply(ADDRESS);
        let exchange = run(vec![Some(reply[..6].to_vec())], settings(0, EchoMode::Auto)).await;
        assert_eq!(
            exchange.outcome,
            Outcome::BadFrame(FrameError::Truncated { len: 6 })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reply_with_bad_content_is_a_bad_message() {
        let reply = Frame::new(Direction::FromMeter, ADDRESS, 0x10, vec![0x00, 0x3C]).encode();
        let exchange = run(vec![Some(reply)], settings(0, EchoMode::Auto)).await;
        assert!(matches!(
            exchange.outcome,
            Outcome::BadMessage(MessageError::RegisterEntryTruncated { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn closed_line_is_an_error_not_an_outcome() {
        let (logger_end, meter_end) = tokio::io::duplex(64);
        drop(meter_end);
        let mut master = Master::new(logger_end, "test line", settings(0, EchoMode::Auto));
        let error = master
            .transact(ADDRESS, &Request::GetSerialNo)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                TransportError::Io { .. } | TransportError::Closed { .. }
            ),
            "{error}"
        );
    }

    /// Counts what the meter's end receives until the master's end closes.
    async fn bytes_until_closed(line: &mut DuplexStream) -> usize {
        let mut buffer = [0u8; 256];
        let mut total = 0;
        loop {
            match line.read(&mut buffer).await {
                Ok(0) | Err(_) => return total,
                Ok(count) => total += count,
            }
        }
    }

    /// A reply that goes on past the attempt's bound is drained before the
    /// retry; when the drain takes the room the retry needed before the
    /// write-by moment, the retry is not written. Without a write-by it is.
    #[tokio::test(start_paused = true)]
    async fn a_retry_whose_drain_passes_the_write_by_is_not_sent() {
        let settings = settings(1, EchoMode::Auto);
        let request = Request::get_register(&[60]).unwrap();
        let retry = request.to_frame(ADDRESS).encode().len();
        // Room for both attempts and the pause (3.4 s), and a little more,
        // but not for the 3 s the cut-off reply keeps coming.
        let room = settings.timeout * 2 + settings.retry_pause + Duration::from_millis(500);
        for write_by in [None, Some(room)] {
            let (logger_end, mut meter_end) = tokio::io::duplex(1024);
            let meter = tokio::spawn(async move {
                let mut first = [0u8; 64];
                let _ = meter_end.read(&mut first).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                for _ in 0..30 {
                    meter_end.write_all(&[0xFF]).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                bytes_until_closed(&mut meter_end).await
            });
            let mut master = Master::new(logger_end, "test line", settings.clone());
            master.set_write_by(write_by.map(|room| Instant::now() + room));
            let exchange = master.transact(ADDRESS, &request).await;
            drop(master);
            let after_first = meter.await.unwrap();
            match write_by {
                None => {
                    let exchange = exchange.unwrap();
                    assert_eq!((exchange.outcome, exchange.attempts), (Outcome::NoReply, 2));
                    assert!(
                        exchange
                            .faults
                            .iter()
                            .any(|fault| matches!(fault, LineFault::Stale(_))),
                        "the retry waited out the drain: {:?}",
                        exchange.faults
                    );
                    assert_eq!(after_first, retry, "the retry is sent");
                }
                Some(_) => {
                    let error = exchange.unwrap_err();
                    assert!(matches!(error, TransportError::NoRoom { .. }), "{error}");
                    assert_eq!(after_first, 0, "no retry after the write-by");
                }
            }
        }
    }

    /// A logger page's attempt may take the timeout and the page's time on
    /// a slow serial line (3.2 s for 350 bytes at 1200 baud): it is written
    /// only when all of it ends by the write-by.
    #[tokio::test(start_paused = true)]
    async fn a_long_reply_is_asked_only_when_its_bound_ends_by_the_write_by() {
        let settings = MasterSettings {
            byte_time: SLOWEST_BYTE_TIME,
            ..settings(0, EchoMode::Auto)
        };
        let request = Request::GetSerialNo;
        let wire = request.to_frame(ADDRESS).encode().len();
        let bound = settings.line_time(wire) + settings.timeout + settings.line_time(350);
        for (room, sent) in [
            (settings.line_time(wire) + settings.timeout, false),
            (bound - Duration::from_nanos(1), false),
            (bound, true),
        ] {
            let (logger_end, mut meter_end) = tokio::io::duplex(1024);
            let meter = tokio::spawn(async move { bytes_until_closed(&mut meter_end).await });
            let mut master = Master::new(logger_end, "test line", settings.clone());
            master.set_write_by(Some(Instant::now() + room));
            let exchange = master.transact_expecting(ADDRESS, &request, 350).await;
            drop(master);
            let received = meter.await.unwrap();
            if sent {
                assert_eq!(exchange.unwrap().outcome, Outcome::NoReply);
                assert_eq!(received, wire, "room {room:?}");
            } else {
                assert!(
                    matches!(exchange, Err(TransportError::NoRoom { .. })),
                    "room {room:?}: {exchange:?}"
                );
                assert_eq!(received, 0, "room {room:?}");
            }
        }
    }

    #[test]
    fn reply_address_is_recognised_even_when_stuffed() {
        assert!(is_reply_from(&[0x40, 0x3F, 0x10], 0x3F));
        assert!(is_reply_from(&[0x40, 0x1B, 0x7F, 0x10], 0x80));
        assert!(!is_reply_from(&[0x40, 0x11], 0x3F));
        assert!(!is_reply_from(&[0x80, 0x3F], 0x3F));
    }
}
