//! One KMP frame as it travels on the line:
//! `START | stuffed(ADDRESS | CID | DATA... | CRC_HI | CRC_LO) | STOP`.
//!
//! The start byte tells the direction (`0x80` to the meter, `0x40` from it).
//! [`Frame::decode`] checks everything a frame can get wrong and says where;
//! [`Frame::encode`] produces exactly what goes on the wire.

use crate::crc::checksum;
use crate::stuffing::{needs_escape, stuff_into};

/// Start byte of a frame sent to a meter.
pub const START_TO_METER: u8 = 0x80;
/// Start byte of a frame sent by a meter.
pub const START_FROM_METER: u8 = 0x40;
/// Last byte of every frame.
pub const STOP: u8 = 0x0D;
/// Acknowledgement: a single byte on its own, outside any frame.
pub const ACK: u8 = 0x06;
/// Escape byte of the stuffing.
pub const ESCAPE: u8 = 0x1B;

/// The longest frame accepted by default, in bytes on the wire including start
/// and stop. A full 8-register response is about 100 bytes; the log commands
/// return more. Anything longer is a line fault, not a frame.
pub const MAX_FRAME_LEN: usize = 1024;

/// Unstuffed bytes every frame has besides its data: address, CID and CRC.
const OVERHEAD: usize = 4;

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the master (the logger) to a meter: a request.
    ToMeter,
    /// From a meter to the master: a response.
    FromMeter,
}

impl Direction {
    /// The start byte that opens a frame going this way.
    pub fn start_byte(self) -> u8 {
        match self {
            Direction::ToMeter => START_TO_METER,
            Direction::FromMeter => START_FROM_METER,
        }
    }

    /// The direction a start byte announces, if it is one.
    pub fn from_start_byte(byte: u8) -> Option<Self> {
        match byte {
            START_TO_METER => Some(Direction::ToMeter),
            START_FROM_METER => Some(Direction::FromMeter),
            _ => None,
        }
    }

    /// `to_meter` or `from_meter`, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ToMeter => "to_meter",
            Direction::FromMeter => "from_meter",
        }
    }
}

/// A frame with its stuffing undone and its CRC checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Which way it travels.
    pub direction: Direction,
    /// The meter's address (the same in a request and its response).
    pub address: u8,
    /// The command identifier.
    pub cid: u8,
    /// The application data, unstuffed, without the CRC.
    pub data: Vec<u8>,
}

/// Why a byte sequence is not a valid frame. Offsets count bytes on the wire
/// from the start byte (offset 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Nothing to decode.
    #[error("empty frame: no bytes")]
    Empty,
    /// The first byte is not a start byte.
    #[error("byte 0 is 0x{found:02X}, not a start byte (0x80 to the meter, 0x40 from the meter)")]
    MissingStart {
        /// The byte found instead.
        found: u8,
    },
    /// The frame ends before its stop byte.
    #[error("truncated frame: {len} bytes without the stop byte 0x0D")]
    Truncated {
        /// Bytes received, start byte included.
        len: usize,
    },
    /// A start, stop or ACK byte stands unescaped inside the frame.
    #[error("byte {offset} is an unescaped 0x{byte:02X} inside the frame")]
    UnexpectedByte {
        /// Where it stands.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The escape byte is the last byte before the stop byte.
    #[error(
        "byte {offset} is an escape byte 0x1B right before the stop byte: the escaped byte is missing"
    )]
    EscapeAtEnd {
        /// Where the escape byte stands.
        offset: usize,
    },
    /// The escape byte is followed by a byte that escapes nothing.
    #[error(
        "byte {offset} is an escape byte 0x1B followed by 0x{byte:02X}, which escapes nothing (expected 7F, BF, F2, F9 or E4)"
    )]
    BadEscape {
        /// Where the escape byte stands.
        offset: usize,
        /// The byte after it.
        byte: u8,
    },
    /// Too few bytes for address, CID and CRC.
    #[error(
        "frame too short: {len} bytes after unstuffing, at least 4 needed (address, CID, 2 CRC bytes)"
    )]
    TooShort {
        /// Unstuffed bytes between start and stop.
        len: usize,
    },
    /// The frame is longer than any KMP frame can be.
    #[error("frame too long: more than {max} bytes without a stop byte")]
    TooLong {
        /// The limit that was passed.
        max: usize,
    },
    /// The CRC does not match the content.
    #[error("CRC error: expected 0x{expected:04X}, found 0x{found:04X}")]
    Crc {
        /// The CRC computed over address, CID and data.
        expected: u16,
        /// The CRC the frame carries.
        found: u16,
    },
}

