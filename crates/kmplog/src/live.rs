//! The live view on a terminal: the buses with their state, the queue with
//! last and next runs, and the latest value of every register, redrawn in
//! place once a second.

use std::collections::BTreeMap;
use std::fmt::Write;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::bus::state::{BusState, SharedState};
use crate::reading::Reading;

/// The latest reading of every (bus, address, export name).
#[derive(Debug, Default)]
pub struct Latest {
    readings: BTreeMap<(String, u8, String), Reading>,
}

impl Latest {
    /// Keeps `readings` as the latest of their registers.
    pub fn update(&mut self, readings: &[Reading]) {
        for reading in readings {
            self.readings.insert(
                (reading.bus.clone(), reading.address, reading.name.clone()),
                reading.clone(),
            );
        }
    }

    /// The latest reading of each register, by bus, address and name.
    pub fn readings(&self) -> impl Iterator<Item = &Reading> {
        self.readings.values()
    }
}

/// The whole screen, as text.
pub fn render(buses: &[SharedState], latest: &Latest, zone: &TimeZone, now: Timestamp) -> String {
    let states: Vec<BusState> = buses.iter().map(SharedState::snapshot).collect();
    let time = |at: Option<Timestamp>| at.map_or_else(|| "-".to_owned(), |at| short_time(at, zone));
    let mut screen = String::new();
    let _ = writeln!(
        screen,
        "kmplog — {}  (Ctrl-C to stop)",
        short_time(now, zone)
    );

    let mut bus_table = table([
        "Bus",
        "Line",
        "State",
        "Polls",
        "Timeouts",
        "Faults",
        "Reconnects",
        "Last error",
    ]);
    for bus in &states {
        let error = bus
            .last_error
            .as_ref()
            .map_or_else(String::new, |(at, error)| {
                format!("{} {error}", short_time(*at, zone))
            });
        bus_table.add_row([
            bus.name.clone(),
            bus.endpoint.clone(),
            if bus.connected { "connected" } else { "closed" }.to_owned(),
            bus.polls.to_string(),
            bus.timeouts.to_string(),
            bus.faults.to_string(),
            bus.reconnects.to_string(),
            error,
        ]);
    }
    let _ = writeln!(screen, "{bus_table}");

    let mut queue = table([
        "Bus", "#", "Request", "Method", "Last run", "Result", "Next run",
    ]);
    for bus in &states {
        for (position, request) in bus.requests.iter().enumerate() {
            queue.add_row([
                bus.name.clone(),
                (position + 1).to_string(),
                request.description.clone(),
                request.method.clone(),
                time(request.last_run),
                request.last_result.clone().unwrap_or_default(),
                time(request.next_run),
            ]);
        }
    }
    let _ = writeln!(screen, "{queue}");

    let mut values = table(["Bus", "Address", "Name", "Value", "Unit", "Status", "Time"]);
    for reading in latest.readings.values() {
        values.add_row([
            reading.bus.clone(),
            reading.address.to_string(),
            reading.name.clone(),
            reading
                .natural_text()
                .unwrap_or_else(|| reading.value_text()),
            reading.unit_text(),
            reading.status.to_string(),
            short_time(reading.time, zone),
        ]);
    }
    let _ = write!(screen, "{values}");
    screen
}

fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    table
}

/// The time of day, `08:15:02`, in `zone`.
fn short_time(at: Timestamp, zone: &TimeZone) -> String {
    let zoned = at.to_zoned_datetime(zone.clone());
    zoned.strftime("%H:%M:%S").to_string()
}

/// Moves the cursor home and clears the screen before a redraw.
pub const CLEAR: &str = "\x1b[H\x1b[2J";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::state::RequestState;
    use crate::reading::Status;
    use kmp::unit::Unit;

    #[test]
    fn screen_shows_buses_queue_and_values() {
        let bus = SharedState::new(BusState {
            name: "heat".to_owned(),
            endpoint: "tcp 127.0.0.1:7063".to_owned(),
            connected: true,
            requests: vec![RequestState {
                description: "Main values".to_owned(),
                method: "polling 30s".to_owned(),
                method_words: "every 30 s".to_owned(),
                last_run: Some("2026-11-25T08:00:00Z".parse().unwrap()),
                next_run: Some("2026-11-25T08:00:30Z".parse().unwrap()),
                last_result: Some("ok".to_owned()),
            }],
            polls: 3,
            ..BusState::default()
        });
        let mut latest = Latest::default();
        let reading = Reading {
            time: "2026-11-25T08:00:01Z".parse().unwrap(),
            bus: "heat".to_owned(),
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
        let screen = render(
            &[bus],
            &latest,
            &TimeZone::UTC,
            "2026-11-25T08:00:02Z".parse().unwrap(),
        );
        for expected in [
            "heat",
            "connected",
            "Main values",
            "polling 30s",
            "08:00:30",
            "67.10",
            "°C",
        ] {
            assert!(screen.contains(expected), "{expected} missing in\n{screen}");
        }
        assert!(
            !screen.contains("66.60"),
            "only the latest value is shown:\n{screen}"
        );
    }
}
