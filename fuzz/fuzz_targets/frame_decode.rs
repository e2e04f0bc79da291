//! Fuzz target: `Frame::decode` and `Message::decode` on arbitrary bytes.
//!
//! Neither may panic. A frame that decodes must encode back to exactly the
//! bytes it came from (stuffing is canonical), and a message that decodes
//! must encode to a frame that decodes to the same frame and message again.
#![no_main]

use kmp::Frame;
use kmp::message::{Message, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|wire: &[u8]| {
    let Ok(frame) = Frame::decode(wire) else {
        return;
    };
    let encoded = frame.encode();
    assert_eq!(encoded, wire, "a decoded frame re-encodes to other bytes");
    assert_eq!(Frame::decode(&encoded).as_ref(), Ok(&frame));

    let Ok(message) = Message::decode(&frame) else {
        return;
    };
    let again = match &message {
        Message::Request(request) => request.to_frame(frame.address),
        Message::Response(response) => response.to_frame(frame.address),
    };
    assert_eq!(
        (again.direction, again.address, again.cid),
        (frame.direction, frame.address, frame.cid)
    );
    let redecoded = Frame::decode(&again.encode()).expect("an encoded message is a valid frame");
    assert_eq!(redecoded, again);
    assert_eq!(Message::decode(&redecoded).as_ref(), Ok(&message));
    match &message {
        Message::Request(request) => assert_eq!(Request::decode(&redecoded).as_ref(), Ok(request)),
        Message::Response(response) => {
            assert_eq!(Response::decode(&redecoded).as_ref(), Ok(response))
        }
    }
});
