//! `read`, `type` and `serial` against the simulator, over TCP and over a
//! pseudo-terminal, with several meters on a line, silent addresses and each
//! injected fault.

use serde_json::Value;

use crate::harness::{Run, Simulator};

const HEAT_REGISTERS: [&str; 6] = ["E1", "V1", "T1", "T2", "POWER1", "FLOW1"];

fn read_json(simulator: &Simulator, addresses: &str, registers: &[&str], extra: &[&str]) -> Run {
    let mut args = vec!["--address", addresses, "--json"];
    for register in registers {
        args.extend(["--register", register]);
    }
    args.extend(extra);
    simulator.run("read", &args)
}

fn value_of<'a>(meter: &'a Value, name: &str) -> &'a Value {
    meter["registers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|register| register["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing in {meter}"))
}

fn decimal(value: &Value) -> f64 {
    value["value"].as_str().unwrap().parse().unwrap()
}

/// A heat meter's reading is complete and physically consistent.
fn check_heat_meter(meter: &Value, address: u64) {
    assert_eq!(meter["address"].as_u64(), Some(address));
    assert_eq!(meter["missing"], serde_json::json!([]), "{meter}");
    for (name, units) in [
        ("E1", &["GJ", "kWh", "MWh"][..]),
        ("V1", &["m³"]),
        ("T1", &["°C"]),
        ("T2", &["°C"]),
        ("POWER1", &["kW"]),
        ("FLOW1", &["l/h"]),
    ] {
        let unit = value_of(meter, name)["unit"].as_str().unwrap();
        assert!(
            units.contains(&unit),
            "{name} in {unit}, expected one of {units:?}: {meter}"
        );
    }
    let (t1, t2) = (
        decimal(value_of(meter, "T1")),
        decimal(value_of(meter, "T2")),
    );
    assert!(
        t1 > t2 && t2 > 0.0,
        "flow {t1} °C should be above return {t2} °C"
    );
    let expected_kw = decimal(value_of(meter, "FLOW1")) / 1000.0 * (t1 - t2) * 1.163;
    let power = decimal(value_of(meter, "POWER1"));
    assert!(
        (power - expected_kw).abs() <= expected_kw * 0.1 + 0.1,
        "power {power} kW vs flow × ΔT {expected_kw} kW"
    );
}

#[test]
fn read_over_tcp_gives_exact_values_with_units() {
    let simulator = Simulator::tcp(&[]);
    let run = read_json(&simulator, "63", &HEAT_REGISTERS, &[]).ok();
    let meters = run.json_lines();
    assert_eq!(meters.len(), 1);
    check_heat_meter(&meters[0], 63);
    // The exact decimal keeps the meter's precision: T1 has two decimals.
    let t1 = value_of(&meters[0], "T1")["value"].as_str().unwrap();
    assert_eq!(
        t1.split_once('.').map(|(_, decimals)| decimals.len()),
        Some(2),
        "{t1}"
    );
}

#[test]
fn read_type_and_serial_over_udp_one_frame_a_datagram() {
    let simulator = Simulator::udp(&["--meter", "63:603", "--meter", "17:403"]);
    let run = read_json(&simulator, "63;17", &HEAT_REGISTERS, &[]).ok();
    let meters = run.json_lines();
    check_heat_meter(&meters[0], 63);
    check_heat_meter(&meters[1], 17);
    let serial = simulator
        .run("serial", &["--address", "17", "--json"])
        .ok()
        .json_lines();
    assert!(serial[0]["serial"].as_u64().unwrap() > 0, "{}", serial[0]);
}

