//! A one-pass recogniser of canonical encodings, for verifying a log quickly.
//!
//! [`quick_id`] walks the bytes once, in the order the encoder writes them, with no typed
//! parse and no re-encoding, and answers `Some(id)` only for input it is sure
//! [`AuditEvent::from_canonical`](super::AuditEvent::from_canonical) accepts. It checks the
//! same value rules with the same functions (`check_token`, `check_text`, `check_b64`,
//! `check_name`). Everything it is not sure of (any escaped string, any error) answers
//! `None`, and the caller falls back to the full parse, which gives the precise reason. So
//! its one obligation is: `Some(id)` implies `from_canonical` accepts the bytes and the
//! event's id is `id`. The tests check that against the full parse, on generated events and
//! on mutations of them.

use uuid::Uuid;

use super::{
    ENCODING_VERSION, MAX_DETAIL_DEPTH, MAX_EVENT_LEN, check_b64, check_name, check_text,
    check_token,
};

// The literal `"v":1` below is the version this recogniser knows.
const _: () = assert!(ENCODING_VERSION == 1);

/// A cursor over the input, checked as UTF-8 once. Every method answers `None` at the
/// first byte it does not expect; the walk then stops.
struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Consumes `lit` if the input continues with it.
    fn eat(&mut self, lit: &[u8]) -> bool {
        let Some(rest) = self.bytes.get(self.at..) else {
            return false;
        };
        if rest.starts_with(lit) {
            self.at += lit.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, lit: &[u8]) -> Option<()> {
        self.eat(lit).then_some(())
    }

    /// A string with no escapes: its content. Any backslash or raw control byte below
    /// 0x20 (which the encoder always escapes) ends the fast path.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b"\"")?;
        let start = self.at;
        let rest = self.bytes.get(start..)?;
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are ASCII bytes, so on character boundaries of the checked input.
        self.text.get(start..start + len)
    }

    /// The digits of an integer as the encoder writes them: an optional `-`, then `0` or
    /// a digit other than `0` followed by digits; never `-0`.
    fn integer(&mut self) -> Option<&'a str> {
        let start = self.at;
        let negative = self.eat(b"-");
        let digits_from = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = self.bytes.get(digits_from..self.at)?;
        match digits {
            [] => return None,
            [b'0'] if negative => return None,
            [b'0', _, ..] => return None,
            _ => {}
        }
        self.text.get(start..self.at)
    }

    /// A protected personal value: `{"$enc":{"ct":…,"subject":…}}` or `{"$hmac":…}`.
    fn personal(&mut self) -> Option<()> {
        if self.eat(b"{\"$enc\":{\"ct\":") {
            check_b64("personal.ct", self.string()?).ok()?;
            self.expect(b",\"subject\":")?;
            check_text("personal.subject", self.string()?, 256).ok()?;
            self.expect(b"}}")
        } else if self.eat(b"{\"$hmac\":") {
            check_b64("personal.hmac", self.string()?).ok()?;
            self.expect(b"}")
        } else {
            None
        }
    }

    /// An actor's `ip` or `user_agent`: plain text or a personal value.
    fn text_value(&mut self, field: &'static str) -> Option<()> {
        if self.peek() == Some(b'{') {
            self.personal()
        } else {
            check_text(field, self.string()?, 1024).ok()
        }
    }

    /// The members of a map of details, from its first name to its closing brace: names
    /// valid, in strictly increasing byte order (the order of a `BTreeMap<String, _>`),
    /// values at `depth`.
    fn detail_members(&mut self, depth: usize) -> Option<()> {
        let mut previous: Option<&str> = None;
        loop {
            let name = self.string()?;
            check_name(name).ok()?;
            if previous.is_some_and(|p| p >= name) {
                return None;
            }
            previous = Some(name);
            self.expect(b":")?;
            self.detail(depth)?;
            if !self.eat(b",") {
                return self.expect(b"}");
            }
        }
    }

    /// One detail value at nesting `depth` (the details' own values are at 1).
    fn detail(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DETAIL_DEPTH {
            return None;
        }
        match self.peek()? {
            b'n' => self.expect(b"null"),
            b't' => self.expect(b"true"),
            b'f' => self.expect(b"false"),
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.integer()?.parse::<i64>().ok().map(drop),
            b'[' => {
                self.at += 1;
                if self.eat(b"]") {
                    return Some(());
                }
                loop {
                    self.detail(depth + 1)?;
                    if !self.eat(b",") {
                        return self.expect(b"]");
                    }
                }
            }
            b'{' => {
                if self.bytes.get(self.at + 1..self.at + 3) == Some(b"\"$") {
                    return self.personal();
                }
                self.at += 1;
                if self.eat(b"}") {
                    return Some(());
                }
                self.detail_members(depth + 1)
            }
            _ => None,
        }
    }

    /// A member `name` that may be absent, written with `,` before it unless it is the
    /// first of its object (`first`). Answers whether it was there.
    fn optional(&mut self, first: &mut bool, name: &[u8]) -> bool {
        let start = self.at;
        if !*first && !self.eat(b",") {
            return false;
        }
        if self.eat(b"\"") && self.eat(name) && self.eat(b"\":") {
            *first = false;
            true
        } else {
            self.at = start;
            false
        }
    }

    /// The actor object, from its opening brace.
    fn actor(&mut self) -> Option<()> {
        self.expect(b"{")?;
        let mut first = true;
        if self.optional(&mut first, b"api_key") {
            check_text("actor.api_key", self.string()?, 256).ok()?;
        }
        if self.optional(&mut first, b"ip") {
            self.text_value("actor.ip")?;
        }
        if self.optional(&mut first, b"session") {
            check_text("actor.session", self.string()?, 256).ok()?;
        }
        if self.optional(&mut first, b"user") {
            check_text("actor.user", self.string()?, 256).ok()?;
        }
        if self.optional(&mut first, b"user_agent") {
            self.text_value("actor.user_agent")?;
        }
        self.expect(b"}")
    }

    /// A UUID string, hyphenated lowercase, as the encoder writes one.
    fn uuid(&mut self) -> Option<Uuid> {
        let s = self.string()?;
        // At 36 characters the parser accepts only the hyphenated form (hex digits in
        // either case, hyphens in their places); the encoder writes lowercase.
        if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        Uuid::try_parse(s).ok()
    }
}

