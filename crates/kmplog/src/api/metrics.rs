//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4),
//! written here at each scrape from what the logger already keeps: the
//! latest reading of every register, the buses' counters and lateness
//! samples, and the outbox's cursors.
//!
//! Our own writer rather than `metrics-exporter-prometheus`: every number
//! already lives in the bus states and the outbox, so a recorder would only
//! copy them into a process-wide global (which tests running several
//! loggers in one process would share), and a register's gauge would
//! outlive a reconfiguration. The format is a few lines of text; the
//! escaping rules are tested below.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use crate::bus::state::BusState;
use crate::cluster::Status;
use crate::reading::Reading;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The lateness quantiles shown, with 1 as the maximum.
const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 1.0];

/// `GET /metrics`.
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let buses: Vec<BusState> = state.buses.snapshots();
    let latest: Vec<Reading> = state
        .latest
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .readings()
        .collect();
    // The outbox is a SQLite file: read it off the async workers.
    let depths = match state.outbox.clone() {
        Some(outbox) => tokio::task::spawn_blocking(move || {
            outbox
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .depths()
                .map_err(|error| error.to_string())
        })
        .await
        .unwrap_or_else(|error| Err(error.to_string())),
        None => Ok(Vec::new()),
    };
    let mut text = render(&buses, &latest, depths);
    if let Some(cluster) = &state.cluster {
        text.push_str(&render_cluster(&cluster.snapshot()));
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// The whole exposition. An outbox that cannot be read leaves its metric
/// out and says why in a comment, rather than fail the scrape.
pub fn render(
    buses: &[BusState],
    latest: &[Reading],
    depths: Result<Vec<(String, u64)>, String>,
) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "kmplog_value",
        "gauge",
        "The latest value of each register, as a float (exact values are in the sinks).",
    );
    for reading in latest {
        if let Some((value, unit)) = reading.value {
            sample(
                &mut out,
                "kmplog_value",
                &[
                    ("bus", &reading.bus),
                    ("address", &reading.address.to_string()),
                    ("name", &reading.name),
                    ("unit", &unit.to_string()),
                ],
                value.to_f64(),
            );
        }
    }
    let counters: [Counter; 5] = [
        (
            "kmplog_polls_total",
            "Transactions run on the bus.",
            |bus| bus.polls,
        ),
        (
            "kmplog_timeouts_total",
            "Transactions the meter did not answer.",
            |bus| bus.timeouts,
        ),
        (
            "kmplog_faults_total",
            "Corrupt replies and line faults: CRC errors, truncated frames, garbage, wrong addresses.",
            |bus| bus.faults,
        ),
        (
            "kmplog_crc_errors_total",
            "Frames received with a CRC that does not match (counted among the faults too).",
            |bus| bus.crc_errors,
        ),
        (
            "kmplog_reconnects_total",
            "Times the bus's line was opened again.",
            |bus| bus.reconnects,
        ),
    ];
    for (name, help, count) in counters {
        family(&mut out, name, "counter", help);
        for bus in buses {
            sample(&mut out, name, &[("bus", &bus.name)], count(bus) as f64);
        }
    }
    family(
        &mut out,
        "kmplog_bus_connected",
        "gauge",
        "1 while the bus's line is open.",
    );
    for bus in buses {
        sample(
            &mut out,
            "kmplog_bus_connected",
            &[("bus", &bus.name)],
            f64::from(u8::from(bus.connected)),
        );
    }
    family(
        &mut out,
        "kmplog_outbox_depth",
        "gauge",
        "Readings in the outbox that the sink has yet to deliver.",
    );
    match depths {
        Ok(depths) => {
            for (sink, depth) in depths {
                sample(
                    &mut out,
                    "kmplog_outbox_depth",
                    &[("sink", &sink)],
                    depth as f64,
                );
            }
        }
        Err(error) => {
            let _ = writeln!(
                out,
                "# the outbox cannot be read: {}",
                error.replace('\n', " ")
            );
        }
    }
    // A summary, as Prometheus reads quantiles (a gauge may not carry a
    // `quantile` label), over the window of runs a bus keeps, as client
    // libraries' summaries are over a window too. Without `_sum` and
    // `_count`: those must only grow, and the window forgets old runs; the
    // text format and promtool let a summary go without them, and the
    // window's size is the gauge below.
    family(
        &mut out,
        "kmplog_schedule_lateness_seconds",
        "summary",
        "How late timed runs started, over the bus's latest runs (quantile 1 is the maximum).",
    );
    for bus in buses {
        let mut samples: Vec<u64> = bus.lateness_us.iter().copied().collect();
        samples.sort_unstable();
        for q in QUANTILES {
            if let Some(micros) = quantile(&samples, q) {
                sample(
                    &mut out,
                    "kmplog_schedule_lateness_seconds",
                    &[("bus", &bus.name), ("quantile", &q.to_string())],
                    micros as f64 / 1e6,
                );
            }
        }
    }
    family(
        &mut out,
        "kmplog_schedule_lateness_samples",
        "gauge",
        "How many runs the lateness quantiles are over.",
    );
    for bus in buses {
        sample(
            &mut out,
            "kmplog_schedule_lateness_samples",
            &[("bus", &bus.name)],
            bus.lateness_us.len() as f64,
        );
    }
    out
}

