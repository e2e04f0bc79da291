//! The command line as a user meets it: every example of every `--help` run
//! through the binary, a closed stdout, exit statuses, messages, the
//! version, completions, the manual page and the systemd notifications.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kmp::{RegisterValue, Request, Response, Unit};

use crate::harness::{Logger, Run, Simulator, Workdir, kmplog, run_kmplog};

/// The widest an example line may be: it must not wrap on an 80-column
/// terminal, where clap would break it in the middle of the command.
const EXAMPLE_WIDTH: usize = 80;

/// A queue for the bus `boiler-room` that the examples of `queue`, `run`
/// and `trigger` work on: two requests, one waiting for `morning-read`.
const QUEUE: &str = r#"
[[bus.request]]
description = "Main values"
addresses = "1;2"
items = ["E1", "V1"]
polling = "1s"

[[bus.request]]
description = "Morning read"
addresses = "1;2"
items = ["E1"]
event = "morning-read"
"#;

/// The path of every command and subcommand, the top level first.
fn command_paths(command: &clap::Command, path: &[String], paths: &mut Vec<Vec<String>>) {
    paths.push(path.to_vec());
    for sub in command.get_subcommands() {
        if sub.get_name() != "help" {
            let mut deeper = path.to_vec();
            deeper.push(sub.get_name().to_owned());
            command_paths(sub, &deeper, paths);
        }
    }
}

/// The example lines of a help text: the indented lines after `Example:` or
/// `Examples:`, with a line that ends in `\` joined to the next.
fn examples(help: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut within = false;
    let mut pending = String::new();
    for line in help.lines() {
        if line == "Example:" || line == "Examples:" {
            within = true;
            continue;
        }
        let Some(text) = line.strip_prefix("  ").filter(|_| within) else {
            within = false;
            continue;
        };
        match text.trim().strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => found.push(std::mem::take(&mut pending) + text.trim()),
        }
    }
    found
}

/// The lines of `help` too wide for an 80-column terminal: clap would
/// break them, and an example then in the middle of the command.
fn too_wide(help: &str) -> Vec<&str> {
    help.lines()
        .filter(|line| {
            line.chars().count() > EXAMPLE_WIDTH && line.trim_start().starts_with("kmplog ")
        })
        .collect()
}

/// What an example needs from the machine, and what the test started instead.
struct Stand {
    /// `HOST:PORT` of a simulated gateway with meters 1, 2, 17 and 63.
    gateway: String,
    /// A pseudo-terminal with simulated meters 1, 2 and 17.
    serial: String,
    /// `HOST:PORT` of a running logger's API.
    api: String,
}

impl Stand {
    /// `line` with the addresses, ports and files of the help replaced by
    /// the test's, and commands that run until stopped bounded.
    fn adapt(&self, line: &str) -> String {
        let examples_file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kmplog.toml");
        let mut line = line
            .replace("127.0.0.1:7063", &self.gateway)
            .replace("/dev/ttyUSB0", &self.serial)
            .replace("127.0.0.1:7064", &self.api)
            .replace("192.168.1.5:7064", &self.api)
            .replace(
                "KMPLOG_API_TOKEN=...",
                "KMPLOG_API_TOKEN=an-example-token-of-some-length",
            )
            .replace("examples/kmplog.toml", &examples_file.display().to_string());
        if line.contains("kmplog run ") || line.contains("kmplog demo") {
            line = without_option(&line, "--for")
                .replace("kmplog run ", "kmplog run --for 2s --api off ")
                .replace("kmplog demo", "kmplog demo --for 2s --api off");
        }
        if line.contains("kmplog simulate")
            && !["--tcp", "--udp", "--pty"]
                .iter()
                .any(|listener| line.contains(listener))
        {
            line.push_str(" --tcp 127.0.0.1:0");
        }
        line
    }
}

