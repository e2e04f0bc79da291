//! SQLite, the embedded default: a table `readings` in a local file, written
//! in WAL mode in one transaction per batch. Works with no set-up at all.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::{Sink, SinkError};
use crate::reading::Reading;

/// The `readings` table and its indexes.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS readings (
    id        INTEGER PRIMARY KEY,
    ts        TEXT    NOT NULL,  -- RFC 3339, UTC
    bus       TEXT    NOT NULL,
    address   INTEGER NOT NULL,
    request   TEXT    NOT NULL,
    register  INTEGER NOT NULL,
    name      TEXT    NOT NULL,  -- export name
    value     TEXT,              -- exact decimal as the meter sent it
    unit      TEXT,
    unit_code INTEGER,
    status    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_by_time ON readings (ts);
CREATE INDEX IF NOT EXISTS readings_by_meter ON readings (bus, address, name, ts);
";

/// Writes readings to a SQLite file.
pub struct SqliteSink {
    path: PathBuf,
    connection: Connection,
}

impl SqliteSink {
    /// Opens (or creates) the database and its table.
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        let doing = format!("opening SQLite database {}", path.display());
        let connection =
            Connection::open(path).map_err(|error| SinkError::context(&doing, error))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| connection.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| connection.execute_batch(SCHEMA))
            .map_err(|error| SinkError::context(&doing, error))?;
        Ok(SqliteSink {
            path: path.to_owned(),
            connection,
        })
    }
}

impl Sink for SqliteSink {
    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    fn write(&mut self, readings: &[Reading]) -> Result<(), SinkError> {
        let fail =
            |error| SinkError::context(&format!("writing to {}", self.path.display()), error);
        let transaction = self.connection.transaction().map_err(fail)?;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO readings (ts, bus, address, request, register, name, value, unit, unit_code, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(fail)?;
            for reading in readings {
                insert
                    .execute(params![
                        reading.time.to_string(),
                        reading.bus,
                        reading.address,
                        reading.request,
                        reading.register,
                        reading.name,
                        reading.value.map(|(value, _)| value.to_string()),
                        reading.value.map(|(_, unit)| unit.to_string()),
                        reading.value.map(|(_, unit)| unit.code()),
                        reading.status.as_str(),
                    ])
                    .map_err(fail)?;
            }
        }
        transaction.commit().map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Status;
    use kmp::unit::Unit;

    #[test]
    fn stores_exact_values_and_statuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmplog.db");
        let mut sink = SqliteSink::open(&path).unwrap();
        let reading = |name: &str, value: Option<&str>, status| Reading {
            time: "2026-11-25T08:00:00Z".parse().unwrap(),
            bus: "heat".to_owned(),
            address: 63,
            request: "Main values".to_owned(),
            register: 60,
            name: name.to_owned(),
            value: value.map(|text| (text.parse().unwrap(), Unit(0x08))),
            status,
        };
        sink.write(&[
            reading("E1", Some("34.00"), Status::Ok),
            reading("E1", None, Status::Timeout),
        ])
        .unwrap();
        let rows: Vec<(String, Option<String>, Option<String>, String)> = Connection::open(&path)
            .unwrap()
            .prepare("SELECT ts, value, unit, status FROM readings ORDER BY id")
            .unwrap()
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (
                    "2026-11-25T08:00:00Z".to_owned(),
                    Some("34.00".to_owned()),
                    Some("GJ".to_owned()),
                    "ok".to_owned()
                ),
                (
                    "2026-11-25T08:00:00Z".to_owned(),
                    None,
                    None,
                    "timeout".to_owned()
                ),
            ]
        );
    }
}
