//! Backfill by itself through the binary: `kmplog run` polls a simulated
//! gateway that goes down for 3 simulated hours (2 s of wall time, the
//! meter's clock and counters jumping 3 h on), and once the meter answers
//! again the logger's hourly rows of the gap are in SQLite as `logged`
//! readings, each once; a manual `kmplog backfill` of the same rows after
//! it adds nothing.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::backfill::{backfill, span_args, stored};
use crate::harness::{Logger, Row, Simulator, Workdir};

fn value(row: &Row) -> f64 {
    row.value.as_deref().unwrap().parse().unwrap()
}

#[test]
fn an_outage_of_three_simulated_hours_is_filled_from_the_hourly_logger() {
    let simulator = Simulator::tcp(&["--outage", "3s,2s,3h"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[
        "time_zone = \"UTC\"\n[sinks]\nsqlite = \"kmplog.db\"\nterminal = \"off\"\n\n",
        &simulator.bus("gw"),
        "[[bus.request]]\ndescription = \"main\"\naddresses = 63\n",
        "items = [\"E1\", \"V1\"]\npolling = \"1s\"\ntimeout_ms = 500\nretries = 0\n",
        "backfill = \"hourly\"\n",
    ]);
    let run = Logger::run(&workdir, &config, "10s").finish();
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stderr.contains("backfill started"), "{}", run.stderr);
    assert!(
        run.stderr.contains("backfill finished") && run.stderr.contains("rows=3 readings=6"),
        "{}",
        run.stderr
    );

    let rows = workdir.db_rows();
    let logged: Vec<&Row> = rows.iter().filter(|row| row.status == "logged").collect();
    let polled: Vec<&Row> = rows.iter().filter(|row| row.status == "ok").collect();
    assert!(
        rows.iter().any(|row| row.status == "line_down"),
        "the outage was seen"
    );
    // Three hours of the meter's clock: three hourly rows, E1 and V1 each.
    assert_eq!(logged.len(), 6, "{logged:#?}");
    let mut hours: Vec<Timestamp> = logged.iter().map(|row| row.time()).collect();
    hours.sort();
    hours.dedup();
    assert_eq!(hours.len(), 3, "{hours:?}");
    for pair in hours.windows(2) {
        assert_eq!(
            pair[1].duration_since(pair[0]),
            jiff::SignedDuration::from_hours(1)
        );
    }
    assert!(
        logged
            .iter()
            .all(|row| row.request == "hourly logger" && row.address == 63)
    );
    // None twice: by key, and by meter, register and time.
    let keyed = stored(&workdir);
    let mut by_key: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &keyed {
        *by_key.entry(row.key.as_str()).or_default() += 1;
    }
    assert!(by_key.values().all(|count| *count == 1), "{by_key:?}");
    let mut by_place: BTreeMap<(u64, u64, &str), usize> = BTreeMap::new();
    for row in &rows {
        *by_place
            .entry((row.address, row.register, row.ts.as_str()))
            .or_default() += 1;
    }
    assert!(by_place.values().all(|count| *count == 1), "{by_place:?}");
    // The rows fill the gap: each counter between its last poll before the
    // outage and its first after, rising hour by hour.
    let first_down = rows
        .iter()
        .position(|row| row.status == "line_down")
        .unwrap();
    for name in ["E1", "V1"] {
        let before = rows[..first_down]
            .iter()
            .filter(|row| row.status == "ok" && row.name == name)
            .map(value)
            .next_back()
            .unwrap();
        let after = polled
            .iter()
            .filter(|row| row.name == name)
            .map(|row| value(row))
            .next_back()
            .unwrap();
        let mut of_gap: Vec<(&str, f64)> = logged
            .iter()
            .filter(|row| row.name == name)
            .map(|row| (row.ts.as_str(), value(row)))
            .collect();
        of_gap.sort_by(|a, b| a.0.cmp(b.0));
        assert!(before <= of_gap[0].1, "{name}: {before} then {of_gap:?}");
        assert!(
            of_gap.windows(2).all(|pair| pair[0].1 <= pair[1].1),
            "{name}: {of_gap:?}"
        );
        assert!(of_gap[2].1 <= after, "{name}: {of_gap:?} then {after}");
    }

    // The same rows by hand: the same keys, nothing added.
    let civil = |time: Timestamp| TimeZone::UTC.to_datetime(time).to_string();
    let (from, to) = (civil(hours[0]), civil(hours[2]));
    let span = [
        serde_json::json!({ "time": from }),
        serde_json::json!({ "time": to }),
    ];
    let args = span_args(&span, 0, 1);
    let manual = backfill(&workdir, &simulator, &args, &["sqlite:kmplog.db"]).ok();
    assert!(
        manual
            .stderr
            .contains("3 rows of the hourly logger, 6 readings"),
        "{}",
        manual.stderr
    );
    assert_eq!(
        stored(&workdir).len(),
        keyed.len(),
        "the manual backfill added nothing"
    );
}
