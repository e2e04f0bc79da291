//! The live view on a terminal: the buses with their state, the queue with
//! last and next runs, and the latest value of every register, redrawn once
//! a second.
//!
//! It draws on the terminal's alternate screen, as a pager does, so the
//! shell's screen and its scrollback are as they were when the logger stops.
//! Every frame fits the terminal's size at that moment ([`render`], a pure
//! function of what is shown and the size): lines are cut to the width, the
//! buses and the queue come first, and the readings, the part that grows,
//! get the rows left, with a "… N more readings" line.
//!
//! Log lines and messages written to the same terminal would tear the
//! table, so while it is shown stderr is a pipe whose lines are held: the
//! latest few are shown in the table, and all of them are written to the
//! terminal when the table leaves the screen (on stop, Ctrl-C, SIGTERM or a
//! panic), where they stay in the scrollback. Holding the descriptor, not
//! only `tracing`'s writer, catches every message of every module. When
//! stderr is not a terminal (a file, the journal), nothing is held.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{IsTerminal, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, mpsc};
use std::time::Duration;

use comfy_table::{ColumnConstraint, ContentArrangement, Row, Table, presets::UTF8_FULL_CONDENSED};
use crossterm::cursor::{Hide, Show};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use nix::fcntl::{FcntlArg, FdFlag, OFlag};
use tokio_util::sync::CancellationToken;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::bus::state::BusState;
use crate::clock::Clock;
use crate::reading::{Reading, Status};

/// The latest reading of every (bus, address, export name).
///
/// It holds one entry per register of every meter (200,000 for 50,000
/// meters of 4 registers), so it keeps them compact: the names each once,
/// shared by all the entries that use them, and the registers of one meter
/// together, in order of their export names.
#[derive(Debug, Default)]
pub struct Latest {
    /// Bus names, request descriptions and export names.
    names: HashSet<Arc<str>>,
    meters: BTreeMap<(Arc<str>, u8), Vec<Kept>>,
    count: usize,
}

/// The one copy of `text` in `names`.
fn shared(names: &mut HashSet<Arc<str>>, text: &str) -> Arc<str> {
    if let Some(shared) = names.get(text) {
        return Arc::clone(shared);
    }
    let shared: Arc<str> = Arc::from(text);
    names.insert(Arc::clone(&shared));
    shared
}

/// What [`Latest`] keeps of one reading.
#[derive(Debug)]
struct Kept {
    name: Arc<str>,
    time: Timestamp,
    request: Arc<str>,
    register: u16,
    value: Option<(kmp::Value, kmp::unit::Unit)>,
    status: Status,
}

impl Latest {
    /// Keeps `readings` as the latest of their registers.
    pub fn update(&mut self, readings: &[Reading]) {
        for reading in readings {
            let bus = shared(&mut self.names, &reading.bus);
            let registers = self.meters.entry((bus, reading.address)).or_default();
            match registers.binary_search_by(|other| (*other.name).cmp(&reading.name)) {
                // A register seen before: its names are kept already, and
                // a reading costs no search of them.
                Ok(place) => {
                    let kept = &mut registers[place];
                    if *kept.request != *reading.request {
                        kept.request = shared(&mut self.names, &reading.request);
                    }
                    kept.time = reading.time;
                    kept.register = reading.register;
                    kept.value = reading.value;
                    kept.status = reading.status;
                }
                Err(place) => {
                    let kept = Kept {
                        name: shared(&mut self.names, &reading.name),
                        time: reading.time,
                        request: shared(&mut self.names, &reading.request),
                        register: reading.register,
                        value: reading.value,
                        status: reading.status,
                    };
                    registers.insert(place, kept);
                    self.count += 1;
                }
            }
        }
    }

    /// How many registers it holds a reading of.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds no reading yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The latest reading of each register, by bus, address and name.
    pub fn readings(&self) -> impl Iterator<Item = Reading> + '_ {
        self.meters.iter().flat_map(|((bus, address), registers)| {
            registers.iter().map(|kept| Reading {
                time: kept.time,
                bus: bus.to_string(),
                address: *address,
                request: kept.request.to_string(),
                register: kept.register,
                name: kept.name.to_string(),
                value: kept.value,
                status: kept.status,
            })
        })
    }
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Characters per line.
    pub columns: u16,
    /// Lines.
    pub rows: u16,
}

