//! Register table of the Kamstrup 382 electricity meter, as data.
//!
//! Public sources name active energy import/export (normal and high
//! resolution), active power in total and per phase in both directions,
//! voltages and currents per phase, the peak power and the serial number. No
//! public source we found names the KMP registers of reactive energy, power
//! factor, frequency or an hour counter on this meter, so they are left out:
//! read them as custom register numbers once their IDs are known.

use super::{EMONHUB_382, HA_382, PYKAMSTRUP_382, RegisterInfo, reg};

/// Kamstrup 382. PyKMP's table names the same energy, power, voltage and
/// current registers without naming a meter; the 382-specific tables are cited.
pub(super) const K382: &[RegisterInfo] = &[
    reg(1, "EAPLUS", "Active energy A+ (import)", PYKAMSTRUP_382),
    reg(2, "EAMINUS", "Active energy A- (export)", PYKAMSTRUP_382),
    reg(
        13,
        "EAPLUSHR",
        "Active energy A+ (import), high resolution",
        PYKAMSTRUP_382,
    ),
    reg(
        14,
        "EAMINUSHR",
        "Active energy A- (export), high resolution",
        PYKAMSTRUP_382,
    ),
    reg(
        1023,
        "POWERIN",
        "Current active power, import, total",
        PYKAMSTRUP_382,
    ),
    reg(
        1024,
        "POWEROUT",
        "Current active power, export, total",
        PYKAMSTRUP_382,
    ),
    reg(
        1080,
        "POWERINL1",
        "Current active power, import, phase L1",
        PYKAMSTRUP_382,
    ),
    reg(
        1081,
        "POWERINL2",
        "Current active power, import, phase L2",
        PYKAMSTRUP_382,
    ),
    reg(
        1082,
        "POWERINL3",
        "Current active power, import, phase L3",
        PYKAMSTRUP_382,
    ),
    reg(
        1344,
        "POWEROUTL1",
        "Current active power, export, phase L1",
        PYKAMSTRUP_382,
    ),
    reg(
        1345,
        "POWEROUTL2",
        "Current active power, export, phase L2",
        PYKAMSTRUP_382,
    ),
    reg(
        1346,
        "POWEROUTL3",
        "Current active power, export, phase L3",
        PYKAMSTRUP_382,
    ),
    reg(1054, "VOLTAGEL1", "Voltage, phase L1", PYKAMSTRUP_382),
    reg(1055, "VOLTAGEL2", "Voltage, phase L2", PYKAMSTRUP_382),
    reg(1056, "VOLTAGEL3", "Voltage, phase L3", PYKAMSTRUP_382),
    reg(1076, "CURRENTL1", "Current, phase L1", PYKAMSTRUP_382),
    reg(1077, "CURRENTL2", "Current, phase L2", PYKAMSTRUP_382),
    reg(1078, "CURRENTL3", "Current, phase L3", PYKAMSTRUP_382),
    reg(39, "MAXPOWER", "Maximum (peak) power", HA_382),
    reg(1001, "SERIALNO", "Meter serial number", EMONHUB_382),
];
