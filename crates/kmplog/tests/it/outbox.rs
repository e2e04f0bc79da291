//! The outbox under faults, through the binary: a disk that fills (a small
//! tmpfs, mounted for the test: CI runs as root; elsewhere without root the
//! tests are skipped loudly, and with `CI=true` they fail), a second logger
//! on the same outbox, two masters on one serial line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Logger, Simulator, Workdir};

/// A tmpfs of a few hundred kilobytes mounted on a directory, unmounted
/// when dropped.
struct SmallDisk {
    directory: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts one, or says why not: `None` skips the test outside CI.
    fn mount(size: &str) -> Option<SmallDisk> {
        let directory = tempfile::tempdir().expect("a mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(directory.path())
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(SmallDisk { directory }),
            outcome => {
                let message = format!(
                    "cannot mount a small tmpfs for a full-disk test (it needs root): {outcome:?}"
                );
                if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                    panic!("{message}");
                }
                eprintln!("\n!!!!! SKIPPED: {message} !!!!!\n");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.directory.path()
    }

    /// Fills what is left with a file, which [`SmallDisk::free`] removes.
    fn fill(&self) {
        let mut filler = std::fs::File::create(self.filler()).expect("create the filler");
        let block = vec![0u8; 4096];
        while std::io::Write::write_all(&mut filler, &block).is_ok() {}
        let _ = filler.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler");
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.directory.path())
            .status();
    }
}

/// A configuration that polls `simulator` every second and has no sink, so
/// that every reading stays in the outbox on `disk`.
fn no_sink_config(workdir: &Workdir, simulator: &Simulator, outbox: &Path) -> PathBuf {
    workdir.config(&[
        &format!(
            "[sinks]\nsqlite = false\nterminal = \"off\"\noutbox = \"{}\"\n\n",
            outbox.display()
        ),
        &simulator.bus("heat"),
        "[[bus.request]]\ndescription = \"Main\"\naddresses = 1\npolling = \"1s\"\nitems = [\"E1\", \"T1\"]\n",
    ])
}

/// Waits until `done`, for at most `limit`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// The number of readings in the outbox and whether their sequence numbers
/// run 1, 2, 3, ... without a gap.
fn outbox_readings(outbox: &Path) -> (u64, bool) {
    let connection = rusqlite::Connection::open(outbox).expect("open the outbox");
    let seqs: Vec<u64> = connection
        .prepare("SELECT seq FROM readings ORDER BY seq")
        .expect("query the outbox")
        .query_map([], |row| row.get::<_, i64>(0).map(|seq| seq as u64))
        .expect("query the outbox")
        .collect::<Result<_, _>>()
        .expect("read the outbox");
    let gapless = seqs.iter().zip(1..).all(|(seq, expected)| *seq == expected);
    (seqs.len() as u64, gapless)
}

#[test]
fn with_the_disk_full_the_logger_stops_within_its_grace_and_says_what_it_lost() {
    let Some(disk) = SmallDisk::mount("512k") else {
        return;
    };
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let outbox = disk.path().join("outbox.db");
    let config = no_sink_config(&workdir, &simulator, &outbox);
    let logger = Logger::start(&workdir, &["run", config.to_str().unwrap(), "--api", "off"]);
    assert!(
        wait_for(Duration::from_secs(20), || outbox.exists()
            && outbox_readings(&outbox).0 > 0),
        "the logger writes the outbox"
    );
    disk.fill();
    // Readings pile up in memory while the outbox cannot take them.
    std::thread::sleep(Duration::from_secs(3));
    let asked = Instant::now();
    let terminated = Command::new("kill")
        .args(["-TERM", &logger.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(terminated.success(), "SIGTERM sent");
    let pid = logger.pid().to_string();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(logger.finish()));
    let Ok(run) = receiver.recv_timeout(Duration::from_secs(20)) else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("SIGTERM did not stop a logger whose disk is full");
    };
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(9),
        "stopping took {took:?}, beyond the outbox's grace of 5 s and a retry"
    );
    assert_ne!(run.code, 0, "readings were lost: {run:#?}");
    let lost = run
        .stderr
        .lines()
        .find(|line| line.contains("kmplog: stopped with"))
        .unwrap_or_else(|| panic!("no word of the lost readings: {}", run.stderr));
    let count: u64 = lost
        .split_whitespace()
        .nth(3)
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no count in {lost:?}"));
    assert!(
        count >= 2 && lost.contains("database or disk is full"),
        "{lost}"
    );
    assert!(
        run.stderr.contains("outbox cannot be written"),
        "the failure was logged when it began: {}",
        run.stderr
    );
}