/// The id of `bytes` if they are, for certain, a canonical event encoding; `None` when they
/// are not or the fast path cannot tell (see the module docs).
pub(super) fn quick_id(bytes: &[u8]) -> Option<Uuid> {
    if bytes.len() > MAX_EVENT_LEN {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut s = Scan { text, bytes, at: 0 };
    s.expect(b"{\"action\":")?;
    check_token("action", s.string()?, 64).ok()?;
    s.expect(b",\"actor\":")?;
    s.actor()?;
    let mut first = false;
    if s.optional(&mut first, b"details") {
        s.expect(b"{")?;
        s.detail_members(1)?;
    }
    if s.optional(&mut first, b"duration_us") {
        s.integer()?.parse::<u64>().ok()?;
    }
    s.expect(b",\"id\":")?;
    let id = s.uuid()?;
    s.expect(b",\"outcome\":")?;
    match s.string()? {
        "success" | "failure" | "denied" | "error" => {}
        _ => return None,
    }
    if s.optional(&mut first, b"request_id") {
        check_text("request_id", s.string()?, 256).ok()?;
    }
    if s.optional(&mut first, b"resource") {
        s.expect(b"{\"id\":")?;
        check_text("resource.id", s.string()?, 256).ok()?;
        s.expect(b",\"type\":")?;
        check_token("resource.type", s.string()?, 64).ok()?;
        s.expect(b"}")?;
    }
    s.expect(b",\"time\":{\"clock\":")?;
    check_token("time.clock", s.string()?, 64).ok()?;
    s.expect(b",\"precision\":")?;
    let step: i64 = match s.string()? {
        "us" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        _ => return None,
    };
    s.expect(b",\"us\":")?;
    let us = s.integer()?.parse::<i64>().ok()?;
    if us.rem_euclid(step) != 0 {
        return None;
    }
    s.expect(b"},\"v\":1}")?;
    (s.at == bytes.len()).then_some(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use std::cell::Cell;
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use time::OffsetDateTime;

    use super::quick_id;
    use crate::event::{
        Actor, AuditEvent, Detail, EncryptedValue, EventTime, Outcome, Personal, Precision, Text,
    };

    /// What the full parse answers: the id, or nothing.
    fn full(bytes: &[u8]) -> Option<uuid::Uuid> {
        AuditEvent::from_canonical(bytes).ok().map(|e| e.id())
    }

    /// The property: the fast path never accepts what the full parse refuses, never names
    /// another id, and, on input with no backslash (no escaped string), decides exactly as
    /// the full parse does. Answers whether the fast path accepted.
    fn agree(bytes: &[u8]) -> bool {
        let quick = quick_id(bytes);
        let full = full(bytes);
        if quick.is_some() {
            assert_eq!(quick, full, "{}", String::from_utf8_lossy(bytes));
        }
        if !bytes.contains(&b'\\') {
            assert_eq!(quick, full, "{}", String::from_utf8_lossy(bytes));
        }
        assert_eq!(
            AuditEvent::canonical_id(bytes).ok(),
            full,
            "{}",
            String::from_utf8_lossy(bytes)
        );
        quick.is_some()
    }

    /// Text that lands on every rule: tokens, controls (C0, DEL, C1), quotes and
    /// backslashes, non-ASCII, `$`, secret names, base64url, empty, long.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9._:-]{1,10}",
            "[A-Za-z0-9_-]{1,10}",
            ".{0,8}",
            Just(String::new()),
            Just("$enc".to_owned()),
            Just("My_Password".to_owned()),
            Just("a\"b\\c".to_owned()),
            Just("tab\there".to_owned()),
            Just("del\u{7f}".to_owned()),
            Just("c1\u{85}".to_owned()),
            Just("é😀".to_owned()),
            Just("x".repeat(300)),
        ]
    }

    fn personal() -> impl Strategy<Value = Personal> {
        prop_oneof![
            (text(), text()).prop_map(|(ct, subject)| Personal::Encrypted {
                encrypted: EncryptedValue { ct, subject },
            }),
            text().prop_map(|hmac| Personal::Keyed { hmac }),
        ]
    }

    fn detail() -> impl Strategy<Value = Detail> {
        let leaf = prop_oneof![
            Just(Detail::Null),
            any::<bool>().prop_map(Detail::Bool),
            any::<i64>().prop_map(Detail::Int),
            text().prop_map(Detail::Text),
            personal().prop_map(Detail::Personal),
        ];
        leaf.prop_recursive(10, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Detail::List),
                prop::collection::btree_map(text(), inner, 0..4).prop_map(Detail::Map),
            ]
        })
    }

    fn text_value() -> impl Strategy<Value = Text> {
        prop_oneof![
            text().prop_map(Text::Plain),
            personal().prop_map(Text::Personal)
        ]
    }

    prop_compose! {
        /// An event from random parts; each part the builder refuses is left out, so
        /// every generated event is one `to_canonical` can write.
        fn event()(
            action in text(),
            outcome in prop_oneof![
                Just(Outcome::Success), Just(Outcome::Failure),
                Just(Outcome::Denied), Just(Outcome::Error)
            ],
            micros in 0..(1i64 << 52),
            precision in prop_oneof![
                Just(Precision::Microsecond), Just(Precision::Millisecond),
                Just(Precision::Second)
            ],
            clock in text(),
            ids in prop::collection::vec(prop::option::of(text()), 3),
            ip in prop::option::of(text_value()),
            agent in prop::option::of(text_value()),
            resource in prop::option::of((text(), text())),
            request in prop::option::of(text()),
            duration in prop::option::of(any::<u64>()),
            details in prop::collection::vec((text(), detail()), 0..4),
        ) -> AuditEvent {
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
                .unwrap();
            let time = EventTime::new(at, precision, clock)
                .unwrap_or_else(|_| EventTime::new(at, precision, "system").unwrap());
            let mut e = AuditEvent::new(&action, outcome, time.clone())
                .unwrap_or_else(|_| AuditEvent::new("a.b", outcome, time).unwrap());
            let actor = Actor {
                api_key: ids[0].clone(),
                ip,
                session: ids[1].clone(),
                user: ids[2].clone(),
                user_agent: agent,
            };
            if let Ok(with) = e.clone().with_actor(actor) {
                e = with;
            }
            if let Some((kind, id)) = resource
                && let Ok(with) = e.clone().with_resource(&kind, &id)
            {
                e = with;
            }
            if let Some(request) = request
                && let Ok(with) = e.clone().with_request_id(&request)
            {
                e = with;
            }
            if let Some(us) = duration {
                e = e.with_duration_us(us);
            }
            for (name, value) in details {
                if let Ok(with) = e.clone().with_detail(&name, value) {
                    e = with;
                }
            }
            e
        }
    }

    /// Byte ranges, `start..end`.
    type Ranges = Vec<(usize, usize)>;

    /// The byte ranges of every string literal's content and every number.
    fn tokens(bytes: &[u8]) -> (Ranges, Ranges) {
        let (mut strings, mut numbers) = (Vec::new(), Vec::new());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    let start = i + 1;
                    i = start;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    if i >= bytes.len() {
                        break;
                    }
                    strings.push((start, i));
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    while i + 1 < bytes.len() && matches!(bytes[i + 1], b'-' | b'0'..=b'9') {
                        i += 1;
                    }
                    numbers.push((start, i + 1));
                }
                _ => {}
            }
            i += 1;
        }
        (strings, numbers)
    }

    /// One edit of a canonical encoding: a string's content or a number replaced (by text
    /// as written raw or JSON-escaped, or by a number in a spelling the encoder never
    /// uses), a byte changed, a range removed or doubled.
    #[derive(Clone, Debug)]
    enum Edit {
        String {
            which: usize,
            with: String,
            escape: bool,
        },
        Number {
            which: usize,
            with: String,
        },
        Byte {
            at: usize,
            with: u8,
        },
        Remove {
            at: usize,
            len: usize,
        },
        Double {
            at: usize,
            len: usize,
        },
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let number = prop_oneof![
            Just("-0".to_owned()),
            Just("007".to_owned()),
            Just("1.0".to_owned()),
            Just("1e3".to_owned()),
            Just("9223372036854775807".to_owned()),
            Just("9223372036854775808".to_owned()),
            Just("-9223372036854775808".to_owned()),
            Just("18446744073709551616".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
        ];
        prop_oneof![
            4 => (any::<usize>(), text(), any::<bool>())
                .prop_map(|(which, with, escape)| Edit::String { which, with, escape }),
            2 => (any::<usize>(), number).prop_map(|(which, with)| Edit::Number { which, with }),
            2 => (any::<usize>(), any::<u8>()).prop_map(|(at, with)| Edit::Byte { at, with }),
            1 => (any::<usize>(), 1usize..12).prop_map(|(at, len)| Edit::Remove { at, len }),
            1 => (any::<usize>(), 1usize..12).prop_map(|(at, len)| Edit::Double { at, len }),
        ]
    }

    fn apply(bytes: &[u8], edit: &Edit) -> Vec<u8> {
        let splice = |(from, to): (usize, usize), with: &[u8]| {
            let mut out = bytes[..from].to_vec();
            out.extend_from_slice(with);
            out.extend_from_slice(&bytes[to..]);
            out
        };
        let (strings, numbers) = tokens(bytes);
        if bytes.is_empty() {
            return Vec::new();
        }
        match edit {
            Edit::String { .. } if strings.is_empty() => bytes.to_vec(),
            Edit::String {
                which,
                with,
                escape,
            } => {
                let range = strings[which % strings.len()];
                if *escape {
                    let quoted = serde_json::to_string(with).unwrap();
                    splice(range, &quoted.as_bytes()[1..quoted.len() - 1])
                } else {
                    splice(range, with.as_bytes())
                }
            }
            Edit::Number { which, with } if !numbers.is_empty() => {
                splice(numbers[which % numbers.len()], with.as_bytes())
            }
            Edit::Number { .. } => bytes.to_vec(),
            Edit::Byte { at, with } => {
                let at = at % bytes.len();
                splice((at, at + 1), &[*with])
            }
            Edit::Remove { at, len } => {
                let at = at % bytes.len();
                splice((at, (at + len).min(bytes.len())), b"")
            }
            Edit::Double { at, len } => {
                let at = at % bytes.len();
                let end = (at + len).min(bytes.len());
                splice((at, at), &bytes[at..end])
            }
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_parse() {
        const CASES: u32 = 3_000;
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        let (ran, fast, edited, edited_fast) = (
            Cell::new(0u32),
            Cell::new(0u32),
            Cell::new(0u32),
            Cell::new(0u32),
        );
        let bump = |c: &Cell<u32>| c.set(c.get() + 1);
        runner
            .run(
                &(event(), prop::collection::vec(edit(), 1..4)),
                |(e, edits)| {
                    let bytes = e.to_canonical().unwrap();
                    bump(&ran);
                    // Every event the encoder writes is accepted, with its id, and fast
                    // unless a string needed escaping.
                    assert_eq!(AuditEvent::canonical_id(&bytes).unwrap(), e.id());
                    if agree(&bytes) {
                        bump(&fast);
                    }
                    let mut bytes = bytes;
                    for edit in &edits {
                        bytes = apply(&bytes, edit);
                        bump(&edited);
                        if agree(&bytes) {
                            bump(&edited_fast);
                        }
                    }
                    Ok(())
                },
            )
            .unwrap();
        let (ran, fast, edited, edited_fast) =
            (ran.get(), fast.get(), edited.get(), edited_fast.get());
        assert_eq!(ran, CASES);
        // The generated events and edits reach both answers of the fast path.
        assert!(fast > CASES / 2, "fast path taken for {fast} of {ran}");
        assert!(edited >= CASES, "{edited} edits");
        assert!(
            edited_fast >= CASES / 100 && edited_fast < edited / 2,
            "{edited_fast} of {edited} edited inputs accepted"
        );
    }

    #[test]
    fn boundaries_agree() {
        let t =
            EventTime::new(OffsetDateTime::UNIX_EPOCH, Precision::Millisecond, "system").unwrap();
        let mut deep = Detail::Int(1);
        for _ in 0..7 {
            deep = Detail::List(vec![deep]);
        }
        let mut map = BTreeMap::new();
        map.insert("b".to_owned(), Detail::Null);
        map.insert("a".to_owned(), Detail::Map(BTreeMap::new()));
        let base = AuditEvent::new("a.b", Outcome::Denied, t)
            .unwrap()
            .with_detail("deep", deep)
            .unwrap()
            .with_detail("map", Detail::Map(map))
            .unwrap()
            .with_detail("neg", i64::MIN)
            .unwrap()
            .with_detail("zero", 0i64)
            .unwrap()
            .with_detail("list", Detail::List(vec![]))
            .unwrap();
        let text = String::from_utf8(base.to_canonical().unwrap()).unwrap();
        assert!(agree(text.as_bytes()), "{text}");
        let at_depth_9 = text.replacen("[[[[[[[1]]]]]]]", "[[[[[[[[1]]]]]]]]", 1);
        let cases = [
            at_depth_9,
            text.replacen("\"zero\":0", "\"zero\":-0", 1),
            text.replacen("\"zero\":0", "\"zero\":00", 1),
            text.replacen("\"a\":{},\"b\"", "\"b\":null,\"a\"", 1),
            text.replacen("\"a\":{},\"b\":null", "\"a\":{},\"a\":null", 1),
            text.replacen("\"list\":[]", "\"list\":[],\"list\":[]", 1),
            text.replacen("\"us\":0", "\"us\":1000", 1),
            text.replacen("\"us\":0", "\"us\":1", 1),
            text.replacen("\"precision\":\"ms\"", "\"precision\":\"ns\"", 1),
            text.replacen("\"actor\":{}", "\"actor\":{\"user\":\"u\u{85}\"}", 1),
            text.replacen("\"actor\":{}", "\"actor\":{\"user\":\"u\u{7f}\"}", 1),
            text.replacen("\"actor\":{}", "\"actor\":{\"user\":\"u\",\"ip\":\"1\"}", 1),
            text.replacen("\"actor\":{}", "\"actor\":{\"ip\":{\"$hmac\":\"a-_Z\"}}", 1),
            text.replacen("\"actor\":{}", "\"actor\":{\"ip\":{\"$hmac\":\"a=\"}}", 1),
            text.replacen("\"zero\":0", "\"zero\":{\"$hmac\":\"aa\"}", 1),
            text.replacen("\"zero\":0", "\"zero\":{\"$hmac\":\"aa\",\"x\":1}", 1),
            text.replacen("\"zero\":0", "\"secret_key\":0", 1),
            text.replacen("\"zero\":0", "\"zz\":\"caf\u{e9} \u{7f}\"", 1),
            text.replacen("\"outcome\":\"denied\"", "\"outcome\":\"Denied\"", 1),
            text.replacen("\"v\":1}", "\"v\":1} ", 1),
            text.to_uppercase(),
        ];
        let accepted: Vec<bool> = cases.iter().map(|c| agree(c.as_bytes())).collect();
        assert_eq!(
            accepted,
            [
                false, false, false, false, false, false, true, false, false, false, false, false,
                true, false, true, false, false, true, false, false, false
            ]
        );
    }
}