impl Frame {
    /// A frame going `direction`.
    pub fn new(direction: Direction, address: u8, cid: u8, data: Vec<u8>) -> Self {
        Frame {
            direction,
            address,
            cid,
            data,
        }
    }

    /// The bytes on the wire: start byte, stuffed body with CRC, stop byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut wire = Vec::with_capacity(2 * (self.data.len() + OVERHEAD) + 2);
        self.encode_into(&mut wire);
        wire
    }

    /// Appends the bytes on the wire to `wire`.
    pub fn encode_into(&self, wire: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(self.data.len() + OVERHEAD);
        body.extend_from_slice(&[self.address, self.cid]);
        body.extend_from_slice(&self.data);
        let crc = checksum(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        wire.push(self.direction.start_byte());
        stuff_into(&body, wire);
        wire.push(STOP);
    }

    /// Decodes one whole frame, start and stop bytes included.
    pub fn decode(wire: &[u8]) -> Result<Frame, FrameError> {
        Self::decode_with_limit(wire, MAX_FRAME_LEN)
    }

    /// As [`Frame::decode`], with another length limit.
    pub fn decode_with_limit(wire: &[u8], max_len: usize) -> Result<Frame, FrameError> {
        let (direction, stuffed) = envelope(wire, max_len)?;
        // Most frames need no unstuffing: checked in one branch-free pass,
        // they are their own body.
        let plain = !stuffed.iter().fold(false, |special, &byte| {
            special
                | matches!(
                    byte,
                    START_TO_METER | START_FROM_METER | STOP | ACK | ESCAPE
                )
        });
        if plain {
            return check_body(direction, stuffed);
        }
        // Otherwise one pass over the stuffed bytes, unstuffing onto the
        // stack: the frame's data is the only allocation (but for frames
        // beyond the default limit).
        let mut on_stack = [0u8; MAX_FRAME_LEN];
        let mut on_heap = Vec::new();
        let body: &mut [u8] = match on_stack.get_mut(..stuffed.len()) {
            Some(body) => body,
            None => {
                on_heap.resize(stuffed.len(), 0);
                &mut on_heap
            }
        };
        let mut len = 0;
        let mut bytes = stuffed.iter().copied().enumerate();
        while let Some((index, byte)) = bytes.next() {
            let original = match byte {
                START_TO_METER | START_FROM_METER | STOP | ACK => {
                    return Err(FrameError::UnexpectedByte {
                        offset: index + 1,
                        byte,
                    });
                }
                ESCAPE => match bytes.next() {
                    None => return Err(FrameError::EscapeAtEnd { offset: index + 1 }),
                    Some((_, escaped)) if needs_escape(escaped ^ 0xFF) => escaped ^ 0xFF,
                    Some((_, escaped)) => {
                        // An unescaped start, stop or ACK after it is the
                        // fault to report, wherever it stands.
                        if let Some(unexpected) = first_unexpected(stuffed) {
                            return Err(unexpected);
                        }
                        return Err(FrameError::BadEscape {
                            offset: index + 1,
                            byte: escaped,
                        });
                    }
                },
                byte => byte,
            };
            if let Some(slot) = body.get_mut(len) {
                *slot = original;
                len += 1;
            }
        }
        check_body(direction, body.get(..len).unwrap_or_default())
    }
}

/// The direction of a frame and its stuffed body, between the start and
/// stop bytes.
fn envelope(wire: &[u8], max_len: usize) -> Result<(Direction, &[u8]), FrameError> {
    let (&start, rest) = wire.split_first().ok_or(FrameError::Empty)?;
    let direction =
        Direction::from_start_byte(start).ok_or(FrameError::MissingStart { found: start })?;
    if wire.len() > max_len {
        return Err(FrameError::TooLong { max: max_len });
    }
    let Some((&STOP, stuffed)) = rest.split_last() else {
        return Err(FrameError::Truncated { len: wire.len() });
    };
    Ok((direction, stuffed))
}

/// The frame of an unstuffed body (address, CID, data, CRC) once its CRC
/// checks.
fn check_body(direction: Direction, body: &[u8]) -> Result<Frame, FrameError> {
    let [address, cid, data @ .., crc_hi, crc_lo] = body else {
        return Err(FrameError::TooShort { len: body.len() });
    };
    let found = u16::from_be_bytes([*crc_hi, *crc_lo]);
    let expected = checksum(body.get(..body.len() - 2).unwrap_or_default());
    if expected != found {
        return Err(FrameError::Crc { expected, found });
    }
    Ok(Frame {
        direction,
        address: *address,
        cid: *cid,
        data: data.to_vec(),
    })
}

