//! Cuts a byte stream, fed in arbitrary chunks, into frames and ACKs.
//!
//! The splitter never fails the stream: bytes outside any frame come out as
//! [`Event::Garbage`], a frame that is cut short, too long or corrupt comes out
//! as [`Event::Malformed`] with its bytes, and the splitter resynchronises on
//! the next start byte. Nothing that was received is silently dropped, so a
//! sniffer can show all of it and a master can count line faults.

use std::collections::VecDeque;

use crate::frame::{
    ACK, Direction, Frame, FrameError, MAX_FRAME_LEN, START_FROM_METER, START_TO_METER, STOP,
};

/// What the splitter found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A valid frame, in either direction.
    Frame(Frame),
    /// A single ACK byte outside any frame.
    Ack,
    /// Bytes outside any frame that are neither a start byte nor an ACK.
    Garbage(Vec<u8>),
    /// A frame that could not be decoded, with the bytes it consisted of.
    Malformed {
        /// Why it was rejected.
        error: FrameError,
        /// The bytes, from its start byte on.
        bytes: Vec<u8>,
    },
}

/// The push-bytes, pull-events frame splitter. See the module documentation.
#[derive(Debug, Clone)]
pub struct Splitter {
    /// The frame being received, from its start byte; empty between frames.
    frame: Vec<u8>,
    /// Bytes outside frames not yet reported.
    garbage: Vec<u8>,
    events: VecDeque<Event>,
    max_len: usize,
}

impl Default for Splitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Splitter {
    /// A splitter that accepts frames up to [`MAX_FRAME_LEN`] bytes.
    pub fn new() -> Self {
        Self::with_max_len(MAX_FRAME_LEN)
    }

    /// A splitter that rejects frames longer than `max_len` bytes on the wire.
    pub fn with_max_len(max_len: usize) -> Self {
        Splitter {
            frame: Vec::new(),
            garbage: Vec::new(),
            events: VecDeque::new(),
            max_len,
        }
    }

    /// Feeds received bytes; the events they complete are queued.
    pub fn push(&mut self, mut bytes: &[u8]) {
        while let Some((&byte, rest)) = bytes.split_first() {
            if self.frame.is_empty() {
                self.push_byte(byte);
                bytes = rest;
                continue;
            }
            // Inside a frame, the bytes up to the next start, stop or ACK
            // byte only extend it (as long as it stays shorter than the
            // limit): copied at once rather than byte by byte.
            let room = self.max_len.saturating_sub(self.frame.len() + 1);
            let run = run_len(bytes.get(..room).unwrap_or(bytes));
            let (plain, rest) = bytes.split_at(run);
            self.frame.extend_from_slice(plain);
            if let Some((&byte, rest)) = rest.split_first() {
                self.push_byte(byte);
                bytes = rest;
            } else {
                bytes = rest;
            }
        }
    }

    /// The next complete event, if any.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Feeds bytes and drains the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> impl Iterator<Item = Event> + '_ {
        self.push(bytes);
        self.events.drain(..)
    }

    /// Ends the stream: reports a frame in progress as truncated and any
    /// unreported garbage, so that nothing received goes unreported.
    pub fn finish(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.end_frame_early();
        self.report_garbage();
        self.events.drain(..)
    }

    /// Forgets a partial frame and unreported garbage (after a reconnect, say).
    pub fn reset(&mut self) {
        self.frame.clear();
        self.garbage.clear();
        self.events.clear();
    }

    /// Whether a frame has started but not yet ended.
    pub fn in_frame(&self) -> bool {
        !self.frame.is_empty()
    }

    fn push_byte(&mut self, byte: u8) {
        if Direction::from_start_byte(byte).is_some() {
            // A start byte cannot occur stuffed, so it always opens a frame:
            // a frame still in progress was cut short.
            self.end_frame_early();
            self.report_garbage();
            self.frame.push(byte);
        } else if self.frame.is_empty() {
            if byte == ACK {
                self.report_garbage();
                self.events.push_back(Event::Ack);
            } else {
                self.garbage.push(byte);
            }
        } else if byte == ACK {
            self.end_frame_early();
            self.events.push_back(Event::Ack);
        } else {
            self.frame.push(byte);
            if byte == STOP {
                // Decoded in place and cleared, so that the buffer keeps its
                // capacity from frame to frame.
                let event = match Frame::decode_with_limit(&self.frame, self.max_len) {
                    Ok(frame) => Event::Frame(frame),
                    Err(error) => Event::Malformed {
                        error,
                        bytes: self.frame.clone(),
                    },
                };
                self.frame.clear();
                self.events.push_back(event);
            } else if self.frame.len() >= self.max_len {
                // Even a stop byte now would make the frame too long: give up
                // on it and treat what follows as garbage until the next start.
                let bytes = std::mem::take(&mut self.frame);
                self.events.push_back(Event::Malformed {
                    error: FrameError::TooLong { max: self.max_len },
                    bytes,
                });
            }
        }
    }

    fn end_frame_early(&mut self) {
        if !self.frame.is_empty() {
            let bytes = std::mem::take(&mut self.frame);
            let error = FrameError::Truncated { len: bytes.len() };
            self.events.push_back(Event::Malformed { error, bytes });
        }
    }

    fn report_garbage(&mut self) {
        if !self.garbage.is_empty() {
            self.events
                .push_back(Event::Garbage(std::mem::take(&mut self.garbage)));
        }
    }
}

