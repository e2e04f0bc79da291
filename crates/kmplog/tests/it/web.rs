//! The web console in real headless Chromium, driven through chromedriver
//! (fantoccini), against `kmplog run` on the simulator: the overview lists
//! the buses and requests, a value changes without a reload, clicking `T1`
//! shows a plot; every control has an accessible name, and the page fits
//! a 375 px phone. The queue editor changes the running logger's queue
//! (its readings reach SQLite, the file keeps its comments), shows a
//! mistake at its field and saves nothing then; a change from another
//! origin is refused; with a token the page asks for it once.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`, or the paths in `CHROMIUM` and `CHROMEDRIVER`).
//! Without them the test is skipped with a message; with `CI=true` it
//! fails. The screenshots go to `KMPLOG_SCREENSHOTS` (a folder; the README's
//! are made with `KMPLOG_SCREENSHOTS=docs/screenshots`), otherwise to the
//! test's temporary folder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::harness::{Logger, Simulator, Workdir, free_port, http};

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser and its driver, or `None` (with a message) when they are
/// not installed and this is not CI.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let find = |variable: &str, default: &str| {
        std::env::var_os(variable)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default))
    };
    let chromium = find("CHROMIUM", "/usr/bin/chromium");
    let chromedriver = find("CHROMEDRIVER", "/usr/bin/chromedriver");
    if chromium.exists() && chromedriver.exists() {
        return Some((chromium, chromedriver));
    }
    let message = format!(
        "the web console tests need {} and {}: apt-get install chromium chromium-driver",
        chromium.display(),
        chromedriver.display()
    );
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// Starts chromedriver and waits for its line saying it listens.
fn start_driver(chromedriver: &Path) -> Driver {
    let port = free_port();
    let mut child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start chromedriver");
    let stdout = child.stdout.take().expect("chromedriver stdout");
    let mut driver = Driver { child, port };
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("started successfully") => break,
            Some(Ok(_)) => {}
            _ => {
                let status = driver.child.try_wait();
                panic!("chromedriver ended before it listened: {status:?}");
            }
        }
    }
    // Keep reading, so that chromedriver never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    driver.port = port;
    driver
}

/// A new headless Chromium session with a fresh, empty profile.
async fn open_browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,800",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session through chromedriver")
}

