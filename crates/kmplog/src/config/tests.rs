//! Tests of the configuration: the example file, each kind of mistake with
//! its place and message, several mistakes at once, warnings and notes, and
//! the defaults.

use super::*;
use crate::transport::serial::{DataBits, Parity, StopBits};

const EXAMPLE: &str = include_str!("../../../../examples/kmplog.toml");

/// A bus and the start of a request: lines 1 to 5.
const P: &str = "[[bus]]\nname = \"b\"\ntcp = \"h:1\"\n[[bus.request]]\ndescription = \"r\"\n";
/// The rest of a valid request: lines 6 to 8 after [`P`].
const REST: &str = "addresses = 1\nitems = [\"E1\"]\npolling = \"1s\"\n";

/// The diagnostics of an invalid `text`.
fn diagnostics(text: &str) -> Vec<Diagnostic> {
    match parse(text, "test.toml") {
        Ok((config, _)) => panic!("valid, but should not be:\n{text}\n{config:#?}"),
        Err(diagnostics) => diagnostics.list().to_vec(),
    }
}

/// The warnings and notes of a valid `text`.
fn remarks(text: &str) -> Vec<Diagnostic> {
    match parse(text, "test.toml") {
        Ok((_, remarks)) => remarks,
        Err(diagnostics) => panic!("invalid:\n{diagnostics}"),
    }
}

fn valid(text: &str) -> Config {
    match parse(text, "test.toml") {
        Ok((config, _)) => config,
        Err(diagnostics) => panic!("invalid:\n{diagnostics}"),
    }
}

/// The event sources of a request: completion, failure, info flags and
/// silence.
#[test]
fn event_sources_of_a_request() {
    let config = valid(&format!(
        "{P}{REST}on_info_flag = \"alarm\"\non_no_data = \"silent\"\nno_data_after = \"90min\"\n"
    ));
    let request = &config.buses[0].requests[0];
    assert_eq!(request.on_info_flag.as_deref(), Some("alarm"));
    assert_eq!(
        request.on_no_data,
        Some(("silent".to_owned(), std::time::Duration::from_secs(5400)))
    );
}

/// A listening request has no schedule: the other master's traffic drives it.
#[test]
fn a_listening_request_needs_no_method() {
    let config = valid(&format!(
        "{P}send = false\naddresses = 1\nitems = [\"E1\"]\n"
    ));
    let request = &config.buses[0].requests[0];
    assert_eq!((request.send, &request.method), (false, &None));
}

