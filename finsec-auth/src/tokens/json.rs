//! JSON helpers: duplicate-member detection (`serde_json` keeps the last duplicate silently),
//! a one-pass parse of the JOSE header, and serialisation that refuses duplicate members in
//! the same pass.
//!
//! Parsing walks the JSON with `serde_json` (so escapes, numbers and nesting follow one
//! parser) and compares member names after unescaping. Names are borrowed from the input
//! whenever they contain no escape, and each object's names sit in a short vector, so the walk
//! allocates only for escaped names and for objects with many members.

use super::{Result, TokenError, TokenRejection};
use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use std::borrow::Cow;
use std::collections::HashSet;
use std::{fmt, io};

/// Prefix of the custom error carrying the duplicate name.
const DUP: &str = "duplicate member:";

/// Objects with up to this many members are checked by linear search; larger ones by hash.
const LINEAR_LIMIT: usize = 16;

/// Member names seen so far in one object.
#[derive(Default)]
struct SeenNames<'de> {
    few: Vec<Cow<'de, str>>,
    many: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> SeenNames<'de> {
    /// Records `name`; fails with the duplicate error if it was already seen.
    fn insert<E: de::Error>(&mut self, name: Cow<'de, str>) -> std::result::Result<(), E> {
        let fresh = match &mut self.many {
            Some(set) => {
                if set.contains(&name) {
                    false
                } else {
                    set.insert(name.clone())
                }
            }
            None if self.few.len() < LINEAR_LIMIT => {
                if self.few.contains(&name) {
                    false
                } else {
                    self.few.push(name.clone());
                    true
                }
            }
            None => {
                let mut set: HashSet<Cow<'de, str>> = self.few.drain(..).collect();
                let fresh = set.insert(name.clone());
                self.many = Some(set);
                fresh
            }
        };
        if fresh {
            Ok(())
        } else {
            Err(de::Error::custom(format_args!("{DUP}{name}")))
        }
    }
}

/// A member name, borrowed from the input when it has no escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// Walks any JSON value and fails on the first object with a repeated member name.
struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(Walk(|_: Scalar<'de>| NoDuplicates, || NoDuplicates))
    }
}

/// A JSON scalar seen by [`Walk`]; only strings are kept.
enum Scalar<'de> {
    Str(Cow<'de, str>),
    Other,
}

/// Visits any value: scalars go to `on_scalar`, arrays and objects are walked for duplicate
/// members and give `on_container()`.
struct Walk<S, C>(S, C);

fn walk_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> std::result::Result<(), A::Error> {
    while seq.next_element::<NoDuplicates>()?.is_some() {}
    Ok(())
}

fn walk_map<'de, A: MapAccess<'de>>(mut map: A) -> std::result::Result<(), A::Error> {
    let mut seen = SeenNames::default();
    while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
        seen.insert(name)?;
        map.next_value::<NoDuplicates>()?;
    }
    Ok(())
}