#[test]
fn once_the_disk_has_room_again_the_outbox_takes_what_waited_without_a_restart() {
    let Some(disk) = SmallDisk::mount("512k") else {
        return;
    };
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let outbox = disk.path().join("outbox.db");
    let config = no_sink_config(&workdir, &simulator, &outbox);
    let logger = Logger::start(
        &workdir,
        &[
            "run",
            config.to_str().unwrap(),
            "--api",
            "off",
            "--for",
            "12s",
        ],
    );
    assert!(
        wait_for(Duration::from_secs(20), || outbox.exists()
            && outbox_readings(&outbox).0 > 0),
        "the logger writes the outbox"
    );
    disk.fill();
    std::thread::sleep(Duration::from_secs(4));
    let during = outbox_readings(&outbox).0;
    disk.free();
    let run = logger.finish();
    assert_eq!(run.code, 0, "nothing was lost: {run:#?}");
    assert!(
        run.stderr.contains("outbox cannot be written")
            && run.stderr.contains("outbox writable again"),
        "{}",
        run.stderr
    );
    let (after, gapless) = outbox_readings(&outbox);
    // Two readings a second for about 12 s; the outbox took none while
    // the disk was full and all of them afterwards.
    assert!(
        gapless && after >= 20 && after >= during + 8,
        "{during} readings while full, {after} at the end, gapless {gapless}: {}",
        run.stderr
    );
}

/// A configuration of one bus, "heat", on `simulator`, reading E1 of
/// meter 1 every second, with the terminal off.
fn heat_bus_config(workdir: &Workdir, simulator: &Simulator) -> std::path::PathBuf {
    workdir.config(&[
        "[sinks]\nterminal = \"off\"\n\n",
        &simulator.bus("heat"),
        "[[bus.request]]\ndescription = \"Main\"\naddresses = 1\npolling = \"1s\"\nitems = [\"E1\"]\n",
    ])
}

