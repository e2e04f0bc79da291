//! The TCP front end: a listener whose every connection is one line with all
//! the meters on it, as a serial-to-Ethernet gateway in front of a bus would
//! be. Connections are served concurrently, or, behind a [`Gate`], as
//! many at once as the gate allows (ser2net's `max-connections`): a
//! connection beyond them is accepted, counted as refused and closed at
//! once, which is how a test sees two masters on one bus.

use std::io;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;

use super::Simulator;
use super::pacing::Pacing;
use super::session;

/// How many connections a listener serves at once, what it refused, and
/// where each opening, closing and refusal is written down.
pub struct Gate {
    max: usize,
    open: AtomicUsize,
    refused: AtomicU64,
    /// Lines `<unix time in µs> open|close|refused <listener> <peer>`.
    journal: Option<Mutex<std::fs::File>>,
}

impl Gate {
    /// At most `max` connections at once per listener, each event appended
    /// to `journal` when given.
    pub fn new(max: usize, journal: Option<std::fs::File>) -> Gate {
        Gate {
            max,
            open: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            journal: journal.map(Mutex::new),
        }
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn note(&self, event: &str, local: std::net::SocketAddr, peer: std::net::SocketAddr) {
        if let Some(journal) = &self.journal {
            let micros = jiff::Timestamp::now().as_microsecond();
            let line = format!("{micros} {event} {local} {peer}\n");
            let mut file = journal.lock().unwrap_or_else(|e| e.into_inner());
            // One write of the whole line: the listeners' gates append to
            // the same file, and an O_APPEND write lands whole. A journal
            // that cannot be written loses lines, not the line.
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// Accepts connections on `listener` and serves each as a line, until the
/// task is dropped. Only a failure of the listener itself ends it. During
/// the simulator's [outage](super::Outage) the listener is closed, and so
/// is every connection.
pub async fn serve(
    listener: TcpListener,
    simulator: Arc<Simulator>,
    pacing: Option<Pacing>,
) -> io::Result<()> {
    serve_gated(listener, simulator, pacing, None).await
}

/// [`serve`], with at most as many connections at once as `gate` allows
/// (one gate per listener).
pub async fn serve_gated(
    listener: TcpListener,
    simulator: Arc<Simulator>,
    pacing: Option<Pacing>,
    gate: Option<Arc<Gate>>,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let mut listener = listener;
    loop {
        let accepted = match simulator.outage_ahead() {
            Some((begins, ends)) => tokio::select! {
                accepted = listener.accept() => Some(accepted),
                () = tokio::time::sleep_until(begins) => None,
            }
            .ok_or(ends),
            None => Ok(listener.accept().await),
        };
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(ends) => {
                drop(listener);
                simulator.log(&format!("tcp {local}"), "down: outage");
                tokio::time::sleep_until(ends).await;
                listener = TcpListener::bind(local).await?;
                simulator.log(&format!("tcp {local}"), "up again after the outage");
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Running out of file descriptors passes; back off rather
                // than spin or give up the port.
                simulator.log(
                    &format!("tcp {local}"),
                    format_args!("accept failed: {error}"),
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Some(gate) = &gate {
            if gate.open.fetch_add(1, Ordering::SeqCst) >= gate.max {
                gate.open.fetch_sub(1, Ordering::SeqCst);
                gate.refused.fetch_add(1, Ordering::SeqCst);
                gate.note("refused", local, peer);
                simulator.log(
                    &format!("tcp {local} from {peer}"),
                    "refused: a connection is open already (max-connections)",
                );
                drop(stream);
                continue;
            }
            gate.note("open", local, peer);
        }
        let simulator = Arc::clone(&simulator);
        let gate = gate.clone();
        tokio::spawn(async move {
            let name = format!("tcp {local} from {peer}");
            // Frames are small writes that must leave at once.
            if let Err(error) = stream.set_nodelay(true) {
                simulator.log(&name, format_args!("cannot turn Nagle off: {error}"));
            }
            simulator.log(&name, "connected");
            let served = session::serve(&simulator, &name, stream, pacing);
            let outcome = match simulator.outage_ahead() {
                Some((begins, _)) => tokio::select! {
                    outcome = served => Some(outcome),
                    () = tokio::time::sleep_until(begins) => None,
                },
                None => Some(served.await),
            };
            match outcome {
                Some(Ok(())) => simulator.log(&name, "closed by the master"),
                Some(Err(error)) => {
                    simulator.log(&name, format_args!("connection failed: {error}"));
                }
                None => simulator.log(&name, "closed: outage"),
            }
            if let Some(gate) = gate {
                gate.note("close", local, peer);
                gate.open.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use kmp::catalogue::Model;
    use kmp::{Request, Response};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::sim::line::LineConfig;
    use crate::sim::meter::Meter;
    use crate::sim::testing::{read_response, simulator};

    #[tokio::test]
    async fn answers_get_register_over_tcp_on_several_connections() {
        let meters = vec![
            Meter::new(63, Model::Multical603),
            Meter::new(5, Model::Kamstrup382),
        ];
        let simulator = simulator(meters, LineConfig::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, simulator, None));
        let mut streams = [
            TcpStream::connect(address).await.unwrap(),
            TcpStream::connect(address).await.unwrap(),
        ];
        for (connection, meter, ids) in [
            (0, 63, vec![60, 68, 86]),
            (1, 5, vec![1, 1054]),
            (0, 5, vec![1]),
        ] {
            let stream = &mut streams[connection];
            let request = Request::get_register(&ids)
                .unwrap()
                .to_frame(meter)
                .encode();
            stream.write_all(&request).await.unwrap();
            let Response::Registers(values) = read_response(stream).await else {
                panic!("not a register response");
            };
            let got: Vec<u16> = values.iter().map(|value| value.register).collect();
            assert_eq!(got, ids);
        }
        server.abort();
    }

    #[tokio::test]
    async fn an_outage_closes_the_connections_refuses_new_ones_and_moves_the_clock_on() {
        let simulator = crate::sim::Simulator::new(crate::sim::Settings {
            meters: vec![Meter::new(63, Model::Multical603)],
            line: LineConfig::default(),
            seed: Some(1),
            quiet: true,
            outage: Some(crate::sim::Outage {
                after: Duration::from_millis(300),
                lasts: Duration::from_millis(300),
                skips: Duration::from_secs(3 * 3600),
            }),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Arc::clone(&simulator), None));
        let clock = Request::get_register(&[1003, 1002])
            .unwrap()
            .to_frame(63)
            .encode();
        let meter_time = |response: Response| {
            let Response::Registers(values) = response else {
                panic!("not registers");
            };
            let stamp = kmp::logger::row_time(&values).unwrap();
            jiff::civil::date(stamp.year as i16, stamp.month as i8, stamp.day as i8).at(
                stamp.hour as i8,
                stamp.minute as i8,
                stamp.second as i8,
                0,
            )
        };
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(&clock).await.unwrap();
        let before = meter_time(read_response(&mut stream).await);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).await.unwrap(), 0, "closed");
        assert!(TcpStream::connect(address).await.is_err(), "refused");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(&clock).await.unwrap();
        let after = meter_time(read_response(&mut stream).await);
        let moved = after.duration_since(before).as_secs();
        assert!((10_800..=10_802).contains(&moved), "{before} then {after}");
        server.abort();
    }

    #[tokio::test]
    async fn a_gate_of_one_refuses_a_second_connection_while_the_first_is_open() {
        let simulator = simulator(
            vec![Meter::new(63, Model::Multical603)],
            LineConfig::default(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let gate = Arc::new(Gate::new(1, None));
        let server = tokio::spawn(serve_gated(
            listener,
            simulator,
            None,
            Some(Arc::clone(&gate)),
        ));
        let request = Request::GetSerialNo.to_frame(63).encode();
        let mut first = TcpStream::connect(address).await.unwrap();
        first.write_all(&request).await.unwrap();
        read_response(&mut first).await;
        let mut second = TcpStream::connect(address).await.unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(second.read(&mut byte).await.unwrap(), 0, "closed at once");
        assert_eq!(gate.refused(), 1);
        drop(first);
        // Once the first has gone, a new one is served.
        let mut third = loop {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream.write_all(&request).await.unwrap();
            match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await {
                Ok(Ok(1)) => break stream,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let mut rest = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_millis(200), third.read(&mut rest)).await;
        assert!(
            gate.refused() <= 2,
            "at most one more refusal while the first closed"
        );
        server.abort();
    }

    #[tokio::test]
    async fn echoes_the_request_then_replies_at_the_pace_of_the_line() {
        let line = LineConfig {
            echo: true,
            ..LineConfig::default()
        };
        let simulator = simulator(vec![Meter::new(63, Model::Multical603)], line);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let pacing = Pacing::new(9_600);
        let server = tokio::spawn(serve(listener, simulator, Some(pacing)));
        let mut stream = TcpStream::connect(address).await.unwrap();
        let request = Request::GetSerialNo.to_frame(63).encode();
        let start = tokio::time::Instant::now();
        stream.write_all(&request).await.unwrap();
        let mut echo = vec![0; request.len()];
        stream.read_exact(&mut echo).await.unwrap();
        assert_eq!(echo, request);
        let Response::SerialNo { .. } = read_response(&mut stream).await else {
            panic!("not a serial number");
        };
        let reply_len = Response::SerialNo { serial: 0 }.to_frame(63).encode().len();
        assert!(start.elapsed() >= pacing.duration(request.len() + reply_len));
        server.abort();
    }
}