/// The size assumed when the terminal does not tell its own.
const FALLBACK_SIZE: Size = Size {
    columns: 80,
    rows: 24,
};

/// How many of the latest held log lines the table shows.
const LOG_ROWS: usize = 3;

/// What one frame shows, copied from the running logger.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The state of each bus.
    pub buses: &'a [BusState],
    /// The latest readings.
    pub latest: &'a Latest,
    /// Log lines held while the table is shown, oldest first, as plain text.
    pub log: &'a [String],
    /// The time zone times are shown in.
    pub zone: &'a TimeZone,
    /// The time of the frame.
    pub now: Timestamp,
}

/// The screen as lines: at most `size.rows` of them, none wider than
/// `size.columns`. The title, the buses, the queue and the latest log lines
/// come first; the readings get the rows that are left.
pub fn render(frame: &Frame<'_>, size: Size) -> Vec<String> {
    let rows = usize::from(size.rows);
    let mut lines = vec![format!(
        "kmplog — {}  (Ctrl-C to stop)",
        short_time(frame.now, frame.zone)
    )];
    lines.extend(bus_table(frame, size.columns).lines());
    lines.extend(queue_table(frame, size.columns).lines());
    let log_from = frame.log.len().saturating_sub(LOG_ROWS);
    lines.extend(frame.log.iter().skip(log_from).cloned());
    if lines.len() > rows {
        // Even the buses and the queue do not fit: what is cut is said.
        let kept = rows.saturating_sub(1);
        let cut = lines.len() - kept;
        lines.truncate(kept);
        if rows > 0 {
            lines.push(format!("… {cut} more lines (a larger terminal shows them)"));
        }
    } else {
        let room = rows - lines.len();
        lines.extend(readings_lines(frame, size.columns, room));
    }
    lines
        .iter()
        .map(|line| fit_width(line, usize::from(size.columns)))
        .collect()
}

fn bus_table(frame: &Frame<'_>, width: u16) -> Table {
    let mut table = table(
        [
            "Bus",
            "Line",
            "State",
            "Polls",
            "Timeouts",
            "Faults",
            "Reconnects",
            "Last error",
        ],
        &[0, 2],
        width,
    );
    for bus in frame.buses {
        let error = bus
            .last_error
            .as_ref()
            .map_or_else(String::new, |(at, error)| {
                format!("{} {error}", short_time(*at, frame.zone))
            });
        table.add_row(one_line([
            bus.name.clone(),
            bus.endpoint.clone(),
            if bus.connected { "connected" } else { "closed" }.to_owned(),
            bus.polls.to_string(),
            bus.timeouts.to_string(),
            bus.faults.to_string(),
            bus.reconnects.to_string(),
            error,
        ]));
    }
    table
}

fn queue_table(frame: &Frame<'_>, width: u16) -> Table {
    let time =
        |at: Option<Timestamp>| at.map_or_else(|| "-".to_owned(), |at| short_time(at, frame.zone));
    let mut table = table(
        [
            "Bus", "#", "Request", "Method", "Last run", "Result", "Next run",
        ],
        &[0, 1],
        width,
    );
    for bus in frame.buses {
        for (position, request) in bus.requests.iter().enumerate() {
            table.add_row(one_line([
                bus.name.clone(),
                (position + 1).to_string(),
                request.description.clone(),
                request.method.clone(),
                time(request.last_run),
                request.last_result.clone().unwrap_or_default(),
                time(request.next_run),
            ]));
        }
    }
    table
}

/// The readings table in at most `room` lines: as many readings as fit,
/// then a line that counts the others.
fn readings_lines(frame: &Frame<'_>, width: u16, room: usize) -> Vec<String> {
    if room == 0 {
        return Vec::new();
    }
    if frame.latest.is_empty() {
        return vec!["No readings yet.".to_owned()];
    }
    // Only those that can be shown: there may be hundreds of thousands.
    let readings: Vec<Reading> = frame.latest.readings().take(room).collect();
    let mut shown = readings.len();
    loop {
        let hidden = frame.latest.len() - shown;
        if shown == 0 {
            return vec![more_readings(hidden)];
        }
        let mut lines: Vec<String> = values_table(frame, &readings[..shown], width)
            .lines()
            .collect();
        if hidden > 0 {
            lines.push(more_readings(hidden));
        }
        if lines.len() <= room {
            return lines;
        }
        shown = shown.saturating_sub(lines.len() - room);
    }
}