/// `--info-code` makes the simulated heat meters report an info code, and
/// `read` names its bits by the model's table: 264 is T1 above its range and
/// air in V1 on a 603, T1 outside its range and a leak on a 602.
#[test]
fn info_code_is_read_with_its_flags() {
    let simulator = Simulator::tcp(&["--meter", "63", "--meter", "17:602", "--info-code", "264"]);
    for (address, model, flags) in [
        ("63", None, ["t1_above_range", "v1_air"]),
        (
            "17",
            Some("602"),
            ["t1_sensor_fault", "leak_heating_system"],
        ),
    ] {
        let extra = model.map_or(vec![], |model| vec!["--model", model]);
        let run = read_json(&simulator, address, &["INFO"], &extra).ok();
        let info = value_of(&run.json_lines()[0], "INFO").clone();
        assert_eq!(info["register"], 99, "{info}");
        assert_eq!(info["value"], "264", "{info}");
        assert_eq!(info["flags"], serde_json::json!(flags), "{info}");
    }
    let table = simulator
        .run(
            "read",
            &["--address", "17", "--model", "602", "--register", "INFO"],
        )
        .ok();
    assert!(
        table
            .stdout
            .contains("264 (t1_sensor_fault, leak_heating_system)"),
        "{}",
        table.stdout
    );
}

#[test]
fn read_over_a_pseudo_terminal_uses_the_serial_code_path() {
    let simulator = Simulator::pty(&["--baud", "1200"]);
    let run = read_json(&simulator, "63", &HEAT_REGISTERS, &["--baud", "1200"]).ok();
    check_heat_meter(&run.json_lines()[0], 63);
    let table = simulator
        .run(
            "read",
            &["--address", "63", "--register", "T1", "--register", "HOURS"],
        )
        .ok();
    assert!(
        table.stdout.contains("T1")
            && table.stdout.contains("°C")
            && table.stdout.contains("HOURS"),
        "{}",
        table.stdout
    );
}

/// Over a real connection the counters never go down (that they grow with
/// simulated time is the simulator's unit tests' business).
#[test]
fn counters_never_go_down_between_reads() {
    let simulator = Simulator::tcp(&[]);
    let mut previous: Option<Value> = None;
    for _ in 0..3 {
        let meter = read_json(&simulator, "63", &["E1", "V1", "HOURS"], &[])
            .ok()
            .json_lines()
            .remove(0);
        if let Some(before) = &previous {
            for name in ["E1", "V1", "HOURS"] {
                let (was, is) = (
                    decimal(value_of(before, name)),
                    decimal(value_of(&meter, name)),
                );
                assert!(is >= was, "{name} went down from {was} to {is}");
            }
        }
        previous = Some(meter);
    }
}

#[test]
fn type_and_serial_over_tcp_and_pty() {
    for simulator in [
        Simulator::tcp(&["--meter", "63:603"]),
        Simulator::pty(&["--meter", "63:603"]),
    ] {
        let kind = simulator
            .run("type", &["--address", "63", "--json"])
            .ok()
            .json_lines();
        assert!(
            kind[0]["meter_type"].as_str().unwrap().starts_with("0x"),
            "{}",
            kind[0]
        );
        assert_eq!(kind[0]["address"].as_u64(), Some(63));
        assert!(!kind[0]["software_revision"].as_str().unwrap().is_empty());
        let serial = simulator
            .run("serial", &["--address", "63", "--json"])
            .ok()
            .json_lines();
        assert!(serial[0]["serial"].as_u64().unwrap() > 0, "{}", serial[0]);
        let text = simulator.run("serial", &["--address", "63"]).ok();
        assert!(
            text.stdout.starts_with("meter 63: serial number "),
            "{}",
            text.stdout
        );
    }
}