/// The first unescaped start, stop or ACK byte in a stuffed body, as the
/// fault it is.
fn first_unexpected(stuffed: &[u8]) -> Option<FrameError> {
    stuffed
        .iter()
        .enumerate()
        .find(|&(_, &byte)| matches!(byte, START_TO_METER | START_FROM_METER | STOP | ACK))
        .map(|(index, &byte)| FrameError::UnexpectedByte {
            offset: index + 1,
            byte,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wire: &[u8], expected: Result<Frame, FrameError>) {
        assert_eq!(Frame::decode(wire), expected, "decoding {wire:02X?}");
    }

    #[test]
    fn decodes_and_reencodes_a_response() {
        let wire = [0x40, 0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x56, 0x0D];
        let frame = Frame::new(
            Direction::FromMeter,
            0x3F,
            0x02,
            vec![0x01, 0x23, 0x45, 0x67],
        );
        check(&wire, Ok(frame.clone()));
        assert_eq!(frame.encode(), wire);
    }

    #[test]
    fn reports_each_fault_with_its_place() {
        check(&[], Err(FrameError::Empty));
        check(&[0x3F, 0x0D], Err(FrameError::MissingStart { found: 0x3F }));
        check(
            &[0x40, 0x3F, 0x02, 0x01],
            Err(FrameError::Truncated { len: 4 }),
        );
        check(
            &[0x40, 0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x57, 0x0D],
            Err(FrameError::Crc {
                expected: 0xE956,
                found: 0xE957,
            }),
        );
        check(
            &[0x40, 0x3F, 0x02, 0x1B, 0x0D],
            Err(FrameError::EscapeAtEnd { offset: 3 }),
        );
        check(
            &[0x40, 0x3F, 0x1B, 0x00, 0x0D],
            Err(FrameError::BadEscape {
                offset: 2,
                byte: 0x00,
            }),
        );
        check(
            &[0x40, 0x3F, 0x80, 0x00, 0x0D],
            Err(FrameError::UnexpectedByte {
                offset: 2,
                byte: 0x80,
            }),
        );
        check(
            &[0x40, 0x3F, 0x02, 0x0D],
            Err(FrameError::TooShort { len: 2 }),
        );
        let long = [vec![0x40], vec![0x00; MAX_FRAME_LEN], vec![0x0D]].concat();
        check(&long, Err(FrameError::TooLong { max: MAX_FRAME_LEN }));
    }

    /// The decoding as two passes over the body: the unescaped bytes
    /// checked first, then [`crate::stuffing::unstuff`]. What the one pass
    /// of [`Frame::decode`] must agree with.
    fn two_pass(wire: &[u8]) -> Result<Frame, FrameError> {
        use crate::stuffing::{StuffingError, unstuff};
        let (direction, stuffed) = envelope(wire, MAX_FRAME_LEN)?;
        if let Some(unexpected) = first_unexpected(stuffed) {
            return Err(unexpected);
        }
        let body = unstuff(stuffed).map_err(|error| match error {
            StuffingError::EscapeAtEnd { offset } => FrameError::EscapeAtEnd { offset: offset + 1 },
            StuffingError::BadEscape { offset, byte } => FrameError::BadEscape {
                offset: offset + 1,
                byte,
            },
        })?;
        check_body(direction, &body)
    }

    fn frame_byte() -> impl proptest::strategy::Strategy<Value = u8> {
        use proptest::prelude::*;
        prop_oneof![
            4 => any::<u8>(),
            1 => proptest::sample::select(vec![0x80, 0x40, 0x0D, 0x06, 0x1B, 0x7F, 0xBF, 0xF2, 0xF9, 0xE4]),
        ]
    }

    proptest::proptest! {
        #[test]
        fn one_pass_decodes_as_two_passes(
            start in proptest::sample::select(vec![0x40u8, 0x80, 0x3F]),
            body in proptest::collection::vec(frame_byte(), 0..40),
            valid_crc: bool,
        ) {
            let mut wire = vec![start];
            wire.extend_from_slice(&body);
            if valid_crc {
                // A frame whose CRC is right once unstuffed, where it can be.
                if let Ok(unstuffed) = crate::stuffing::unstuff(&body) {
                    wire.truncate(1);
                    let mut content = unstuffed;
                    content.extend_from_slice(&checksum(&content).to_be_bytes());
                    stuff_into(&content, &mut wire);
                }
            }
            wire.push(STOP);
            proptest::prop_assert_eq!(Frame::decode(&wire), two_pass(&wire));
        }
    }
}
