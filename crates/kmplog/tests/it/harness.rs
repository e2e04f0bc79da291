//! Starting the simulator and running the binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
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

    /// Starts a simulator on UDP port 0 with `extra` options.
    pub fn udp(extra: &[&str]) -> Simulator {
        Self::start(&["--udp", "127.0.0.1:0"], extra)
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
            Some(("udp", address)) => vec!["--udp".to_owned(), address.to_owned()],
            _ => panic!("unexpected first line from the simulator: {first:?}"),
        };
        Simulator { child, line_args }
    }

    /// The `[[bus]]` table of a configuration whose bus, named `name`, is
    /// this simulator's line.
    pub fn bus(&self, name: &str) -> String {
        let key = self.line_args[0].trim_start_matches("--");
        format!(
            "[[bus]]\nname = \"{name}\"\n{key} = \"{}\"\n",
            self.line_args[1]
        )
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

impl Simulator {
    /// Starts a simulator listening on exactly `address` (a port reserved
    /// with [`free_port`]), to stop and start again on the same port.
    pub fn tcp_on(address: &str, extra: &[&str]) -> Simulator {
        Self::start(&["--tcp", address], extra)
    }
}

/// A loopback port that was free a moment ago, for a listener that must
/// come back on the same port. It is taken below the kernel's ephemeral
/// range (32768 and up on Linux), so that while the listener is down no
/// outgoing connection of another test can be given it as its own port.
pub fn free_port() -> u16 {
    (0..1000)
        .map(|_| fastrand::u16(20_000..32_000))
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free loopback port between 20000 and 32000")
}

/// A temporary working directory for one logger: its configuration, its
/// `kmplog.db` and its files, removed when dropped.
pub struct Workdir {
    directory: tempfile::TempDir,
}

/// One row of the SQLite table `readings`, or the same fields of a JSON
/// line, to compare the two.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub ts: String,
    pub bus: String,
    pub address: u64,
    pub request: String,
    pub register: u64,
    pub name: String,
    pub value: Option<String>,
    pub unit: Option<String>,
    pub status: String,
}

impl Row {
    /// The row of one JSON line of the logger's output.
    pub fn of_json(line: &serde_json::Value) -> Row {
        let text = |key: &str| {
            line[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} is not a string in {line}"))
                .to_owned()
        };
        let number = |key: &str| {
            line[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key} is not a number in {line}"))
        };
        Row {
            ts: text("ts"),
            bus: text("bus"),
            address: number("address"),
            request: text("request"),
            register: number("register"),
            name: text("name"),
            value: line["value"].as_str().map(str::to_owned),
            unit: line["unit"].as_str().map(str::to_owned),
            status: text("status"),
        }
    }

    /// The time stamp as an instant.
    pub fn time(&self) -> jiff::Timestamp {
        self.ts
            .parse()
            .unwrap_or_else(|error| panic!("ts {:?}: {error}", self.ts))
    }
}

impl Workdir {
    /// A new empty directory.
    pub fn new() -> Workdir {
        Workdir {
            directory: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.directory.path()
    }

    /// Writes `text` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write a file in the work directory");
        path
    }

    /// Writes `kmplog.toml` from `parts` (a bus table, its requests) and
    /// returns its path.
    pub fn config(&self, parts: &[&str]) -> PathBuf {
        self.write("kmplog.toml", &parts.concat())
    }

    /// Runs the binary with `args` in this directory.
    pub fn run(&self, args: &[&str]) -> Run {
        collect(
            Command::new(kmplog())
                .args(args)
                .current_dir(self.path())
                .output()
                .expect("run kmplog"),
        )
    }