impl<'de, T, S: FnOnce(Scalar<'de>) -> T, C: FnOnce() -> T> Visitor<'de> for Walk<S, C> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any json value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<T, E> {
        Ok((self.0)(Scalar::Other))
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<T, E> {
        Ok((self.0)(Scalar::Other))
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<T, E> {
        Ok((self.0)(Scalar::Other))
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<T, E> {
        Ok((self.0)(Scalar::Other))
    }
    fn visit_unit<E>(self) -> std::result::Result<T, E> {
        Ok((self.0)(Scalar::Other))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<T, E> {
        Ok((self.0)(Scalar::Str(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<T, E> {
        Ok((self.0)(Scalar::Str(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<T, E> {
        Ok((self.0)(Scalar::Str(Cow::Owned(v))))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<T, A::Error> {
        walk_seq(seq)?;
        Ok((self.1)())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<T, A::Error> {
        walk_map(map)?;
        Ok((self.1)())
    }
}

/// A header member whose value should be a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StrValue<'de> {
    /// The string.
    Str(Cow<'de, str>),
    /// Any other JSON value.
    NotString,
}

impl<'de> Deserialize<'de> for StrValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(Walk(
            |s: Scalar<'de>| match s {
                Scalar::Str(s) => StrValue::Str(s),
                Scalar::Other => StrValue::NotString,
            },
            || StrValue::NotString,
        ))
    }
}

/// The `crit` header member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Crit<'de> {
    /// Not an array.
    NotArray,
    /// An array; its first entry, if any.
    Array(Option<StrValue<'de>>),
}

impl<'de> Deserialize<'de> for Crit<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct CritVisitor;
        impl<'de> Visitor<'de> for CritVisitor {
            type Value = Crit<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any json value")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Crit<'de>, A::Error> {
                let first = seq.next_element::<StrValue<'de>>()?;
                walk_seq(seq)?;
                Ok(Crit::Array(first))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Crit<'de>, A::Error> {
                walk_map(map)?;
                Ok(Crit::NotArray)
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<Crit<'de>, E> {
                Ok(Crit::NotArray)
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<Crit<'de>, E> {
                Ok(Crit::NotArray)
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<Crit<'de>, E> {
                Ok(Crit::NotArray)
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<Crit<'de>, E> {
                Ok(Crit::NotArray)
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<Crit<'de>, E> {
                Ok(Crit::NotArray)
            }
            fn visit_unit<E>(self) -> std::result::Result<Crit<'de>, E> {
                Ok(Crit::NotArray)
            }
        }
        deserializer.deserialize_any(CritVisitor)
    }
}

/// The header members the verifier acts on, read in the same pass that checks for
/// duplicate members anywhere in the header.
#[derive(Debug, Default)]
pub(super) struct Header<'de> {
    /// `alg`.
    pub(super) alg: Option<StrValue<'de>>,
    /// `kid`.
    pub(super) kid: Option<StrValue<'de>>,
    /// `crit`.
    pub(super) crit: Option<Crit<'de>>,
    /// Which of `jku`, `x5u`, `x5c`, `jwk` (in that order) are present.
    pub(super) key_members: [bool; 4],
}

/// Header members that would pick or embed a key, in the order they are reported.
pub(super) const KEY_MEMBERS: [&str; 4] = ["jku", "x5u", "x5c", "jwk"];

/// The header's top level: an object, or anything else (walked for duplicates all the same).
enum TopLevel<'de> {
    Object(Header<'de>),
    NotObject,
}

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a json object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<TopLevel<'de>, A::Error> {
                let mut seen = SeenNames::default();
                let mut header = Header::default();
                while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
                    match name.as_ref() {
                        "alg" => header.alg = Some(map.next_value()?),
                        "kid" => header.kid = Some(map.next_value()?),
                        "crit" => header.crit = Some(map.next_value()?),
                        other => {
                            if let Some(flag) = KEY_MEMBERS
                                .iter()
                                .position(|m| *m == other)
                                .and_then(|i| header.key_members.get_mut(i))
                            {
                                *flag = true;
                            }
                            map.next_value::<NoDuplicates>()?;
                        }
                    }
                    seen.insert(name)?;
                }
                Ok(TopLevel::Object(header))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<TopLevel<'de>, A::Error> {
                walk_seq(seq)?;
                Ok(TopLevel::NotObject)
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<TopLevel<'de>, E> {
                Ok(TopLevel::NotObject)
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<TopLevel<'de>, E> {
                Ok(TopLevel::NotObject)
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<TopLevel<'de>, E> {
                Ok(TopLevel::NotObject)
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<TopLevel<'de>, E> {
                Ok(TopLevel::NotObject)
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<TopLevel<'de>, E> {
                Ok(TopLevel::NotObject)
            }
            fn visit_unit<E>(self) -> std::result::Result<TopLevel<'de>, E> {
                Ok(TopLevel::NotObject)
            }
        }
        deserializer.deserialize_any(HeaderVisitor)
    }
}

/// Maps a `serde_json` error to [`TokenRejection::DuplicateMember`] or
/// [`TokenRejection::Malformed`].
fn json_error(e: &serde_json::Error, part: &'static str) -> TokenRejection {
    let msg = e.to_string();
    match msg.strip_prefix(DUP) {
        Some(rest) => {
            // serde_json appends " at line L column C".
            let name = rest.rsplit_once(" at line ").map_or(rest, |(n, _)| n);
            TokenRejection::DuplicateMember {
                part,
                name: name.to_owned(),
            }
        }
        None => TokenRejection::Malformed(if part == "header" {
            "header is not json"
        } else {
            "payload is not json"
        }),
    }
}

