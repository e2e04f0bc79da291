//! The UDP front end: one socket, one datagram per frame, as gateways that
//! work that way do. Every peer address is a line of its own, with all the
//! meters on it; a reply goes back to the peer that asked, as one datagram.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use super::Simulator;
use super::line::Line;

/// Serves datagrams on `socket` until the task is dropped or the socket fails.
pub async fn serve(socket: UdpSocket, simulator: Arc<Simulator>) -> io::Result<()> {
    let local = socket.local_addr()?;
    let mut lines: HashMap<SocketAddr, Line> = HashMap::new();
    let mut datagram = [0u8; 2048];
    loop {
        let (count, peer) = socket.recv_from(&mut datagram).await?;
        let name = format!("udp {local} from {peer}");
        let line = lines.entry(peer).or_insert_with(|| simulator.open_line());
        let output = line.receive(datagram.get(..count).unwrap_or_default(), simulator.now());
        if !output.echo.is_empty() {
            socket.send_to(&output.echo, peer).await?;
        }
        for exchange in output.exchanges {
            simulator.log(&name, &exchange);
            if let Some(reply) = exchange.reply() {
                // The line is half duplex: the next datagram waits for this
                // reply, as the next frame on a serial line would.
                tokio::time::sleep(reply.delay).await;
                socket.send_to(&reply.bytes, peer).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::line::LineConfig;
    use crate::sim::meter::Meter;
    use crate::sim::testing::simulator;
    use kmp::catalogue::Model;
    use kmp::{Frame, Request, Response};

    #[tokio::test]
    async fn answers_each_peer_with_one_datagram() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let meters = vec![Meter::new(63, Model::Multical603)];
        tokio::spawn(serve(socket, simulator(meters, LineConfig::default())));
        for _ in 0..2 {
            let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let request = Request::get_register(&[60, 86])
                .unwrap()
                .to_frame(63)
                .encode();
            client.send_to(&request, address).await.unwrap();
            let mut reply = [0u8; 256];
            let (count, _) = client.recv_from(&mut reply).await.unwrap();
            let frame = Frame::decode(&reply[..count]).unwrap();
            let Response::Registers(values) = Response::decode(&frame).unwrap() else {
                panic!("not a register reply: {frame:?}");
            };
            assert_eq!(
                values
                    .iter()
                    .map(|value| value.register)
                    .collect::<Vec<_>>(),
                [60, 86]
            );
        }
    }
}