/// `line` without `option` and its value.
fn without_option(line: &str, option: &str) -> String {
    let mut words = Vec::new();
    let mut skip = false;
    for word in line.split(' ') {
        if std::mem::take(&mut skip) {
            continue;
        }
        if word == option {
            skip = true;
        } else {
            words.push(word);
        }
    }
    words.join(" ")
}

/// Waits for `child`, the leader of its own process group, for at most
/// `limit`, reading its output meanwhile; a child still running then is
/// killed and its status is `None`. Whatever it left behind in its group
/// (a command sent to the background) is killed too.
fn wait_at_most(mut child: Child, limit: Duration) -> (Option<ExitStatus>, String, String) {
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let join = |thread: std::thread::JoinHandle<String>| thread.join().unwrap_or_default();
    (status, join(stdout), join(stderr))
}

/// A short capture of a line, for the examples of `sniff`: a request and
/// the meter's reply.
fn capture() -> Vec<u8> {
    let mut bytes = Request::get_register(&[60])
        .expect("a register list")
        .to_frame(63)
        .encode();
    let reply = Response::Registers(vec![RegisterValue {
        register: 60,
        unit: Unit(0x08),
        value: "12345.678".parse().expect("a decimal"),
    }]);
    bytes.extend(reply.to_frame(63).encode());
    bytes
}

/// Runs one example in `workdir` with the binary first on the PATH. A
/// command that runs until stopped (a simulator, sniffing a live line)
/// passes when it is still running after a moment; any other must succeed.
fn run_example(example: &str, stand: &Stand, workdir: &Path) -> Result<(), String> {
    let (line, in_background) = match example.trim().strip_suffix('&') {
        Some(head) => (stand.adapt(head.trim()), true),
        None => (stand.adapt(example.trim()), false),
    };
    let until_stopped = in_background
        || line.contains("kmplog simulate")
        || (line.contains("kmplog sniff") && line.contains("--serial"));
    let bin = kmplog();
    let path = format!(
        "{}:{}",
        bin.parent().expect("the binary's directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = if until_stopped {
        format!("exec {line}")
    } else {
        line.to_owned()
    };
    let child = Command::new("bash")
        .args(["-c", &script])
        .current_dir(workdir)
        .process_group(0)
        .env("PATH", path)
        .env("HOME", workdir)
        .env_remove("KMPLOG_API_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot start bash: {error}"))?;
    let limit = if until_stopped {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(60)
    };
    match wait_at_most(child, limit) {
        (None, _, _) if until_stopped => Ok(()),
        (Some(status), _, _) if status.success() => Ok(()),
        (status, stdout, stderr) => Err(format!(
            "`{line}`: {}\nstdout: {stdout}\nstderr: {stderr}",
            status.map_or_else(
                || "still running after a minute".to_owned(),
                |status| status.to_string()
            )
        )),
    }
}

