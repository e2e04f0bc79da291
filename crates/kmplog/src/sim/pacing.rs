//! Serial-line timing: bytes leave the simulator no faster than a real line
//! at the configured baud rate would carry them.
//!
//! At 8N2 a byte is 11 bits (start, 8 data, 2 stop), so at 1200 baud it takes
//! 9.17 ms. Byte `k` of a burst is due `(k + 1)` byte times after the burst
//! started; the writer sleeps until a byte is due and then writes every byte
//! that is due by then. Scheduling against the start instant, rather than
//! sleeping a byte time per byte, keeps timer lateness from adding up over a
//! frame, and writing what is due in one go keeps high baud rates from
//! needing a timer per byte.
//!
//! Behind a serial-to-Ethernet gateway the bytes also wait in the gateway:
//! ser2net by default ("chardelay") holds what the line brings until the
//! line has been quiet for two byte times (at least 1 ms), or 20 ms after
//! the first byte held, and sends it in one TCP segment. [`Pacing::held`]
//! does the same; without it every byte leaves as it comes, as from a
//! gateway that forwards at once.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Bits on the line per byte at 8N2.
pub const BITS_PER_BYTE: u32 = 11;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// ser2net's `chardelay-scale` default: the quiet time that ends a hold,
/// in tenths of a byte time.
const HOLD_QUIET_TENTHS: u32 = 20;
/// ser2net's `chardelay-min` default.
const HOLD_QUIET_MIN: Duration = Duration::from_millis(1);
/// ser2net's `chardelay-max` default: the longest a byte is held.
const HOLD_MAX: Duration = Duration::from_millis(20);

/// The pace of a line at a baud rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    baud: u32,
    held: bool,
}

impl Pacing {
    /// The pace at `baud` bits per second (a baud rate of 0 is taken as 1).
    pub fn new(baud: u32) -> Pacing {
        Pacing {
            baud: baud.max(1),
            held: false,
        }
    }

    /// The same line behind a gateway that holds bytes as ser2net does by
    /// default (the module's doc).
    pub fn held(self) -> Pacing {
        Pacing { held: true, ..self }
    }

    /// How long the line must be quiet before held bytes are sent.
    fn hold_quiet(self) -> Duration {
        (self.duration(1) * HOLD_QUIET_TENTHS / 10).max(HOLD_QUIET_MIN)
    }