/// The cluster's families, labelled with the instance, so that the
/// instances' scrapes can be summed and told apart.
pub fn render_cluster(status: &Status) -> String {
    let mut out = String::new();
    let instance = [("instance", status.instance.as_str())];
    let families: [(&str, &str, &str, u64); 8] = [
        (
            "kmplog_cluster_buses_owned",
            "gauge",
            "Buses this instance holds the lease of.",
            status.owned.len() as u64,
        ),
        (
            "kmplog_cluster_members",
            "gauge",
            "Live instances, as this one last read them.",
            status.members.len() as u64,
        ),
        (
            "kmplog_cluster_coordinator_up",
            "gauge",
            "1 when the last exchange with the coordinator went well.",
            u64::from(status.coordinator_error.is_none()),
        ),
        (
            "kmplog_cluster_acquisitions_total",
            "counter",
            "Leases acquired.",
            status.acquisitions,
        ),
        (
            "kmplog_cluster_takeovers_total",
            "counter",
            "Leases acquired of a bus another instance held last.",
            status.takeovers,
        ),
        (
            "kmplog_cluster_lease_renewals_total",
            "counter",
            "Leases renewed.",
            status.renewals,
        ),
        (
            "kmplog_cluster_lease_renewal_failures_total",
            "counter",
            "Rounds whose exchange with the coordinator failed or timed out.",
            status.renewal_failures,
        ),
        (
            "kmplog_cluster_leases_lost_total",
            "counter",
            "Leases whose deadline passed before a renewal: their buses stopped.",
            status.lost,
        ),
    ];
    for (name, kind, help, value) in families {
        family(&mut out, name, kind, help);
        sample(&mut out, name, &instance, value as f64);
    }
    family(
        &mut out,
        "kmplog_cluster_lease_token",
        "gauge",
        "The fencing token of each lease this instance holds (one more at every acquisition).",
    );
    for (bus, token) in &status.owned {
        sample(
            &mut out,
            "kmplog_cluster_lease_token",
            &[("instance", &status.instance), ("bus", bus)],
            *token as f64,
        );
    }
    out
}

/// A counter of each bus: its name, its help and where it is kept.
type Counter = (&'static str, &'static str, fn(&BusState) -> u64);

/// The nearest-rank `q` quantile of sorted `samples`.
fn quantile(samples: &[u64], q: f64) -> Option<u64> {
    let rank = (q * samples.len() as f64).ceil() as usize;
    samples
        .get(rank.clamp(1, samples.len().max(1)) - 1)
        .copied()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP {name} {}",
        help.replace('\\', "\\\\").replace('\n', "\\n")
    );
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    let labels: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", escape_label(value)))
        .collect();
    let _ = writeln!(out, "{name}{{{}}} {}", labels.join(","), number(value));
}

