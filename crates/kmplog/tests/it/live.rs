//! The live table in a real terminal: `kmplog demo` inside tmux at 80x24
//! and at 160x45, read back with `tmux capture-pane`. tmux is needed
//! (`apt-get install tmux`; `.ci/run` installs it): with `CI=true` a
//! missing tmux fails the test, elsewhere the test is skipped, loudly.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use unicode_width::UnicodeWidthStr;

use crate::harness::{Workdir, kmplog};

/// A tmux server of its own with one pane, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `command` through the shell in a `columns` x `rows` pane, in
    /// `directory`.
    fn start(columns: u16, rows: u16, directory: &Workdir, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("kmplog-test-{}-{columns}x{rows}", std::process::id()),
        };
        let started = tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            &columns.to_string(),
            "-y",
            &rows.to_string(),
            "-c",
            directory.path().to_str().expect("UTF-8 path"),
            command,
        ]);
        assert!(started.status.success(), "tmux new-session: {started:?}");
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// The pane's lines as shown, wrapped lines joined (`-J`), so that a
    /// line wider than the pane shows as one; with `history`, from the
    /// start of the scrollback.
    fn capture(&self, history: bool) -> Vec<String> {
        let mut args = vec!["capture-pane", "-p", "-J"];
        if history {
            args.extend(["-S", "-"]);
        }
        let output = self.run(&args);
        assert!(output.status.success(), "tmux capture-pane: {output:?}");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        while lines.last().is_some_and(|line| line.trim().is_empty()) {
            lines.pop();
        }
        lines
    }

    /// Whether the pane shows the alternate screen.
    fn alternate_on(&self) -> bool {
        let output = self.run(&["display-message", "-p", "#{alternate_on}"]);
        String::from_utf8_lossy(&output.stdout).trim() == "1"
    }

    /// Waits until `done` holds for the captured lines, or fails with them.
    fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Tmux, &[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let lines = self.capture(false);
            if done(self, &lines) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{what} within {limit:?}; the pane shows:\n{}",
                lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Whether tmux is there; with `CI=true` a missing one fails the test.
fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return true;
    }
    let message = "tmux is not installed: the live table is tested in it (apt-get install tmux)";
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{message}");
    }
    eprintln!("\n!!!!! SKIPPED: {message} !!!!!\n");
    false
}

/// The demo's requests, by bus, as `examples/demo.toml` lists them.
const REQUESTS: [(&str, &[&str]); 2] = [
    (
        "boiler-room",
        &[
            "Heat meters, live values",
            "Counters, every 15 seconds",
            "After the live values: info codes",
            "Hot flow: read meter 1 again",
        ],
    ),
    (
        "substation",
        &[
            "At start-up: hour counter",
            "Electricity",
            "Substation heat, at a time of day",
        ],
    ),
];

/// How the demo ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Its `--for` runs out.
    RunsOut,
    /// Ctrl-C in the terminal.
    CtrlC,
}

/// `kmplog demo` in a terminal of `columns` x `rows`: the table is on the
/// alternate screen and fits it, with every bus and request, and what is
/// written to stderr meanwhile (the API's address) at its foot; once it
/// ends the shell's screen is back, without a table in it or its
/// scrollback, with the stderr lines, and what follows starts on a line of
/// its own.
fn the_demo_fits(columns: u16, rows: u16, end: End) {
    if !tmux_available() {
        return;
    }
    let workdir = Workdir::new();
    let duration = match end {
        End::RunsOut => "--for 6s",
        End::CtrlC => "",
    };
    let command = format!(
        "'{}' demo {duration} --api 127.0.0.1:0; echo \"kmplog exited $?\"; sleep 600",
        kmplog().display()
    );
    let tmux = Tmux::start(columns, rows, &workdir, &command);
    let api_line = |line: &String| line.contains(" API on http://127.0.0.1:");
    // Readings have come when the table shows some or counts them (at 24
    // rows, under the queue and the API's line, none fits).
    let lines = tmux.wait_for(
        "the live table with readings and the API's line on the alternate screen",
        Duration::from_secs(20),
        |tmux, lines| {
            tmux.alternate_on()
                && lines.iter().any(api_line)
                && lines.iter().any(|line| {
                    line.contains("┆ Address ┆")
                        || line.ends_with(" more readings (a taller terminal shows them)")
                })
        },
    );
    let screen = lines.join("\n");
    assert!(
        lines.len() <= usize::from(rows),
        "{} lines in {rows} rows:\n{screen}",
        lines.len()
    );
    for line in &lines {
        assert!(
            line.width() <= usize::from(columns),
            "a line of {} columns in {columns}: {line:?}\n{screen}",
            line.width()
        );
    }
    assert!(lines[0].starts_with("kmplog — "), "{screen}");
    for (bus, requests) in REQUESTS {
        let of_bus: Vec<&String> = lines
            .iter()
            .filter(|line| line.starts_with(&format!("│ {bus} ")))
            .collect();
        for (index, request) in requests.iter().enumerate() {
            let position = format!("┆ {} ┆ ", index + 1);
            let row = of_bus
                .iter()
                .find(|line| line.contains(&position))
                .unwrap_or_else(|| panic!("{bus}: no row for request {}:\n{screen}", index + 1));
            // At 80 columns the descriptions are cut; wider, they fit.
            if columns >= 160 {
                assert!(row.contains(request), "{request} missing:\n{screen}");
            }
        }
    }

    if end == End::CtrlC {
        let sent = tmux.run(&["send-keys", "C-c"]);
        assert!(sent.status.success(), "tmux send-keys: {sent:?}");
    }
    let after = tmux.wait_for(
        "kmplog exits and the shell's screen is back",
        Duration::from_secs(30),
        |_, lines| lines.iter().any(|line| line.starts_with("kmplog exited ")),
    );
    assert!(!tmux.alternate_on(), "the alternate screen is left");
    assert!(
        after.iter().any(|line| line == "kmplog exited 0"),
        "the output ends with a newline and the demo succeeds:\n{}",
        after.join("\n")
    );
    let api_at = after.iter().position(api_line);
    let exit_at = after.iter().position(|line| line == "kmplog exited 0");
    assert!(
        api_at.is_some() && api_at < exit_at,
        "what went to stderr is on the shell's screen once the table leaves:\n{}",
        after.join("\n")
    );
    let history = tmux.capture(true);
    assert!(
        !history.iter().any(|line| line.contains('┆')),
        "no table on the shell's screen or in its scrollback:\n{}",
        history.join("\n")
    );
}

#[test]
fn the_live_table_fits_an_80x24_terminal() {
    the_demo_fits(80, 24, End::RunsOut);
}

#[test]
fn the_live_table_fits_a_160x45_terminal_and_ctrl_c_restores_the_screen() {
    the_demo_fits(160, 45, End::CtrlC);
}