    /// Runs the binary with `args` in this directory, `input` on its stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = Command::new(kmplog())
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kmplog");
        let mut stdin = child.stdin.take().expect("kmplog stdin");
        std::io::Write::write_all(&mut stdin, input).expect("write kmplog's stdin");
        // Closing stdin is the end of the input.
        drop(stdin);
        collect(child.wait_with_output().expect("run kmplog"))
    }

    /// Every row of the table `readings` of `kmplog.db`, in insertion order.
    pub fn db_rows(&self) -> Vec<Row> {
        let connection =
            rusqlite::Connection::open(self.path().join("kmplog.db")).expect("open kmplog.db");
        let mut statement = connection
            .prepare(
                "SELECT ts, bus, address, request, register, name, value, unit, status
                 FROM readings ORDER BY id",
            )
            .expect("query readings");
        statement
            .query_map([], |row| {
                Ok(Row {
                    ts: row.get(0)?,
                    bus: row.get(1)?,
                    address: row.get::<_, u32>(2)?.into(),
                    request: row.get(3)?,
                    register: row.get::<_, u32>(4)?.into(),
                    name: row.get(5)?,
                    value: row.get(6)?,
                    unit: row.get(7)?,
                    status: row.get(8)?,
                })
            })
            .expect("query readings")
            .collect::<Result<_, _>>()
            .expect("read the rows")
    }
}

/// A running `kmplog run` (or `demo`) in a work directory, with its output
/// collected as it comes; killed when dropped unfinished.
pub struct Logger {
    child: Child,
    /// The API's address, `127.0.0.1:PORT`, when it listens.
    pub api: Option<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Logger {
    /// `kmplog run CONFIG --api 127.0.0.1:0 --json --for DURATION` in
    /// `workdir`; returns once the API listens (its stderr line says where).
    pub fn run(workdir: &Workdir, config: &Path, duration: &str) -> Logger {
        let config = config.to_str().expect("UTF-8 path");
        Self::start(
            workdir,
            &[
                "run",
                config,
                "--api",
                "127.0.0.1:0",
                "--json",
                "--for",
                duration,
            ],
        )
    }

    /// Starts the binary with `args` in `workdir`. When `args` give
    /// `--api 127.0.0.1:0`, waits for the line that names the bound address.
    pub fn start(workdir: &Workdir, args: &[&str]) -> Logger {
        let mut child = Command::new(kmplog())
            .args(args)
            .current_dir(workdir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kmplog");
        let stdout = child.stdout.take().expect("logger stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut text);
            text
        });
        let stderr = child.stderr.take().expect("logger stderr");
        let (api_sender, api_receiver) = std::sync::mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // `... INFO API on http://127.0.0.1:PORT address=...`
                if let Some((_, rest)) = line.split_once("API on http://") {
                    let address = rest.split_whitespace().next().unwrap_or(rest);
                    let _ = api_sender.send(address.to_owned());
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let wants_api = args.windows(2).any(|pair| pair == ["--api", "127.0.0.1:0"]);
        // Readiness is the API's own line; the long limit only turns a
        // logger that never gets there into a failure instead of a hang.
        let api = wants_api.then(|| {
            api_receiver
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("the logger names its API address on stderr")
        });
        Logger {
            child,
            api,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// The API's address; panics when it does not listen.
    pub fn api(&self) -> &str {
        self.api.as_deref().expect("the logger's API address")
    }

    /// The process id, to send it signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the logger exits and returns its output.
    pub fn finish(mut self) -> Run {
        let status = self.child.wait().expect("wait for the logger");
        let stdout = self
            .stdout
            .take()
            .map(|thread| thread.join().expect("stdout reader"));
        let stderr = self
            .stderr
            .take()
            .map(|thread| thread.join().expect("stderr reader"));
        Run {
            code: status.code().unwrap_or(-1),
            stdout: stdout.unwrap_or_default(),
            stderr: stderr.unwrap_or_default(),
        }
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        if self.stdout.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Sends one HTTP request with `headers` and returns status and body.
pub fn http(address: &str, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the API");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head
        .lines()
        .any(|line| line.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        unchunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// A chunked body's content: each chunk is `SIZE (hex) CRLF DATA CRLF`.
fn unchunk(mut body: &str) -> String {
    let mut content = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16)
            .unwrap_or_else(|_| panic!("a chunk size in {body:?}"));
        if size == 0 {
            break;
        }
        content.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    content
}