/// Every example of every help runs as written, against simulated meters
/// and a logger that this test starts in place of the addresses the help
/// names; runs and demos get a short `--for`.
#[test]
fn every_example_in_every_help_runs() {
    let gateway = Simulator::tcp(&[
        "--meter", "1", "--meter", "2", "--meter", "17:403", "--meter", "63",
    ]);
    let serial = Simulator::pty(&["--meter", "1", "--meter", "2", "--meter", "17:403"]);
    let logger_dir = Workdir::new();
    let config = logger_dir.config(&[&gateway.bus("boiler-room"), QUEUE]);
    let config = config.to_str().expect("UTF-8 path").to_owned();
    let logger = Logger::start(
        &logger_dir,
        &[
            "run",
            &config,
            "--api",
            "127.0.0.1:0",
            "--for",
            "5min",
            "--json",
        ],
    );
    let stand = Stand {
        gateway: gateway.line_args[1].clone(),
        serial: serial.line_args[1].clone(),
        api: logger.api().to_owned(),
    };
    let mut paths = Vec::new();
    command_paths(&kmplog::cli::command(), &[], &mut paths);
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in &paths {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let help = run_kmplog(&[&path[..], &["--help"]].concat()).ok().stdout;
        let examples = examples(&help);
        let command = ["kmplog"]
            .iter()
            .chain(&path)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        if path.len() == 1 {
            assert!(
                !examples.is_empty(),
                "`{command} --help` shows no example:\n{help}"
            );
        }
        let workdir = Workdir::new();
        workdir.config(&[&gateway.bus("boiler-room"), QUEUE]);
        std::fs::write(workdir.path().join("capture.bin"), capture()).expect("write capture.bin");
        for line in too_wide(&help) {
            failures.push(format!(
                "{command} --help: wider than {EXAMPLE_WIDTH} columns, it wraps: {line}"
            ));
        }
        for example in examples {
            if !(example.contains(&format!("{command} ")) || example.ends_with(&command)) {
                failures.push(format!(
                    "{command} --help: an example of another command: {example}"
                ));
            }
            if let Err(failure) = run_example(&example, &stand, workdir.path()) {
                failures.push(format!("{command} --help: {failure}"));
            }
            ran += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} examples failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(ran >= 30, "only {ran} examples found");
    drop(logger);
}

/// The output a command wrote before its reader went away, and how it ended.
fn with_stdout_closed(args: &[&str]) -> Run {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    // No one will read: every write fails with a broken pipe, as after
    // `| head -1` has read its line.
    drop(reader);
    let output = Command::new(kmplog())
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run kmplog");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let simulator = Simulator::tcp(&["--meter", "63"]);
    let line = simulator.line_args.clone();
    let read = [
        &["read"],
        &[line[0].as_str(), line[1].as_str()][..],
        &["-a", "63", "-r", "E1"],
    ]
    .concat();
    for args in [
        &["registers"][..],
        &["registers", "--json"],
        &["cron", "* * * * * *", "--count", "1000"],
        &["decode", "403F0201234567E9560D"],
        &["completions", "bash"],
        &["man"],
        &read,
    ] {
        let run = with_stdout_closed(args);
        assert_eq!(
            (run.code, run.stderr.as_str()),
            (0, ""),
            "{args:?}: {run:#?}"
        );
    }
}

#[test]
fn read_fails_when_no_register_came_back() {
    // An electricity meter has no flow temperature.
    let simulator = Simulator::tcp(&["--meter", "5:382", "--meter", "63"]);
    let run = simulator.run("read", &["--address", "5", "--register", "T1"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("meter 5 answered, but with none of the registers asked for"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("(not answered)"), "{run:#?}");
    // One register of two is enough: what came back is a reading.
    simulator
        .run(
            "read",
            &[
                "--address",
                "63",
                "--register",
                "T1",
                "--register",
                "0x7FFF",
            ],
        )
        .ok();
}

#[test]
fn type_prints_the_raw_type_code_and_says_where_models_come_from() {
    let simulator = Simulator::tcp(&["--meter", "63:603"]);
    let run = simulator.run("type", &["--address", "63"]).ok();
    assert_eq!(
        run.stdout, "meter 63: type code 0x0603, software revision C1\n",
        "{run:#?}"
    );
    assert!(!run.stdout.contains("not in the catalogue"), "{run:#?}");
    assert!(
        run.stderr
            .contains("kmplog has no table from type codes to models yet")
            && run.stderr.contains("model = \"603\""),
        "{run:#?}"
    );
}

#[test]
fn run_json_prints_readings_even_when_the_file_turns_the_terminal_off() {
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[
        "[sinks]\nterminal = \"off\"\n",
        &simulator.bus("gateway"),
        "[[bus.request]]\ndescription = \"r\"\naddresses = 1\nitems = [\"E1\"]\npolling = \"500ms\"\n",
    ]);
    let config = config.to_str().expect("UTF-8 path");
    let run = workdir
        .run(&["run", config, "--json", "--for", "2s", "--api", "off"])
        .ok();
    let lines = run.json_lines();
    assert!(!lines.is_empty(), "--json printed nothing: {run:#?}");
    assert!(lines.iter().all(|line| line["name"] == "E1"), "{run:#?}");
    // Without --json the file's word holds.
    let quiet = workdir
        .run(&["run", config, "--for", "1s", "--api", "off"])
        .ok();
    assert_eq!(quiet.stdout, "", "{quiet:#?}");
}

#[test]
fn a_missing_configuration_is_one_message() {
    let workdir = Workdir::new();
    for command in ["run", "check"] {
        let run = workdir.run(&[command, "nope.toml"]);
        assert_eq!(run.code, 1, "{run:#?}");
        assert_eq!(
            run.stderr,
            "kmplog: cannot read nope.toml: No such file or directory (os error 2); give the path of a kmplog configuration file, such as examples/kmplog.toml\n",
            "{command}"
        );
    }
    // A file with mistakes: `run` shows them as `check` does.
    let bad = workdir.write("bad.toml", "[[bus]]\nname = \"a b\"\ntcp = \"x\"\n");
    let bad = bad.to_str().expect("UTF-8 path");
    let (run, check) = (workdir.run(&["run", bad]), workdir.run(&["check", bad]));
    assert_eq!((run.code, &run.stderr), (1, &check.stderr), "{run:#?}");
    assert_eq!(run.stderr.matches("kmplog:").count(), 1, "{run:#?}");
}

#[test]
fn check_shows_syntax_and_other_mistakes_at_once() {
    let workdir = Workdir::new();
    let path = workdir.write(
        "kmplog.toml",
        "[[bus]]\nname = \"b\"\ntcp = \"h:1\"\nbaud = 9600\n[[bus.request]]\ndescription = \"r\"\naddresses = \"0\"\nitems = [\"E1\"]\npolling = 30s\n",
    );
    let run = workdir.run(&["check", path.to_str().expect("UTF-8 path")]);
    assert_eq!(run.code, 1, "{run:#?}");
    for (place, what) in [
        ("kmplog.toml:4:1", "`baud` applies to serial buses only"),
        ("kmplog.toml:7:14", "address 0 is out of range"),
        ("kmplog.toml:9:11", "TOML syntax"),
    ] {
        assert!(
            run.stderr.contains(place) && run.stderr.contains(what),
            "{place} {what}: {run:#?}"
        );
    }
    assert!(
        run.stderr.ends_with("kmplog.toml: 3 mistakes\n"),
        "{run:#?}"
    );
}

#[test]
fn run_logs_each_configuration_warning_with_its_place() {
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[
        &simulator.bus("gateway"),
        "[[bus.request]]\ndescription = \"r\"\naddresses = 1\nitems = [\"E1\"]\npolling = \"30s\"\nreads_per_day = 96\n",
    ]);
    let run = workdir
        .run(&[
            "run",
            config.to_str().expect("UTF-8 path"),
            "--for",
            "1s",
            "--api",
            "off",
            "--json",
        ])
        .ok();
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains(" WARN "))
        .collect();
    assert_eq!(warnings.len(), 1, "{run:#?}");
    assert!(
        warnings[0].contains("polling every 30s reads each meter 2880 times a day")
            && warnings[0].contains(&format!("at={}:8:11", config.display())),
        "{run:#?}"
    );
    assert!(
        !run.stderr.contains(" --> "),
        "not as `check` shows it: {run:#?}"
    );
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let run = run_kmplog(&["--version"]).ok();
    let text = run.stdout.trim_end();
    let inner = text
        .strip_prefix(&format!("kmplog {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{text:?}"));
    let (commit, date) = inner.split_once(' ').unwrap_or_else(|| panic!("{text:?}"));
    assert!(date.parse::<jiff::civil::Date>().is_ok(), "{text:?}");
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    match head {
        Some(head) => assert_eq!(commit, head, "{text:?}"),
        None => assert_eq!(commit, "unknown", "{text:?}"),
    }
}

