//! `kmplog backfill` through the binary against `kmplog simulate`: the rows
//! of the simulator's hourly logger reach SQLite as readings `logged` with
//! the logger's values at the meter's times, once however often the span
//! is backfilled; a meter without loggers fails clearly.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::{Simulator, Workdir};

/// One row of the SQLite sink's table, as the backfill wrote it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stored {
    pub key: String,
    ts: String,
    register: u32,
    value: Option<String>,
    status: String,
}

pub fn stored(workdir: &Workdir) -> Vec<Stored> {
    let connection = rusqlite::Connection::open(workdir.path().join("kmplog.db")).unwrap();
    let mut statement = connection
        .prepare("SELECT key, ts, register, value, status FROM readings ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| {
            Ok(Stored {
                key: row.get(0)?,
                ts: row.get(1)?,
                register: row.get(2)?,
                value: row.get(3)?,
                status: row.get(4)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The simulator's newest `count` hourly rows of E1 and V1, oldest first,
/// as `kmplog log` reads them.
pub fn hourly_rows(simulator: &Simulator, count: u32) -> Vec<Value> {
    let run = simulator
        .run(
            "log",
            &[
                "--address",
                "63",
                "--logger",
                "hourly",
                "--last",
                &count.to_string(),
                "-r",
                "E1",
                "-r",
                "V1",
                "--json",
            ],
        )
        .ok();
    run.json_lines()
}

/// `backfill` arguments for the rows `first..=last` of `rows`, in UTC.
pub fn span_args(rows: &[Value], first: usize, last: usize) -> Vec<String> {
    let time = |index: usize| rows[index]["time"].as_str().unwrap().to_owned();
    [
        "--address",
        "63",
        "--logger",
        "hourly",
        "-r",
        "E1",
        "-r",
        "V1",
        "--time-zone",
        "UTC",
        "--from",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .chain([time(first), "--to".to_owned(), time(last)])
    .collect()
}

/// Runs `kmplog backfill` in `workdir` on `simulator` into `sinks`.
pub fn backfill(
    workdir: &Workdir,
    simulator: &Simulator,
    args: &[String],
    sinks: &[&str],
) -> crate::harness::Run {
    let mut all: Vec<&str> = vec!["backfill"];
    all.extend(simulator.line_args.iter().map(String::as_str));
    all.extend(args.iter().map(String::as_str));
    for sink in sinks {
        all.extend(["--sink", sink]);
    }
    workdir.run(&all)
}

#[test]
fn backfilling_twice_into_sqlite_stores_each_logged_value_once() {
    let simulator = Simulator::tcp(&[]);
    let rows = hourly_rows(&simulator, 30);
    // A closed span, so that an hour passing between the runs adds no row.
    let args = span_args(&rows, 2, 25);
    let workdir = Workdir::new();
    let first = backfill(&workdir, &simulator, &args, &["sqlite:kmplog.db"]).ok();
    assert!(
        first
            .stderr
            .contains("24 rows of the hourly logger, 48 readings"),
        "{}",
        first.stderr
    );
    let once = stored(&workdir);
    assert_eq!(once.len(), 48, "24 rows of 2 registers");
    backfill(&workdir, &simulator, &args, &["sqlite:kmplog.db"]).ok();
    let twice = stored(&workdir);
    assert_eq!(twice, once, "the second backfill added nothing");
    let keys: BTreeSet<&str> = twice.iter().map(|row| row.key.as_str()).collect();
    assert_eq!(keys.len(), twice.len());
    assert!(twice.iter().all(|row| row.status == "logged"), "{twice:?}");
    // Each value is the logger's, at the meter's time of its row.
    for row in &rows[2..=25] {
        let ts = format!("{}Z", row["time"].as_str().unwrap());
        for register in row["registers"].as_array().unwrap() {
            let id = register["register"].as_u64().unwrap() as u32;
            let found: Vec<&Stored> = twice
                .iter()
                .filter(|stored| {
                    stored.register == id
                        && stored.ts.parse::<jiff::Timestamp>().unwrap()
                            == ts.parse::<jiff::Timestamp>().unwrap()
                })
                .collect();
            assert_eq!(found.len(), 1, "register {id} at {ts}: {twice:?}");
            assert_eq!(
                found[0].value.as_deref(),
                register["value"].as_str(),
                "register {id} at {ts}"
            );
        }
    }
    // The counters rose to what the meter shows now.
    let energy: Vec<f64> = twice
        .iter()
        .filter(|row| row.register == 60)
        .map(|row| row.value.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(
        energy.windows(2).all(|pair| pair[0] <= pair[1]),
        "{energy:?}"
    );
    let now = simulator
        .run("read", &["--address", "63", "-r", "E1", "--json"])
        .ok()
        .json_lines()[0]["registers"][0]["value"]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert!(
        energy.last().is_some_and(|last| *last <= now),
        "{energy:?} then {now}"
    );
}

#[test]
fn a_meter_without_loggers_exits_1_naming_what_was_read() {
    let simulator = Simulator::tcp(&["--no-loggers"]);
    let workdir = Workdir::new();
    let args: Vec<String> = [
        "--address",
        "63",
        "--since",
        "1d",
        "-r",
        "E1",
        "--timeout",
        "200",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    let run = backfill(&workdir, &simulator, &args, &["sqlite:kmplog.db"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("kmplog: meter 63 gave no hourly logger rows: no reply (2 attempts)"),
        "{}",
        run.stderr
    );
    assert!(stored(&workdir).is_empty());
}

#[test]
fn a_backfill_on_a_running_loggers_outbox_is_refused() {
    let simulator = Simulator::tcp(&[]);
    let workdir = Workdir::new();
    let config = workdir.write(
        "kmplog.toml",
        &format!(
            "{}\n[[bus.request]]\ndescription = \"Main\"\naddresses = \"63\"\npolling = \"1s\"\nitems = [\"E1\"]\n",
            simulator.bus("heat")
        ),
    );
    let logger = crate::harness::Logger::run(&workdir, &config, "30s");
    let args: Vec<String> = [
        "--address",
        "63",
        "--since",
        "2h",
        "-r",
        "E1",
        "--outbox",
        "kmplog-outbox.db",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    let run = backfill(&workdir, &simulator, &args, &["sqlite:backfill.db"]);
    drop(logger);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("is in use by another kmplog")
            && run
                .stderr
                .contains("give the backfill an outbox of its own with --outbox"),
        "{}",
        run.stderr
    );
}
