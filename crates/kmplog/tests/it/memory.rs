//! The meter's own memory: `kmplog log` reads the simulator's loggers
//! (CID 0xB8) through the binary, by the newest rows, by time and by log id;
//! a meter without loggers fails clearly; an answer the meter cuts short is
//! paged on; the --help examples run.

use serde_json::Value;

use crate::harness::{Run, Simulator, run_kmplog};

fn log(simulator: &Simulator, args: &[&str]) -> Run {
    simulator.run("log", &[&["--address", "63"], args].concat())
}

fn rows(run: &Run) -> Vec<Value> {
    run.json_lines()
}

fn value(row: &Value, name: &str) -> f64 {
    row["registers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|register| register["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing in {row}"))["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn time(row: &Value) -> jiff::civil::DateTime {
    row["time"].as_str().unwrap().parse().unwrap()
}

/// What `read` gives for one register now.
fn current(simulator: &Simulator, register: &str) -> Value {
    let run = simulator
        .run(
            "read",
            &["--address", "63", "--register", register, "--json"],
        )
        .ok();
    run.json_lines()[0]["registers"][0].clone()
}

#[test]
fn the_last_daily_rows_rise_and_end_at_the_current_counters() {
    let simulator = Simulator::tcp(&[]);
    let run = log(
        &simulator,
        &[
            "--logger",
            "daily",
            "--last",
            "10",
            "--register",
            "E1",
            "--register",
            "V1",
            "--register",
            "HOURS",
            "--json",
        ],
    )
    .ok();
    let rows = rows(&run);
    assert_eq!(rows.len(), 10, "{}", run.stdout);
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1]["log_id"].as_u64(),
            pair[0]["log_id"].as_u64().map(|id| id + 1)
        );
        assert_eq!(
            time(&pair[1]).duration_since(time(&pair[0])),
            jiff::SignedDuration::from_hours(24)
        );
        assert!(value(&pair[1], "E1") > value(&pair[0], "E1"), "{pair:?}");
        assert!(value(&pair[1], "V1") > value(&pair[0], "V1"), "{pair:?}");
        assert_eq!(value(&pair[1], "HOURS") - value(&pair[0], "HOURS"), 24.0);
    }
    // The newest row is today's midnight by the meter's clock, and the live
    // counters have gone on from it by less than a day.
    let newest = rows.last().unwrap();
    let date = current(&simulator, "1003");
    assert_eq!(
        time(newest).date().to_string(),
        date["text"].as_str().unwrap()
    );
    let hours = current(&simulator, "HOURS")["value"]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap()
        - value(newest, "HOURS");
    assert!((0.0..=24.0).contains(&hours), "{hours} hours since the row");
    let energy: f64 = current(&simulator, "E1")["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let per_day = value(newest, "E1") - value(&rows[rows.len() - 2], "E1");
    let since = energy - value(newest, "E1");
    assert!(
        (0.0..=per_day * 1.5).contains(&since),
        "E1 {energy} now, {} at midnight, {per_day} a day",
        value(newest, "E1")
    );
    assert!(
        run.stderr
            .contains("10 rows of the daily logger of meter 63"),
        "{}",
        run.stderr
    );
}

/// Behind a gateway kmplog does not know the line's speed: the pages, each
/// longer on the 1200-baud line than the default timeout, are read whole.
#[test]
fn pages_from_behind_a_slow_gateway_arrive_whole_with_the_default_timeout() {
    let simulator = Simulator::tcp(&["--baud", "1200"]);
    let mut args = vec!["--logger", "hourly", "--last", "10", "--json"];
    for register in ["60", "61", "62", "63", "68", "86", "87", "99"] {
        args.extend(["--register", register]);
    }
    let run = log(&simulator, &args).ok();
    let rows = rows(&run);
    assert_eq!(rows.len(), 10, "{}", run.stderr);
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1]["log_id"].as_u64(),
            pair[0]["log_id"].as_u64().map(|id| id + 1)
        );
    }
    assert!(run.stderr.contains(", 0 retries"), "{}", run.stderr);
}

