//! The KMP checksum: CRC-16/CCITT with polynomial 0x1021, initial value 0,
//! no reflection and no final XOR (the catalogue's CRC-16/XMODEM).
//!
//! It covers the unstuffed address, CID and data and is sent high byte first,
//! so the CRC over a whole unstuffed frame body including its CRC is zero.

use crc::{CRC_16_XMODEM, Crc, Table};

/// Slice-by-16 tables (8 KiB): a frame's CRC at a few cycles per 16 bytes,
/// as a recording decodes at memory speed.
const KMP_CRC: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_XMODEM);

/// The CRC of `bytes`.
///
/// ```
/// assert_eq!(kmp::crc::checksum(&[0x3F, 0x02, 0x01, 0x23, 0x45, 0x67]), 0xE956);
/// ```
pub fn checksum(bytes: &[u8]) -> u16 {
    KMP_CRC.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_catalogue_check_value() {
        // The check value of CRC-16/XMODEM over ASCII "123456789".
        assert_eq!(checksum(b"123456789"), 0x31C3);
    }

    #[test]
    fn body_with_its_own_crc_checks_to_zero() {
        assert_eq!(
            checksum(&[0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x56]),
            0
        );
    }
}
