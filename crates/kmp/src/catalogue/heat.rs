//! Register tables of the MULTICAL heat/cooling meters, as data.
//!
//! The tables are built from parts so that models share what they share:
//! [`CORE`] holds what every MULTICAL in the catalogue has (it is the
//! intersection of the MULTICAL 302 register list and the MULTICAL 601 table of
//! MeterLogger); the other parts add what a source names for a family or a
//! single model. Each entry names its own source.
//!
//! A catalogue entry says a register exists on a model according to a public
//! source; a particular meter may still leave it out of its answer (its
//! configuration decides), so callers match answers by ID, never by position.

use super::{
    ML, ML_AND_HA_403, ML_AND_TD_302, PYKAMSTRUP, PYKMP, RegisterInfo, TD_302, concat, reg,
    total_len,
};

/// Registers every MULTICAL heat meter in the catalogue has: energies E1, E3,
/// E8 and E9, volume V1, the current values, date and clock, info code, hour
/// counter, averages, this year's and this month's maxima, and identification.
pub(super) const CORE: &[RegisterInfo] = &[
    reg(60, "E1", "Energy register 1: heat energy", ML_AND_TD_302),
    reg(63, "E3", "Energy register 3: cooling energy", ML_AND_TD_302),
    reg(97, "T1M3", "Energy register 8: m³ × T1 (E8)", ML_AND_TD_302),
    reg(
        110,
        "T2M3",
        "Energy register 9: m³ × T2 (E9)",
        ML_AND_TD_302,
    ),
    reg(68, "V1", "Volume register V1", ML_AND_TD_302),
    reg(74, "FLOW1", "Current flow (in flow)", ML_AND_TD_302),
    reg(80, "POWER1", "Current power", ML_AND_TD_302),
    reg(86, "T1", "Current flow temperature", ML_AND_TD_302),
    reg(87, "T2", "Current return-flow temperature", ML_AND_TD_302),
    reg(89, "DT", "Current temperature difference", ML_AND_TD_302),
    reg(99, "INFO", "Info code register, current", ML_AND_TD_302),
    reg(113, "INFOEVENT", "Info-event counter", ML_AND_TD_302),
    reg(1004, "HOURS", "Operating hour counter", ML_AND_TD_302),
    reg(1003, "DATE", "Current date (YYMMDD)", ML_AND_TD_302),
    reg(1002, "CLOCK", "Current time (hhmmss)", ML_AND_TD_302),
    reg(
        98,
        "TARGETDATE",
        "Target date (reading date)",
        ML_AND_TD_302,
    ),
    reg(146, "T1AVGY", "Year-to-date average of T1", ML_AND_TD_302),
    reg(147, "T2AVGY", "Year-to-date average of T2", ML_AND_TD_302),
    reg(149, "T1AVGM", "Month-to-date average of T1", ML_AND_TD_302),
    reg(150, "T2AVGM", "Month-to-date average of T2", ML_AND_TD_302),
    reg(
        123,
        "FLOW1MAXYDATE",
        "Date of this year's maximum flow",
        ML_AND_TD_302,
    ),
    reg(124, "FLOW1MAXY", "This year's maximum flow", ML_AND_TD_302),
    reg(
        127,
        "POWER1MAXYDATE",
        "Date of this year's maximum power",
        ML_AND_TD_302,
    ),
    reg(
        128,
        "POWER1MAXY",
        "This year's maximum power",
        ML_AND_TD_302,
    ),
    reg(
        138,
        "FLOW1MAXMDATE",
        "Date of this month's maximum flow",
        ML_AND_TD_302,
    ),
    reg(139, "FLOW1MAXM", "This month's maximum flow", ML_AND_TD_302),
    reg(
        142,
        "POWER1MAXMDATE",
        "Date of this month's maximum power",
        ML_AND_TD_302,
    ),
    reg(
        143,
        "POWER1MAXM",
        "This month's maximum power",
        ML_AND_TD_302,
    ),
    reg(153, "CONFIG1", "Configuration number 1", ML_AND_TD_302),
    reg(168, "CONFIG2", "Configuration number 2", ML_AND_TD_302),
    reg(1001, "SERIALNO", "Serial number", ML_AND_TD_302),
    reg(
        112,
        "CUSTNOHIGH",
        "Customer number, 8 most significant digits",
        ML_AND_TD_302,
    ),
    reg(
        1010,
        "CUSTNOLOW",
        "Customer number, 8 least significant digits",
        ML_AND_TD_302,
    ),
    reg(
        1005,
        "SWEDITION",
        "Software edition (meter type)",
        ML_AND_TD_302,
    ),
    reg(154, "CHECKSUM", "Software checksum", ML_AND_TD_302),
];