/// How many bytes of `bytes` come before the first that ends a run: looked
/// for 16 bytes at a time, each block without a branch.
fn run_len(bytes: &[u8]) -> usize {
    let mut plain = 0;
    for block in bytes.chunks_exact(16) {
        if block
            .iter()
            .fold(false, |ends, &byte| ends | ends_a_run(byte))
        {
            break;
        }
        plain += 16;
    }
    let rest = bytes.get(plain..).unwrap_or_default();
    plain
        + rest
            .iter()
            .position(|&byte| ends_a_run(byte))
            .unwrap_or(rest.len())
}

/// Whether `byte` does more inside a frame than extend it: a start byte,
/// the stop byte or an ACK.
fn ends_a_run(byte: u8) -> bool {
    matches!(byte, START_TO_METER | START_FROM_METER | STOP | ACK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIAL_REPLY: [u8; 10] = [0x40, 0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x56, 0x0D];

    fn serial_reply_frame() -> Frame {
        Frame::decode(&SERIAL_REPLY).unwrap()
    }

    fn split_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut splitter = Splitter::new();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(splitter.feed(chunk));
        }
        events.extend(splitter.finish());
        events
    }

    #[test]
    fn frame_split_byte_by_byte() {
        let chunks: Vec<&[u8]> = SERIAL_REPLY.chunks(1).collect();
        assert_eq!(split_all(&chunks), [Event::Frame(serial_reply_frame())]);
    }

    #[test]
    fn garbage_before_and_between_frames_is_reported_then_skipped() {
        let stream = [
            &[0xFF, 0x00, 0x0D][..],
            &SERIAL_REPLY,
            &[0x55],
            &[0x06],
            &SERIAL_REPLY,
        ]
        .concat();
        assert_eq!(
            split_all(&[&stream]),
            [
                Event::Garbage(vec![0xFF, 0x00, 0x0D]),
                Event::Frame(serial_reply_frame()),
                Event::Garbage(vec![0x55]),
                Event::Ack,
                Event::Frame(serial_reply_frame()),
            ]
        );
    }

    #[test]
    fn truncated_frame_is_reported_and_the_next_start_resynchronises() {
        let stream = [&SERIAL_REPLY[..5], &SERIAL_REPLY].concat();
        assert_eq!(
            split_all(&[&stream]),
            [
                Event::Malformed {
                    error: FrameError::Truncated { len: 5 },
                    bytes: SERIAL_REPLY[..5].to_vec()
                },
                Event::Frame(serial_reply_frame()),
            ]
        );
    }

    #[test]
    fn ack_inside_a_frame_cuts_it_short() {
        let stream = [&SERIAL_REPLY[..3], &[0x06]].concat();
        assert_eq!(
            split_all(&[&stream]),
            [
                Event::Malformed {
                    error: FrameError::Truncated { len: 3 },
                    bytes: SERIAL_REPLY[..3].to_vec()
                },
                Event::Ack,
            ]
        );
    }

    #[test]
    fn over_long_frame_is_bounded_then_the_stream_recovers() {
        let mut splitter = Splitter::with_max_len(16);
        let mut stream = vec![0x40];
        stream.extend([0x11; 40]);
        stream.push(0x0D);
        stream.extend(SERIAL_REPLY);
        let events: Vec<Event> = splitter.feed(&stream).collect();
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(
            matches!(&events[0], Event::Malformed { error: FrameError::TooLong { max: 16 }, bytes } if bytes.len() == 16)
        );
        assert_eq!(
            events[1],
            Event::Garbage([vec![0x11; 25], vec![0x0D]].concat())
        );
        assert_eq!(events[2], Event::Frame(serial_reply_frame()));
    }

    #[test]
    fn unfinished_frame_at_end_of_stream_is_reported_by_finish() {
        let mut splitter = Splitter::new();
        assert_eq!(splitter.feed(&SERIAL_REPLY[..4]).count(), 0);
        assert!(splitter.in_frame());
        let events: Vec<Event> = splitter.finish().collect();
        assert_eq!(
            events,
            [Event::Malformed {
                error: FrameError::Truncated { len: 4 },
                bytes: SERIAL_REPLY[..4].to_vec()
            }]
        );
    }

    /// The events of `stream` with every byte through `push_byte`, the
    /// byte-wise reference of what `push` does in runs.
    fn byte_wise(stream: &[u8], max_len: usize) -> Vec<Event> {
        let mut splitter = Splitter::with_max_len(max_len);
        for &byte in stream {
            splitter.push_byte(byte);
        }
        splitter.finish().collect()
    }

    fn line_byte() -> impl proptest::strategy::Strategy<Value = u8> {
        use proptest::prelude::*;
        prop_oneof![
            any::<u8>(),
            proptest::sample::select(vec![0x80, 0x40, 0x0D, 0x06, 0x1B, 0x7F, 0xF2])
        ]
    }

    proptest::proptest! {
        #[test]
        fn runs_split_as_byte_by_byte(
            stream in proptest::collection::vec(line_byte(), 0..300),
            max_len in 1usize..80,
            cut in 0usize..300,
        ) {
            let cut = cut.min(stream.len());
            let (head, tail) = stream.split_at(cut);
            let mut splitter = Splitter::with_max_len(max_len);
            let mut events: Vec<Event> = splitter.feed(head).collect();
            events.extend(splitter.feed(tail));
            events.extend(splitter.finish());
            proptest::prop_assert_eq!(events, byte_wise(&stream, max_len));
        }
    }
}
