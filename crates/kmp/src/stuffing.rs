//! Byte stuffing: between the start and stop bytes, every byte that has a
//! meaning on the line (start, stop, ACK, escape) is sent as the escape byte
//! `0x1B` followed by the byte XOR `0xFF`.
//!
//! Unstuffing is one left-to-right pass. A find-and-replace per escape pair
//! would corrupt frames in which an escaped `0x1B` is followed by `F2`, `F9`,
//! `E4`, `BF` or `7F`.

use crate::frame::{ACK, ESCAPE, START_FROM_METER, START_TO_METER, STOP};

/// Whether `byte` must be escaped inside a frame.
pub fn needs_escape(byte: u8) -> bool {
    matches!(
        byte,
        START_TO_METER | START_FROM_METER | STOP | ACK | ESCAPE
    )
}

/// Appends `bytes` to `out`, escaping the bytes that need it.
pub fn stuff_into(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        if needs_escape(byte) {
            out.extend_from_slice(&[ESCAPE, byte ^ 0xFF]);
        } else {
            out.push(byte);
        }
    }
}

/// A stuffed byte sequence that cannot be undone. Offsets count from the
/// first byte of the stuffed sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StuffingError {
    /// The escape byte is the last byte: the byte it escapes is missing.
    #[error("escape byte 0x1B at offset {offset} has no byte after it")]
    EscapeAtEnd {
        /// Offset of the escape byte.
        offset: usize,
    },
    /// The escape byte is followed by a byte that escapes nothing.
    #[error(
        "escape byte 0x1B at offset {offset} is followed by 0x{byte:02X}, which escapes nothing (expected 7F, BF, F2, F9 or E4)"
    )]
    BadEscape {
        /// Offset of the escape byte.
        offset: usize,
        /// The byte after it.
        byte: u8,
    },
}

/// Undoes [`stuff_into`].
pub fn unstuff(stuffed: &[u8]) -> Result<Vec<u8>, StuffingError> {
    let mut out = Vec::with_capacity(stuffed.len());
    let mut bytes = stuffed.iter().copied().enumerate();
    while let Some((offset, byte)) = bytes.next() {
        if byte != ESCAPE {
            out.push(byte);
            continue;
        }
        let Some((_, escaped)) = bytes.next() else {
            return Err(StuffingError::EscapeAtEnd { offset });
        };
        let original = escaped ^ 0xFF;
        if !needs_escape(original) {
            return Err(StuffingError::BadEscape {
                offset,
                byte: escaped,
            });
        }
        out.push(original);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_special_byte_is_escaped() {
        for (plain, wire) in [
            (0x80, [0x1B, 0x7F]),
            (0x40, [0x1B, 0xBF]),
            (0x0D, [0x1B, 0xF2]),
            (0x06, [0x1B, 0xF9]),
            (0x1B, [0x1B, 0xE4]),
        ] {
            let mut out = Vec::new();
            stuff_into(&[plain], &mut out);
            assert_eq!(out, wire, "stuffing 0x{plain:02X}");
            assert_eq!(unstuff(&wire), Ok(vec![plain]));
        }
    }

    #[test]
    fn escaped_escape_followed_by_an_escape_code_is_not_reinterpreted() {
        // 1B E4 is an escaped 0x1B; the F2 after it is a plain F2, not part of
        // another escape pair.
        assert_eq!(unstuff(&[0x1B, 0xE4, 0xF2]), Ok(vec![0x1B, 0xF2]));
        assert_eq!(
            unstuff(&[0x1B, 0xE4, 0x7F, 0x1B, 0xE4, 0xE4]),
            Ok(vec![0x1B, 0x7F, 0x1B, 0xE4])
        );
    }

    #[test]
    fn lone_or_bad_escapes_are_errors() {
        assert_eq!(
            unstuff(&[0x01, 0x1B]),
            Err(StuffingError::EscapeAtEnd { offset: 1 })
        );
        assert_eq!(
            unstuff(&[0x1B, 0x00]),
            Err(StuffingError::BadEscape {
                offset: 0,
                byte: 0x00
            })
        );
    }
}