fn more_readings(hidden: usize) -> String {
    format!("… {hidden} more readings (a taller terminal shows them)")
}

fn values_table(frame: &Frame<'_>, readings: &[Reading], width: u16) -> Table {
    let mut table = table(
        ["Bus", "Address", "Name", "Value", "Unit", "Status", "Time"],
        &[0],
        width,
    );
    for reading in readings {
        table.add_row(one_line([
            reading.bus.clone(),
            reading.address.to_string(),
            reading.name.clone(),
            reading
                .natural_text()
                .unwrap_or_else(|| reading.value_text()),
            reading.unit_text(),
            reading.status.to_string(),
            short_time(reading.time, frame.zone),
        ]));
    }
    table
}

/// A table that shrinks its columns to `width`, cutting cells with `…`,
/// except the columns `whole` (the bus name, which tells the rows apart).
fn table<const N: usize>(header: [&str; N], whole: &[usize], width: u16) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .force_no_tty()
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width)
        .set_truncation_indicator("…")
        .set_header(one_line(header));
    for &index in whole {
        if let Some(column) = table.column_mut(index) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    table
}

/// A row that is cut rather than wrapped, so that each takes one line.
fn one_line<T: Into<comfy_table::Cell>, const N: usize>(cells: [T; N]) -> Row {
    let mut row = Row::from(cells);
    row.max_height(1);
    row
}

/// `line` cut to `width` display columns, ending in `…` when it was cut.
fn fit_width(line: &str, width: usize) -> String {
    if line.width() <= width {
        return line.to_owned();
    }
    let mut fitted = String::new();
    let mut used = 0;
    for c in line.chars() {
        let c_width = c.width().unwrap_or(0);
        if used + c_width + 1 > width {
            break;
        }
        used += c_width;
        fitted.push(c);
    }
    if width > 0 {
        fitted.push('…');
    }
    fitted
}

/// `text` without ANSI escape sequences and control characters, as a log
/// line in colour is shown inside the table.
fn plain(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                // A CSI sequence ends with a byte from '@' to '~'.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else if !c.is_control() {
            plain.push(c);
        }
    }
    plain
}

/// The time of day, `08:15:02`, in `zone`.
fn short_time(at: Timestamp, zone: &TimeZone) -> String {
    let zoned = at.to_zoned_datetime(zone.clone());
    zoned.strftime("%H:%M:%S").to_string()
}

/// The lines written to stderr while the table is shown.
#[derive(Debug, Default)]
struct Held {
    lines: VecDeque<String>,
    /// Lines dropped, oldest first, to keep at most [`MAX_HELD`].
    dropped: usize,
}

/// The most lines held: a table left running for weeks with a line that
/// keeps failing must not grow without end.
const MAX_HELD: usize = 10_000;

impl Held {
    fn push(&mut self, text: &str) {
        for line in text.lines().filter(|line| !line.is_empty()) {
            if self.lines.len() == MAX_HELD {
                self.lines.pop_front();
                self.dropped += 1;
            }
            self.lines.push_back(line.to_owned());
        }
    }
}

/// The held lines; `None` while stderr is the terminal.
static HELD: Mutex<Option<Held>> = Mutex::new(None);

/// Whether the table is on the alternate screen. Frames are drawn and the
/// screen is left under the stdout lock, so no frame lands on the shell's
/// screen after it is back.
static ON_SCREEN: AtomicBool = AtomicBool::new(false);

fn held() -> MutexGuard<'static, Option<Held>> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stderr while the table is shown: the terminal's descriptor, to be put
/// back, and word from the thread that holds the lines when the pipe ends.
struct Diverted {
    terminal: OwnedFd,
    drained: mpsc::Receiver<()>,
}

