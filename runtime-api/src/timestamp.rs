//! RFC 3339 UTC timestamps.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time, always in UTC, written on the wire as RFC 3339
/// (for example `2026-11-24T21:56:08.123456Z`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(OffsetDateTime::now_utc())
    }

    /// Seconds since the Unix epoch, with nanoseconds.
    pub fn from_unix_nanos(nanos: i128) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(Self)
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> i128 {
        self.0.unix_timestamp_nanos()
    }

    /// Parses an RFC 3339 timestamp and converts it to UTC.
    pub fn parse_rfc3339(value: &str) -> Option<Self> {
        OffsetDateTime::parse(value, &Rfc3339)
            .ok()
            .map(|t| Self(t.to_offset(time::UtcOffset::UTC)))
    }

    /// The underlying `time` value.
    pub fn as_offset_date_time(&self) -> OffsetDateTime {
        self.0
    }
}

/// The longest RFC 3339 text a [`Timestamp`] writes:
/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const RFC3339_MAX: usize = 30;

impl Timestamp {
    /// Writes the RFC 3339 text into `buf` and returns its length, as
    /// `time`'s `Rfc3339` would (seconds' fraction without trailing zeros,
    /// none when whole, `Z`), without allocating: every response and event
    /// carries timestamps. `None` outside years 0 to 9999, which RFC 3339
    /// cannot write.
    fn write_rfc3339(&self, buf: &mut [u8; RFC3339_MAX]) -> Option<usize> {
        fn digits(buf: &mut [u8], value: u32) {
            let mut value = value;
            for byte in buf.iter_mut().rev() {
                *byte = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        let t = self.0;
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        digits(&mut buf[0..4], year);
        buf[4] = b'-';
        digits(&mut buf[5..7], u8::from(t.month()).into());
        buf[7] = b'-';
        digits(&mut buf[8..10], t.day().into());
        buf[10] = b'T';
        digits(&mut buf[11..13], t.hour().into());
        buf[13] = b':';
        digits(&mut buf[14..16], t.minute().into());
        buf[16] = b':';
        digits(&mut buf[17..19], t.second().into());
        let mut len = 19;
        let mut nanos = t.nanosecond();
        if nanos != 0 {
            let mut width = 9;
            while nanos.is_multiple_of(10) {
                nanos /= 10;
                width -= 1;
            }
            buf[19] = b'.';
            digits(&mut buf[20..20 + width], nanos);
            len = 20 + width;
        }
        buf[len] = b'Z';
        Some(len + 1)
    }
}

impl Timestamp {
    /// Appends the timestamp as a JSON string, as its `Serialize` writes it
    /// through `serde_json`; `None` when it has no RFC 3339 text.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> Option<()> {
        let mut buf = [0; RFC3339_MAX];
        let len = self.write_rfc3339(&mut buf)?;
        out.push(b'"');
        out.extend_from_slice(&buf[..len]);
        out.push(b'"');
        Some(())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0; RFC3339_MAX];
        let len = self.write_rfc3339(&mut buf).ok_or(fmt::Error)?;
        // Only ASCII digits and separators were written.
        f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0; RFC3339_MAX];
        let len = self
            .write_rfc3339(&mut buf)
            .ok_or_else(|| serde::ser::Error::custom("the year is outside 0 to 9999"))?;
        match std::str::from_utf8(&buf[..len]) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => Err(serde::ser::Error::custom("not RFC 3339 text")),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_utc_rfc3339() {
        let t = Timestamp::from_unix_nanos(1_700_000_000_123_000_000).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2023-11-14T22:13:20.123Z\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        let shifted: Timestamp = serde_json::from_str("\"2023-11-14T23:13:20.123+01:00\"").unwrap();
        assert_eq!(shifted, t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn whole_seconds_have_no_fraction_and_years_before_0_do_not_format() {
        let t = Timestamp::from_unix_nanos(0).unwrap();
        assert_eq!(t.to_string(), "1970-01-01T00:00:00Z");
        let year_0 = Timestamp::from_unix_nanos(-62_167_219_200 * 1_000_000_000).unwrap();
        assert_eq!(year_0.to_string(), "0000-01-01T00:00:00Z");
        // RFC 3339 has no year -1; `time` refuses it too.
        let year_minus_1 = Timestamp::from_unix_nanos(-62_198_755_200 * 1_000_000_000).unwrap();
        assert!(year_minus_1.0.format(&Rfc3339).is_err());
        assert!(serde_json::to_string(&year_minus_1).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The allocation-free writer says exactly what `time` says.
        #[test]
        fn writes_what_time_writes(
            nanos in -62_167_219_200_000_000_000i128..=253_402_300_799_999_999_999,
            trailing_zeros in 0u32..=9,
        ) {
            // Trailing zeros in the fraction are where the two could differ.
            let step = 10i128.pow(trailing_zeros);
            let t = Timestamp::from_unix_nanos(nanos / step * step).unwrap();
            let expected = t.0.format(&Rfc3339).unwrap();
            proptest::prop_assert_eq!(t.to_string(), expected.clone());
            proptest::prop_assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{expected}\"")
            );
        }
    }
}