/// Fails with [`TokenRejection::DuplicateMember`] if any object in `bytes` repeats a
/// member, or [`TokenRejection::Malformed`] if `bytes` is not JSON.
pub(super) fn check_no_duplicates(bytes: &[u8], part: &'static str) -> Result<(), TokenRejection> {
    match serde_json::from_slice::<NoDuplicates>(bytes) {
        Ok(NoDuplicates) => Ok(()),
        Err(e) => Err(json_error(&e, part)),
    }
}

/// Parses a JOSE header in one pass: a JSON object without duplicate members (at any depth),
/// with the members the verifier needs.
pub(super) fn parse_header(bytes: &[u8]) -> Result<Header<'_>, TokenRejection> {
    match serde_json::from_slice::<TopLevel<'_>>(bytes) {
        Ok(TopLevel::Object(header)) => Ok(header),
        Ok(TopLevel::NotObject) => Err(TokenRejection::Malformed("header is not a json object")),
        Err(e) => Err(json_error(&e, "header")),
    }
}

/// Member names of the objects open during serialisation.
#[derive(Default)]
struct WriteState {
    /// Unescaped names of the members of all open objects, back to back.
    names: Vec<u8>,
    /// `(start, end)` in `names` of each member name of the open objects.
    spans: Vec<(usize, usize)>,
    /// Open objects, innermost last.
    objects: Vec<OpenObject>,
    /// Inside a member name; where it starts in `names`.
    key_start: Option<usize>,
    /// A name was written as a number or bool, or raw JSON was inserted: names could not all
    /// be compared here, so the output is parsed once more.
    opaque: bool,
    /// The first repeated name found.
    duplicate: Option<String>,
}

struct OpenObject {
    first_span: usize,
    names_start: usize,
    /// Names of an object past [`LINEAR_LIMIT`] members.
    many: Option<HashSet<Box<[u8]>>>,
}

impl WriteState {
    /// Records the member name that just ended; fails on a repeat.
    fn end_name(&mut self) -> io::Result<()> {
        let Some(start) = self.key_start.take() else {
            return Ok(());
        };
        if self.opaque {
            self.names.truncate(start);
            return Ok(());
        }
        let end = self.names.len();
        let Some(object) = self.objects.last_mut() else {
            return Ok(());
        };
        let name = self.names.get(start..end).unwrap_or_default();
        let repeated = match &mut object.many {
            Some(set) => !set.insert(name.into()),
            None => {
                let earlier = self.spans.get(object.first_span..).unwrap_or_default();
                let repeated = earlier
                    .iter()
                    .any(|&(s, e)| self.names.get(s..e) == Some(name));
                if !repeated && earlier.len() >= LINEAR_LIMIT {
                    let mut set: HashSet<Box<[u8]>> = earlier
                        .iter()
                        .filter_map(|&(s, e)| self.names.get(s..e))
                        .map(Box::from)
                        .collect();
                    set.insert(name.into());
                    object.many = Some(set);
                    self.spans.truncate(object.first_span);
                    self.names.truncate(object.names_start);
                    return Ok(());
                }
                repeated
            }
        };
        if repeated {
            self.duplicate = Some(String::from_utf8_lossy(name).into_owned());
            return Err(io::Error::other("duplicate member"));
        }
        if object.many.is_some() {
            self.names.truncate(start);
        } else {
            self.spans.push((start, end));
        }
        Ok(())
    }
}

/// serde_json's compact output, watching member names as they are written.
struct NoDuplicatesFormatter<'s>(&'s mut WriteState);

macro_rules! opaque_in_name {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<W: ?Sized + io::Write>(&mut self, w: &mut W, value: $ty) -> io::Result<()> {
            if self.0.key_start.is_some() {
                self.0.opaque = true;
            }
            CompactFormatter.$method(w, value)
        }
    )*};
}

