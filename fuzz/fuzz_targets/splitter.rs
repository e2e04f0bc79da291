//! Fuzz target: the frame splitter on arbitrary bytes in arbitrary chunks.
//!
//! The first input byte picks the frame length limit (bit 7 set: a small one,
//! 1..=64; else the default) and seeds the chunk sizes; the rest is the
//! stream. Checked after `finish`:
//! - every byte pushed comes out once, in order: the bytes of the Garbage and
//!   Malformed events, of each Frame event encoded again and one per ACK
//!   concatenate to the stream (so their lengths add up to it);
//! - every Frame re-encodes to bytes that decode to the same frame, and
//!   `Message::decode` takes it without panicking; a message that decodes
//!   encodes to a frame that decodes to it again;
//! - Garbage is never empty and holds no start byte or ACK; Malformed bytes
//!   begin with a start byte.
#![no_main]

use kmp::frame::{ACK, Direction, MAX_FRAME_LEN};
use kmp::message::Message;
use kmp::{Event, Frame, Splitter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let max_len = if control & 0x80 != 0 {
        usize::from(control & 0x3F) + 1
    } else {
        MAX_FRAME_LEN
    };

    let mut splitter = Splitter::with_max_len(max_len);
    let mut events = Vec::new();
    let mut rest = stream;
    let mut state = u32::from(control) | 1;
    while !rest.is_empty() {
        // A small xorshift: chunk sizes 1..=32 that follow from the input.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state % 32 + 1) as usize;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        events.extend(splitter.feed(chunk));
        rest = tail;
    }
    events.extend(splitter.finish());

    let mut replayed = Vec::with_capacity(stream.len());
    for event in &events {
        match event {
            Event::Frame(frame) => {
                let wire = frame.encode();
                assert_eq!(Frame::decode_with_limit(&wire, max_len).as_ref(), Ok(frame));
                if let Ok(message) = Message::decode(frame) {
                    let again = match &message {
                        Message::Request(request) => request.to_frame(frame.address),
                        Message::Response(response) => response.to_frame(frame.address),
                    };
                    let redecoded = Frame::decode(&again.encode()).expect("a valid frame");
                    assert_eq!(Message::decode(&redecoded).as_ref(), Ok(&message));
                }
                replayed.extend_from_slice(&wire);
            }
            Event::Ack => replayed.push(ACK),
            Event::Garbage(bytes) => {
                assert!(!bytes.is_empty(), "empty Garbage event");
                assert!(
                    !bytes
                        .iter()
                        .any(|&byte| byte == ACK || Direction::from_start_byte(byte).is_some()),
                    "Garbage holds a start byte or ACK: {bytes:02X?}"
                );
                replayed.extend_from_slice(bytes);
            }
            Event::Malformed { bytes, .. } => {
                assert!(
                    bytes
                        .first()
                        .is_some_and(|&byte| Direction::from_start_byte(byte).is_some()),
                    "Malformed bytes do not begin with a start byte: {bytes:02X?}"
                );
                replayed.extend_from_slice(bytes);
            }
        }
    }
    let accounted: usize = replayed.len();
    assert_eq!(accounted, stream.len(), "bytes in events != bytes pushed");
    assert_eq!(replayed, stream, "events do not replay the stream in order");
});