/// This year's and this month's minima with their dates: MULTICAL 60x/801 and
/// 403 (the MULTICAL 302 list has the maxima only).
pub(super) const MINIMA: &[RegisterInfo] = &[
    reg(
        125,
        "FLOW1MINYDATE",
        "Date of this year's minimum flow",
        ML_AND_HA_403,
    ),
    reg(126, "FLOW1MINY", "This year's minimum flow", ML_AND_HA_403),
    reg(
        129,
        "POWER1MINYDATE",
        "Date of this year's minimum power",
        ML_AND_HA_403,
    ),
    reg(
        130,
        "POWER1MINY",
        "This year's minimum power",
        ML_AND_HA_403,
    ),
    reg(
        140,
        "FLOW1MINMDATE",
        "Date of this month's minimum flow",
        ML_AND_HA_403,
    ),
    reg(141, "FLOW1MINM", "This month's minimum flow", ML_AND_HA_403),
    reg(
        144,
        "POWER1MINMDATE",
        "Date of this month's minimum power",
        ML_AND_HA_403,
    ),
    reg(
        145,
        "POWER1MINM",
        "This month's minimum power",
        ML_AND_HA_403,
    ),
];

/// The MULTICAL 601/602/603/801 family: energies E2 and E4..E7, tariffs, the
/// second volume and flow, masses, T3/T4, pressures, pulse inputs and module
/// data (MeterLogger's table, written for the MULTICAL 601).
pub(super) const MC60X: &[RegisterInfo] = &[
    reg(94, "E2", "Energy register 2: control energy", ML),
    reg(61, "E4", "Energy register 4: flow energy", ML),
    reg(62, "E5", "Energy register 5: return-flow energy", ML),
    reg(95, "E6", "Energy register 6: tap-water energy", ML),
    reg(96, "E7", "Energy register 7: heat energy Y", ML),
    reg(64, "TA2", "Tariff register 2", ML),
    reg(65, "TA3", "Tariff register 3", ML),
    reg(66, "TL2", "Tariff limit 2", ML),
    reg(67, "TL3", "Tariff limit 3", ML),
    reg(69, "V2", "Volume register V2", ML),
    reg(75, "FLOW2", "Current flow in return flow", ML),
    reg(72, "M1", "Mass register M1", ML),
    reg(73, "M2", "Mass register M2", ML),
    reg(88, "T3", "Current temperature T3", ML),
    reg(122, "T4", "Current temperature T4", ML),
    reg(91, "P1", "Pressure in flow", ML),
    reg(92, "P2", "Pressure in return flow", ML),
    reg(84, "VA", "Input register VA (pulse input A)", ML),
    reg(85, "VB", "Input register VB (pulse input B)", ML),
    reg(234, "LPERIMPA", "Litres per pulse, input A", ML),
    reg(235, "LPERIMPB", "Litres per pulse, input B", ML),
    reg(114, "METERNOVA", "Meter number of VA", ML),
    reg(104, "METERNOVB", "Meter number of VB", ML),
    reg(152, "PROGNO", "Program number", ML),
    reg(
        155,
        "E1HRTEST",
        "High-resolution energy register for testing",
        ML,
    ),
    reg(158, "BASEMODULEID", "ID number of the base module", ML),
    reg(175, "ERRORHOURS", "Error hour counter", ML),
];

/// Only the MULTICAL 601, as MeterLogger marks it.
pub(super) const MC601_ONLY: &[RegisterInfo] =
    &[reg(157, "TOPMODULEID", "ID number of the top module", ML)];

/// What sources name for the MULTICAL 603 beyond the 60x family.
pub(super) const MC603_ONLY: &[RegisterInfo] = &[
    reg(259, "QPV1", "Nominal flow qp of V1", PYKMP),
    reg(260, "QPV2", "Nominal flow qp of V2", PYKMP),
    reg(369, "INFOBITS", "Info bits (info codes)", PYKAMSTRUP),
    reg(404, "METERTYPE", "Meter type", PYKAMSTRUP),
];

