//! Live reload end to end: `kmplog run` as a process that reads its file
//! again on SIGHUP and on `kmplog reload`, runs the new queue without a
//! restart, and refuses a file with mistakes, applying nothing.

use std::time::Duration;

use jiff::Timestamp;

use crate::harness::{Logger, Row, Run, Simulator, Workdir, http, run_kmplog};

const POLLING: &str = r#"
# Kept through every reload.
[[bus.request]]
description = "Polling"
addresses = 1
polling = "300ms"
items = ["T1"]
"#;

const ADDED: &str = r#"
[[bus.request]]
description = "Added"
addresses = 1
polling = "300ms"
items = ["T2"]
"#;

fn rows(run: &Run) -> Vec<Row> {
    run.json_lines().iter().map(Row::of_json).collect()
}

#[test]
fn sighup_reloads_the_file_and_the_new_request_runs_without_a_restart() {
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let bus = simulator.bus("gateway");
    let config = workdir.config(&[&bus, POLLING]);
    let logger = Logger::run(&workdir, &config, "6s");
    std::thread::sleep(Duration::from_millis(1500));
    workdir.config(&[&bus, POLLING, ADDED]);
    let reloaded_at = Timestamp::now();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &logger.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(hup.success());
    let run = logger.finish().ok();
    let rows = rows(&run);
    let added: Vec<&Row> = rows.iter().filter(|row| row.request == "Added").collect();
    assert!(added.len() >= 3, "the new request runs: {run:#?}");
    assert!(
        added
            .iter()
            .all(|row| row.time() > reloaded_at && row.status == "ok")
    );
    let polling_after = rows
        .iter()
        .filter(|row| row.request == "Polling" && row.time() > reloaded_at)
        .count();
    assert!(polling_after >= 3, "the old request goes on: {run:#?}");
    assert!(rows.iter().all(|row| row.status == "ok"), "{run:#?}");
    assert!(
        run.stderr.contains("bus reloaded") && run.stderr.contains("request 'Added' added"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("trigger=\"SIGHUP\""), "{}", run.stderr);
}

#[test]
fn kmplog_reload_applies_the_file_and_refuses_one_with_mistakes() {
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let bus = simulator.bus("gateway");
    let config = workdir.config(&[&bus, POLLING]);
    let logger = Logger::run(&workdir, &config, "8s");
    std::thread::sleep(Duration::from_millis(1000));

    let broken = ADDED.replace("300ms", "0s");
    workdir.config(&[&bus, POLLING, &broken]);
    let refused = run_kmplog(&["reload", "--api", logger.api()]);
    assert_eq!(refused.code, 1, "{refused:#?}");
    let text = std::fs::read_to_string(&config).unwrap();
    let line = text
        .lines()
        .position(|line| line.contains("\"0s\""))
        .expect("the broken line")
        + 1;
    let place = format!("{}:{line}:11", config.display());
    assert!(
        refused.stderr.contains(&place) && refused.stderr.contains("nothing was reloaded"),
        "{place} in {}",
        refused.stderr
    );

    workdir.config(&[&bus, POLLING, ADDED]);
    let applied_at = Timestamp::now();
    let applied = run_kmplog(&["reload", "--api", logger.api()]).ok();
    assert_eq!(
        applied.stdout,
        "reloaded\nchanged gateway: request 'Added' added\n"
    );
    let run = logger.finish().ok();
    let rows = rows(&run);
    let added: Vec<&Row> = rows.iter().filter(|row| row.request == "Added").collect();
    assert!(!added.is_empty(), "{run:#?}");
    assert!(added.iter().all(|row| row.time() > applied_at));
}

/// A reload onto a serial port that cannot be opened, missing or held by
/// another master, is refused with the port and why, through `kmplog
/// reload` and `POST /api/reload`; the bus goes on on its old port, and
/// moves once the new one is free.
#[test]
fn a_reload_onto_a_serial_port_that_cannot_be_opened_is_refused_and_the_old_bus_runs_on() {
    let old_line = Simulator::pty(&["--meter", "1"]);
    let new_line = Simulator::pty(&["--meter", "1"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[&old_line.bus("line"), POLLING]);
    let logger = Logger::run(&workdir, &config, "9s");
    std::thread::sleep(Duration::from_millis(800));

    let missing = "/dev/kmplog-no-such-port";
    workdir.config(&[
        &format!("[[bus]]\nname = \"line\"\nserial = \"{missing}\"\n"),
        POLLING,
    ]);
    let refused = run_kmplog(&["reload", "--api", logger.api()]);
    assert_eq!(refused.code, 1, "{refused:#?}");
    for words in [
        &format!("bus line: cannot open serial port {missing}: No such file or directory"),
        "nothing was reloaded, every bus runs on as before",
    ] {
        assert!(refused.stderr.contains(words), "{words:?} in {refused:#?}");
    }

    // Held by another master: this test, through the logger's own lock.
    let new_path = &new_line.line_args[1];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let entered = runtime.enter();
    let held = kmplog::transport::serial::open(&kmplog::transport::SerialSettings {
        exclusive: true,
        ..kmplog::transport::SerialSettings::new(new_path)
    })
    .expect("the test holds the new port");
    workdir.config(&[&new_line.bus("line"), POLLING]);
    let (status, body) = http(logger.api(), "POST", "/api/reload", &[]);
    assert_eq!(status, 422, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "bus line: serial port {new_path} is held by another master (pid {}",
            std::process::id()
        )),
        "{answer}"
    );
    assert_eq!(answer["diagnostics"][0]["field"], "serial", "{answer}");
    let refused_at = Timestamp::now();
    std::thread::sleep(Duration::from_millis(1000));

    drop(held);
    drop(entered);
    let moved_at = Timestamp::now();
    let moved = run_kmplog(&["reload", "--api", logger.api()]).ok();
    assert!(
        moved
            .stdout
            .contains(&format!("line: serial {}", old_line.line_args[1]))
            && moved.stdout.contains(&format!("→ serial {new_path}")),
        "{moved:#?}"
    );
    // Readings from now on can only come from the new line.
    drop(old_line);
    let run = logger.finish().ok();
    let rows = rows(&run);
    let between = rows
        .iter()
        .filter(|row| row.time() > refused_at && row.time() < moved_at)
        .count();
    assert!(
        between >= 2,
        "the old bus went on after the refusals: {run:#?}"
    );
    let after = rows
        .iter()
        .filter(|row| row.time() > moved_at && row.status == "ok")
        .count();
    assert!(after >= 3, "the bus reads on its new port: {run:#?}");
    assert!(
        run.stderr.contains("configuration not reloaded"),
        "{}",
        run.stderr
    );
}