#[test]
fn completions_are_valid_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let run = run_kmplog(&["completions", shell]).ok();
        assert!(
            run.stdout.contains("kmplog") && run.stdout.contains("simulate"),
            "{shell}: {run:#?}"
        );
    }
    let workdir = Workdir::new();
    // Each shell parses its script without running it, where it is installed.
    for (shell, check) in [("bash", "-n"), ("zsh", "-n"), ("fish", "--no-execute")] {
        let script = workdir.write(
            &format!("kmplog.{shell}"),
            &run_kmplog(&["completions", shell]).ok().stdout,
        );
        match Command::new(shell).arg(check).arg(&script).output() {
            Ok(checked) => assert!(
                checked.status.success(),
                "{shell}: {}",
                String::from_utf8_lossy(&checked.stderr)
            ),
            Err(_) if shell != "bash" => {
                eprintln!("SKIPPED: {shell} is not installed, its script is not parsed");
            }
            Err(error) => panic!("bash: {error}"),
        }
    }
    let script = workdir.path().join("kmplog.bash");
    // Loaded, it completes the commands.
    let completed = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(kmplog sim); COMP_CWORD=1; _kmplog kmplog sim kmplog; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("run bash");
    assert_eq!(
        String::from_utf8_lossy(&completed.stdout).trim(),
        "simulate"
    );
}

