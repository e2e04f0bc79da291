//! The TCP front end: a listener whose every connection is one line with all
//! the meters on it, as a serial-to-Ethernet gateway in front of a bus would
//! be. Connections are served concurrently.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::Simulator;
use super::pacing::Pacing;
use super::session;

/// Accepts connections on `listener` and serves each as a line, until the
/// task is dropped. Only a failure of the listener itself ends it. During
/// the simulator's [outage](super::Outage) the listener is closed, and so
/// is every connection.
pub async fn serve(
    listener: TcpListener,
    simulator: Arc<Simulator>,
    pacing: Option<Pacing>,
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
        let simulator = Arc::clone(&simulator);
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