/// The demo's configuration (see `cli/demo.rs`) is valid as it stands, with
/// its stand-in line addresses, and uses every kind of method the demo shows.
#[test]
fn the_demo_configuration_is_valid() {
    let config = valid(include_str!("../../../../examples/demo.toml"));
    assert_eq!(config.buses.len(), 2);
    let methods: Vec<String> = config
        .buses
        .iter()
        .flat_map(|bus| &bus.requests)
        .map(|request| {
            request
                .method
                .as_ref()
                .map_or_else(String::new, ToString::to_string)
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for method in ["once", "polling", "at", "cron", "event"] {
        assert!(
            methods.iter().any(|m| m == method),
            "demo lacks a {method} request: {methods:?}"
        );
    }
}

#[test]
fn the_example_is_valid_and_quiet() {
    let (config, remarks) =
        parse(EXAMPLE, "examples/kmplog.toml").unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(remarks, []);
    assert_eq!((config.buses.len(), config.request_count()), (2, 4));
    assert_eq!(config.time_zone.as_deref(), Some("Europe/Copenhagen"));
    assert_eq!(config.sinks.csv, Some(PathBuf::from("readings")));
    let bus = &config.buses[0];
    assert_eq!(bus.endpoint.to_string(), "serial /dev/ttyUSB0 1200 8N2");
    let main = &bus.requests[0];
    assert_eq!(main.addresses, [1, 2, 17]);
    assert_eq!(main.model, Some(Model::Multical603));
    let items: Vec<(u16, &str)> = main
        .items
        .iter()
        .map(|item| (item.register, item.export_name.as_str()))
        .collect();
    assert_eq!(
        items,
        [
            (60, "E1"),
            (68, "V1"),
            (86, "T1"),
            (1004, "HOURS"),
            (5000, "CUSTOM1")
        ]
    );
    assert_eq!(
        main.method,
        Some(Method::Polling(
            kmp_schedule::Interval::parse("30s").unwrap()
        ))
    );
    assert_eq!(main.on_complete.as_deref(), Some("main-done"));
    assert_eq!(main.thresholds[0].export_name, "T1");
    assert_eq!(
        main.thresholds[0].above.map(|value| value.to_string()),
        Some("90.00".to_owned())
    );
    assert_eq!(
        bus.requests[2].method,
        Some(Method::Event("main-done".to_owned()))
    );
    assert_eq!(
        config.buses[1].endpoint.to_string(),
        "tcp 192.168.1.50:4001"
    );
}

/// `[cluster]` with its defaults, and without it no cluster. A working
/// file with default timeouts needs only the coordinator added.
#[test]
fn a_cluster_takes_its_coordinator_and_a_lease_of_10_s_by_default() {
    assert_eq!(valid(&format!("{P}{REST}")).cluster, None);
    let config = valid(&format!(
        "[cluster]\ncoordinator = \"postgres://kmplog@db/meters\"\n{P}{REST}"
    ));
    assert_eq!(
        config.cluster,
        Some(ClusterConfig {
            coordinator: "postgres://kmplog@db/meters".to_owned(),
            lease: Duration::from_secs(10),
        })
    );
}

#[test]
fn defaults_fill_what_is_left_out() {
    let config = valid(
        "[[bus]]\nname = \"b\"\nserial = \"/dev/ttyS0\"\n[[bus.request]]\ndescription = \"r\"\naddresses = 5\nitems = [86, 5000, { register = \"E1\" }]\nonce = true\n",
    );
    assert_eq!(config.time_zone, None);
    assert_eq!(config.models, ModelTable::default());
    let models = valid(&format!(
        "[models]\n\"0x0603\" = \"603\"\n\"898\" = \"Kamstrup 382\"\n{P}{REST}"
    ));
    assert_eq!(
        models.models.user_entries(),
        [(0x0603, Model::Multical603), (0x0382, Model::Kamstrup382)]
    );
    assert_eq!(config.sinks, SinksConfig::default());
    assert_eq!(config.sinks.outbox_max_bytes, 512 * 1024 * 1024);
    let sized = valid(&format!("[sinks]\noutbox_max_bytes = 2_000_000\n{P}{REST}"));
    assert_eq!(sized.sinks.outbox_max_bytes, 2_000_000);
    assert_eq!(config.sinks.sqlite, Some(PathBuf::from("kmplog.db")));
    let bus = &config.buses[0];
    let BusEndpoint::Serial(serial) = &bus.endpoint else {
        panic!("{:?}", bus.endpoint)
    };
    assert_eq!(
        (
            serial.baud,
            serial.data_bits,
            serial.parity,
            serial.stop_bits
        ),
        (1200, DataBits::Eight, Parity::None, StopBits::Two)
    );
    assert_eq!(
        (bus.echo, bus.retry_pause),
        (EchoMode::Auto, Duration::from_millis(200))
    );
    let request = &bus.requests[0];
    assert_eq!(
        (request.send, request.timeout, request.retries),
        (true, Duration::from_millis(1600), 1)
    );
    assert_eq!(
        (
            request.model,
            request.reads_per_day,
            request.on_complete.clone()
        ),
        (None, None, None)
    );
    let names: Vec<&str> = request
        .items
        .iter()
        .map(|item| item.export_name.as_str())
        .collect();
    assert_eq!(names, ["T1", "R5000", "E1"]);
    assert_eq!(request.method, Some(Method::Once));

    let tcp = valid(&format!(
        "[sinks]\nsqlite = false\nterminal = \"JSON\"\n{P}{REST}"
    ));
    assert_eq!(
        (tcp.sinks.sqlite, tcp.sinks.terminal),
        (None, TerminalMode::Json)
    );
    let BusEndpoint::Tcp(settings) = &tcp.buses[0].endpoint else {
        panic!()
    };
    assert_eq!(settings.connect_timeout, Duration::from_secs(5));
    // A number that the model's catalogue lacks gets R<number>.
    let electricity = valid(&format!(
        "{P}addresses = 1\nmodel = \"382\"\nitems = [60, 1]\nonce = true\n"
    ));
    let names: Vec<&str> = electricity.buses[0].requests[0]
        .items
        .iter()
        .map(|item| item.export_name.as_str())
        .collect();
    assert_eq!(names, ["R60", "EAPLUS"]);
}

/// One case per kind of mistake: the file, where the one error is, and a
/// fragment of its message.
#[test]
fn each_mistake_is_reported_where_it_is() {
    let request = |rest: &str| format!("{P}{rest}");
    let serial = |keys: &str| {
        format!(
            "[[bus]]\nname = \"b\"\nserial = \"/dev/ttyS0\"\n{keys}[[bus.request]]\ndescription = \"r\"\n{REST}"
        )
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            request(&format!("{REST}backfill = \"minutely\"\n")),
            "9:12",
            "`backfill` must be one of hourly, daily, not `minutely`",
        ),
        (
            request("send = false\naddresses = 1\nitems = [\"E1\"]\nbackfill = \"hourly\"\n"),
            "9:12",
            "`backfill` on a request that only listens",
        ),
        (
            format!("tme_zone = \"UTC\"\n{P}{REST}"),
            "1:1",
            "unknown key `tme_zone` in the top level",
        ),
        (
            format!("[models]\n\"0603\" = \"603\"\n\"x12\" = \"603\"\n{P}{REST}"),
            "3:1",
            "`x12` in [models] is not a meter type code",
        ),
        (
            format!("[models]\n\"0x10000\" = \"603\"\n{P}{REST}"),
            "2:1",
            "`0x10000` in [models] is not a meter type code",
        ),
        (
            format!("[models]\n\"0x0603\" = \"6003\"\n{P}{REST}"),
            "2:12",
            "unknown model `6003`",
        ),
        (
            format!("[models]\n\"0x0603\" = \"603\"\n\"0x603\" = \"602\"\n{P}{REST}"),
            "3:1",
            "meter type 0x0603 is given twice in [models] (entry 1 and entry 2)",
        ),
        (
            format!("models = \"603\"\n{P}{REST}"),
            "1:10",
            "`models` must be a table of meter type codes and models, not a string",
        ),
        (
            request(&format!("{REST}tiemout_ms = 5\n")),
            "9:1",
            "unknown key `tiemout_ms` in [[bus.request]]",
        ),
        (
            request(&format!("{REST}retries = \"2\"\n")),
            "9:11",
            "`retries` must be an integer, not a string",
        ),
        (
            "[sinks]\noutbox_max_bytes = \"512MB\"\n".to_owned(),
            "2:20",
            "`outbox_max_bytes` is a number of bytes, without quotes or unit, not \"512MB\"",
        ),
        (
            format!("[cluster]\nlease = \"60s\"\n{P}{REST}"),
            "1:1",
            "[cluster] has no `coordinator`",
        ),
        (
            format!("[cluster]\ncoordinator = \"nats://h:4222\"\nlease = \"60s\"\n{P}{REST}"),
            "2:15",
            "coordinator 'nats://h:4222': NATS is not a coordinator kmplog supports",
        ),
        (
            format!("[cluster]\ncoordinator = \"mysql://h/db\"\nlease = \"60s\"\n{P}{REST}"),
            "2:15",
            "coordinator 'mysql://h/db' is not a postgres:// URL",
        ),
        (
            format!("[cluster]\ncoordinator = \"postgres://u@h/db\"\nlease = \"soon\"\n{P}{REST}"),
            "3:9",
            "`lease` is not a duration",
        ),
        (
            format!("[cluster]\ncoordinator = \"postgres://u@h/db\"\nlease = \"20min\"\n{P}{REST}"),
            "3:9",
            "`lease` must be 1s to 10min, not 20min",
        ),
        (
            // Connecting may take 5 s (the default): twice that is more
            // than 9 s.
            format!("[cluster]\ncoordinator = \"postgres://u@h/db\"\nlease = \"9s\"\n{P}{REST}"),
            "3:9",
            "lease 9s is too short for request 'r' of bus b: connecting its line takes up to 5.0 s",
        ),
        (
            // The reply 1.6 s, four retries 1.8 s each: 8.8 s.
            format!("[cluster]\ncoordinator = \"postgres://u@h/db\"\n{P}{REST}retries = 4\n"),
            "1:1",
            "lease 10s is too short for request 'r' of bus b: its longest transaction takes up to 8.8 s",
        ),
        (
            format!(
                "[cluster]\ncoordinator = \"postgres://u@h/db\"\nleese = \"10s\"\nlease = \"60s\"\n{P}{REST}"
            ),
            "3:1",
            "unknown key `leese` in [cluster]",
        ),
        (
            "[sinks]\noutbox_max_bytes = 1000\n".to_owned(),
            "2:20",
            "`outbox_max_bytes` must be 1048576 to 1099511627776, not 1000",
        ),
        (
            request(&format!("{REST}retries = 11\n")),
            "9:11",
            "`retries` must be 0 to 10, not 11",
        ),
        (
            format!("[[bus]]\nname = \"b\"\ntcp = \"h:1\"\n[[bus.request]]\n{REST}"),
            "4:1",
            "[[bus.request]] has no `description`",
        ),
        (
            request("addresses = \"1;0\"\nitems = [\"E1\"]\nonce = true\n"),
            "6:16",
            "address 0 is out of range: meter addresses are 1 to 255",
        ),
        (
            request("addresses = 256\nitems = [\"E1\"]\nonce = true\n"),
            "6:13",
            "address 256 is out of range",
        ),
        (
            request("addresses = [1, 300]\nitems = [\"E1\"]\nonce = true\n"),
            "6:17",
            "address 300 is out of range",
        ),
        (
            request("addresses = \"1,2\"\nitems = [\"E1\"]\nonce = true\n"),
            "6:14",
            "`1,2` is not an address",
        ),
        (
            request("addresses = \"1;;2\"\nitems = [\"E1\"]\nonce = true\n"),
            "6:16",
            "empty address in the list",
        ),
        (
            request("addresses = \"2; 2\"\nitems = [\"E1\"]\nonce = true\n"),
            "6:17",
            "address 2 is listed twice",
        ),
        (
            request("addresses = \"\"\nitems = [\"E1\"]\nonce = true\n"),
            "6:13",
            "no address given",
        ),
        (
            request("addresses = 1\nitems = [0]\nonce = true\n"),
            "7:10",
            "register 0 does not exist: registers are 1 to 65535",
        ),
        (
            request("addresses = 1\nitems = [65536]\nonce = true\n"),
            "7:10",
            "register 65536 is out of range",
        ),
        (
            request("addresses = 1\nitems = [\"86\"]\nonce = true\n"),
            "7:10",
            "register \"86\" is a number in quotes",
        ),
        (
            request("addresses = 1\nitems = [1, 2, 3, 4, 5, 6, 7, 8, 9]\nonce = true\n"),
            "7:34",
            "more than 8 items",
        ),
        (
            request("addresses = 1\nitems = []\nonce = true\n"),
            "7:9",
            "`items` is empty",
        ),
        (
            request("addresses = 1\nitems = [{ register = 5000, name = \"A-B\" }]\nonce = true\n"),
            "7:36",
            "export name `A-B` may hold only Latin letters and digits",
        ),
        (
            request(
                "addresses = 1\nitems = [\"E1\", { register = 5000, name = \"e1\" }]\nonce = true\n",
            ),
            "7:16",
            "export name `e1` is already used by item 1",
        ),
        (
            request(
                "addresses = 1\nitems = [60, { register = 60, name = \"HEAT\" }]\nonce = true\n",
            ),
            "7:14",
            "register 60 is already item 1",
        ),
        (
            request("addresses = 1\nitems = [{ register = 60, nam = \"X\" }]\nonce = true\n"),
            "7:27",
            "unknown key `nam` in the item table",
        ),
        (
            request("addresses = 1\nmodel = \"603\"\nitems = [\"POWR1\"]\nonce = true\n"),
            "8:10",
            "`POWR1` is not in the MULTICAL 603 catalogue",
        ),
        (
            request("addresses = 1\nitems = [\"NOSUCH\"]\nonce = true\n"),
            "7:10",
            "`NOSUCH` is not in any catalogue",
        ),
        (
            request("addresses = 1\nmodel = \"604\"\nitems = [\"E1\"]\nonce = true\n"),
            "7:9",
            "unknown model `604`",
        ),
        (
            request("addresses = 1\nitems = [\"E1\"]\n"),
            "4:1",
            "[[bus.request]] has no method",
        ),
        (
            request("addresses = 1\nitems = [\"E1\"]\npolling = \"1s\"\nonce = true\n"),
            "9:1",
            "a request has one method, but `polling` and `once` are both given",
        ),
        (
            request("addresses = 1\nitems = [\"E1\"]\nonce = false\n"),
            "8:8",
            "`once = false` gives the request no method",
        ),
        (
            request("addresses = 1\nitems = [\"E1\"]\npolling = \"5 parsecs\"\n"),
            "8:11",
            "invalid `polling`: interval '5 parsecs': unknown unit 'parsecs'",
        ),
        (
            request("addresses = 1\nitems = [\"E1\"]\nat = \"11:00:00;25:00:00\"\n"),
            "8:16",
            "invalid `at`: times of day: '25:00:00' (at character 9) has hour 25",
        ),
        (
            request("addresses = 1\nitems = [\"E1\"]\ncron = \"0 61 * * * *\"\n"),
            "8:11",
            "invalid `cron`: minute field: 61 is outside 0-59",
        ),
        (
            request("addresses = 1\nitems = [\"E1\"]\ncron = '0 0 12 * * Fun'\n"),
            "8:20",
            "invalid `cron`: weekday field: unknown name 'Fun'",
        ),
        (
            request("addresses = 1\nitems = [\"E1\"]\nevent = \"go now\"\n"),
            "8:12",
            "the event name `go now` holds ' '",
        ),
        (
            format!("[[bus]]\nname = \"b\"\n[[bus.request]]\ndescription = \"r\"\n{REST}"),
            "1:1",
            "[[bus]] has no connection: give one of `serial`, `tcp` or `udp`",
        ),
        (
            format!(
                "[[bus]]\nname = \"b\"\ntcp = \"h:1\"\nudp = \"h:2\"\n[[bus.request]]\ndescription = \"r\"\n{REST}"
            ),
            "4:1",
            "a bus has one connection, but `tcp` and `udp` are both given",
        ),
        (
            format!(
                "[[bus]]\nname = \"b\"\ntcp = \"h:1\"\nframing = \"8N1\"\n[[bus.request]]\ndescription = \"r\"\n{REST}"
            ),
            "4:1",
            "`framing` applies to serial buses only, and this bus uses tcp",
        ),
        (
            serial("connect_timeout_ms = 10\n"),
            "4:1",
            "`connect_timeout_ms` applies to tcp buses only, and this bus uses serial",
        ),
        (
            serial("baud = 100\n"),
            "4:8",
            "`baud` must be 300 to 115200, not 100",
        ),
        (
            serial("framing = \"9N1\"\n"),
            "4:11",
            "invalid framing '9N1'",
        ),
        (
            serial("echo = \"yes\"\n"),
            "4:8",
            "`echo` must be one of auto, on, off, not `yes`",
        ),
        (
            format!(
                "[[bus]]\nname = \"b\"\ntcp = \"gateway\"\n[[bus.request]]\ndescription = \"r\"\n{REST}"
            ),
            "3:7",
            "invalid gateway address: `gateway` has no port",
        ),
        (
            "[[bus]]\nname = \"heat room\"\ntcp = \"h:1\"\n".to_owned(),
            "2:13",
            "the bus name `heat room` holds ' '",
        ),
        (
            format!(
                "{P}{REST}[[bus]]\nname = \"b\"\nudp = \"h:2\"\n[[bus.request]]\ndescription = \"r\"\n{REST}"
            ),
            "10:8",
            "bus name `b` is already used by bus 1",
        ),
        (
            format!("{P}{REST}on_no_data = \"silent\"\n"),
            "9:14",
            "`on_no_data` needs `no_data_after`: how long a meter may give no data",
        ),
        (
            format!("{P}{REST}on_no_data = \"silent\"\nno_data_after = \"soon\"\n"),
            "10:17",
            "soon",
        ),
        (
            format!(
                "{P}{REST}[[bus.request]]\ndescription = \"heard\"\nsend = false\naddresses = 1\nitems = [\"E1\"]\n"
            ),
            "11:8",
            "request `r` sends and request `heard` only listens, on the same bus",
        ),
        (
            format!("{P}{REST}[[bus.request]]\ndescription = \"r\"\n{REST}"),
            "10:15",
            "description `r` is already used by request 1 of this bus",
        ),
        (
            format!(
                "{P}{REST}[[bus.request.threshold]]\nitem = \"T1\"\nabove = 5\nevent = \"hot\"\n"
            ),
            "10:8",
            "`T1` is not an item of this request",
        ),
        (
            format!("{P}{REST}[[bus.request.threshold]]\nitem = \"E1\"\nevent = \"hot\"\n"),
            "9:1",
            "[[bus.request.threshold]] has neither `above` nor `below`",
        ),
        (
            format!(
                "{P}{REST}[[bus.request.threshold]]\nitem = \"E1\"\nbelow = \"1e3\"\nevent = \"hot\"\n"
            ),
            "11:9",
            "invalid `below`: '1e3' is not a decimal number",
        ),
        (
            format!("time_zone = \"Europe/Copenhagn\"\n{P}{REST}"),
            "1:13",
            "unknown time zone `Europe/Copenhagn`",
        ),
        (
            format!("sinks = \"kmplog.db\"\n{P}{REST}"),
            "1:9",
            "`sinks` must be a table, not a string",
        ),
        (
            format!("[sinks]\ncsv = true\n{P}{REST}"),
            "2:7",
            "`csv = true` names no directory",
        ),
        (
            "[bus]\nname = \"b\"\n".to_owned(),
            "1:1",
            "`bus` must be an array of tables, written [[bus]]",
        ),
        ("name = \n".to_owned(), "1:8", "TOML syntax"),
    ];
    for (text, at, fragment) in cases {
        let found = diagnostics(&text);
        let summary: Vec<String> = found
            .iter()
            .map(|d| format!("{} {}: {}", d.line_column(), d.severity, d.message))
            .collect();
        let errors: Vec<&Diagnostic> = found
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "one error expected in\n{text}\nfound {summary:#?}"
        );
        assert_eq!(errors[0].line_column(), at, "{text}\n{summary:#?}");
        assert!(
            errors[0].message.contains(fragment),
            "{fragment:?} not in {summary:#?}"
        );
        assert!(!errors[0].hint.is_empty(), "{summary:#?}");
    }
}