/// Set while stderr is diverted.
static DIVERTED: Mutex<Option<Diverted>> = Mutex::new(None);

/// How long leaving waits for the last lines in the pipe.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

fn diverted() -> MutexGuard<'static, Option<Diverted>> {
    DIVERTED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes stderr a pipe whose lines are held, keeping the terminal's
/// descriptor to put back.
fn divert_stderr() -> std::io::Result<()> {
    let terminal = nix::unistd::dup(std::io::stderr())?;
    nix::fcntl::fcntl(&terminal, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (drained_sender, drained) = mpsc::channel();
    *held() = Some(Held::default());
    let reader = std::thread::Builder::new()
        .name("stderr held".to_owned())
        .spawn(move || {
            hold_lines(std::fs::File::from(read));
            let _ = drained_sender.send(());
        });
    if let Err(error) = reader.and_then(|_| Ok(nix::unistd::dup2_stderr(&write)?)) {
        *held() = None;
        return Err(error);
    }
    *diverted() = Some(Diverted { terminal, drained });
    Ok(())
}

/// Holds each line read from `pipe` until it ends; lines that come once
/// nothing is held any more (after a panic left the screen) go to stderr,
/// which is the terminal again by then.
fn hold_lines(pipe: impl std::io::Read) {
    let mut pipe = std::io::BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match std::io::BufRead::read_until(&mut pipe, b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let mut held = held();
                match held.as_mut() {
                    Some(held) => held.push(&text),
                    None => {
                        drop(held);
                        let _ = std::io::stderr().write_all(text.as_bytes());
                    }
                }
            }
        }
    }
}

/// Puts the terminal back as stderr and waits, briefly, for the lines
/// still in the pipe.
fn restore_stderr() {
    let Some(diverted) = diverted().take() else {
        return;
    };
    let _ = nix::unistd::dup2_stderr(&diverted.terminal);
    // The pipe ends once its last writer, the old stderr, is closed; a child
    // process that inherited it could keep it open, hence the limit.
    let _ = diverted.drained.recv_timeout(DRAIN_LIMIT);
}

/// The latest held log lines as plain text, oldest first.
fn recent_log() -> Vec<String> {
    held().as_ref().map_or_else(Vec::new, |held| {
        let from = held.lines.len().saturating_sub(LOG_ROWS);
        held.lines
            .iter()
            .skip(from)
            .map(|line| plain(line))
            .collect()
    })
}

/// Switches to the alternate screen and holds what is written to stderr if
/// it is the terminal too.
fn enter_screen() {
    leave_on_panic();
    if std::io::stderr().is_terminal() {
        // The table works without: it is torn by messages, not stopped.
        let _ = divert_stderr();
    }
    let mut stdout = std::io::stdout().lock();
    let _ = crossterm::execute!(stdout, EnterAlternateScreen, Hide);
    ON_SCREEN.store(true, Ordering::SeqCst);
}

/// Back to the shell's screen, if the table is shown, with the cursor where
/// it was; then the held lines on stderr, each ending with a newline.
fn leave_screen() {
    {
        let mut stdout = std::io::stdout().lock();
        if !ON_SCREEN.swap(false, Ordering::SeqCst) {
            return;
        }
        let _ = crossterm::execute!(stdout, Show, LeaveAlternateScreen);
    }
    restore_stderr();
    let Some(held) = held().take() else {
        return;
    };
    let mut stderr = std::io::stderr().lock();
    if held.dropped > 0 {
        let _ = writeln!(
            stderr,
            "kmplog: {} earlier lines of this log were dropped while the live table was shown",
            held.dropped
        );
    }
    for line in &held.lines {
        let _ = writeln!(stderr, "{line}");
    }
    let _ = stderr.flush();
}

/// A panic anywhere leaves the screen first, so that its message and the
/// held log lines are readable on the shell's screen.
fn leave_on_panic() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            leave_screen();
            previous(info);
        }));
    });
}