#[test]
fn the_manual_page_is_roff_that_man_renders() {
    let run = run_kmplog(&["man"]).ok();
    assert!(
        run.stdout.starts_with(".ie \\n(.g .ds Aq") || run.stdout.starts_with(".TH"),
        "{}",
        &run.stdout[..200.min(run.stdout.len())]
    );
    assert!(run.stdout.contains(".TH kmplog 1"), "{}", run.stdout);
    assert!(run.stdout.contains("simulate"), "{}", run.stdout);
    if Command::new("man").arg("--version").output().is_err() {
        eprintln!("SKIPPED: man is not installed, the page is not rendered");
        return;
    }
    let workdir = Workdir::new();
    let page = workdir.write("kmplog.1", &run.stdout);
    let rendered = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(&page)
        .env("MANWIDTH", "80")
        .output()
        .expect("run man");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert!(
        text.contains("kmplog") && text.contains("SUBCOMMANDS"),
        "{text}"
    );
}

/// The notifications a logger sent to a socket standing in for systemd's,
/// collected until `until` arrives or the logger ends.
fn notifications(socket: &UnixDatagram, until: &str, limit: Duration) -> Vec<String> {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + limit;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline
        && !received
            .iter()
            .any(|message: &String| message.contains(until))
    {
        if let Ok(length) = socket.recv(&mut buffer) {
            received.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
    }
    received
}

#[test]
fn run_tells_systemd_it_is_ready_pings_the_watchdog_and_says_it_stops() {
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[
        &simulator.bus("gateway"),
        "[[bus.request]]\ndescription = \"r\"\naddresses = 1\nitems = [\"E1\"]\npolling = \"500ms\"\n",
    ]);
    let socket_path = workdir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let mut child = Command::new(kmplog())
        .args([
            "run",
            config.to_str().expect("UTF-8 path"),
            "--for",
            "3s",
            "--api",
            "127.0.0.1:0",
            "--json",
        ])
        .current_dir(workdir.path())
        .env("NOTIFY_SOCKET", &socket_path)
        // Every 200 ms a ping: half of 400 ms.
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kmplog");
    let ready = notifications(&socket, "READY=1", Duration::from_secs(30));
    assert!(
        ready.last().is_some_and(|message| message == "READY=1\n"),
        "{ready:?}"
    );
    let rest = notifications(&socket, "STOPPING=1", Duration::from_secs(30));
    let pings = rest
        .iter()
        .filter(|message| *message == "WATCHDOG=1\n")
        .count();
    assert!(pings >= 3, "{rest:?}");
    assert_eq!(
        rest.last().map(String::as_str),
        Some("STOPPING=1\n"),
        "{rest:?}"
    );
    assert!(child.wait().expect("wait").success());
}
