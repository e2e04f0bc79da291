//! The master on real lines to the simulator at 1200 baud: a TCP gateway,
//! whose line speed kmplog does not know, and a pseudo-terminal, whose
//! speed it does. A logger page takes longer than the default timeout to
//! arrive; it must be read whole, and a reply given up on must not be taken
//! for the answer to the next request.

use std::sync::Arc;
use std::time::Duration;

use kmp::catalogue::Model;
use kmp::logger::{LogRegisters, Logger, LoggerRequest, LoggerResponse};
use kmp::{Request, Response};
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::master::{LineFault, Master, MasterSettings, Outcome};
use crate::backfill::paging::PAGE_DATA_BYTES;
use crate::sim::Simulator;
use crate::sim::line::LineConfig;
use crate::sim::meter::Meter;
use crate::sim::pacing::Pacing;
use crate::sim::pty::Pty;
use crate::sim::testing::simulator;
use crate::transport::{BoxedLine, Endpoint, SerialSettings, TcpSettings};

const ADDRESS: u8 = 63;
const BAUD: u32 = 1_200;
/// Rows asked for: more than the simulated meter sends at once (400 bytes
/// of rows), so that the reply is as long as a page gets.
const ROWS: u16 = 10;

fn meters() -> Arc<Simulator> {
    simulator(
        vec![Meter::new(ADDRESS, Model::Multical603)],
        LineConfig::default(),
    )
}

/// The newest `ROWS` rows of the hourly logger, all its registers.
fn page_request(simulator: &Simulator) -> Request {
    let registers = crate::sim::loggers::registers(&simulator.meters()[0]);
    Request::Logger(LoggerRequest::GetLogLastEntryPastAbs {
        logger: Logger::HOURLY,
        offset: 0xFFFF,
        entries: ROWS,
        registers: LogRegisters::new(&registers).unwrap(),
    })
}

/// A gateway in front of the meters' 1200-baud line.
async fn gateway(simulator: Arc<Simulator>) -> (Endpoint, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        crate::sim::tcp::serve(listener, simulator, Some(Pacing::new(BAUD)))
            .await
            .unwrap();
    });
    (Endpoint::Tcp(TcpSettings::new(address)), server)
}

/// A serial port at 1200 baud, a pseudo-terminal with the meters behind it.
fn serial_port(simulator: Arc<Simulator>) -> (Endpoint, tokio::task::JoinHandle<()>) {
    let pty = Pty::open().unwrap();
    let settings = SerialSettings::new(pty.path());
    assert_eq!(settings.baud, BAUD);
    let server = tokio::spawn(async move {
        let _ = crate::sim::pty::serve(pty, simulator, Some(Pacing::new(BAUD))).await;
    });
    (Endpoint::Serial(settings), server)
}

/// A master with the default timeout and no retries on `endpoint`.
async fn master(endpoint: &Endpoint) -> Master<BoxedLine> {
    let settings = MasterSettings {
        retries: 0,
        byte_time: endpoint.byte_time(),
        ..MasterSettings::default()
    };
    Master::new(
        endpoint.open().await.unwrap(),
        endpoint.to_string(),
        settings,
    )
}

/// Reads a page as the backfill does, expecting a full page's bytes, and
/// checks it came whole although it took longer than the timeout.
async fn page_is_read_whole(endpoint: Endpoint, simulator: &Simulator) {
    let mut master = master(&endpoint).await;
    let start = Instant::now();
    let exchange = master
        .transact_expecting(
            ADDRESS,
            &page_request(simulator),
            PAGE_DATA_BYTES + PAGE_DATA_BYTES / 4,
        )
        .await
        .unwrap();
    let elapsed = start.elapsed();
    let Outcome::Response(response) = exchange.outcome else {
        panic!("{endpoint}: {exchange:?}");
    };
    let reply_len = response.to_frame(ADDRESS).encode().len();
    let Response::Logger(LoggerResponse::Entries(entries)) = response else {
        panic!("{endpoint}: not rows: {response:?}");
    };
    assert!(!entries.table.rows().is_empty(), "{endpoint}");
    assert!(reply_len >= 350, "{endpoint}: {reply_len} bytes");
    assert!(
        elapsed > MasterSettings::default().timeout,
        "{endpoint}: {reply_len} bytes in {elapsed:?}, within the timeout"
    );
    assert_eq!(
        (exchange.attempts, exchange.faults),
        (1, vec![]),
        "{endpoint}"
    );
}

/// Gives up on a page after a bound too short for it, then asks for the
/// serial number: the answer is the serial number, the page's late end is
/// counted stale.
async fn cut_off_reply_does_not_poison_the_next(endpoint: Endpoint, simulator: &Simulator) {
    let mut master = master(&endpoint).await;
    let cut = master
        .transact_expecting(ADDRESS, &page_request(simulator), 64)
        .await
        .unwrap();
    assert!(
        matches!(cut.outcome, Outcome::BadFrame(_)),
        "{endpoint}: {cut:?}"
    );
    let next = master
        .transact(ADDRESS, &Request::GetSerialNo)
        .await
        .unwrap();
    assert_eq!(
        next.outcome,
        Outcome::Response(Response::SerialNo {
            serial: simulator.meters()[0].serial()
        }),
        "{endpoint}: {next:?}"
    );
    assert_eq!(next.attempts, 1, "{endpoint}");
    let stale: usize = next
        .faults
        .iter()
        .map(|fault| match fault {
            LineFault::Stale(bytes) => *bytes,
            other => panic!("{endpoint}: {other}"),
        })
        .sum();
    // The page ran on for well over a hundred bytes after the cut.
    assert!(stale > 100, "{endpoint}: {stale} stale bytes");
    // And the line is clean again: the next poll finds nothing stale.
    let again = master
        .transact(ADDRESS, &Request::GetSerialNo)
        .await
        .unwrap();
    assert_eq!(
        (again.outcome, again.faults),
        (next.outcome, vec![]),
        "{endpoint}"
    );
}

#[tokio::test]
async fn logger_page_behind_a_gateway_is_read_whole_with_the_default_timeout() {
    let simulator = meters();
    let (endpoint, server) = gateway(Arc::clone(&simulator)).await;
    assert_eq!(endpoint.byte_time(), Duration::ZERO, "speed unknown");
    page_is_read_whole(endpoint, &simulator).await;
    server.abort();
}

#[tokio::test]
async fn logger_page_on_a_serial_port_is_read_whole_with_the_default_timeout() {
    let simulator = meters();
    let (endpoint, server) = serial_port(Arc::clone(&simulator));
    page_is_read_whole(endpoint, &simulator).await;
    server.abort();
}

#[tokio::test]
async fn reply_cut_off_behind_a_gateway_does_not_poison_the_next_exchange() {
    let simulator = meters();
    let (endpoint, server) = gateway(Arc::clone(&simulator)).await;
    cut_off_reply_does_not_poison_the_next(endpoint, &simulator).await;
    server.abort();
}

#[tokio::test]
async fn reply_cut_off_on_a_serial_port_does_not_poison_the_next_exchange() {
    let simulator = meters();
    let (endpoint, server) = serial_port(Arc::clone(&simulator));
    cut_off_reply_does_not_poison_the_next(endpoint, &simulator).await;
    server.abort();
}