/// A label value: backslash, double quote and line feed escaped.
pub fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A sample value as Prometheus spells it: `+Inf`, `-Inf`, `NaN`.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Status;
    use kmp::unit::Unit;

    fn reading(name: &str, value: Option<&str>) -> Reading {
        Reading {
            time: "2026-11-25T08:00:00Z".parse().unwrap(),
            bus: "boiler \"A\"\\1".to_owned(),
            address: 63,
            request: "r".to_owned(),
            register: 86,
            name: name.to_owned(),
            value: value.map(|text| (text.parse().unwrap(), Unit(0x25))),
            status: if value.is_some() {
                Status::Ok
            } else {
                Status::Timeout
            },
        }
    }

    #[test]
    fn values_counters_depths_and_lateness_in_the_text_format() {
        let bus = BusState {
            name: "heat".to_owned(),
            polls: 12,
            timeouts: 2,
            faults: 1,
            reconnects: 3,
            connected: true,
            lateness_us: (1..=100).map(|ms| ms * 1000).collect(),
            ..BusState::default()
        };
        let text = render(
            &[bus],
            &[reading("T1", Some("61.27")), reading("T2", None)],
            Ok(vec![
                ("sqlite:kmplog.db".to_owned(), 0),
                ("influx+http://h/write?db=x&token=***".to_owned(), 42),
            ]),
        );
        for line in [
            "# TYPE kmplog_value gauge",
            "kmplog_value{bus=\"boiler \\\"A\\\"\\\\1\",address=\"63\",name=\"T1\",unit=\"°C\"} 61.27",
            "# TYPE kmplog_polls_total counter",
            "kmplog_polls_total{bus=\"heat\"} 12",
            "kmplog_timeouts_total{bus=\"heat\"} 2",
            "kmplog_faults_total{bus=\"heat\"} 1",
            "kmplog_crc_errors_total{bus=\"heat\"} 0",
            "kmplog_reconnects_total{bus=\"heat\"} 3",
            "kmplog_bus_connected{bus=\"heat\"} 1",
            "kmplog_outbox_depth{sink=\"sqlite:kmplog.db\"} 0",
            "kmplog_outbox_depth{sink=\"influx+http://h/write?db=x&token=***\"} 42",
            "# TYPE kmplog_schedule_lateness_seconds summary",
            "kmplog_schedule_lateness_seconds{bus=\"heat\",quantile=\"0.5\"} 0.05",
            "kmplog_schedule_lateness_seconds{bus=\"heat\",quantile=\"0.99\"} 0.099",
            "kmplog_schedule_lateness_seconds{bus=\"heat\",quantile=\"1\"} 0.1",
            "kmplog_schedule_lateness_samples{bus=\"heat\"} 100",
        ] {
            assert!(
                text.lines().any(|candidate| candidate == line),
                "{line} missing in\n{text}"
            );
        }
        assert!(
            !text.contains("name=\"T2\""),
            "a register without a value has no gauge:\n{text}"
        );
        // Each family's HELP and TYPE come once, before its samples.
        assert_eq!(text.matches("# TYPE kmplog_value ").count(), 1);
    }

    #[test]
    fn the_cluster_families_carry_the_instance() {
        let status = crate::cluster::Status {
            instance: "a".to_owned(),
            members: vec!["a".to_owned(), "b".to_owned()],
            owned: [("bus1".to_owned(), 3)].into(),
            takeovers: 2,
            renewals: 40,
            renewal_failures: 1,
            ..crate::cluster::Status::default()
        };
        let text = render_cluster(&status);
        for line in [
            "# TYPE kmplog_cluster_buses_owned gauge",
            "kmplog_cluster_buses_owned{instance=\"a\"} 1",
            "kmplog_cluster_members{instance=\"a\"} 2",
            "kmplog_cluster_coordinator_up{instance=\"a\"} 1",
            "# TYPE kmplog_cluster_takeovers_total counter",
            "kmplog_cluster_takeovers_total{instance=\"a\"} 2",
            "kmplog_cluster_lease_renewals_total{instance=\"a\"} 40",
            "kmplog_cluster_lease_renewal_failures_total{instance=\"a\"} 1",
            "kmplog_cluster_lease_token{instance=\"a\",bus=\"bus1\"} 3",
        ] {
            assert!(
                text.lines().any(|candidate| candidate == line),
                "{line} missing in\n{text}"
            );
        }
    }

    #[test]
    fn an_unreadable_outbox_is_a_comment_not_a_failed_scrape() {
        let text = render(&[], &[], Err("disk I/O error".to_owned()));
        assert!(
            text.contains("# the outbox cannot be read: disk I/O error"),
            "{text}"
        );
    }

    #[test]
    fn special_values_and_labels_are_spelled_as_prometheus_reads_them() {
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(1e21), "1000000000000000000000");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.99), Some(7));
    }
}