/// Where the screenshots go.
fn screenshot_folder(workdir: &Workdir) -> PathBuf {
    let folder = std::env::var_os("KMPLOG_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workdir.path().join("screenshots"));
    std::fs::create_dir_all(&folder).expect("the screenshot folder");
    folder
}

async fn save_screenshot(client: &Client, folder: &Path, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(folder.join(name), png).expect("write the screenshot");
}

/// The text of every live value on the page, by row.
async fn value_texts(client: &Client) -> Vec<String> {
    let answer = client
        .execute(
            "return [...document.querySelectorAll('table.values tbody tr[data-key]')]
                .map(row => row.dataset.key + '=' + row.querySelector('td.value').textContent);",
            vec![],
        )
        .await
        .expect("read the values");
    serde_json::from_value(answer).expect("a list of texts")
}

/// Waits until `condition` (JavaScript returning a boolean) holds.
async fn wait_for(client: &Client, what: &str, condition: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let held = client
            .execute(&format!("return Boolean({condition});"), vec![])
            .await
            .expect("run a check in the page");
        if held == json!(true) {
            return;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether every entry of the plot's legend is within the plot, none cut
/// off, each with a value shown.
const LEGEND_FITS: &str = "(() => {
    const plot = document.getElementById('plot').getBoundingClientRect();
    const entries = [...document.querySelectorAll('#plot .u-legend tr')];
    return entries.length === 6 && entries.every((entry) => {
        const box = entry.getBoundingClientRect();
        const value = entry.querySelector('.u-value');
        return box.left >= plot.left - 0.5 && box.right <= plot.right + 0.5
            && entry.scrollWidth <= entry.clientWidth + 0.5
            && value.textContent.trim() !== '' && value.scrollWidth <= value.clientWidth + 0.5;
    });
})()";

/// Writes 50 minutes of earlier T1 readings of meter 1 into the SQLite
/// sink's file through the sink (so its summaries hold them too), ending 5
/// minutes ago, every 10 s: with 10 minutes missing in the middle, one
/// suspect reading and three timeouts.
async fn seed_history(database: &Path) {
    use kmplog::reading::{Reading, Status};
    use kmplog::sink::Sink;
    let now = jiff::Timestamp::now();
    let mut batch = Vec::new();
    for step in 0..300_i64 {
        if (120..180).contains(&step) {
            continue;
        }
        let time = now
            .checked_sub(jiff::SignedDuration::from_secs(3300 - step * 10))
            .expect("a time");
        let value = format!("{:.2}", 70.0 + 2.0 * (step as f64 / 40.0).sin());
        let status = match step {
            250 => Status::Suspect,
            260..=262 => Status::Timeout,
            _ => Status::Ok,
        };
        batch.push(kmplog::outbox::Stored {
            seq: batch.len() as u64 + 1,
            key: format!("seed-{step}"),
            instance: None,
            reading: Reading {
                time,
                bus: "boiler-room".to_owned(),
                address: 1,
                request: "Live values".to_owned(),
                register: 86,
                name: "T1".to_owned(),
                value: (status != Status::Timeout)
                    .then(|| (value.parse().expect("a value"), kmp::unit::Unit(0x25))),
                status,
            },
        });
    }
    kmplog::sink::sqlite::SqliteSink::open(database)
        .expect("the sink")
        .deliver(&batch)
        .await
        .expect("the seeded readings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_buses_live_values_and_a_plot() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let simulator = Simulator::tcp(&["--meter", "1", "--meter", "2:403"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[
        &simulator.bus("boiler-room"),
        r#"
[[bus.request]]
description = "Live values"
addresses = "1;2"
polling = "1s"
items = ["T1", "T2", "FLOW1", "POWER1"]

[[bus.request]]
description = "Counters when hot"
addresses = "1"
model = "603"
event = "hot"
items = ["SERIALNO", "E1"]
"#,
    ]);
    seed_history(&workdir.path().join("kmplog.db")).await;
    let logger = Logger::run(&workdir, &config, "120s");
    let api = logger.api().to_owned();
    let folder = screenshot_folder(&workdir);
    let driver = start_driver(&chromedriver);
    let profile = tempfile::tempdir().expect("a profile folder");
    let client = open_browser(&driver, &chromium, profile.path()).await;
    // Checked in a task of its own, so that the browser is closed even
    // when a check fails.
    let checks = tokio::spawn({
        let client = client.clone();
        async move { check_the_console(&client, &api, &folder).await }
    })
    .await;
    client.close().await.expect("close the browser");
    drop(logger);
    if let Err(failure) = checks {
        std::panic::resume_unwind(failure.into_panic());
    }
}

