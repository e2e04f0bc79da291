//! KMP unit codes: the byte each register value carries to say what it
//! measures. The table is the one in `kmp-protocol.md` §4; an unknown code is
//! kept and shown as `unit 0xNN`, never guessed.

use std::fmt;

/// A KMP unit code. Every byte value is a valid `Unit`; only some are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit(pub u8);

/// What kind of quantity a unit measures, for sinks that classify values
/// (Home Assistant device classes, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// A plain number without a unit.
    Number,
    /// Active energy (Wh, J, cal and their multiples).
    Energy,
    /// Reactive energy (varh).
    ReactiveEnergy,
    /// Apparent energy (VAh).
    ApparentEnergy,
    /// Active power (W).
    Power,
    /// Reactive power (var).
    ReactivePower,
    /// Apparent power (VA).
    ApparentPower,
    /// Voltage.
    Voltage,
    /// Current.
    Current,
    /// Temperature in °C.
    Temperature,
    /// Temperature difference in K.
    TemperatureDifference,
    /// Volume.
    Volume,
    /// Volume per time.
    VolumeFlow,
    /// Volume times temperature (m³·°C), used for average temperatures.
    VolumeTemperature,
    /// Mass.
    Mass,
    /// Mass per time.
    MassFlow,
    /// Pressure.
    Pressure,
    /// A duration (hours, minutes, seconds, days).
    Duration,
    /// A calendar date.
    Date,
    /// A time of day.
    TimeOfDay,
    /// A date and time, or a real-time clock value.
    DateTime,
    /// Text.
    Ascii,
    /// A set of flags.
    BitField,
    /// Pulses per volume or volume per pulse (pulse inputs).
    PulseRatio,
    /// Frequency.
    Frequency,
    /// An angle.
    Angle,
    /// A share in percent (relative humidity and O₂ included).
    Percent,
    /// Speed.
    Speed,
    /// Specific energy (kJ/kg).
    SpecificEnergy,
    /// Acidity (pH).
    Acidity,
    /// Moisture content (g/kg).
    Moisture,
    /// A network address (IPv4, IPv6).
    NetworkAddress,
    /// A code this table does not know.
    Unknown,
}

/// Symbol and quantity of each known code, indexed by code. 0x15 is W and
/// 0x19 var as in conpot (scraped from a real 382) and jktjkt/PyKMP, which
/// fits the pattern of Wh kWh MWh GWh; older sources print kW and kvar for
/// both 0x15/0x16 and 0x19/0x1A.
const TABLE: [(&str, Quantity); 0x41] = {
    use Quantity::*;
    [
        ("", Number),                 // 0x00
        ("Wh", Energy),               // 0x01
        ("kWh", Energy),              // 0x02
        ("MWh", Energy),              // 0x03
        ("GWh", Energy),              // 0x04
        ("J", Energy),                // 0x05
        ("kJ", Energy),               // 0x06
        ("MJ", Energy),               // 0x07
        ("GJ", Energy),               // 0x08
        ("Cal", Energy),              // 0x09
        ("kCal", Energy),             // 0x0A
        ("Mcal", Energy),             // 0x0B
        ("Gcal", Energy),             // 0x0C
        ("varh", ReactiveEnergy),     // 0x0D
        ("kvarh", ReactiveEnergy),    // 0x0E
        ("Mvarh", ReactiveEnergy),    // 0x0F
        ("Gvarh", ReactiveEnergy),    // 0x10: missing from kmp-protocol.md, Gvarh in PyKamstrup
        ("VAh", ApparentEnergy),      // 0x11
        ("kVAh", ApparentEnergy),     // 0x12
        ("MVAh", ApparentEnergy),     // 0x13
        ("GVAh", ApparentEnergy),     // 0x14
        ("W", Power),                 // 0x15
        ("kW", Power),                // 0x16
        ("MW", Power),                // 0x17
        ("GW", Power),                // 0x18
        ("var", ReactivePower),       // 0x19
        ("kvar", ReactivePower),      // 0x1A
        ("Mvar", ReactivePower),      // 0x1B
        ("Gvar", ReactivePower),      // 0x1C
        ("VA", ApparentPower),        // 0x1D
        ("kVA", ApparentPower),       // 0x1E
        ("MVA", ApparentPower),       // 0x1F
        ("GVA", ApparentPower),       // 0x20
        ("V", Voltage),               // 0x21
        ("A", Current),               // 0x22
        ("kV", Voltage),              // 0x23
        ("kA", Current),              // 0x24
        ("°C", Temperature),          // 0x25
        ("K", TemperatureDifference), // 0x26
        ("l", Volume),                // 0x27
        ("m³", Volume),               // 0x28
        ("l/h", VolumeFlow),          // 0x29
        ("m³/h", VolumeFlow),         // 0x2A
        ("m³·°C", VolumeTemperature), // 0x2B
        ("ton", Mass),                // 0x2C
        ("ton/h", MassFlow),          // 0x2D
        ("h", Duration),              // 0x2E
        ("hh:mm:ss", TimeOfDay),      // 0x2F
        ("yy:mm:dd", Date),           // 0x30
        ("yyyy:mm:dd", Date),         // 0x31
        ("mm:dd", Date),              // 0x32
        ("", Number),                 // 0x33
        ("bar", Pressure),            // 0x34
        ("RTC", DateTime),            // 0x35
        ("ASCII", Ascii),             // 0x36
        ("m³ ×10", Volume),           // 0x37
        ("ton ×10", Mass),            // 0x38
        ("GJ ×10", Energy),           // 0x39
        ("min", Duration),            // 0x3A
        ("bit field", BitField),      // 0x3B
        ("s", Duration),              // 0x3C
        ("ms", Duration),             // 0x3D
        ("days", Duration),           // 0x3E
        ("RTC-Q", DateTime),          // 0x3F
        ("date-time", DateTime),      // 0x40
    ]
};

