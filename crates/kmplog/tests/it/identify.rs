//! `kmplog identify` and `kmplog scan` through the binary, against
//! `kmplog simulate`.

use serde_json::Value;

use crate::harness::{Simulator, Workdir};

/// The addresses of `scan --json` lines.
fn addresses(lines: &[Value]) -> Vec<u64> {
    lines
        .iter()
        .map(|line| line["address"].as_u64().unwrap_or_else(|| panic!("{line}")))
        .collect()
}

#[test]
fn identify_reads_type_serial_and_identifying_registers_and_names_the_model_from_models() {
    let simulator = Simulator::tcp(&["--meter", "63:603", "--meter", "17:403"]);
    let serial = simulator
        .run("serial", &["--address", "63", "--json"])
        .ok()
        .json_lines();
    let bare = simulator
        .run("identify", &["--address", "63;17", "--json"])
        .ok()
        .json_lines();
    assert_eq!(addresses(&bare), [63, 17]);
    let meter = &bare[0];
    assert_eq!(meter["meter_type"], "0x0603", "{meter}");
    assert_eq!(meter["serial"], serial[0]["serial"], "{meter}");
    assert!(
        meter["type_data"].as_str().unwrap().starts_with("0603"),
        "{meter}"
    );
    // kmplog's own table is empty: without [models] no model is named.
    assert_eq!(meter["model"], Value::Null, "{meter}");
    // The simulator answers register 404 with its type code; 254, 640 and
    // 1126 it does not have.
    let registers = meter["registers"].as_array().unwrap();
    let type_register = registers.iter().find(|r| r["register"] == 404).unwrap();
    assert_eq!(type_register["value"], "1539", "{meter}");
    assert_eq!(meter["not_answered"], serde_json::json!([254, 640, 1126]));

    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo.toml");
    let named = simulator
        .run(
            "identify",
            &["--address", "63;17", "--json", "--config", demo],
        )
        .ok()
        .json_lines();
    assert_eq!(named[0]["model"], "MULTICAL 603", "{}", named[0]);
    assert_eq!(named[0]["model_from"], "configuration");
    assert_eq!(named[1]["model"], "MULTICAL 403", "{}", named[1]);

    let text = simulator.run("identify", &["--address", "63"]).ok();
    for expected in [
        "meter 63: type 0x0603, software revision ",
        "  model: type 0x0603 is in no table; if you know the model, add it to the configuration:\n    [models]\n    \"0x0603\" = \"603\"",
        "  register 404 meter type (MULTICAL 603): 1539\n",
        "  register 1126 meter type as ASCII (Kamstrup 382): not answered\n",
        "  GetType data: 0603",
    ] {
        assert!(
            text.stdout.contains(expected),
            "{expected:?} not in\n{}",
            text.stdout
        );
    }
}

#[test]
fn identify_of_a_silent_address_fails_naming_it() {
    let simulator = Simulator::tcp(&["--meter", "63"]);
    let run = simulator.run("identify", &["--address", "5", "--timeout", "100"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("meter 5 did not answer within 100 ms"),
        "{run:#?}"
    );
}

#[test]
fn scan_finds_exactly_the_meters_on_the_line_and_offers_a_request_that_checks() {
    let simulator = Simulator::tcp(&["--meter", "1", "--meter", "17:403", "--meter", "63"]);
    let range = [
        "--from",
        "1",
        "--to",
        "64",
        "--timeout",
        "80",
        "--retries",
        "0",
    ];
    let json = simulator
        .run("scan", &[&range[..], &["--json"]].concat())
        .ok();
    let found = json.json_lines();
    assert_eq!(addresses(&found), [1, 17, 63], "{json:#?}");
    assert_eq!(found[1]["meter_type"], "0x0403");
    assert!(found.iter().all(|meter| meter["serial"].as_u64().is_some()));

    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo.toml");
    let text = simulator
        .run("scan", &[&range[..], &["--config", demo]].concat())
        .ok();
    for expected in [
        "address 17: type 0x0403, software revision ",
        ", MULTICAL 403\n",
        "found 3 meters at addresses 1 to 64 of tcp ",
        ": 1, 17, 63\n",
        "addresses = \"1;63\"\nmodel = \"603\"\n",
        "addresses = \"17\"\nmodel = \"403\"\n",
    ] {
        assert!(
            text.stdout.contains(expected),
            "{expected:?} not in\n{}",
            text.stdout
        );
    }
    // The snippet is a valid request of the line's bus.
    let snippet = text
        .stdout
        .split_once("[[bus.request]]")
        .map(|(_, rest)| format!("[[bus.request]]{rest}"))
        .unwrap();
    let workdir = Workdir::new();
    let config = workdir.config(&[&simulator.bus("found"), &snippet]);
    let check = workdir.run(&["check", config.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{snippet}\n{check:#?}");
}

#[test]
fn scan_wakes_a_sleeping_optical_port_with_its_retry() {
    let args = ["--from", "62", "--to", "63", "--timeout", "150", "--json"];
    // Asleep at the start, the port misses the first frame: without a retry
    // the scan finds nothing ...
    let asleep = Simulator::tcp(&["--meter", "63", "--sleep-after", "60"]);
    let run = asleep.run("scan", &[&args[..], &["--retries", "0"]].concat());
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("no meter answered at addresses 62 to 63"),
        "{run:#?}"
    );
    // ... and with the wake-up retry it finds the meter.
    let asleep = Simulator::tcp(&["--meter", "63", "--sleep-after", "60"]);
    let found = asleep.run("scan", &args).ok().json_lines();
    assert_eq!(addresses(&found), [63]);
}

#[test]
fn scan_refuses_a_reversed_range() {
    let simulator = Simulator::tcp(&["--meter", "63"]);
    let run = simulator.run("scan", &["--from", "70", "--to", "60"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("--from 70 is above --to 60"),
        "{run:#?}"
    );
}
