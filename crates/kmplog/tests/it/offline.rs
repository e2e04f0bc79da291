//! Commands that need no meter: `decode`, `registers`, and argument errors.

use crate::harness::run_kmplog;

#[test]
fn decode_prints_a_response_as_json_with_exact_values() {
    let run = run_kmplog(&[
        "decode",
        "--json",
        "403F10003C0804430001E21BBF005625044200001A0A005725044200001BF248004428044200001BE41BF96EE30D",
    ])
    .ok();
    let json = &run.json_lines()[0];
    assert_eq!(json["direction"], "from_meter");
    assert_eq!(
        (json["address"].as_u64(), json["cid"].as_u64()),
        (Some(63), Some(16))
    );
    assert_eq!(json["command"], "GetRegister");
    let values: Vec<(u64, &str, &str)> = json["registers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["register"].as_u64().unwrap(),
                r["value"].as_str().unwrap(),
                r["unit"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        values,
        [
            (60, "123.456", "GJ"),
            (86, "66.66", "°C"),
            (87, "34.00", "°C"),
            (68, "69.18", "m³")
        ]
    );
}

#[test]
fn decode_prints_requests_type_serial_and_ack() {
    for (hex, key, expected) in [
        (
            "803F1001001B7FD4080D",
            "registers",
            serde_json::json!([128]),
        ),
        (
            "403F0100041BF90126990D",
            "software_revision",
            serde_json::json!("F1"),
        ),
        (
            "403F0201234567E9560D",
            "serial",
            serde_json::json!(19_088_743),
        ),
        ("06", "ack", serde_json::json!(true)),
    ] {
        let run = run_kmplog(&["decode", "--json", hex]).ok();
        assert_eq!(run.json_lines()[0][key], expected, "{hex}");
    }
}

#[test]
fn decode_rejects_bad_frames_with_the_reason() {
    for (hex, code, message) in [
        (
            "403F0201234567E9570D",
            1,
            "CRC error: expected 0xE956, found 0xE957",
        ),
        (
            "403F02012345",
            1,
            "truncated frame: 6 bytes without the stop byte 0x0D",
        ),
        (
            "403F02011B0D",
            1,
            "byte 4 is an escape byte 0x1B right before the stop byte",
        ),
        ("3F02010D", 1, "byte 0 is 0x3F, not a start byte"),
        ("40 3G", 2, "'G' at position 4 is not a hex digit"),
        ("403", 2, "odd number of hex digits"),
    ] {
        let run = run_kmplog(&["decode", hex]);
        assert_eq!(run.code, code, "{hex}: {run:?}");
        assert!(
            run.stderr.contains(message),
            "{hex}: stderr {:?} lacks {message:?}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{hex}: {}", run.stderr);
    }
}

#[test]
fn decode_rejects_an_over_long_frame() {
    let hex = format!("40{}0D", "00".repeat(2000));
    let run = run_kmplog(&["decode", &hex]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("frame too long"), "{}", run.stderr);
}

#[test]
fn registers_lists_the_catalogue_of_a_model() {
    let run = run_kmplog(&["registers", "--model", "603", "--json"]).ok();
    let lines = run.json_lines();
    let e1 = lines
        .iter()
        .find(|line| line["export_name"] == "E1")
        .expect("E1 in the 603 catalogue");
    assert_eq!(
        (e1["register"].as_u64(), e1["model"].as_str()),
        (Some(60), Some("MULTICAL 603"))
    );
    let table = run_kmplog(&["registers"]).ok();
    assert!(
        table.stdout.contains("HOURS") && table.stdout.contains("382"),
        "{}",
        table.stdout
    );
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    for (args, message) in [
        (
            &["read", "--tcp", "127.0.0.1:9", "-a", "0", "-r", "60"][..],
            "address 0 is out of range",
        ),
        (
            &["read", "--tcp", "127.0.0.1:9", "-a", "256", "-r", "60"],
            "address 256 is out of range",
        ),
        (
            &["read", "--tcp", "127.0.0.1:9", "-a", "63", "-r", "0"],
            "register 0 does not exist",
        ),
        (
            &["read", "--tcp", "127.0.0.1:9", "-a", "63", "-r", "65536"],
            "register 65536 is out of range",
        ),
        (
            &["read", "--tcp", "127.0.0.1:9", "-a", "63", "-r", "NOSUCH"],
            "'NOSUCH' is not in any catalogue",
        ),
        (&["read", "--tcp", "127.0.0.1:9", "-a", "63"], "--register"),
        (
            &["read", "--tcp", "localhost", "-a", "63", "-r", "60"],
            "has no port",
        ),
        (&["read", "-a", "63", "-r", "60"], "--serial"),
        (
            &[
                "read",
                "--serial",
                "/dev/null",
                "--baud",
                "100",
                "-a",
                "63",
                "-r",
                "60",
            ],
            "100 is not in 300..=115200",
        ),
        (
            &[
                "read",
                "--serial",
                "/dev/null",
                "--framing",
                "9N1",
                "-a",
                "63",
                "-r",
                "60",
            ],
            "invalid framing '9N1'",
        ),
        (&["registers", "--model", "604"], "unknown model '604'"),
    ] {
        let run = run_kmplog(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains(message),
            "{args:?}: stderr {:?} lacks {message:?}",
            run.stderr
        );
    }
}

#[test]
fn unreachable_gateway_is_a_clear_failure() {
    // A port that was just free: nothing listens there, the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let run = run_kmplog(&["read", "--tcp", &address, "-a", "63", "-r", "60"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(&format!("cannot connect to {address}")),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_serial_port_is_a_clear_failure() {
    let run = run_kmplog(&["serial", "--serial", "/dev/kmplog-no-such-port", "-a", "63"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot open serial port /dev/kmplog-no-such-port"),
        "{}",
        run.stderr
    );
}