/// The MULTICAL 302/403 family: auto-integration averages, high-resolution
/// registers, M-Bus addresses, error hours.
pub(super) const MC30X_40X: &[RegisterInfo] = &[
    reg(
        229,
        "T1AVGAUTOINT",
        "T1 average of the latest auto-integration",
        TD_302,
    ),
    reg(
        230,
        "T2AVGAUTOINT",
        "T2 average of the latest auto-integration",
        TD_302,
    ),
    reg(239, "V1HR", "Volume V1, high resolution", TD_302),
    reg(266, "E1HR", "Heat energy E1, high resolution", TD_302),
    reg(267, "E3HR", "Cooling energy E3, high resolution", TD_302),
    reg(184, "MBUSPRIADDR", "Primary M-Bus address", TD_302),
    reg(185, "MBUSSECADDR", "Secondary M-Bus address", TD_302),
    reg(175, "ERRORHOURS", "Error hour counter", PYKMP),
];

/// What sources name for the MULTICAL 403 beyond the 302/403 family (PyKMP was
/// developed and tested on a MULTICAL 403).
pub(super) const MC403_ONLY: &[RegisterInfo] = &[
    reg(64, "TA2", "Tariff register 2", PYKMP),
    reg(65, "TA3", "Tariff register 3", PYKMP),
    reg(66, "TL2", "Tariff limit 2", PYKMP),
    reg(67, "TL3", "Tariff limit 3", PYKMP),
    reg(362, "TA4", "Tariff register 4", PYKMP),
    reg(84, "VA", "Input register VA (pulse input A)", PYKMP),
    reg(85, "VB", "Input register VB (pulse input B)", PYKMP),
    reg(473, "E10", "Energy register E10", PYKMP),
    reg(474, "E11", "Energy register E11", PYKMP),
    reg(
        364,
        "A1",
        "Heat energy with discount A1 (t2 below the t5 limit)",
        PYKMP,
    ),
    reg(
        365,
        "A2",
        "Heat energy with surcharge A2 (t2 above the t5 limit)",
        PYKMP,
    ),
    reg(366, "T5LIMIT", "t5 limit", PYKMP),
    reg(348, "DATETIME", "Date and time", PYKMP),
    reg(369, "INFOBITS", "Info bits", PYKMP),
    reg(379, "T1AVGD", "T1 time average, day", PYKMP),
    reg(380, "T2AVGD", "T2 time average, day", PYKMP),
    reg(381, "T1AVGH", "T1 time average, hour", PYKMP),
    reg(382, "T2AVGH", "T2 time average, hour", PYKMP),
    reg(398, "T1DEC", "Current T1, one decimal", PYKMP),
    reg(399, "T2DEC", "Current T2, one decimal", PYKMP),
    reg(400, "DTDEC", "Current T1 − T2, one decimal", PYKMP),
    reg(404, "METERTYPE", "Meter type", PYKMP),
];

/// MULTICAL 601.
pub(super) const MC601: [RegisterInfo; total_len(MC601_PARTS)] = concat(MC601_PARTS);
const MC601_PARTS: &[&[RegisterInfo]] = &[CORE, MINIMA, MC60X, MC601_ONLY];

/// MULTICAL 602 and 801: the 60x family with nothing model-specific sourced.
pub(super) const MC602_801: [RegisterInfo; total_len(MC602_801_PARTS)] = concat(MC602_801_PARTS);
const MC602_801_PARTS: &[&[RegisterInfo]] = &[CORE, MINIMA, MC60X];

/// MULTICAL 603.
pub(super) const MC603: [RegisterInfo; total_len(MC603_PARTS)] = concat(MC603_PARTS);
const MC603_PARTS: &[&[RegisterInfo]] = &[CORE, MINIMA, MC60X, MC603_ONLY];

/// MULTICAL 302.
pub(super) const MC302: [RegisterInfo; total_len(MC302_PARTS)] = concat(MC302_PARTS);
const MC302_PARTS: &[&[RegisterInfo]] = &[CORE, MC30X_40X];

/// MULTICAL 403.
pub(super) const MC403: [RegisterInfo; total_len(MC403_PARTS)] = concat(MC403_PARTS);
const MC403_PARTS: &[&[RegisterInfo]] = &[CORE, MINIMA, MC30X_40X, MC403_ONLY];
