//! Criterion benchmarks of the KMP codec, one frame per iteration (so the
//! throughput criterion prints is frames per second):
//! - `decode_response_8_registers`: the wire bytes of a GetRegister response
//!   with 8 registers → `Frame::decode` → `Response::decode`;
//! - `split_decode_response_8_registers`: the same bytes pushed through a
//!   `Splitter`, its Frame event taken and decoded by `Response::decode`;
//! - `encode_request_8_registers`: a GetRegister request for 8 registers →
//!   `Request::to_frame` → `Frame::encode` (CRC and stuffing).
//!
//! Run with `cargo bench -p kmp --bench codec`; figures go to BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kmp::{Event, Frame, RegisterValue, Request, Response, Splitter, Unit, Value};

/// The registers of a MULTICAL heat meter a logger typically polls in one
/// request: (register, unit code, mantissa, exponent).
const REGISTERS: [(u16, u8, i128, i8); 8] = [
    (60, 0x08, 123_456, -3), // E1, GJ
    (63, 0x08, 1_234, -3),   // E3, GJ
    (68, 0x28, 6_918, -2),   // V1, m³
    (74, 0x29, 406, 0),      // FLOW1, l/h
    (80, 0x16, 128, -1),     // POWER1, kW (0x80 needs stuffing)
    (86, 0x25, 6_666, -2),   // T1, °C
    (87, 0x25, 3_400, -2),   // T2, °C
    (89, 0x26, 3_266, -2),   // DT, K
];

fn register_ids() -> Vec<u16> {
    REGISTERS.iter().map(|&(id, ..)| id).collect()
}

fn response() -> Response {
    Response::Registers(
        REGISTERS
            .iter()
            .map(|&(register, unit, mantissa, exponent)| RegisterValue {
                register,
                unit: Unit(unit),
                value: Value::new(mantissa, exponent).expect("a valid value"),
            })
            .collect(),
    )
}

fn codec(c: &mut Criterion) {
    let response = response();
    let wire = response.to_frame(0x3F).encode();
    let decoded = Response::decode(&Frame::decode(&wire).expect("a valid frame"));
    assert_eq!(
        decoded.as_ref(),
        Ok(&response),
        "the benchmark frame decodes"
    );
    let request = Request::get_register(&register_ids()).expect("8 registers");

    let mut group = c.benchmark_group("kmp_codec");
    group.throughput(Throughput::Elements(1));

    group.bench_function("decode_response_8_registers", |b| {
        b.iter(|| {
            let frame = Frame::decode(black_box(&wire)).expect("a valid frame");
            Response::decode(&frame).expect("a valid response")
        })
    });

    group.bench_function("split_decode_response_8_registers", |b| {
        let mut splitter = Splitter::new();
        b.iter(|| {
            splitter.push(black_box(&wire));
            let Some(Event::Frame(frame)) = splitter.next_event() else {
                unreachable!("the splitter yields the frame")
            };
            Response::decode(&frame).expect("a valid response")
        })
    });

    group.bench_function("encode_request_8_registers", |b| {
        b.iter(|| black_box(&request).to_frame(0x3F).encode())
    });

    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
