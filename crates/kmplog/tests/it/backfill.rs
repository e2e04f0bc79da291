//! `kmplog backfill` through the binary against `kmplog simulate`: the rows
//! of the simulator's hourly logger reach SQLite as readings `logged` with
//! the logger's values at the meter's times, once however often the span
//! is backfilled; a meter without loggers fails clearly.

use std::collections::BTreeSet;
use std::path::PathBuf;

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

/// A configuration of one bus `heat` on `simulator` polling meter 63 for
/// E1 and V1, in `zone`.
fn heat_config(workdir: &Workdir, name: &str, simulator: &Simulator, zone: &str) -> PathBuf {
    workdir.write(
        name,
        &format!(
            "time_zone = \"{zone}\"\n{}\n[[bus.request]]\ndescription = \"Main\"\naddresses = \"63\"\npolling = \"1s\"\nitems = [\"E1\", \"V1\"]\n",
            simulator.bus("heat")
        ),
    )
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

#[test]
fn backfilling_from_a_configuration_twice_stores_each_value_of_its_requests_once() {
    let simulator = Simulator::tcp(&[]);
    let rows = hourly_rows(&simulator, 12);
    let workdir = Workdir::new();
    // The meter's clock is Copenhagen's: the rows' times are placed there.
    heat_config(&workdir, "kmplog.toml", &simulator, "Europe/Copenhagen");
    let time = |index: usize| rows[index]["time"].as_str().unwrap().to_owned();
    let args = [
        "backfill",
        "--config",
        "kmplog.toml",
        "--from",
        &time(1),
        "--to",
        &time(10),
    ];
    let first = workdir.run(&args).ok();
    assert!(
        first
            .stderr
            .contains("10 rows of the hourly logger, 20 readings")
            && first.stderr.contains("(Europe/Copenhagen)"),
        "{}",
        first.stderr
    );
    let once = stored(&workdir);
    assert_eq!(once.len(), 20, "10 rows of E1 and V1, the request's items");
    workdir.run(&args).ok();
    let twice = stored(&workdir);
    assert_eq!(twice, once, "the second backfill added nothing");
    let keys: BTreeSet<&str> = twice.iter().map(|row| row.key.as_str()).collect();
    assert_eq!(keys.len(), 20);
    let registers: BTreeSet<u32> = twice.iter().map(|row| row.register).collect();
    assert_eq!(registers, BTreeSet::from([60, 68]));
    let zone = jiff::tz::TimeZone::get("Europe/Copenhagen").unwrap();
    let first_time: jiff::civil::DateTime = time(1).parse().unwrap();
    let first_instant = zone.to_timestamp(first_time).unwrap();
    assert!(
        twice
            .iter()
            .any(|row| row.ts.parse::<jiff::Timestamp>().unwrap() == first_instant),
        "no reading at {first_instant}: {twice:?}"
    );
    // The readings carry the file's bus name, as `run`'s do.
    let connection = rusqlite::Connection::open(workdir.path().join("kmplog.db")).unwrap();
    let buses: Vec<String> = connection
        .prepare("SELECT DISTINCT bus FROM readings")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(buses, ["heat"]);
}

#[test]
fn without_registers_a_backfill_reads_what_the_logger_keeps() {
    let simulator = Simulator::tcp(&[]);
    let workdir = Workdir::new();
    let args = strings(&["--address", "63", "--since", "2h", "--time-zone", "UTC"]);
    let run = backfill(&workdir, &simulator, &args, &["sqlite:kmplog.db"]).ok();
    let (_, kept) = run
        .stderr
        .split_once("; registers ")
        .unwrap_or_else(|| panic!("{}", run.stderr));
    let kept: BTreeSet<u32> = kept
        .split(", what the logger keeps")
        .next()
        .unwrap()
        .split(", ")
        .map(|id| id.parse().unwrap())
        .collect();
    assert!(kept.contains(&60) && kept.contains(&68), "{kept:?}");
    assert!(
        !kept.contains(&348) && !kept.contains(&1002) && !kept.contains(&1003),
        "the time stamps are the rows' times: {kept:?}"
    );
    let rows = stored(&workdir);
    let registers: BTreeSet<u32> = rows.iter().map(|row| row.register).collect();
    assert_eq!(registers, kept);
}

#[test]
fn a_configuration_backfill_refuses_what_the_file_does_not_have() {
    let simulator = Simulator::tcp(&[]);
    let workdir = Workdir::new();
    heat_config(&workdir, "kmplog.toml", &simulator, "UTC");
    let usage_errors: [(&[&str], &str); 4] = [
        (
            &["--config", "kmplog.toml", "--bus", "cold"],
            "kmplog.toml has no bus 'cold'; its buses: heat",
        ),
        (
            &["--config", "kmplog.toml", "--address", "5"],
            "address 5 is in no request of kmplog.toml; heat polls 63",
        ),
        (
            &["--config", "kmplog.toml", "--tcp", "127.0.0.1:7063"],
            "the argument '--config <FILE>' cannot be used with '--tcp <HOST:PORT>'",
        ),
        (
            &["--address", "63", "--sink", "sqlite:kmplog.db"],
            "or a configuration file: --config kmplog.toml",
        ),
    ];
    for (args, expected) in usage_errors {
        let run = workdir.run(&[&["backfill", "--since", "1h"], args].concat());
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains(expected),
            "{args:?}: expected {expected:?} in\n{}",
            run.stderr
        );
    }
    // A file with mistakes: what `kmplog check` says, word for word.
    workdir.write(
        "bad.toml",
        &format!(
            "{}\n[[bus.request]]\ndescription = \"Main\"\naddresses = \"0\"\npolling = \"1s\"\nitems = [\"E1\"]\n",
            simulator.bus("heat")
        ),
    );
    let check = workdir.run(&["check", "bad.toml"]);
    assert_eq!(check.code, 1, "{check:?}");
    let run = workdir.run(&["backfill", "--config", "bad.toml", "--since", "1h"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr, check.stderr);
    assert!(
        run.stderr.contains("address 0 is out of range"),
        "{}",
        run.stderr
    );
    assert!(stored_or_none(&workdir).is_empty());
}

/// The readings in `kmplog.db`, none when there is no such file.
fn stored_or_none(workdir: &Workdir) -> Vec<Stored> {
    if workdir.path().join("kmplog.db").exists() {
        stored(workdir)
    } else {
        Vec::new()
    }
}

#[test]
fn a_configuration_backfill_is_refused_on_a_line_a_logger_polls_naming_it() {
    let simulator = Simulator::pty(&[]);
    let workdir = Workdir::new();
    let polled = heat_config(&workdir, "kmplog.toml", &simulator, "UTC");
    let logger = crate::harness::Logger::run(&workdir, &polled, "30s");
    // Once the logger's bus has the port open.
    loop {
        let (status, body) = crate::harness::http(logger.api(), "GET", "/api/buses", &[]);
        assert_eq!(status, 200, "{body}");
        let state: Value = serde_json::from_str(&body).unwrap();
        if state["buses"][0]["connected"] == true {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = format!("pid {}", logger.pid());
    // The same file: its outbox is the running logger's.
    let same = workdir.run(&["backfill", "--config", "kmplog.toml", "--since", "1h"]);
    // Another file on the same port: the port's lock.
    let other = heat_config(&workdir, "other.toml", &simulator, "UTC");
    std::fs::write(
        &other,
        std::fs::read_to_string(&other).unwrap().replacen(
            "[[bus]]",
            "[sinks]\noutbox = \"other-outbox.db\"\n\n[[bus]]",
            1,
        ),
    )
    .unwrap();
    let beside = workdir.run(&["backfill", "--config", "other.toml", "--since", "1h"]);
    drop(logger);
    assert_eq!(same.code, 1, "{same:?}");
    assert!(
        same.stderr
            .contains("the outbox kmplog-outbox.db of kmplog.toml is held by")
            && same.stderr.contains(&pid)
            && same
                .stderr
                .contains("stop it, backfill, and start it again"),
        "{}",
        same.stderr
    );
    assert_eq!(beside.code, 1, "{beside:?}");
    assert!(
        beside.stderr.contains("bus heat: serial port")
            && beside.stderr.contains("is held by another master")
            && beside.stderr.contains(&pid),
        "{}",
        beside.stderr
    );
}