#[test]
fn rows_are_chosen_by_time_and_by_log_id() {
    let simulator = Simulator::tcp(&[]);
    let all = rows(
        &log(
            &simulator,
            &[
                "--logger",
                "hourly",
                "--last",
                "6",
                "--register",
                "E1",
                "--json",
            ],
        )
        .ok(),
    );
    assert_eq!(all.len(), 6);
    let (from, to) = (
        all[1]["time"].as_str().unwrap(),
        all[3]["time"].as_str().unwrap(),
    );
    let by_time = rows(
        &log(
            &simulator,
            &[
                "--logger",
                "hourly",
                "--from",
                from,
                "--to",
                to,
                "--register",
                "E1",
                "--json",
            ],
        )
        .ok(),
    );
    assert_eq!(by_time, all[1..=3]);
    let first = all[1]["log_id"].as_u64().unwrap().to_string();
    let by_id = rows(
        &log(
            &simulator,
            &[
                "--logger",
                "hourly",
                "--id",
                &first,
                "--count",
                "3",
                "--register",
                "E1",
                "--json",
            ],
        )
        .ok(),
    );
    assert_eq!(by_id, all[1..=3]);
    // The table has the same rows.
    let table = log(
        &simulator,
        &[
            "--logger",
            "hourly",
            "--id",
            &first,
            "--count",
            "3",
            "--register",
            "E1",
        ],
    )
    .ok();
    for row in &all[1..=3] {
        let line = table
            .stdout
            .lines()
            .find(|line| line.contains(row["time"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("{row} not in\n{}", table.stdout));
        assert!(line.contains(&row["log_id"].to_string()), "{line}");
    }
    let backwards = log(
        &simulator,
        &[
            "--logger",
            "hourly",
            "--from",
            to,
            "--to",
            from,
            "--register",
            "E1",
        ],
    );
    assert_eq!(backwards.code, 2, "{backwards:?}");
    assert!(
        backwards.stderr.contains("is after --to"),
        "{}",
        backwards.stderr
    );
}

#[test]
fn the_json_lines_have_their_shape() {
    let simulator = Simulator::tcp(&[]);
    let run = log(
        &simulator,
        &[
            "--logger",
            "monthly",
            "--last",
            "2",
            "--register",
            "E1",
            "--register",
            "T1",
            "--json",
        ],
    )
    .ok();
    for row in rows(&run) {
        let object = row.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["address", "log_id", "logger", "registers", "time"]);
        assert_eq!(row["address"], 63);
        assert_eq!(row["logger"], "monthly");
        assert!(
            row["time"].as_str().unwrap().ends_with("-01T00:00:00"),
            "{row}"
        );
        let registers = row["registers"].as_array().unwrap();
        let names: Vec<&str> = registers
            .iter()
            .map(|register| register["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["E1", "T1"]);
        for register in registers {
            for key in ["register", "value", "unit_code", "unit"] {
                assert!(register.get(key).is_some(), "{key} missing in {register}");
            }
        }
    }
}

#[test]
fn a_meter_without_loggers_fails_naming_what_was_read() {
    let simulator = Simulator::tcp(&["--no-loggers"]);
    let run = log(
        &simulator,
        &["--logger", "daily", "--register", "E1", "--timeout", "200"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "meter 63 gave no daily logger rows: no reply (2 attempts) (asked for its newest row with the logger command 0xB8)"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn an_answer_cut_short_is_paged_on_to_the_end() {
    let simulator = Simulator::tcp(&[]);
    let mut args = vec!["--logger", "hourly", "--last", "60", "--json"];
    for register in ["E1", "E3", "V1", "T1", "T2", "FLOW1", "POWER1", "HOURS"] {
        args.extend(["--register", register]);
    }
    let run = log(&simulator, &args).ok();
    let rows = rows(&run);
    assert_eq!(rows.len(), 60);
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1]["log_id"].as_u64(),
            pair[0]["log_id"].as_u64().map(|id| id + 1)
        );
        assert_eq!(value(&pair[1], "HOURS") - value(&pair[0], "HOURS"), 1.0);
    }
    let cut: u32 = run
        .stderr
        .split(", ")
        .find_map(|part| part.strip_suffix(" cut short"))
        .and_then(|part| part.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {}", run.stderr));
    // Once: from then on the pages are the size the meter gave.
    assert_eq!(
        cut, 1,
        "the meter should have cut one answer short: {}",
        run.stderr
    );
}

#[test]
fn decode_shows_the_rows_of_a_real_logger_answer() {
    // The logger example of `kmplog decode --help` (which the help test
    // runs): the real MULTICAL 603's two rows.
    let decode = run_kmplog(&[
        "decode",
        "403FB81BF902000201000000020000000200C003EB3004000003F8050003D0F5AA3A0D",
    ])
    .ok();
    assert!(
        decode.stdout.contains("2026-01-01T00:00:00")
            && decode.stdout.contains("2025-01-01T00:00:00"),
        "{}",
        decode.stdout
    );
}

#[test]
fn long_pages_arrive_whole_on_a_1200_baud_line() {
    // A page of 400 bytes takes 3.7 s at 1200 baud, more than the reply
    // timeout of 1.6 s: the master waits for the bytes a page may take.
    let simulator = Simulator::pty(&[]);
    let mut args = vec!["--logger", "hourly", "--last", "12", "--json"];
    for register in ["E1", "E3", "V1", "T1", "T2", "FLOW1", "POWER1", "HOURS"] {
        args.extend(["--register", register]);
    }
    let run = log(&simulator, &args).ok();
    assert_eq!(rows(&run).len(), 12, "{}", run.stderr);
}