impl Formatter for NoDuplicatesFormatter<'_> {
    opaque_in_name!(
        write_bool(bool),
        write_i8(i8),
        write_i16(i16),
        write_i32(i32),
        write_i64(i64),
        write_i128(i128),
        write_u8(u8),
        write_u16(u16),
        write_u32(u32),
        write_u64(u64),
        write_u128(u128),
        write_f32(f32),
        write_f64(f64),
        write_number_str(&str),
        write_byte_array(&[u8]),
    );

    fn write_raw_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Raw JSON is written as is, objects and all, without the calls watched here.
        self.0.opaque = true;
        CompactFormatter.write_raw_fragment(w, fragment)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.objects.push(OpenObject {
            first_span: self.0.spans.len(),
            names_start: self.0.names.len(),
            many: None,
        });
        CompactFormatter.begin_object(w)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        if let Some(object) = self.0.objects.pop() {
            self.0.spans.truncate(object.first_span);
            self.0.names.truncate(object.names_start);
        }
        CompactFormatter.end_object(w)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.key_start = Some(self.0.names.len());
        CompactFormatter.begin_object_key(w, first)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_name()?;
        CompactFormatter.end_object_key(w)
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if self.0.key_start.is_some() {
            self.0.names.extend_from_slice(fragment.as_bytes());
        }
        w.write_all(fragment.as_bytes())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        if self.0.key_start.is_some() {
            self.0.names.push(match escape {
                CharEscape::Quote => b'"',
                CharEscape::ReverseSolidus => b'\\',
                CharEscape::Solidus => b'/',
                CharEscape::Backspace => 0x08,
                CharEscape::FormFeed => 0x0c,
                CharEscape::LineFeed => b'\n',
                CharEscape::CarriageReturn => b'\r',
                CharEscape::Tab => b'\t',
                CharEscape::AsciiControl(byte) => byte,
            });
        }
        CompactFormatter.write_char_escape(w, escape)
    }
}