#[test]
fn a_second_logger_on_the_same_configuration_is_refused_at_once_naming_the_first() {
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let config = heat_bus_config(&workdir, &simulator);
    let config = config.to_str().unwrap();
    let first = Logger::start(&workdir, &["run", config, "--api", "off", "--for", "20s"]);
    let lock = workdir.path().join("kmplog-outbox.db.lock");
    assert!(
        wait_for(Duration::from_secs(20), || std::fs::read_to_string(&lock)
            .is_ok_and(|text| text.contains("pid"))),
        "the first logger names itself in the lock file"
    );
    let started = Instant::now();
    let second = workdir.run(&["run", config, "--api", "off", "--for", "20s"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once, not after {:?}",
        started.elapsed()
    );
    assert_ne!(second.code, 0, "{second:#?}");
    assert!(
        second
            .stderr
            .contains(&format!("in use by another kmplog (pid {}", first.pid())),
        "{}",
        second.stderr
    );
}

#[test]
fn a_serial_line_takes_one_master_and_any_number_of_listeners_and_refuses_a_one_shot_read() {
    let simulator = Simulator::pty(&["--meter", "1"]);
    let request = |send: bool| {
        let schedule = if send {
            "polling = \"1s\""
        } else {
            "send = false"
        };
        format!(
            "[[bus.request]]\ndescription = \"Main\"\naddresses = 1\nitems = [\"E1\"]\n{schedule}\n"
        )
    };
    let site = |name: &str, send: bool| {
        let workdir = Workdir::new();
        let config = workdir.config(&[
            "[sinks]\nterminal = \"off\"\n\n",
            &simulator.bus(name),
            &request(send),
        ]);
        (workdir, config)
    };
    let (first_dir, first_config) = site("master", true);
    let first = Logger::start(
        &first_dir,
        &[
            "run",
            first_config.to_str().unwrap(),
            "--api",
            "off",
            "--for",
            "20s",
        ],
    );
    assert!(
        wait_for(Duration::from_secs(20), || first_dir
            .path()
            .join("kmplog.db")
            .exists()
            && !first_dir.db_rows().is_empty()),
        "the first master reads its meter"
    );
    let (second_dir, second_config) = site("intruder", true);
    let started = Instant::now();
    let second = second_dir.run(&[
        "run",
        second_config.to_str().unwrap(),
        "--api",
        "off",
        "--for",
        "20s",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );
    assert_ne!(second.code, 0, "{second:#?}");
    assert!(
        second.stderr.contains("is held by another master (pid")
            && second.stderr.contains(&format!("pid {}", first.pid())),
        "{}",
        second.stderr
    );
    // A one-shot read is a master too: refused, not let loose on the line.
    let read = simulator.run("read", &["--address", "1", "--register", "E1"]);
    assert_eq!(read.code, 1, "{read:#?}");
    assert!(
        read.stderr
            .contains(&format!("is held by another master (pid {}", first.pid())),
        "{}",
        read.stderr
    );
    let (listener_dir, listener_config) = site("listener", false);
    let listener = listener_dir.run(&[
        "run",
        listener_config.to_str().unwrap(),
        "--api",
        "off",
        "--for",
        "4s",
    ]);
    assert_eq!(
        listener.code, 0,
        "a listener shares the line: {listener:#?}"
    );
    // Both read one pty here, so each byte reaches only one of them; on a
    // real bus each has its own adapter. What matters is that it opened.
    assert!(
        !listener.stderr.contains("cannot open") && !listener.stderr.contains("held by"),
        "the listener opened the port: {}",
        listener.stderr
    );
}

#[test]
fn damaged_rows_in_the_outbox_hold_up_no_sink_and_are_reported_once() {
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let config = heat_bus_config(&workdir, &simulator);
    // An outbox left by an earlier run, its sink at the start, its first 500
    // rows damaged on disk.
    let outbox = rusqlite::Connection::open(workdir.path().join("kmplog-outbox.db")).unwrap();
    outbox
        .execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('id', '00000000000000ab');
             CREATE TABLE readings (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL,
                 bus TEXT NOT NULL, address INTEGER NOT NULL, request TEXT NOT NULL,
                 register INTEGER NOT NULL, name TEXT NOT NULL, value TEXT, unit_code INTEGER,
                 status TEXT NOT NULL);
             CREATE TABLE cursors (sink TEXT PRIMARY KEY, acked INTEGER NOT NULL);
             INSERT INTO cursors VALUES ('sqlite:kmplog.db', 0);",
        )
        .unwrap();
    outbox
        .execute_batch(
            "WITH RECURSIVE n(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM n WHERE seq < 503)
             INSERT INTO readings (ts, bus, address, request, register, name, value, unit_code, status)
             SELECT CASE WHEN seq <= 500 THEN 'garbage' ELSE '2026-11-30T12:00:00Z' END,
                    'before', 1, 'Main', 60, 'E1', '1.5', 8, 'ok'
             FROM n",
        )
        .unwrap();
    drop(outbox);
    let run = workdir.run(&[
        "run",
        config.to_str().unwrap(),
        "--api",
        "off",
        "--for",
        "3s",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    let rows = workdir.db_rows();
    assert_eq!(
        rows.iter().filter(|row| row.bus == "before").count(),
        3,
        "the readings after the damaged ones are delivered"
    );
    assert!(
        rows.iter().any(|row| row.bus == "heat"),
        "and what the logger reads itself"
    );
    let reports: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("damaged"))
        .collect();
    assert_eq!(reports.len(), 1, "{}", run.stderr);
    assert!(
        reports[0].contains("first=1 last=500 count=500"),
        "{}",
        reports[0]
    );
}
