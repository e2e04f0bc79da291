//! `kmplog check` and `kmplog queue` on real files: the example, a file with
//! several mistakes, and each queue edit, through the binary.

use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::run_kmplog;

/// The sample configuration at the top of the repository.
fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kmplog.toml")
}

/// A copy of the example in a fresh directory, to edit.
fn copy_of_example() -> (tempfile::TempDir, PathBuf) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("kmplog.toml");
    fs::copy(example(), &path).expect("copy the example");
    (directory, path)
}

fn text(path: &Path) -> String {
    fs::read_to_string(path).expect("read the file")
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn check_accepts_the_example() {
    let path = example();
    let run = run_kmplog(&["check", arg(&path)]).ok();
    assert!(
        run.stdout.ends_with(": OK (2 buses, 4 requests)\n"),
        "{run:#?}"
    );
    assert_eq!(run.stderr, "");
}

/// A working file needs only a coordinator to run in a cluster: the
/// default lease has room for the default timeouts.
#[test]
fn check_accepts_the_example_with_only_a_coordinator_added() {
    let (_directory, path) = copy_of_example();
    let clustered = format!(
        "{}\n[cluster]\ncoordinator = \"postgres://kmplog@db.example.net/meters\"\n",
        text(&path)
    );
    fs::write(&path, clustered).expect("write");
    let run = run_kmplog(&["check", arg(&path)]).ok();
    assert!(
        run.stdout.ends_with(": OK (2 buses, 4 requests)\n"),
        "{run:#?}"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn check_lists_every_mistake_with_its_place() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("bad.toml");
    fs::write(
        &path,
        "time_zone = \"Mars/Olympus\"\n[[bus]]\nname = \"b\"\ntcp = \"h:1\"\nbaud = 9600\n[[bus.request]]\ndescription = \"r\"\naddresses = \"0\"\nitems = [\"E1\", 0]\npolling = \"fast\"\n",
    )
    .expect("write");
    let run = run_kmplog(&["check", arg(&path)]);
    assert_eq!(run.code, 1, "{run:#?}");
    for place in ["1:13", "5:1", "8:14", "9:16", "10:11"] {
        assert!(
            run.stderr.contains(&format!("bad.toml:{place}")),
            "{place} missing: {run:#?}"
        );
    }
    assert!(run.stderr.contains("bad.toml: 5 mistakes"), "{run:#?}");
}

#[test]
fn check_shows_warnings_but_passes() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("budget.toml");
    fs::write(
        &path,
        "[[bus]]\nname = \"b\"\ntcp = \"h:1\"\n[[bus.request]]\ndescription = \"r\"\naddresses = 1\nitems = [\"E1\"]\npolling = \"30s\"\nreads_per_day = 96\n",
    )
    .expect("write");
    let run = run_kmplog(&["check", arg(&path)]).ok();
    assert!(run.stdout.contains("OK (1 bus, 1 request)"), "{run:#?}");
    assert!(
        run.stderr
            .contains("warning: polling every 30s reads each meter 2880 times a day"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("budget.toml:8:11"), "{run:#?}");
}

#[test]
fn queue_list_shows_each_request() {
    let path = example();
    let run = run_kmplog(&["queue", "list", arg(&path), "--bus", "boiler-room"]).ok();
    for expected in [
        "Main values",
        "polling 30s",
        "1;2;17",
        "E1, V1, T1, HOURS, CUSTOM1",
        "Daily readout",
        "at 00:00:05",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} missing: {run:#?}"
        );
    }
    assert!(!run.stdout.contains("gateway-1"), "{run:#?}");
}

#[test]
fn queue_edits_keep_the_rest_of_the_file() {
    let (_directory, path) = copy_of_example();
    let original = text(&path);
    let file = arg(&path).to_owned();

    run_kmplog(&[
        "queue",
        "add",
        &file,
        "--bus",
        "gateway-1",
        "--description",
        "Power",
        "--addresses",
        "10",
        "--items",
        "POWERIN,1",
        "--polling",
        "1min",
    ])
    .ok();
    let added = text(&path);
    assert!(
        added.starts_with(&original),
        "the example must be kept whole:\n{added}"
    );
    assert_eq!(
        &added[original.len()..],
        "\n[[bus.request]]\ndescription = \"Power\"\naddresses = \"10\"\nitems = [\"POWERIN\", 1]\npolling = \"1min\"\n"
    );

    run_kmplog(&[
        "queue",
        "rename",
        &file,
        "--bus",
        "gateway-1",
        "2",
        "Power now",
    ])
    .ok();
    assert_eq!(text(&path), added.replace("\"Power\"", "\"Power now\""));

    run_kmplog(&["queue", "up", &file, "--bus", "gateway-1", "Power now"]).ok();
    let list = run_kmplog(&["queue", "list", &file, "--bus", "gateway-1"]).ok();
    let power = list.stdout.find("Power now").expect("listed");
    let hourly = list.stdout.find("Electricity, hourly").expect("listed");
    assert!(power < hourly, "{list:#?}");

    run_kmplog(&["queue", "down", &file, "--bus", "gateway-1", "1"]).ok();
    run_kmplog(&["queue", "remove", &file, "--bus", "gateway-1", "Power now"]).ok();
    assert_eq!(text(&path), original);
}

#[test]
fn queue_refuses_bad_edits_and_leaves_the_file() {
    let (_directory, path) = copy_of_example();
    let original = text(&path);
    let file = arg(&path).to_owned();
    let invalid = run_kmplog(&[
        "queue",
        "add",
        &file,
        "--bus",
        "boiler-room",
        "--description",
        "X",
        "--addresses",
        "0",
        "--items",
        "E1",
        "--once",
    ]);
    assert_eq!(invalid.code, 1, "{invalid:#?}");
    assert!(
        invalid.stderr.contains("address 0 is out of range"),
        "{invalid:#?}"
    );
    let unknown = run_kmplog(&["queue", "remove", &file, "--bus", "boiler-room", "Nope"]);
    assert_eq!(unknown.code, 2, "{unknown:#?}");
    assert!(unknown.stderr.contains("no request 'Nope' on bus 'boiler-room'; requests: 1 'Main values', 2 'Daily readout', 3 'After the main values'"), "{unknown:#?}");
    let edge = run_kmplog(&["queue", "up", &file, "--bus", "boiler-room", "1"]);
    assert!(
        edge.stderr
            .contains("request 1 'Main values' is already first on bus 'boiler-room'"),
        "{edge:#?}"
    );
    assert_eq!(text(&path), original);
}
