//! How values are written into columns and read back.

use serde::Serialize;
use serde::de::DeserializeOwned;
use yoi_runtime_api::Timestamp;

/// A wire-named enum (`idle`, `assistant`, ...) as text.
pub(super) fn name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => unreachable!("these enums serialize as strings"),
    }
}

/// Text back into a wire-named enum.
pub(super) fn from_name<T: DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// A JSON column back into a value.
pub(super) fn from_json<T: DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// A value as a JSON column.
pub(super) fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| unreachable!("DTOs serialize"))
}

/// Unix nanoseconds, which fit an `i64` until the year 2262.
pub(super) fn nanos(at: &Timestamp) -> i64 {
    at.as_offset_date_time().unix_timestamp_nanos() as i64
}

pub(super) fn timestamp(nanos: i64) -> rusqlite::Result<Timestamp> {
    Timestamp::from_unix_nanos(i128::from(nanos)).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Integer,
            "timestamp out of range".into(),
        )
    })
}

/// An id column back into a validated id.
pub(super) fn id<T: std::str::FromStr>(text: &str) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text.parse().map_err(|e: T::Err| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}