/// Draws `lines` from the top left, clearing what the last frame left;
/// `false` once the screen has been left.
fn draw(lines: &[String], size: Size) -> bool {
    let mut stdout = std::io::stdout().lock();
    if !ON_SCREEN.load(Ordering::SeqCst) {
        return false;
    }
    let mut text = String::from("\x1b[H");
    for (index, line) in lines.iter().enumerate() {
        if index > 0 {
            text.push_str("\r\n");
        }
        // Erasing before writing: a line as wide as the terminal leaves the
        // cursor on its last cell, which an erase after it would blank.
        text.push_str("\x1b[2K");
        text.push_str(line);
    }
    if lines.len() < usize::from(size.rows) {
        text.push_str("\r\n\x1b[J");
    }
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    true
}

/// The terminal's size now.
fn terminal_size() -> Size {
    match crossterm::terminal::size() {
        Ok((columns, rows)) if columns > 0 && rows > 0 => Size { columns, rows },
        _ => FALLBACK_SIZE,
    }
}

/// The live table, shown on the alternate screen from [`LiveTable::start`]
/// until [`LiveTable::stop`] (or until dropped).
#[derive(Debug)]
pub struct LiveTable {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LiveTable {
    /// Enters the alternate screen and redraws the table once a second.
    pub fn start(
        buses: crate::bus::state::BusList,
        latest: Arc<Mutex<Latest>>,
        zone: TimeZone,
        clock: Clock,
    ) -> LiveTable {
        enter_screen();
        let stop = CancellationToken::new();
        let task = tokio::spawn(redraw(buses, latest, zone, clock, stop.clone()));
        LiveTable {
            stop,
            task: Some(task),
        }
    }

    /// Ends the redraws, leaves the screen and writes the held log lines.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        leave_screen();
    }
}

impl Drop for LiveTable {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
        leave_screen();
    }
}