/// Serialises `value` as compact JSON (the bytes `serde_json::to_writer` writes) onto `out`,
/// refusing a repeated member name in any object as it goes: [`TokenError::DuplicateMember`],
/// or [`TokenError::InvalidClaims`] if serialisation fails.
///
/// Names are compared unescaped, as a parser sees them. Only when a name is written as a
/// number or bool, or raw JSON is embedded, is the output parsed once more to check it.
pub(super) fn to_writer_no_duplicates<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<()> {
    let start = out.len();
    let mut state = WriteState::default();
    let written = {
        let mut ser =
            serde_json::Serializer::with_formatter(&mut *out, NoDuplicatesFormatter(&mut state));
        value.serialize(&mut ser)
    };
    if let Some(name) = state.duplicate {
        return Err(TokenError::DuplicateMember {
            part: "payload",
            name,
        });
    }
    written.map_err(|e| TokenError::InvalidClaims(e.to_string()))?;
    if state.opaque {
        check_no_duplicates(out.get(start..).unwrap_or_default(), "payload").map_err(
            |rejection| match rejection {
                TokenRejection::DuplicateMember { part, name } => {
                    TokenError::DuplicateMember { part, name }
                }
                other => TokenError::InvalidClaims(other.to_string()),
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_found_at_any_depth_and_after_unescaping() {
        for (json, name) in [
            (r#"{"a":1,"a":2}"#, "a"),
            (r#"{"x":{"b":[1,{"c":1,"c":2}]}}"#, "c"),
            (r#"{"a":1,"\u0061":2}"#, "a"),
        ] {
            assert_eq!(
                check_no_duplicates(json.as_bytes(), "payload"),
                Err(TokenRejection::DuplicateMember {
                    part: "payload",
                    name: name.to_owned()
                }),
                "{json}"
            );
        }
    }

    #[test]
    fn large_objects_switch_to_hashing_and_still_find_duplicates() {
        let mut members: Vec<String> = (0..40).map(|i| format!("\"m{i}\":{i}")).collect();
        let unique = format!("{{{}}}", members.join(","));
        assert_eq!(check_no_duplicates(unique.as_bytes(), "payload"), Ok(()));
        members.push("\"m3\":0".to_owned());
        let dup = format!("{{{}}}", members.join(","));
        assert_eq!(
            check_no_duplicates(dup.as_bytes(), "payload"),
            Err(TokenRejection::DuplicateMember {
                part: "payload",
                name: "m3".to_owned()
            })
        );
    }

    #[test]
    fn serialisation_refuses_duplicates_in_one_pass() {
        use std::collections::BTreeMap;
        #[derive(Serialize)]
        struct Outer {
            iss: &'static str,
            #[serde(flatten)]
            extra: BTreeMap<String, serde_json::Value>,
        }
        let ok = Outer {
            iss: "a",
            extra: [
                (
                    "x\n\"y".to_owned(),
                    serde_json::json!({"iss": 1, "k": [{"k": 1}]}),
                ),
                ("z".to_owned(), serde_json::json!(null)),
            ]
            .into(),
        };
        let mut out = Vec::new();
        to_writer_no_duplicates(&mut out, &ok).unwrap();
        assert_eq!(out, serde_json::to_vec(&ok).unwrap());

        let clash = Outer {
            iss: "a",
            extra: [("iss".to_owned(), serde_json::json!("b"))].into(),
        };
        assert_eq!(
            to_writer_no_duplicates(&mut Vec::new(), &clash),
            Err(TokenError::DuplicateMember {
                part: "payload",
                name: "iss".to_owned()
            })
        );
        // Escaped and control-character names compare unescaped.
        let nested = Outer {
            iss: "a",
            extra: [(
                "n".to_owned(),
                serde_json::json!([{"q\"\u{1}": 1, "r": {"iss": 2}}]),
            )]
            .into(),
        };
        to_writer_no_duplicates(&mut Vec::new(), &nested).unwrap();
        // Many members: the hashed path finds the repeat too.
        let mut many: Vec<(String, u32)> = (0..40).map(|i| (format!("m{i}"), i)).collect();
        many.push(("m7".to_owned(), 0));
        struct Pairs(Vec<(String, u32)>);
        impl Serialize for Pairs {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut m = s.serialize_map(None)?;
                for (k, v) in &self.0 {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        assert_eq!(
            to_writer_no_duplicates(&mut Vec::new(), &Pairs(many.clone())),
            Err(TokenError::DuplicateMember {
                part: "payload",
                name: "m7".to_owned()
            })
        );
        many.pop();
        many.push(("q\"".to_owned(), 1));
        many.push(("q\"".to_owned(), 2));
        assert!(matches!(
            to_writer_no_duplicates(&mut Vec::new(), &Pairs(many)),
            Err(TokenError::DuplicateMember { .. })
        ));
        // Number names cannot be compared while writing: the output is parsed instead.
        struct NumberNames;
        impl Serialize for NumberNames {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry(&5u32, &1)?;
                m.serialize_entry("5", &2)?;
                m.end()
            }
        }
        assert_eq!(
            to_writer_no_duplicates(&mut Vec::new(), &NumberNames),
            Err(TokenError::DuplicateMember {
                part: "payload",
                name: "5".to_owned()
            })
        );
    }

    #[test]
    fn header_members_are_read_in_one_pass() {
        let h =
            parse_header(br#"{"alg":"HS256","kid":"k\u0031","crit":["b64",1],"x5u":"u"}"#).unwrap();
        assert_eq!(h.alg, Some(StrValue::Str(Cow::Borrowed("HS256"))));
        assert_eq!(h.kid, Some(StrValue::Str(Cow::Owned("k1".to_owned()))));
        assert_eq!(
            h.crit,
            Some(Crit::Array(Some(StrValue::Str(Cow::Borrowed("b64")))))
        );
        assert_eq!(h.key_members, [false, true, false, false]);
        assert_eq!(
            parse_header(br#"{"alg":"HS256","alg":"none"}"#).unwrap_err(),
            TokenRejection::DuplicateMember {
                part: "header",
                name: "alg".to_owned()
            }
        );
        assert_eq!(
            parse_header(br#"[{"a":1,"a":1}]"#).unwrap_err(),
            TokenRejection::DuplicateMember {
                part: "header",
                name: "a".to_owned()
            }
        );
        assert_eq!(
            parse_header(b"[1]").unwrap_err(),
            TokenRejection::Malformed("header is not a json object")
        );
        assert_eq!(
            parse_header(b"{").unwrap_err(),
            TokenRejection::Malformed("header is not json")
        );
    }
}
