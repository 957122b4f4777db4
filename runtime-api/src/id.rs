//! Validated identifiers.
//!
//! Every id that crosses the contract is a newtype that can only hold a valid
//! value: 1 to [`MAX_ID_LEN`] bytes from the charset `[A-Za-z0-9._:-]`, and
//! never `.` or `..` on its own. Parsing (`FromStr`, `TryFrom<String>`, serde
//! deserialization) validates, so a path segment such as `../x`, a value with
//! spaces, slashes or control characters, or an over-long value never becomes
//! an id. Ids are therefore safe to use as map keys, in logs and in URLs.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smol_str::SmolStr;

/// The largest id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why a string is not a valid id. On the wire (the `reason` of an
/// `invalid_id` error) it is the snake_case variant name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IdErrorReason {
    /// The value is the empty string.
    #[error("must not be empty")]
    Empty,
    /// The value is longer than [`MAX_ID_LEN`] bytes.
    #[error("must be at most {MAX_ID_LEN} bytes")]
    TooLong,
    /// The value holds a character outside `[A-Za-z0-9._:-]`.
    #[error("may only contain ASCII letters, digits, '.', '_', ':' and '-'")]
    InvalidCharacter,
    /// The value is `.` or `..`, which would be read as a path component.
    #[error("must not be '.' or '..'")]
    DotSegment,
}

/// A string that failed id validation.
///
/// The rejected value itself is deliberately not kept: it may be huge or hold
/// control characters, and errors are shown to clients and written to logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which id was being parsed, for example `worker_id`.
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: IdErrorReason,
}

/// Checks `value` against the id rules.
pub fn validate_id(kind: &'static str, value: &str) -> Result<(), IdError> {
    let reason = if value.is_empty() {
        Some(IdErrorReason::Empty)
    } else if value.len() > MAX_ID_LEN {
        Some(IdErrorReason::TooLong)
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        Some(IdErrorReason::InvalidCharacter)
    } else if value == "." || value == ".." {
        Some(IdErrorReason::DotSegment)
    } else {
        None
    };
    match reason {
        Some(reason) => Err(IdError { kind, reason }),
        None => Ok(()),
    }
}

/// Reads an id from a borrowed string where the input allows, so that a
/// short id is never allocated.
struct IdVisitor<T>(fn(&str) -> Result<T, IdError>);

impl<T> serde::de::Visitor<'_> for IdVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What `String` says, as before.
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<T, E> {
        (self.0)(value).map_err(E::custom)
    }
}

macro_rules! validated_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        ///
        /// Held inline up to 23 bytes (every id `yoi` generates), so that
        /// parsing and cloning one does not allocate.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(SmolStr);

        impl $name {
            /// The name this id has in errors and on the wire.
            pub const KIND: &'static str = $kind;

            /// Validates `value` and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate_id($kind, &value)?;
                Ok(Self(SmolStr::from(value)))
            }

            /// Validates `value` and copies it (no allocation up to 23
            /// bytes).
            fn parse(value: &str) -> Result<Self, IdError> {
                validate_id($kind, value)?;
                Ok(Self(SmolStr::new(value)))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the id into its string.
            pub fn into_string(self) -> String {
                self.0.into()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(value: &str) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(IdVisitor(Self::parse))
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_ID_LEN))
                    .pattern(Some(ID_PATTERN))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

/// The id rules as a regular expression, for schemas: 1 to 128 characters
/// of the charset, and not `.` or `..` (spelled out as the lengths 1 and 2
/// without lookahead, which not every schema tool supports).
pub const ID_PATTERN: &str =
    "^(?:[A-Za-z0-9._:-]{3,128}|[A-Za-z0-9_:-]|[A-Za-z0-9._:-][A-Za-z0-9_:-]|[A-Za-z0-9_:-][.])$";

validated_id!(
    /// Names one Runtime in a registry, for example `backend-internal`.
    RuntimeId,
    "runtime_id"
);
validated_id!(
    /// Names one Worker within its Runtime. The same `WorkerId` may exist in
    /// two Runtimes; a Worker is only identified by `(RuntimeId, WorkerId)`.
    WorkerId,
    "worker_id"
);
validated_id!(
    /// Names one input sent to a Worker, either assigned by the Runtime or
    /// supplied by the client as `client_input_id` for idempotent retries.
    InputId,
    "input_id"
);
validated_id!(
    /// Names a Worker profile, for example `default`.
    ProfileName,
    "profile"
);
validated_id!(
    /// An opaque position in an event log. Clients must not interpret it;
    /// they pass back a cursor they were given to read what follows it.
    EventCursor,
    "cursor"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_whole_charset() {
        let id = WorkerId::new("Az09._:-x").unwrap();
        assert_eq!(id.as_str(), "Az09._:-x");
        assert_eq!(id.to_string(), "Az09._:-x");
        assert_eq!("w-1".parse::<WorkerId>().unwrap().as_str(), "w-1");
        assert!(RuntimeId::new("a".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn rejects_bad_values_with_a_reason() {
        let cases = [
            ("", IdErrorReason::Empty),
            ("../x", IdErrorReason::InvalidCharacter),
            ("a b", IdErrorReason::InvalidCharacter),
            ("a/b", IdErrorReason::InvalidCharacter),
            ("a\\b", IdErrorReason::InvalidCharacter),
            ("a\nb", IdErrorReason::InvalidCharacter),
            ("a\u{0}", IdErrorReason::InvalidCharacter),
            ("é", IdErrorReason::InvalidCharacter),
            (".", IdErrorReason::DotSegment),
            ("..", IdErrorReason::DotSegment),
        ];
        for (value, reason) in cases {
            let err = WorkerId::new(value).unwrap_err();
            assert_eq!(
                err,
                IdError {
                    kind: "worker_id",
                    reason
                },
                "{value:?}"
            );
        }
        let long = "a".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            RuntimeId::new(long).unwrap_err().reason,
            IdErrorReason::TooLong
        );
    }

    #[test]
    fn deserializing_validates() {
        let ok: InputId = serde_json::from_str("\"in-1\"").unwrap();
        assert_eq!(ok.as_str(), "in-1");
        let err = serde_json::from_str::<InputId>("\"../etc\"").unwrap_err();
        assert!(err.to_string().contains("invalid input_id"), "{err}");
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"in-1\"");
    }

    #[test]
    fn ids_short_and_long_read_and_compare_alike() {
        // Inline up to 23 bytes, on the heap beyond: the same behaviour.
        for value in [
            "w-1",
            &"w".repeat(23),
            &"w".repeat(24),
            &"w".repeat(MAX_ID_LEN),
        ] {
            let parsed: WorkerId = value.parse().unwrap();
            let made = WorkerId::new(value.to_owned()).unwrap();
            let read: WorkerId = serde_json::from_str(&format!("\"{value}\"")).unwrap();
            assert_eq!(parsed, made);
            assert_eq!(parsed, read);
            assert_eq!(parsed.clone().into_string(), value);
            let mut set = std::collections::HashSet::new();
            set.insert(parsed);
            assert!(set.contains(value), "a lookup by `&str` finds it");
        }
        // An escaped character is read like any other.
        let escaped: WorkerId = serde_json::from_str("\"w\\u002d1\"").unwrap();
        assert_eq!(escaped.as_str(), "w-1");
        let err = serde_json::from_str::<WorkerId>("5").unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
    }

    #[test]
    fn debug_names_the_type() {
        let id = ProfileName::new("default").unwrap();
        assert_eq!(format!("{id:?}"), "ProfileName(\"default\")");
    }
}