async fn redraw(
    buses: crate::bus::state::BusList,
    latest: Arc<Mutex<Latest>>,
    zone: TimeZone,
    clock: Clock,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let size = terminal_size();
        let states: Vec<BusState> = buses.snapshots();
        let log = recent_log();
        let lines = {
            let latest = latest.lock().unwrap_or_else(PoisonError::into_inner);
            render(
                &Frame {
                    buses: &states,
                    latest: &latest,
                    log: &log,
                    zone: &zone,
                    now: clock.now(),
                },
                size,
            )
        };
        if !draw(&lines, size) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::state::RequestState;
    use crate::reading::Status;
    use kmp::unit::Unit;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// Two buses, each with a queue of `requests`, and `readings` readings
    /// spread over them.
    fn fixture(requests: usize, readings: usize) -> (Vec<BusState>, Latest) {
        let buses: Vec<BusState> = ["boiler-room", "substation"]
            .iter()
            .map(|name| BusState {
                name: (*name).to_owned(),
                endpoint: "tcp 192.168.100.200:4001".to_owned(),
                connected: true,
                requests: (0..requests)
                    .map(|n| RequestState {
                        description: format!("Request {n} of {name}"),
                        method: "polling 30s".to_owned(),
                        method_words: "every 30 s".to_owned(),
                        last_run: Some(at("2026-11-25T08:00:00Z")),
                        next_run: Some(at("2026-11-25T08:00:30Z")),
                        last_result: Some("ok".to_owned()),
                    })
                    .collect(),
                polls: 3,
                last_error: Some((
                    at("2026-11-25T07:59:00Z"),
                    "connection refused (os error 111)".to_owned(),
                )),
                ..BusState::default()
            })
            .collect();
        let mut latest = Latest::default();
        let batch: Vec<Reading> = (0..readings)
            .map(|n| Reading {
                time: at("2026-11-25T08:00:01Z"),
                bus: if n % 2 == 0 {
                    "boiler-room"
                } else {
                    "substation"
                }
                .to_owned(),
                address: 1,
                request: "Main values".to_owned(),
                register: 86,
                name: format!("R{n:03}"),
                value: Some(("66.60".parse().unwrap(), Unit(0x25))),
                status: Status::Ok,
            })
            .collect();
        latest.update(&batch);
        (buses, latest)
    }

    fn screen(buses: &[BusState], latest: &Latest, log: &[String], size: Size) -> Vec<String> {
        render(
            &Frame {
                buses,
                latest,
                log,
                zone: &TimeZone::UTC,
                now: at("2026-11-25T08:00:02Z"),
            },
            size,
        )
    }

    /// The readings rows shown and the count the "… N more" line gives.
    fn shown_and_hidden(lines: &[String]) -> (usize, usize) {
        let shown = lines.iter().filter(|line| line.contains("┆ R0")).count();
        let hidden = lines
            .iter()
            .find_map(|line| {
                line.strip_prefix("… ")?
                    .strip_suffix(" more readings (a taller terminal shows them)")
            })
            .map_or(0, |count| count.parse().unwrap());
        (shown, hidden)
    }

    #[test]
    fn every_frame_fits_its_terminal() {
        // (size, requests per bus, readings, all requests on screen, readings shown)
        let cases: &[(Size, usize, usize, bool, Option<usize>)] = &[
            // 1 title + 6 bus lines + 10 queue lines leave 7: 2 readings
            // under the 4 lines of the table's frame, and the "more" line.
            (
                Size {
                    columns: 80,
                    rows: 24,
                },
                3,
                40,
                true,
                Some(2),
            ),
            // 45 rows: 45 - 17 - 5 = 23 readings; 10 fit whole.
            (
                Size {
                    columns: 160,
                    rows: 45,
                },
                3,
                40,
                true,
                Some(23),
            ),
            (
                Size {
                    columns: 160,
                    rows: 45,
                },
                3,
                10,
                true,
                Some(10),
            ),
            (
                Size {
                    columns: 20,
                    rows: 5,
                },
                3,
                40,
                false,
                Some(0),
            ),
            (
                Size {
                    columns: 80,
                    rows: 24,
                },
                12,
                40,
                false,
                Some(0),
            ),
            (
                Size {
                    columns: 1,
                    rows: 1,
                },
                1,
                1,
                false,
                Some(0),
            ),
        ];
        for &(size, requests, readings, all_requests, expected_shown) in cases {
            let (buses, latest) = fixture(requests, readings);
            let lines = screen(&buses, &latest, &[], size);
            let shown_screen = lines.join("\n");
            assert!(
                lines.len() <= usize::from(size.rows),
                "{size:?}: {} lines\n{shown_screen}",
                lines.len()
            );
            for line in &lines {
                assert!(
                    line.width() <= usize::from(size.columns),
                    "{size:?}: {line:?} is wider"
                );
            }
            if size.rows > 1 {
                assert!(lines[0].starts_with("kmplog"), "{size:?}:\n{shown_screen}");
            }
            if all_requests {
                for bus in &buses {
                    assert!(
                        shown_screen.contains(&bus.name),
                        "{size:?}:\n{shown_screen}"
                    );
                    let rows = lines
                        .iter()
                        .filter(|line| {
                            line.contains(&format!("│ {} ", bus.name)) && !line.contains("┆ R0")
                        })
                        .count();
                    // A row in the bus table and one per request.
                    assert_eq!(rows, 1 + requests, "{size:?}:\n{shown_screen}");
                }
                // Every request is shown and the frame's last line ends it.
                let (shown, hidden) = shown_and_hidden(&lines);
                assert_eq!(Some(shown), expected_shown, "{size:?}:\n{shown_screen}");
                assert_eq!(shown + hidden, readings, "{size:?}:\n{shown_screen}");
            } else {
                let last = lines.last().unwrap();
                assert!(
                    last.starts_with('…'),
                    "{size:?}: the cut is said:\n{shown_screen}"
                );
            }
        }
    }

    #[test]
    fn frames_at_80x24_and_20x5_as_an_operator_sees_them() {
        let (buses, latest) = fixture(3, 40);
        let lines = screen(
            &buses,
            &latest,
            &[],
            Size {
                columns: 80,
                rows: 24,
            },
        );
        let expected = "\
kmplog — 08:00:02  (Ctrl-C to stop)
┌─────────────┬────────┬───────────┬───────┬────────┬────────┬────────┬────────┐
│ Bus         ┆ Line   ┆ State     ┆ Polls ┆ Timeo… ┆ Faults ┆ Recon… ┆ Last…  │
╞═════════════╪════════╪═══════════╪═══════╪════════╪════════╪════════╪════════╡
│ boiler-room ┆ tcp…   ┆ connected ┆ 3     ┆ 0      ┆ 0      ┆ 0      ┆ 07:59… │
│ substation  ┆ tcp…   ┆ connected ┆ 3     ┆ 0      ┆ 0      ┆ 0      ┆ 07:59… │
└─────────────┴────────┴───────────┴───────┴────────┴────────┴────────┴────────┘
┌─────────────┬───┬───────────────┬─────────────┬──────────┬────────┬──────────┐
│ Bus         ┆ # ┆ Request       ┆ Method      ┆ Last run ┆ Result ┆ Next run │
╞═════════════╪═══╪═══════════════╪═════════════╪══════════╪════════╪══════════╡
│ boiler-room ┆ 1 ┆ Request 0 of… ┆ polling 30s ┆ 08:00:00 ┆ ok     ┆ 08:00:30 │
│ boiler-room ┆ 2 ┆ Request 1 of… ┆ polling 30s ┆ 08:00:00 ┆ ok     ┆ 08:00:30 │
│ boiler-room ┆ 3 ┆ Request 2 of… ┆ polling 30s ┆ 08:00:00 ┆ ok     ┆ 08:00:30 │
│ substation  ┆ 1 ┆ Request 0 of… ┆ polling 30s ┆ 08:00:00 ┆ ok     ┆ 08:00:30 │
│ substation  ┆ 2 ┆ Request 1 of… ┆ polling 30s ┆ 08:00:00 ┆ ok     ┆ 08:00:30 │
│ substation  ┆ 3 ┆ Request 2 of… ┆ polling 30s ┆ 08:00:00 ┆ ok     ┆ 08:00:30 │
└─────────────┴───┴───────────────┴─────────────┴──────────┴────────┴──────────┘
┌─────────────┬─────────┬──────┬───────┬──────┬────────┬──────────┐
│ Bus         ┆ Address ┆ Name ┆ Value ┆ Unit ┆ Status ┆ Time     │
╞═════════════╪═════════╪══════╪═══════╪══════╪════════╪══════════╡
│ boiler-room ┆ 1       ┆ R000 ┆ 66.60 ┆ °C   ┆ ok     ┆ 08:00:01 │
│ boiler-room ┆ 1       ┆ R002 ┆ 66.60 ┆ °C   ┆ ok     ┆ 08:00:01 │
└─────────────┴─────────┴──────┴───────┴──────┴────────┴──────────┘
… 38 more readings (a taller terminal shows them)";
        assert_eq!(lines.join("\n"), expected);

        let lines = screen(
            &buses,
            &latest,
            &[],
            Size {
                columns: 20,
                rows: 5,
            },
        );
        let expected = "\
kmplog — 08:00:02  …
┌─────────────┬───┬…
│ Bus         ┆ … ┆…
╞═════════════╪═══╪…
… 13 more lines (a …";
        assert_eq!(lines.join("\n"), expected);
    }

    #[test]
    fn latest_keeps_one_reading_per_register_in_order() {
        let reading = |bus: &str, address: u8, name: &str, value: &str| Reading {
            time: at("2026-11-25T08:00:01Z"),
            bus: bus.to_owned(),
            address,
            request: "Main values".to_owned(),
            register: 86,
            name: name.to_owned(),
            value: Some((value.parse().unwrap(), Unit(0x25))),
            status: Status::Ok,
        };
        let mut latest = Latest::default();
        assert!(latest.is_empty());
        latest.update(&[
            reading("b", 2, "T2", "1"),
            reading("b", 1, "T1", "2"),
            reading("a", 9, "T1", "3"),
            reading("b", 1, "E1", "4"),
        ]);
        latest.update(&[reading("b", 1, "T1", "5"), reading("b", 2, "T2", "6")]);
        let kept: Vec<Reading> = latest.readings().collect();
        assert_eq!(
            kept,
            [
                reading("a", 9, "T1", "3"),
                reading("b", 1, "E1", "4"),
                reading("b", 1, "T1", "5"),
                reading("b", 2, "T2", "6"),
            ]
        );
        assert_eq!(latest.len(), 4);
    }

    #[test]
    fn the_screen_shows_the_latest_value_of_each_register() {
        let (buses, mut latest) = fixture(1, 0);
        let reading = Reading {
            time: at("2026-11-25T08:00:01Z"),
            bus: "boiler-room".to_owned(),
            address: 63,
            request: "Main values".to_owned(),
            register: 86,
            name: "T1".to_owned(),
            value: Some(("66.60".parse().unwrap(), Unit(0x25))),
            status: Status::Ok,
        };
        latest.update(&[
            reading.clone(),
            Reading {
                value: Some(("67.10".parse().unwrap(), Unit(0x25))),
                ..reading
            },
        ]);
        let text = screen(
            &buses,
            &latest,
            &[],
            Size {
                columns: 160,
                rows: 45,
            },
        )
        .join("\n");
        assert!(text.contains("67.10") && text.contains("°C"), "{text}");
        assert!(
            !text.contains("66.60"),
            "only the latest value is shown:\n{text}"
        );
        let (buses, empty) = fixture(1, 0);
        let text = screen(
            &buses,
            &empty,
            &[],
            Size {
                columns: 80,
                rows: 24,
            },
        )
        .join("\n");
        assert!(text.ends_with("No readings yet."), "{text}");
    }

    #[test]
    fn the_latest_log_lines_are_shown_above_the_readings() {
        let (buses, latest) = fixture(1, 4);
        let log: Vec<String> = (1..=5)
            .map(|n| format!("2026-11-25T08:00:0{n}Z  WARN line down bus=\"gw\" n={n}"))
            .collect();
        let lines = screen(
            &buses,
            &latest,
            &log,
            Size {
                columns: 80,
                rows: 24,
            },
        );
        let text = lines.join("\n");
        assert!(!text.contains("n=2"), "only the last {LOG_ROWS}:\n{text}");
        let at_log = lines.iter().position(|line| line.contains("n=3")).unwrap();
        let at_readings = lines.iter().position(|line| line.contains("R000")).unwrap();
        assert!(at_log < at_readings, "{text}");
        assert!(text.contains("n=5"), "{text}");
    }

    #[test]
    fn lines_are_cut_to_display_columns() {
        assert_eq!(fit_width("abcdef", 6), "abcdef");
        assert_eq!(fit_width("abcdef", 4), "abc…");
        assert_eq!(fit_width("°C m³ ┆", 7), "°C m³ ┆");
        // A wide character takes two columns.
        assert_eq!(fit_width("表表表", 4), "表…");
        assert_eq!(fit_width("abc", 0), "");
    }

    #[test]
    fn log_lines_lose_their_colours_in_the_table() {
        assert_eq!(
            plain("\x1b[2m2026-11-25T08:00:01Z\x1b[0m \x1b[33m WARN\x1b[0m line down"),
            "2026-11-25T08:00:01Z  WARN line down"
        );
        assert_eq!(plain("a\tb\r"), "ab");
    }

    #[test]
    fn held_log_lines_are_bounded() {
        let mut held = Held::default();
        for n in 0..MAX_HELD + 5 {
            held.push(&format!("line {n}\n"));
        }
        assert_eq!(held.lines.len(), MAX_HELD);
        assert_eq!(held.dropped, 5);
        assert_eq!(held.lines.front().map(String::as_str), Some("line 5"));
        held.push("two\nlines\n");
        assert_eq!(held.lines.back().map(String::as_str), Some("lines"));
    }

    #[test]
    fn lines_written_to_stderr_are_held_while_the_table_is_shown() {
        *held() = Some(Held::default());
        hold_lines(&b"\x1b[2m2026-11-25T08:00:01Z\x1b[0m \x1b[33m WARN\x1b[0m line down\nkmplog: API on http://127.0.0.1:7064\n"[..]);
        let recent = recent_log();
        let kept = held().take().map(|held| Vec::from(held.lines));
        assert_eq!(
            recent,
            [
                "2026-11-25T08:00:01Z  WARN line down",
                "kmplog: API on http://127.0.0.1:7064"
            ]
        );
        assert_eq!(
            kept.unwrap()[0],
            "\x1b[2m2026-11-25T08:00:01Z\x1b[0m \x1b[33m WARN\x1b[0m line down",
            "the terminal gets them as they were written"
        );
    }
}