async fn check_the_console(client: &Client, api: &str, folder: &Path) {
    let page = format!("http://{api}/");
    client
        .set_window_rect(0, 0, 1280, 800)
        .await
        .expect("a 1280x800 window");
    client.goto(&page).await.expect("open the page");
    assert_eq!(client.title().await.expect("a title"), "kmplog");

    // The overview: the bus, its state in words, both requests with their
    // methods in words, both meters.
    let limit = Duration::from_secs(20);
    wait_for(
        client,
        "the bus is connected",
        "[...document.querySelectorAll('.bus .state')].some(s => s.textContent === 'connected')",
        limit,
    )
    .await;
    wait_for(
        client,
        "no cluster panel without [cluster]",
        "document.getElementById('cluster').hidden",
        limit,
    )
    .await;
    let overview = client
        .find(Locator::Css("#buses"))
        .await
        .expect("the overview")
        .text()
        .await
        .expect("its text");
    for expected in [
        "boiler-room",
        "Live values",
        "every 1 s",
        "Counters when hot",
        "on event `hot`",
        "MULTICAL 603",
        "100 % of",
    ] {
        assert!(overview.contains(expected), "{expected:?} in {overview}");
    }
    // The serial number shows once a request has read it.
    let (status, body) = http(api, "POST", "/api/events/hot", &[]);
    assert_eq!(status, 202, "{body}");
    wait_for(
        client,
        "the serial number of meter 1 shows",
        "/^[0-9]+$/.test(document.querySelector('.bus .table-wrap[aria-label^=\"Meters\"] tbody tr td:nth-child(3)').textContent)",
        limit,
    )
    .await;

    // A value changes without a reload: the page keeps a mark set now.
    wait_for(
        client,
        "live values arrive",
        "document.querySelectorAll('table.values tr[data-key]').length >= 8",
        limit,
    )
    .await;
    client
        .execute("window.kmplogTestMark = 'same page';", vec![])
        .await
        .expect("mark the page");
    let before = value_texts(client).await;
    let start = Instant::now();
    loop {
        let now = value_texts(client).await;
        if now.iter().any(|value| !before.contains(value)) {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "no value changed within {limit:?}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mark = client
        .execute("return window.kmplogTestMark;", vec![])
        .await
        .expect("read the mark");
    assert_eq!(mark, json!("same page"), "the page was reloaded");
    // Values are the exact decimal text: T1 has its two decimals.
    let texts = value_texts(client).await;
    let t1 = texts
        .iter()
        .find(|text| text.starts_with("boiler-room/1/T1="))
        .expect("T1 of meter 1");
    let digits = t1.rsplit('=').next().unwrap_or_default();
    assert!(
        digits
            .split_once('.')
            .is_some_and(|(_, fraction)| fraction.len() == 2),
        "{t1}"
    );
    save_screenshot(client, folder, "overview.png").await;

    // Every control has an accessible name.
    let unnamed = client
        .execute(
            "return [...document.querySelectorAll('button, input, select, textarea, [tabindex]')]
                .filter(e => !(e.getAttribute('aria-label') || (e.labels && e.labels.length)
                    || e.getAttribute('aria-labelledby') || e.textContent.trim()))
                .map(e => e.outerHTML);",
            vec![],
        )
        .await
        .expect("look for unnamed controls");
    assert_eq!(unnamed, json!([]), "controls without an accessible name");

    // Nothing the page does from here on may break its security policy.
    client
        .execute(
            "window.kmplogViolations = [];
             document.addEventListener('securitypolicyviolation',
                 e => window.kmplogViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
            vec![],
        )
        .await
        .expect("watch for policy violations");

    // Clicking T1 opens its plot; the readings so far are in it.
    client
        .find(Locator::XPath("//button[normalize-space()='T1']"))
        .await
        .expect("the T1 button")
        .click()
        .await
        .expect("click T1");
    wait_for(
        client,
        "the plot is drawn",
        "document.querySelector('#plot canvas') && /lowest/.test(document.getElementById('history-summary').textContent)",
        limit,
    )
    .await;
    let summary = client
        .find(Locator::Id("history-summary"))
        .await
        .expect("the summary")
        .text()
        .await
        .expect("its text");
    assert!(summary.starts_with("T1 from "), "{summary}");
    assert!(summary.contains("°C"), "{summary}");
    // The seeded hour: its suspect reading, its timeouts and its gap, and
    // the gap between it and the readings of now.
    assert!(
        summary.contains("1 suspect and 3 failed readings; 2 gaps"),
        "{summary}"
    );
    let focused = client
        .execute("return document.activeElement.id;", vec![])
        .await
        .expect("the focus");
    assert_eq!(
        focused,
        json!("history-title"),
        "the focus moves to the plot"
    );
    wait_for(
        client,
        "the legend fits 1280 px",
        LEGEND_FITS,
        Duration::from_secs(5),
    )
    .await;
    client
        .execute("window.scrollTo(0, 0);", vec![])
        .await
        .expect("scroll to the top");
    save_screenshot(client, folder, "plot.png").await;
    let violations = client
        .execute("return window.kmplogViolations;", vec![])
        .await
        .expect("read the violations");
    assert_eq!(violations, json!([]), "the plot breaks the page's policy");

    // A phone: nothing wider than the screen but the tables, which scroll.
    client
        .set_window_rect(0, 0, 375, 800)
        .await
        .expect("a 375 px window");
    wait_for(
        client,
        "the page fits 375 px",
        "document.documentElement.scrollWidth <= window.innerWidth",
        Duration::from_secs(5),
    )
    .await;
    wait_for(
        client,
        "the legend fits 375 px",
        LEGEND_FITS,
        Duration::from_secs(5),
    )
    .await;
    client
        .execute(
            "document.querySelector('#plot .u-legend').scrollIntoView({ block: 'end' });",
            vec![],
        )
        .await
        .expect("scroll to the plot");
    save_screenshot(client, folder, "plot-phone.png").await;

    // Escape closes the plot and gives the focus back to T1.
    client
        .active_element()
        .await
        .expect("the focused element")
        .send_keys(&char::from(fantoccini::key::Key::Escape).to_string())
        .await
        .expect("press Escape");
    wait_for(
        client,
        "Escape closes the plot",
        "document.getElementById('history').hidden && document.activeElement.textContent === 'T1'",
        Duration::from_secs(5),
    )
    .await;
    wait_for(
        client,
        "the overview fits 375 px",
        "document.documentElement.scrollWidth <= window.innerWidth",
        Duration::from_secs(5),
    )
    .await;
    client
        .execute("window.scrollTo(0, 0);", vec![])
        .await
        .expect("scroll to the top");
    save_screenshot(client, folder, "phone.png").await;
}

/// The element of the page that `css` selects.
async fn element(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css}: {error}"))
}

/// The editor's button named `name` (its text), in `scope` (CSS).
async fn editor_button(client: &Client, scope: &str, name: &str) -> fantoccini::elements::Element {
    let buttons = client
        .find_all(Locator::Css(&format!("{scope} button")))
        .await
        .expect("the buttons");
    for button in buttons {
        if button.text().await.expect("a button's text") == name {
            return button;
        }
    }
    panic!("no button {name:?} in {scope}");
}

/// Types `text` into the field `css` in place of its value.
async fn type_into(client: &Client, css: &str, text: &str) {
    let field = element(client, css).await;
    field.clear().await.expect("clear the field");
    field.send_keys(text).await.expect("type into the field");
}

/// Waits until the editor has checked its edits and Save is on.
async fn until_saveable(client: &Client) {
    let start = Instant::now();
    loop {
        let state = client
            .execute(
                "return [document.getElementById('save').disabled,
                    JSON.stringify({ edits: editor.edits, mistakes: editor.diagnostics })];",
                vec![],
            )
            .await
            .expect("the editor's state");
        if state[0] == json!(false) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "Save stays off: {}",
            state[1]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn save_and_wait(client: &Client) {
    until_saveable(client).await;
    element(client, "#save").await.click().await.expect("Save");
    wait_for(
        client,
        "the file is saved and reloaded",
        "document.getElementById('editor-status').textContent.startsWith('Saved')",
        Duration::from_secs(20),
    )
    .await;
}

const EDITED_FILE_COMMENT: &str = "# Hand-written: the boiler room's gateway.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_changes_the_queue_of_the_running_logger() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let other_gateway = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[
        EDITED_FILE_COMMENT,
        "\n",
        &simulator.bus("boiler-room"),
        r#"
# Every second, the temperatures.
[[bus.request]]
description = "Live values"
addresses = "1"
polling = "1s"
items = ["T1"]   # forward

[[bus.request]]
description = "Slow"
addresses = "1"
polling = "10min"
items = ["T2"]
"#,
    ]);
    let logger = Logger::run(&workdir, &config, "120s");
    let api = logger.api().to_owned();
    let folder = screenshot_folder(&workdir);
    let driver = start_driver(&chromedriver);
    let profile = tempfile::tempdir().expect("a profile folder");
    let client = open_browser(&driver, &chromium, profile.path()).await;
    let checks = tokio::spawn({
        let client = client.clone();
        let workdir_path = workdir.path().to_owned();
        async move {
            let gateways = Gateways {
                first: simulator,
                other: other_gateway.line_args[1].clone(),
            };
            check_the_editor(&client, &api, &config, &workdir_path, &folder, gateways).await;
            drop(other_gateway);
        }
    })
    .await;
    client.close().await.expect("close the browser");
    drop(logger);
    if let Err(failure) = checks {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// The simulator the bus starts on, and the address of another one the
/// editor moves it to.
struct Gateways {
    first: Simulator,
    other: String,
}

async fn check_the_editor(
    client: &Client,
    api: &str,
    config: &Path,
    workdir: &Path,
    folder: &Path,
    gateways: Gateways,
) {
    client
        .set_window_rect(0, 0, 1280, 800)
        .await
        .expect("a 1280x800 window");
    client
        .goto(&format!("http://{api}/"))
        .await
        .expect("open the page");
    wait_for(
        client,
        "the editor lists the queue",
        "document.querySelectorAll('#editor .queue .pick').length === 2",
        Duration::from_secs(20),
    )
    .await;
    let original = std::fs::read_to_string(config).expect("the file");

    // A new request, renamed, polling every second.
    editor_button(client, "#editor-buses", "Add request")
        .await
        .click()
        .await
        .expect("Add request");
    type_into(client, "#sheet-description", "Serial numbers").await;
    editor_button(client, "#sheet", "Rename")
        .await
        .click()
        .await
        .expect("Rename");
    element(client, "#sheet-method")
        .await
        .select_by_label("Polling")
        .await
        .expect("choose Polling");
    // A bad interval: its message at the field, and no save.
    type_into(client, "#sheet-interval", "0").await;
    wait_for(
        client,
        "the mistake shows at the interval",
        "document.getElementById('sheet-interval').getAttribute('aria-invalid') === 'true'
         && document.getElementById('sheet-interval').closest('.field').querySelector('.field-error')",
        Duration::from_secs(10),
    )
    .await;
    let message = client
        .execute(
            "return document.getElementById('sheet-interval').closest('.field').querySelector('.field-error').textContent;",
            vec![],
        )
        .await
        .expect("the message");
    let message = message.as_str().unwrap_or_default().to_owned();
    let checked = workdir.join("check.toml");
    std::fs::write(
        &checked,
        original.clone()
            + "\n[[bus.request]]\ndescription = \"Serial numbers\"\naddresses = \"1\"\nitems = [1001]\npolling = \"0s\"\n",
    )
    .expect("a file to check");
    let check = crate::harness::run_kmplog(&["check", checked.to_str().unwrap()]);
    let first_line = message.split(" (").next().unwrap_or_default().to_owned();
    assert!(
        !first_line.is_empty() && check.stderr.contains(&first_line),
        "the page says {message:?}; kmplog check says:\n{}",
        check.stderr
    );
    let save_disabled = client
        .execute("return document.getElementById('save').disabled;", vec![])
        .await
        .expect("Save's state");
    assert_eq!(
        save_disabled,
        json!(true),
        "Save is off while a mistake remains"
    );
    element(client, "#save")
        .await
        .click()
        .await
        .expect("click Save anyway");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        std::fs::read_to_string(config).unwrap(),
        original,
        "nothing saved"
    );

    type_into(client, "#sheet-interval", "1").await;
    element(client, "#sheet-unit")
        .await
        .select_by_label("s")
        .await
        .expect("the unit");
    save_and_wait(client).await;
    let saved = std::fs::read_to_string(config).expect("the saved file");
    for kept in [
        EDITED_FILE_COMMENT,
        "# Every second, the temperatures.",
        "items = [\"T1\"]   # forward",
    ] {
        assert!(saved.contains(kept), "{kept:?} lost:\n{saved}");
    }
    assert!(
        saved.contains("description = \"Serial numbers\""),
        "{saved}"
    );
    // The running logger polls it: its readings are in SQLite.
    let database = workdir.join("kmplog.db");
    let start = Instant::now();
    loop {
        let polled = rusqlite::Connection::open(&database)
            .and_then(|connection| {
                connection.query_row(
                    "SELECT count(*) FROM readings WHERE request = 'Serial numbers' AND status = 'ok'",
                    [],
                    |row| row.get::<_, i64>(0),
                )
            })
            .unwrap_or(0);
        if polled >= 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no readings of the new request"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Rename, move and remove.
    element(client, "#editor .queue li:nth-child(2) .pick")
        .await
        .click()
        .await
        .expect("pick Slow");
    type_into(client, "#sheet-description", "Slow values").await;
    editor_button(client, "#sheet", "Rename")
        .await
        .click()
        .await
        .expect("Rename");
    editor_button(client, "#sheet", "Move up")
        .await
        .click()
        .await
        .expect("Move up");
    element(client, "#editor .queue li:nth-child(2) .pick")
        .await
        .click()
        .await
        .expect("pick Live values");
    editor_button(client, "#sheet", "Remove")
        .await
        .click()
        .await
        .expect("Remove");
    save_and_wait(client).await;
    let saved = std::fs::read_to_string(config).expect("the saved file");
    let order: Vec<&str> = saved
        .lines()
        .filter_map(|line| line.strip_prefix("description = "))
        .collect();
    assert_eq!(order, ["\"Slow values\"", "\"Serial numbers\""], "{saved}");
    assert!(saved.contains(EDITED_FILE_COMMENT), "{saved}");
    let queue = client
        .execute(
            "return [...document.querySelectorAll('#editor .queue .pick')].map(b => b.textContent);",
            vec![],
        )
        .await
        .expect("the queue");
    assert_eq!(queue, json!(["Slow values", "Serial numbers"]));

    check_the_line_and_request_options(client, config, workdir, gateways).await;
    save_screenshot_of_editor(client, folder).await;
    let saved = std::fs::read_to_string(config).expect("the saved file");

    // A change from another origin is refused.
    let (status, _) = http(
        api,
        "PUT",
        "/api/config",
        &[
            "Origin: http://evil.example",
            "Content-Type: application/json",
        ],
    );
    assert_eq!(status, 403);
    assert_eq!(std::fs::read_to_string(config).unwrap(), saved);
}

/// The bus moved to another gateway (a bad address first, shown at its
/// field), and a request's model, event and threshold set: the running
/// logger reads from the other gateway, the file keeps its comments.
async fn check_the_line_and_request_options(
    client: &Client,
    config: &Path,
    workdir: &Path,
    gateways: Gateways,
) {
    element(client, "#editor .queue li:nth-child(1) .pick")
        .await
        .click()
        .await
        .expect("pick Slow values");
    element(client, "#sheet-model")
        .await
        .select_by_label("MULTICAL 403")
        .await
        .expect("choose a model");
    type_into(client, "#sheet-on_failure", "slow-failed").await;
    editor_button(client, "#sheet", "Add threshold")
        .await
        .click()
        .await
        .expect("Add threshold");
    type_into(client, "#threshold-0-above", "1000.00").await;
    type_into(client, "#threshold-0-event", "too-hot").await;
    check_the_backfill_choice(client).await;

    element(client, "[data-bus-line=\"0\"] summary")
        .await
        .click()
        .await
        .expect("open the bus's line");
    type_into(client, "#bus-0-address", "nowhere").await;
    wait_for(
        client,
        "the mistake shows at the gateway's address",
        "document.getElementById('bus-0-address').getAttribute('aria-invalid') === 'true'
         && document.getElementById('bus-0-address').closest('.field').querySelector('.field-error')
              .textContent.startsWith('invalid gateway address')
         && document.getElementById('save').disabled",
        Duration::from_secs(10),
    )
    .await;
    type_into(client, "#bus-0-address", &gateways.other).await;
    save_and_wait(client).await;
    let saved = std::fs::read_to_string(config).expect("the saved file");
    for written in [
        format!("tcp = \"{}\"", gateways.other),
        "model = \"403\"".to_owned(),
        "on_failure = \"slow-failed\"".to_owned(),
        "[[bus.request.threshold]]\nitem = \"T2\"\nabove = \"1000.00\"\nevent = \"too-hot\""
            .to_owned(),
        "backfill = \"hourly\"".to_owned(),
        EDITED_FILE_COMMENT.to_owned(),
    ] {
        assert!(saved.contains(&written), "{written:?} not in:\n{saved}");
    }
    let shown = client
        .execute(
            "return document.getElementById('sheet-backfill')?.value ?? null;",
            vec![],
        )
        .await
        .expect("the backfill shown");
    assert_eq!(shown, json!("hourly"), "the saved choice is shown");
    // With the first gateway gone, new readings can only come from the other.
    drop(gateways.first);
    let database = workdir.join("kmplog.db");
    let count = |query: &str| {
        rusqlite::Connection::open(&database)
            .and_then(|connection| connection.query_row(query, [], |row| row.get::<_, i64>(0)))
            .unwrap_or(0)
    };
    let last = count("SELECT coalesce(max(id), 0) FROM readings");
    let start = Instant::now();
    while count(&format!(
        "SELECT count(*) FROM readings WHERE id > {last} AND status = 'ok'"
    )) < 2
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no readings from the other gateway"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The request's backfill, a labelled choice of the meter's loggers: on a
/// request that only listens it is a mistake, shown at its field; sent
/// again, Hourly is what the file gets.
async fn check_the_backfill_choice(client: &Client) {
    let choice = client
        .execute(
            "const select = document.getElementById('sheet-backfill');
             return [document.querySelector('label[for=sheet-backfill]').textContent,
                 select.value, [...select.options].map((option) => option.text)];",
            vec![],
        )
        .await
        .expect("the backfill field");
    assert_eq!(
        choice,
        json!([
            "Backfill from the meter's logger",
            "",
            ["Off", "Hourly", "Daily"]
        ])
    );
    element(client, "#sheet-send")
        .await
        .click()
        .await
        .expect("listen only");
    element(client, "#sheet-backfill")
        .await
        .select_by_label("Hourly")
        .await
        .expect("choose Hourly");
    wait_for(
        client,
        "the mistake shows at the backfill",
        "document.getElementById('sheet-backfill').getAttribute('aria-invalid') === 'true'
         && document.getElementById('sheet-backfill').closest('.field').querySelector('.field-error')
              .textContent.startsWith('`backfill` on a request that only listens')
         && document.getElementById('save').disabled",
        Duration::from_secs(10),
    )
    .await;
    element(client, "#sheet-send")
        .await
        .click()
        .await
        .expect("send again");
}

async fn save_screenshot_of_editor(client: &Client, folder: &Path) {
    element(client, "#editor .queue li:nth-child(1) .pick")
        .await
        .click()
        .await
        .expect("pick the edited request");
    client
        .execute(
            "document.getElementById('editor').scrollIntoView();",
            vec![],
        )
        .await
        .expect("scroll to the editor");
    tokio::time::sleep(Duration::from_millis(500)).await;
    save_screenshot(client, folder, "editor.png").await;
    // On a phone the sheet goes under the queue, and nothing sticks out.
    client
        .set_window_rect(0, 0, 375, 800)
        .await
        .expect("a 375 px window");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let overflow = client
        .execute(
            "const editor = document.getElementById('editor');
             return editor.scrollWidth - editor.clientWidth;",
            vec![],
        )
        .await
        .expect("the editor's width");
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "the editor is {overflow} px too wide at 375 px"
    );
    client
        .execute("document.getElementById('sheet').scrollIntoView();", vec![])
        .await
        .expect("scroll to the sheet");
    save_screenshot(client, folder, "editor-phone.png").await;
    client
        .set_window_rect(0, 0, 1280, 800)
        .await
        .expect("back to 1280x800");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_page_asks_for_it_once_and_sends_it() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let simulator = Simulator::tcp(&["--meter", "1"]);
    let workdir = Workdir::new();
    let config = workdir.config(&[
        &simulator.bus("boiler-room"),
        "[[bus.request]]\ndescription = \"Live values\"\naddresses = \"1\"\npolling = \"1s\"\nitems = [\"T1\"]\n",
    ]);
    let token = "a-token-for-the-page-of-some-length";
    let logger = Logger::start(
        &workdir,
        &[
            "run",
            config.to_str().unwrap(),
            "--api",
            "127.0.0.1:0",
            "--api-token",
            token,
            "--json",
            "--for",
            "30s",
        ],
    );
    let api = logger.api().to_owned();
    let driver = start_driver(&chromedriver);
    let profile = tempfile::tempdir().expect("a profile folder");
    let client = open_browser(&driver, &chromium, profile.path()).await;
    let checks = tokio::spawn({
        let client = client.clone();
        async move {
            client.goto(&format!("http://{api}/")).await.expect("open the page");
            let limit = Duration::from_secs(20);
            wait_for(&client, "the page asks for the token", "!document.getElementById('token-form').hidden", limit).await;
            type_into(&client, "#token", token).await;
            editor_button(&client, "#token-form", "Use token").await.click().await.expect("Use token");
            wait_for(&client, "the buses come with the token", "document.querySelectorAll('.bus').length === 1", limit).await;
            wait_for(&client, "the editor loads with the token", "document.querySelectorAll('#editor .queue .pick').length === 1", limit).await;
            wait_for(&client, "live values come through the stream", "document.querySelectorAll('table.values tbody tr[data-key]').length > 0 && document.getElementById('live-status').textContent === 'Live'", limit).await;
            // Kept for the session: a reload of the page does not ask again.
            client.refresh().await.expect("reload the page");
            wait_for(&client, "the buses come at once", "document.querySelectorAll('.bus').length === 1", limit).await;
            let asked = client
                .execute("return !document.getElementById('token-form').hidden;", vec![])
                .await
                .expect("the form's state");
            assert_eq!(asked, json!(false));
        }
    })
    .await;
    client.close().await.expect("close the browser");
    let run = logger.finish();
    if let Err(failure) = checks {
        std::panic::resume_unwind(failure.into_panic());
    }
    assert!(!run.stderr.contains(token), "the token is not logged");
}

/// In a cluster the console names every bus's owner: this instance's own
/// and those of another instance.
#[test]
fn the_console_shows_who_owns_each_bus_in_a_cluster() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let Some(schema) = crate::cluster::Schema::new("web") else {
        return;
    };
    let dir = Workdir::new();
    let gateways = crate::cluster::Gateways::start(2, &dir);
    let config = dir.write(
        "kmplog.toml",
        &schema.config("postgres", &gateways.addresses),
    );
    let (first, _first_dir) = crate::cluster::instance("first", &config);
    let (second, _second_dir) = crate::cluster::instance("second", &config);
    let api = first.api().to_owned();
    let driver = start_driver(&chromedriver);
    let profile = tempfile::tempdir().expect("a profile folder");
    // The schema's client blocks on a runtime of its own: the browser gets
    // another, outside it.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let checks = runtime.block_on(async {
    let client = open_browser(&driver, &chromium, profile.path()).await;
    let checks = tokio::spawn({
        let client = client.clone();
        async move {
            client.goto(&format!("http://{api}/")).await.expect("open the page");
            let rows = "[...document.querySelectorAll('#cluster tbody tr')].map(r => r.textContent)";
            wait_for(
                &client,
                "one bus owned here, one by the other instance",
                &format!(
                    "!document.getElementById('cluster').hidden && {rows}.length === 2 \
                     && {rows}.some(t => t.includes('first (this one)')) && {rows}.some(t => t.includes('second'))"
                ),
                Duration::from_secs(20),
            )
            .await;
            let summary = client
                .find(Locator::Css("#cluster-summary"))
                .await
                .expect("the summary")
                .text()
                .await
                .expect("its text");
            assert_eq!(
                summary,
                "Instance first of a cluster of first, second; coordinator ok."
            );
        }
    })
    .await;
    client.close().await.expect("close the browser");
    checks
    });
    drop((first, second));
    if let Err(failure) = checks {
        std::panic::resume_unwind(failure.into_panic());
    }
}
