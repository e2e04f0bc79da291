//! Writes a recording of KMP line traffic to stdout, as `kmplog sniff --file`
//! reads it: N frames of a master polling meters 1..=16, each poll a
//! GetRegister request for four registers and the meter's response, with a
//! GetType and a GetSerialNo exchange now and then, and every 500 frames a
//! frame with a bad CRC, an ACK, a run of garbage, a frame whose data does
//! not fit its command and one of a command kept raw, so that every kind of
//! line sniff prints occurs. The values move with the poll number; the
//! output is the same on every run.
//!
//! Usage: `cargo run --release -p kmp --example recording -- 100000 > rec.bin`
//! (the number of frames; default 100000). `scripts/sniff-bench` uses it.

use std::io::{self, Write};

use kmp::message::SoftwareRevision;
use kmp::{Direction, Frame, RegisterValue, Request, Response, Unit, Value};

/// (register, unit code, exponent) of the polled registers: E1 in GJ, T1 in
/// °C, the info code (a bit field, so its flags are printed) and the date
/// (yy:mm:dd, so its natural form is printed).
const POLLED: [(u16, u8, i8); 4] = [
    (60, 0x08, -3),
    (86, 0x25, -2),
    (99, 0x00, 0),
    (1003, 0x30, 0),
];

fn main() -> io::Result<()> {
    let frames: u64 = match std::env::args().nth(1) {
        None => 100_000,
        Some(text) => text.parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{text}' is not a number of frames, such as 100000"),
            )
        })?,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut wire = Vec::new();
    let mut written = 0;
    let mut poll: u64 = 0;
    while written < frames {
        let address = u8::try_from(poll % 16).expect("below 16") + 1;
        let exchange = match poll % 50 {
            0 => [
                Request::GetType.to_frame(address),
                type_response(poll).to_frame(address),
            ],
            25 => [
                Request::GetSerialNo.to_frame(address),
                Response::SerialNo {
                    serial: 7_000_000 + u32::from(address),
                }
                .to_frame(address),
            ],
            _ => [
                poll_request().to_frame(address),
                poll_response(poll).to_frame(address),
            ],
        };
        for frame in exchange {
            if written == frames {
                break;
            }
            wire.clear();
            frame.encode_into(&mut wire);
            if written % 500 == 499 {
                // A corrupt copy first: the CRC's low byte flipped.
                let mut bad = wire.clone();
                if let Some(crc_low) = bad.len().checked_sub(2).and_then(|at| bad.get_mut(at)) {
                    *crc_low ^= 0x01;
                }
                out.write_all(&bad)?;
                out.write_all(&[0x06, 0x55, 0xAA])?;
                // A register value cut short, and GetEventStatus (kept raw).
                Frame::new(Direction::FromMeter, address, 0x10, vec![0x00, 0x3C, 0x08])
                    .encode_into(&mut bad);
                Frame::new(Direction::ToMeter, address, 0x9B, vec![0x01, 0x1B])
                    .encode_into(&mut bad);
                out.write_all(bad.get(wire.len()..).unwrap_or_default())?;
            }
            out.write_all(&wire)?;
            written += 1;
        }
        poll += 1;
    }
    out.flush()
}

fn poll_request() -> Request {
    let ids: Vec<u16> = POLLED.iter().map(|&(id, ..)| id).collect();
    Request::get_register(&ids).expect("four registers")
}

fn poll_response(poll: u64) -> Response {
    let moving = i128::from(poll);
    let values = POLLED.iter().map(|&(register, unit, exponent)| {
        let mantissa = match register {
            60 => 1_234_567 + moving,
            86 => 6_000 + moving % 1_500,
            99 => [0, 0, 0, 8, 2][usize::try_from(poll % 5).expect("below 5")],
            _ => 261_101 + moving % 28,
        };
        RegisterValue {
            register,
            unit: Unit(unit),
            value: Value::new(mantissa, exponent).expect("a mantissa of at most 8 digits"),
        }
    });
    Response::Registers(values.collect())
}

fn type_response(poll: u64) -> Response {
    Response::Type {
        meter_type: 0x0603,
        revision: SoftwareRevision {
            letter: 1 + u8::try_from(poll % 26).expect("below 26"),
            number: 1,
        },
    }
}