#[test]
fn hints_suggest_the_likely_word() {
    for (text, hint) in [
        (
            format!("{P}{REST}tiemout_ms = 5\n"),
            "did you mean `timeout_ms`?",
        ),
        (
            format!("{P}addresses = 1\nmodel = \"603\"\nitems = [\"POWR1\"]\nonce = true\n"),
            "did you mean `POWER1`?",
        ),
        (
            format!("[sinks]\nterminal = \"tabel\"\n{P}{REST}"),
            "did you mean `table`?",
        ),
        (
            format!("time_zone = \"Europe/Copenhagn\"\n{P}{REST}"),
            "did you mean `Europe/Copenhagen`?",
        ),
    ] {
        let found = diagnostics(&text);
        assert!(
            found.iter().any(|d| d.hint.contains(hint)),
            "{hint:?} not in {found:#?}"
        );
    }
}

#[test]
fn every_mistake_of_a_file_is_reported_in_file_order() {
    let text = "\
time_zone = \"Mars/Olympus\"
[[bus]]
name = \"b\"
tcp = \"h:1\"
baud = 9600
[[bus.request]]
description = \"r\"
addresses = \"0\"
items = [\"E1\", 0]
polling = \"fast\"
";
    let found = diagnostics(text);
    let places: Vec<String> = found.iter().map(Diagnostic::line_column).collect();
    assert_eq!(
        places,
        ["1:13", "5:1", "8:14", "9:16", "10:11"],
        "{found:#?}"
    );
    let shown = Diagnostics::new("test.toml", text, found).to_string();
    for place in [
        "test.toml:1:13",
        "test.toml:5:1",
        "test.toml:8:14",
        "test.toml:9:16",
        "test.toml:10:11",
    ] {
        assert!(shown.contains(place), "{place} not in\n{shown}");
    }
}

#[test]
fn backfill_names_the_logger_a_request_fills_its_gaps_from() {
    let config = valid(&format!("{P}{REST}backfill = \"daily\"\n"));
    assert_eq!(
        config.buses[0].requests[0].backfill,
        Some(kmp::logger::Logger::DAILY)
    );
    let config = valid(&format!("{P}{REST}"));
    assert_eq!(config.buses[0].requests[0].backfill, None);
}

#[test]
fn warnings_and_notes_leave_the_file_valid() {
    let cases = [
        (
            format!("{P}addresses = 1\nitems = [\"E1\"]\npolling = \"30s\"\nreads_per_day = 96\n"),
            "8:11",
            "polling every 30s reads each meter 2880 times a day, more than reads_per_day = 96",
        ),
        (
            format!(
                "{P}addresses = 1\nitems = [\"E1\"]\nat = \"01:00:00;02:00:00;03:00:00\"\nreads_per_day = 2\n"
            ),
            "8:6",
            "this list of times reads each meter 3 times a day",
        ),
        (
            format!(
                "{P}addresses = 1\nitems = [\"E1\"]\ncron = \"0 */15 * * * Mon-Fri\"\nreads_per_day = 24\n"
            ),
            "8:8",
            "this cron schedule reads each meter 96 times a day",
        ),
        (
            format!(
                "{P}addresses = 1\nitems = [\"E1\"]\ncron = \"* 0-11 * *\"\nreads_per_day = 1000\n"
            ),
            "8:8",
            "`cron = \"* 0-11 * *\"` has four fields: the weekday is missing",
        ),
        (
            format!("{P}addresses = 1\nitems = [\"E1\"]\nevent = \"go\"\n"),
            "8:9",
            "no request fires event `go`",
        ),
        (
            format!("{P}send = false\naddresses = 1\nitems = [\"E1\"]\npolling = \"30s\"\n"),
            "9:1",
            "this request only listens (send = false): `polling` is never used",
        ),
        (
            format!("{P}addresses = 1\nitems = [\"E1\"]\nevent = \"go\"\non_complete = \"go\"\n"),
            "9:15",
            "this request fires `go`, the event it runs on",
        ),
        (
            format!(
                "{P}addresses = 1\nitems = [\"E1\"]\npolling = \"1h\"\nreads_per_day = 24\nbackfill = \"hourly\"\n"
            ),
            "10:12",
            "polling every 1h takes all of reads_per_day = 24: a backfill would have no reads left",
        ),
        ("sinks = {}\n".to_owned(), "1:1", "the file has no [[bus]]"),
        (
            "[[bus]]\nname = \"b\"\ntcp = \"h:1\"\n".to_owned(),
            "1:1",
            "this bus has no [[bus.request]]",
        ),
    ];
    for (text, at, fragment) in cases {
        let found = remarks(&text);
        assert!(
            found
                .iter()
                .any(|d| d.line_column() == at && d.message.contains(fragment)),
            "{at} {fragment:?} not in {found:#?}"
        );
    }
    // Within the budget: no warning.
    assert_eq!(
        remarks(&format!(
            "{P}addresses = 1\nitems = [\"E1\"]\npolling = \"15min\"\nreads_per_day = 96\n"
        )),
        []
    );
}

#[test]
fn limits_are_exact_whatever_their_form() {
    let config = valid(&format!(
        "{P}addresses = 1\nitems = [\"T1\"]\nonce = true\n[[bus.request.threshold]]\nitem = \"t1\"\nabove = 90.10\nbelow = \"-0.5\"\nevent = \"x\"\n"
    ));
    let threshold = &config.buses[0].requests[0].thresholds[0];
    assert_eq!(threshold.export_name, "T1");
    assert_eq!(
        threshold.above.map(|value| value.to_string()),
        Some("90.10".to_owned())
    );
    assert_eq!(
        threshold.below.map(|value| value.to_string()),
        Some("-0.5".to_owned())
    );
}

#[test]
fn a_missing_file_is_one_diagnostic_naming_it() {
    let error = load(Path::new("/nonexistent/kmplog.toml")).unwrap_err();
    assert_eq!(error.list().len(), 1);
    assert!(
        error
            .to_string()
            .contains("cannot read /nonexistent/kmplog.toml"),
        "{error}"
    );
}