/// The codes above 0x40 (kmp-protocol.md §4: conpot's table from a real 382,
/// and jktjkt/PyKMP); the codes between them are unknown.
const ABOVE_0X40: [(u8, &str, Quantity); 17] = {
    use Quantity::*;
    [
        (0x41, "imp/l", PulseRatio),
        (0x42, "l/imp", PulseRatio),
        (0x43, "Hz", Frequency),
        (0x44, "°", Angle),
        (0x45, "%", Percent),
        (0x46, "US gal", Volume),
        (0x47, "US gal/min", VolumeFlow),
        (0x48, "date-time", DateTime),
        (0x49, "IPv4", NetworkAddress),
        (0x4A, "IPv6", NetworkAddress),
        (0x4F, "date-time", DateTime),
        (0x55, "%RH", Percent),
        (0x56, "%O₂", Percent),
        (0x57, "m/s", Speed),
        (0x58, "kJ/kg", SpecificEnergy),
        (0x59, "pH", Acidity),
        (0x5A, "g/kg", Moisture),
    ]
};

/// Unit `0x4F`: a date and time in 7 bytes (DST/offset, YY, MM, DD, hh, mm,
/// ss), as register 348 carries it in the loggers.
pub const DATE_TIME_7: Unit = Unit(0x4F);

impl Unit {
    /// The unit code as on the wire.
    pub fn code(self) -> u8 {
        self.0
    }

    /// Whether the code is in the table.
    pub fn is_known(self) -> bool {
        self.entry().is_some()
    }

    fn entry(self) -> Option<(&'static str, Quantity)> {
        TABLE.get(usize::from(self.0)).copied().or_else(|| {
            ABOVE_0X40
                .iter()
                .find(|(code, _, _)| *code == self.0)
                .map(|&(_, symbol, quantity)| (symbol, quantity))
        })
    }

    /// The symbol (`"GJ"`, `"°C"`), empty for a plain number; `None` for an
    /// unknown code.
    pub fn symbol(self) -> Option<&'static str> {
        self.entry().map(|(symbol, _)| symbol)
    }

    /// What the unit measures.
    pub fn quantity(self) -> Quantity {
        self.entry()
            .map_or(Quantity::Unknown, |(_, quantity)| quantity)
    }
}

impl fmt::Display for Unit {
    /// The symbol, or `unit 0xNN` for a code outside the table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symbol() {
            Some(symbol) => f.write_str(symbol),
            None => write!(f, "unit 0x{:02X}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_of_common_units() {
        for (code, symbol) in [
            (0x08, "GJ"),
            (0x15, "W"),
            (0x16, "kW"),
            (0x17, "MW"),
            (0x19, "var"),
            (0x1A, "kvar"),
            (0x1B, "Mvar"),
            (0x25, "°C"),
            (0x28, "m³"),
            (0x29, "l/h"),
            (0x00, ""),
            (0x40, "date-time"),
        ] {
            assert_eq!(Unit(code).to_string(), symbol, "code 0x{code:02X}");
        }
    }

    #[test]
    fn unknown_code_is_shown_not_guessed() {
        assert_eq!(Unit(0x4B).to_string(), "unit 0x4B");
        assert_eq!(Unit(0xFF).quantity(), Quantity::Unknown);
        assert!(!Unit(0x4B).is_known());
    }

    #[test]
    fn units_above_0x40() {
        for (code, symbol, quantity) in [
            (0x41, "imp/l", Quantity::PulseRatio),
            (0x43, "Hz", Quantity::Frequency),
            (0x4F, "date-time", Quantity::DateTime),
            (0x55, "%RH", Quantity::Percent),
            (0x5A, "g/kg", Quantity::Moisture),
        ] {
            assert_eq!(Unit(code).to_string(), symbol, "code 0x{code:02X}");
            assert_eq!(Unit(code).quantity(), quantity, "code 0x{code:02X}");
        }
        assert!(!Unit(0x50).is_known());
    }
}
