//! JSON helpers: duplicate-member detection (`serde_json` keeps the last duplicate silently).

use super::{Result, TokenError};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Walks any JSON value and fails on the first object with a repeated member name.
struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicatesVisitor)
    }
}

struct NoDuplicatesVisitor;

/// Prefix of the custom error carrying the duplicate name.
const DUP: &str = "duplicate member:";

impl<'de> Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any json value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E>(self) -> std::result::Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<NoDuplicates, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("{DUP}{key}")));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }
}

/// Fails with [`TokenError::DuplicateMember`] if any object in `bytes` repeats a member, or
/// [`TokenError::Malformed`] if `bytes` is not JSON.
pub(super) fn check_no_duplicates(bytes: &[u8], part: &'static str) -> Result<()> {
    match serde_json::from_slice::<NoDuplicates>(bytes) {
        Ok(NoDuplicates) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            match msg.strip_prefix(DUP) {
                Some(rest) => {
                    // serde_json appends " at line L column C".
                    let name = rest.rsplit_once(" at line ").map_or(rest, |(n, _)| n);
                    Err(TokenError::DuplicateMember {
                        part,
                        name: name.to_owned(),
                    })
                }
                None => Err(TokenError::Malformed(if part == "header" {
                    "header is not json"
                } else {
                    "payload is not json"
                })),
            }
        }
    }
}

/// Parses a JSON object without duplicate members.
pub(super) fn parse_object(
    bytes: &[u8],
    part: &'static str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    check_no_duplicates(bytes, part)?;
    match serde_json::from_slice(bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed(if part == "header" {
            "header is not a json object"
        } else {
            "payload is not a json object"
        })),
    }
}
