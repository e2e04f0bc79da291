//! Starting the simulator and running the binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

/// A running `kmplog simulate`, killed when dropped.
pub struct Simulator {
    child: Child,
    /// `--tcp HOST:PORT` or `--serial PATH` for the logger side.
    pub line_args: Vec<String>,
}

impl Simulator {
    /// Starts a simulator on TCP port 0 with `extra` options.
    pub fn tcp(extra: &[&str]) -> Simulator {
        Self::start(&["--tcp", "127.0.0.1:0"], extra)
    }

    /// Starts a simulator on a new pseudo-terminal with `extra` options.
    pub fn pty(extra: &[&str]) -> Simulator {
        Self::start(&["--pty"], extra)
    }

    fn start(listen: &[&str], extra: &[&str]) -> Simulator {
        let mut child = Command::new(kmplog())
            .arg("simulate")
            .args(listen)
            .args(extra)
            .arg("--quiet")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kmplog simulate");
        let stdout = child.stdout.take().expect("simulator stdout");
        // The simulator prints its listener before it accepts: reading that
        // line is the readiness signal, no sleeping needed.
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read simulator stdout");
        let line_args = match first.trim().split_once(' ') {
            Some(("tcp", address)) => vec!["--tcp".to_owned(), address.to_owned()],
            Some(("pty", path)) => vec!["--serial".to_owned(), path.to_owned()],
            _ => panic!("unexpected first line from the simulator: {first:?}"),
        };
        Simulator { child, line_args }
    }

    /// Runs `kmplog COMMAND <line args> ARGS` against this simulator.
    pub fn run(&self, command: &str, args: &[&str]) -> Run {
        run_kmplog(
            &[
                &[command],
                &self
                    .line_args
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()[..],
                args,
            ]
            .concat(),
        )
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of the binary under test.
pub fn kmplog() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_kmplog"))
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON lines.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("not JSON: {line:?}: {error}"))
            })
            .collect()
    }

    /// Asserts success and returns self.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }
}

/// Runs the binary with `args` and collects its output.
pub fn run_kmplog(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(kmplog())
        .args(args)
        .output()
        .expect("run kmplog");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}
