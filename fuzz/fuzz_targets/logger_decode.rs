//! Fuzz target: the logger command (CID 0xB8) on arbitrary data, in both
//! directions, without the fuzzer having to find a valid CRC first.
//!
//! The data is wrapped in a frame of the logger CID; decoding may fail but
//! never panic, and what decodes must encode back to exactly the same data
//! (every logger layout is canonical: counts are derived, rows after the
//! first carry only mantissas in row 1's layout).
#![no_main]

use kmp::frame::{Direction, Frame};
use kmp::message::{Command, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cid = Command::Logger.cid();
    let to_meter = Frame::new(Direction::ToMeter, 0x3F, cid, data.to_vec());
    if let Ok(request) = Request::decode(&to_meter) {
        assert_eq!(request.to_frame(0x3F), to_meter, "a logger request re-encodes to other data");
    }
    let from_meter = Frame::new(Direction::FromMeter, 0x3F, cid, data.to_vec());
    if let Ok(response) = Response::decode(&from_meter) {
        assert_eq!(
            response.to_frame(0x3F),
            from_meter,
            "a logger reply re-encodes to other data"
        );
    }
});
