//! Worker metadata: a few string pairs people use to find their Workers.

use std::collections::BTreeMap;

use crate::error::{Result, RuntimeError};

/// A Worker's metadata: string keys to string values, in key order.
pub type Metadata = BTreeMap<String, String>;

/// A JSON merge patch of [`Metadata`]: a value sets the key, `null`
/// removes it, an absent key is left alone.
pub type MetadataPatch = BTreeMap<String, Option<String>>;

/// The most metadata pairs a Worker has.
pub const MAX_METADATA_PAIRS: usize = 16;
/// The longest metadata key, in bytes (`[A-Za-z0-9._-]`).
pub const MAX_METADATA_KEY_BYTES: usize = 64;
/// The longest metadata value, in UTF-8 bytes.
pub const MAX_METADATA_VALUE_BYTES: usize = 512;

/// Checks one key: 1 to 64 bytes of `[A-Za-z0-9._-]`.
pub fn validate_metadata_key(key: &str) -> Result<()> {
    let valid = !key.is_empty()
        && key.len() <= MAX_METADATA_KEY_BYTES
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(RuntimeError::invalid_request(format!(
            "metadata key '{}' must be 1 to {MAX_METADATA_KEY_BYTES} bytes of A-Z, a-z, 0-9, '.', '_' or '-'",
            key.escape_debug()
        )))
    }
}

/// Checks a whole metadata object: at most 16 pairs, valid keys, values of
/// at most 512 bytes.
pub fn validate_metadata(metadata: &Metadata) -> Result<()> {
    if metadata.len() > MAX_METADATA_PAIRS {
        return Err(RuntimeError::invalid_request(format!(
            "metadata has {} pairs; at most {MAX_METADATA_PAIRS} are allowed",
            metadata.len()
        )));
    }
    for (key, value) in metadata {
        validate_metadata_key(key)?;
        if value.len() > MAX_METADATA_VALUE_BYTES {
            return Err(RuntimeError::invalid_request(format!(
                "metadata value of key '{key}' is {} bytes; at most {MAX_METADATA_VALUE_BYTES} are allowed",
                value.len()
            )));
        }
    }
    Ok(())
}

/// `metadata` with `patch` applied (and checked).
pub fn apply_metadata_patch(metadata: &Metadata, patch: &MetadataPatch) -> Result<Metadata> {
    let mut patched = metadata.clone();
    for (key, value) in patch {
        validate_metadata_key(key)?;
        match value {
            Some(value) => patched.insert(key.clone(), value.clone()),
            None => patched.remove(key),
        };
    }
    validate_metadata(&patched)?;
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_key() {
        let mut metadata = Metadata::new();
        metadata.insert("project".into(), "x".into());
        assert!(validate_metadata(&metadata).is_ok());
        for bad in ["", "has space", "ünï", &"k".repeat(65)] {
            let mut metadata = Metadata::new();
            metadata.insert(bad.to_owned(), "v".into());
            let err = validate_metadata(&metadata).unwrap_err().to_string();
            assert!(err.contains("metadata key"), "{bad}: {err}");
        }
        metadata.insert("long".into(), "v".repeat(513));
        let err = validate_metadata(&metadata).unwrap_err().to_string();
        assert!(err.contains("'long'"), "{err}");
        let many: Metadata = (0..17).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(validate_metadata(&many).is_err());
    }

    #[test]
    fn a_patch_sets_and_removes_keys() {
        let mut metadata = Metadata::new();
        metadata.insert("a".into(), "1".into());
        metadata.insert("b".into(), "2".into());
        let patch: MetadataPatch = [("a".into(), None), ("c".into(), Some("3".into()))].into();
        let patched = apply_metadata_patch(&metadata, &patch).unwrap();
        assert_eq!(
            patched,
            Metadata::from([("b".into(), "2".into()), ("c".into(), "3".into())])
        );
    }
}