#[test]
fn several_meters_on_one_line_answer_only_to_their_address() {
    let simulator = Simulator::pty(&["--meter", "1:603", "--meter", "2:403", "--meter", "17:601"]);
    let run = read_json(&simulator, "1;2;17", &HEAT_REGISTERS, &[]).ok();
    let meters = run.json_lines();
    assert_eq!(meters.len(), 3, "{}", run.stdout);
    for (meter, address) in meters.iter().zip([1, 2, 17]) {
        check_heat_meter(meter, address);
    }
    let serials: Vec<u64> = (["1", "2", "17"])
        .iter()
        .map(|address| {
            simulator
                .run("serial", &["-a", address, "--json"])
                .ok()
                .json_lines()[0]["serial"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        serials[0] != serials[1] && serials[1] != serials[2],
        "serial numbers should differ: {serials:?}"
    );
}

#[test]
fn electricity_meter_leaves_out_heat_registers() {
    let simulator = Simulator::tcp(&["--meter", "5:382"]);
    let run = read_json(&simulator, "5", &["60", "86"], &[]);
    // Nothing came back: the JSON says which, and the status says it failed.
    assert_eq!(run.code, 1, "{run:#?}");
    let meter = &run.json_lines()[0];
    assert_eq!(meter["registers"], serde_json::json!([]));
    assert_eq!(meter["missing"], serde_json::json!([60, 86]));
}

#[test]
fn silent_address_fails_after_the_timeout_and_the_others_are_still_read() {
    let simulator = Simulator::tcp(&["--meter", "63"]);
    let run = read_json(
        &simulator,
        "63;99",
        &["E1"],
        &["--timeout", "300", "--retries", "1"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let meters = run.json_lines();
    assert_eq!(meters[0]["address"].as_u64(), Some(63));
    assert_eq!(meters[0]["missing"], serde_json::json!([]));
    assert_eq!(meters[1]["address"].as_u64(), Some(99));
    assert_eq!(meters[1]["missing"], serde_json::json!([60]));
    assert!(
        run.stderr
            .contains("meter 99 did not answer within 300 ms (2 attempts)"),
        "{}",
        run.stderr
    );
}

#[test]
fn more_than_eight_registers_are_read_in_several_frames() {
    let simulator = Simulator::tcp(&[]);
    let registers = [
        "E1", "E3", "V1", "FLOW1", "POWER1", "T1", "T2", "DT", "INFO", "HOURS",
    ];
    let run = read_json(&simulator, "63", &registers, &[]).ok();
    let meter = &run.json_lines()[0];
    assert_eq!(
        meter["registers"].as_array().unwrap().len(),
        registers.len(),
        "{meter}"
    );
}

/// Each injected fault, with every reply affected: what the logger reports.
#[test]
fn injected_faults_are_reported_never_hang() {
    for (fault, expected) in [
        ("--no-reply", "did not answer within 400 ms"),
        ("--bad-crc", "CRC error"),
        ("--truncate", "truncated"),
        ("--late", "did not answer within 400 ms"),
    ] {
        let simulator = Simulator::tcp(&[fault, "1"]);
        let run = read_json(
            &simulator,
            "63",
            &["E1"],
            &["--timeout", "400", "--retries", "0"],
        );
        assert_eq!(run.code, 1, "{fault}: {run:?}");
        assert!(
            run.stderr.contains(expected),
            "{fault}: stderr {:?} lacks {expected:?}",
            run.stderr
        );
    }
}

/// Every reply carries garbage: before the frame it is skipped, inside it
/// breaks the CRC and the retry gets a clean reply.
#[test]
fn garbage_before_replies_is_skipped_and_inside_is_retried() {
    let simulator = Simulator::tcp(&["--garbage", "1", "--seed", "3"]);
    for _ in 0..3 {
        let run = read_json(&simulator, "63", &HEAT_REGISTERS, &["--retries", "10"]).ok();
        check_heat_meter(&run.json_lines()[0], 63);
    }
}

#[test]
fn occasional_faults_are_overcome_by_retries() {
    let simulator = Simulator::tcp(&["--no-reply", "0.3", "--bad-crc", "0.2", "--seed", "7"]);
    for _ in 0..5 {
        let run = read_json(
            &simulator,
            "63",
            &["E1", "T1"],
            &["--timeout", "300", "--retries", "8"],
        )
        .ok();
        assert_eq!(run.json_lines()[0]["missing"], serde_json::json!([]));
    }
}

#[test]
fn echoing_optical_head_is_handled_in_every_echo_mode() {
    let simulator = Simulator::pty(&["--echo"]);
    for mode in ["auto", "on"] {
        let run = read_json(&simulator, "63", &["E1"], &["--echo", mode]).ok();
        assert_eq!(
            run.json_lines()[0]["missing"],
            serde_json::json!([]),
            "echo {mode}"
        );
    }
}
