//! CSV and JSON-lines files, one per day: `kmplog-2026-11-25.csv` in the
//! configured directory, the day taken in the configured time zone, so that a
//! day's file holds that local day's readings. Files are appended to, so a
//! batch delivered again after a crash before its acknowledgement shows twice
//! (at least once, unlike the databases, which are exactly once by key).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::{Sink, SinkError, SinkFuture};
use crate::outbox::Stored;
use crate::reading::Reading;

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }
}

const CSV_HEADER: [&str; 10] = [
    "ts",
    "bus",
    "address",
    "request",
    "register",
    "name",
    "value",
    "unit",
    "unit_code",
    "status",
];

/// Appends readings to the day's file, starting a new file each day.
pub struct DailyFiles {
    directory: PathBuf,
    format: Format,
    zone: TimeZone,
    current: Option<(Date, PathBuf, BufWriter<File>)>,
}

impl DailyFiles {
    /// Files in `directory` (created if missing), days in `zone`.
    pub fn open(directory: &Path, format: Format, zone: TimeZone) -> Result<Self, SinkError> {
        std::fs::create_dir_all(directory).map_err(|error| {
            SinkError::context(
                &format!("creating directory {}", directory.display()),
                error,
            )
        })?;
        Ok(DailyFiles {
            directory: directory.to_owned(),
            format,
            zone,
            current: None,
        })
    }

    /// The writer for the day of `reading`, opening that day's file if needed.
    fn file_for(&mut self, reading: &Reading) -> Result<&mut BufWriter<File>, SinkError> {
        let day = reading.time.to_zoned_datetime(self.zone.clone()).date();
        if self
            .current
            .as_ref()
            .is_none_or(|(current, _, _)| *current != day)
        {
            if let Some((_, path, mut old)) = self.current.take() {
                old.flush().map_err(|error| {
                    SinkError::context(&format!("writing {}", path.display()), error)
                })?;
            }
            let path = self
                .directory
                .join(format!("kmplog-{day}.{}", self.format.extension()));
            let doing = format!("opening {}", path.display());
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|error| SinkError::context(&doing, error))?;
            let is_new = file
                .metadata()
                .map_err(|error| SinkError::context(&doing, error))?
                .len()
                == 0;
            let mut writer = BufWriter::new(file);
            if is_new && self.format == Format::Csv {
                writeln!(writer, "{}", CSV_HEADER.join(","))
                    .map_err(|error| SinkError::context(&doing, error))?;
            }
            self.current = Some((day, path, writer));
        }
        match &mut self.current {
            Some((_, _, writer)) => Ok(writer),
            None => Err(SinkError("no file open".to_owned())),
        }
    }
}

impl Sink for DailyFiles {
    fn name(&self) -> String {
        format!("{}:{}", self.format.extension(), self.directory.display())
    }

    fn deliver<'a>(&'a mut self, batch: &'a [Stored]) -> SinkFuture<'a> {
        Box::pin(async move { self.write(batch.iter().map(|stored| &stored.reading)) })
    }
}

impl DailyFiles {
    fn write<'a>(&mut self, readings: impl Iterator<Item = &'a Reading>) -> Result<(), SinkError> {
        let format = self.format;
        for reading in readings {
            let line = match format {
                Format::Csv => csv_line(reading),
                Format::JsonLines => reading.to_json().to_string(),
            };
            let writer = self.file_for(reading)?;
            writeln!(writer, "{line}").map_err(|error| SinkError::context("writing", error))?;
        }
        if let Some((_, path, writer)) = &mut self.current {
            writer.flush().map_err(|error| {
                SinkError::context(&format!("writing {}", path.display()), error)
            })?;
        }
        Ok(())
    }
}

/// One CSV record; fields with commas, quotes or line breaks are quoted.
fn csv_line(reading: &Reading) -> String {
    let fields = [
        reading.time.to_string(),
        reading.bus.clone(),
        reading.address.to_string(),
        reading.request.clone(),
        reading.register.to_string(),
        reading.name.clone(),
        reading.value_text(),
        reading.unit_text(),
        reading
            .value
            .map(|(_, unit)| unit.code().to_string())
            .unwrap_or_default(),
        reading.status.as_str().to_owned(),
    ];
    let quoted: Vec<String> = fields
        .iter()
        .map(|field| {
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field.clone()
            }
        })
        .collect();
    quoted.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Status;
    use kmp::unit::Unit;

    fn reading(time: &str, request: &str) -> Reading {
        Reading {
            time: time.parse().unwrap(),
            bus: "heat".to_owned(),
            address: 63,
            request: request.to_owned(),
            register: 86,
            name: "T1".to_owned(),
            value: Some(("66.60".parse().unwrap(), Unit(0x25))),
            status: Status::Ok,
        }
    }

    #[test]
    fn csv_files_rotate_at_local_midnight() {
        let dir = tempfile::tempdir().unwrap();
        let zone = TimeZone::fixed(jiff::tz::offset(1));
        let mut sink = DailyFiles::open(dir.path(), Format::Csv, zone).unwrap();
        // 22:59 UTC is 23:59 local on the 24th; 23:00 UTC is midnight, the 25th.
        sink.write(
            [
                reading("2026-11-24T22:59:00Z", "Main, \"hot\""),
                reading("2026-11-24T23:00:00Z", "Main"),
            ]
            .iter(),
        )
        .unwrap();
        let day1 = std::fs::read_to_string(dir.path().join("kmplog-2026-11-24.csv")).unwrap();
        let day2 = std::fs::read_to_string(dir.path().join("kmplog-2026-11-25.csv")).unwrap();
        assert_eq!(
            day1,
            "ts,bus,address,request,register,name,value,unit,unit_code,status\n\
             2026-11-24T22:59:00Z,heat,63,\"Main, \"\"hot\"\"\",86,T1,66.60,°C,37,ok\n"
        );
        assert!(
            day2.ends_with("2026-11-24T23:00:00Z,heat,63,Main,86,T1,66.60,°C,37,ok\n"),
            "{day2}"
        );
    }

    #[test]
    fn json_lines_append_to_an_existing_day() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..2 {
            let mut sink = DailyFiles::open(dir.path(), Format::JsonLines, TimeZone::UTC).unwrap();
            sink.write([reading("2026-11-25T08:00:00Z", "Main")].iter())
                .unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join("kmplog-2026-11-25.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["value"], "66.60");
    }
}
