//! Live reload end to end: `kmplog run` as a process that reads its file
//! again on SIGHUP and on `kmplog reload`, runs the new queue without a
//! restart, and refuses a file with mistakes, applying nothing.

use std::time::Duration;

use jiff::Timestamp;

use crate::harness::{Logger, Row, Run, Simulator, Workdir, run_kmplog};

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