    /// How long `bytes` bytes take on the line, rounded up to the next
    /// nanosecond so that they are all through by then.
    pub fn duration(self, bytes: usize) -> Duration {
        let nanos = (bytes as u128 * u128::from(BITS_PER_BYTE) * NANOS_PER_SECOND)
            .div_ceil(u128::from(self.baud));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How many whole bytes the line carries in `elapsed`.
    pub fn bytes_in(self, elapsed: Duration) -> usize {
        let bytes = elapsed.as_nanos() * u128::from(self.baud)
            / (u128::from(BITS_PER_BYTE) * NANOS_PER_SECOND);
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }
}

/// Writes `bytes` to `writer` at the pace of the line, or at once when
/// `pacing` is `None`, and flushes.
pub async fn write_paced<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    pacing: Option<Pacing>,
) -> io::Result<()> {
    let Some(pacing) = pacing else {
        writer.write_all(bytes).await?;
        return writer.flush().await;
    };
    let start = Instant::now();
    let all_through = start + pacing.duration(bytes.len());
    let mut sent = 0;
    while sent < bytes.len() {
        let first_through = start + pacing.duration(sent + 1);
        let send_at = if pacing.held {
            (first_through + HOLD_MAX).min(all_through + pacing.hold_quiet())
        } else {
            first_through
        };
        tokio::time::sleep_until(send_at).await;
        let due = pacing
            .bytes_in(send_at.max(Instant::now()) - start)
            .clamp(sent + 1, bytes.len());
        writer
            .write_all(bytes.get(sent..due).unwrap_or_default())
            .await?;
        writer.flush().await?;
        sent = due;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_times_at_common_rates() {
        for (baud, bytes, micros) in [
            (1_200, 1, 9_166),
            (1_200, 30, 275_000),
            (300, 1, 36_666),
            (2_400, 100, 458_333),
            (9_600, 12, 13_750),
            (115_200, 1_000, 95_486),
        ] {
            let pacing = Pacing::new(baud);
            assert_eq!(
                pacing.duration(bytes).as_micros(),
                micros,
                "{bytes} bytes at {baud} baud"
            );
            assert_eq!(pacing.bytes_in(pacing.duration(bytes)), bytes);
            assert_eq!(
                pacing.bytes_in(pacing.duration(bytes) - Duration::from_nanos(1)),
                bytes - 1
            );
        }
    }

    #[test]
    fn schedule_does_not_drift_over_a_long_frame() {
        // Adding a rounded byte time 1000 times would drift; the schedule
        // counts from the start, so byte 1000 is due at exactly 11000/baud s.
        let pacing = Pacing::new(1_200);
        assert_eq!(pacing.duration(1_000), Duration::from_nanos(9_166_666_667));
        assert_eq!(Pacing::new(0).duration(1), Duration::from_secs(11));
    }

    #[tokio::test(start_paused = true)]
    async fn paced_write_takes_the_line_time_and_keeps_the_bytes() {
        let bytes: Vec<u8> = (0..=255).collect();
        let (mut writer, mut reader) = tokio::io::duplex(1024);
        let start = Instant::now();
        write_paced(&mut writer, &bytes, Some(Pacing::new(9_600)))
            .await
            .unwrap();
        assert!(start.elapsed() >= Pacing::new(9_600).duration(bytes.len()));
        drop(writer);
        let mut received = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut received)
            .await
            .unwrap();
        assert_eq!(received, bytes);
    }

    /// When each piece of `bytes` written at `pacing` arrived, and its size.
    async fn pieces(bytes: &[u8], pacing: Pacing) -> Vec<(Duration, usize)> {
        let (mut writer, mut reader) = tokio::io::duplex(4096);
        let start = Instant::now();
        let reading = async {
            let mut pieces = Vec::new();
            let mut buffer = [0; 4096];
            loop {
                match tokio::io::AsyncReadExt::read(&mut reader, &mut buffer).await {
                    Ok(0) | Err(_) => return pieces,
                    Ok(read) => pieces.push((start.elapsed(), read)),
                }
            }
        };
        let writing = async {
            write_paced(&mut writer, bytes, Some(pacing)).await.unwrap();
            drop(writer);
        };
        let ((), pieces) = tokio::join!(writing, reading);
        pieces
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_line_sends_as_ser2net_does_by_default() {
        // 41 bytes at 2400 baud take 188 ms on the line, a byte 4.6 ms.
        let bytes = [0x40; 41];
        let line = Pacing::new(2_400);
        let held = pieces(&bytes, line.held()).await;
        let sizes: Vec<usize> = held.iter().map(|piece| piece.1).collect();
        // Each piece holds what came within 20 ms of its first byte; the
        // last, byte 41 alone, leaves once the line was quiet for two byte
        // times (the timer rounds up to the next millisecond).
        assert_eq!(sizes, [5, 5, 5, 5, 5, 5, 5, 5, 1]);
        let mut first = 1;
        for (index, (at, size)) in held.iter().enumerate() {
            let first_through = line.duration(first);
            let due = if index < 8 {
                first_through + HOLD_MAX
            } else {
                line.duration(41) + line.duration(2)
            };
            assert!(
                *at >= due && *at < due + Duration::from_millis(1),
                "piece {index} at {at:?}, due {due:?}"
            );
            first += size;
        }
        // Unheld, every byte leaves when it is through.
        assert_eq!(pieces(&bytes, line).await.len(), 41);
        // At 115200 baud the frame is through in 4 ms: one piece, 1 ms after.
        let fast = Pacing::new(115_200);
        let held = pieces(&bytes, fast.held()).await;
        assert_eq!(held.len(), 1);
        assert!(held[0].0 >= fast.duration(41) + HOLD_QUIET_MIN, "{held:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn unpaced_write_is_immediate() {
        let (mut writer, _reader) = tokio::io::duplex(64);
        let start = Instant::now();
        write_paced(&mut writer, b"abc", None).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
