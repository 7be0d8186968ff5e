//! A small SQL tokenizer over bytes, in the spirit of libinjection's: it never fails, it
//! runs in one pass (linear time), and it folds what a SQL engine would treat as one unit
//! (a quoted string, a comment, `0x..` numbers, `@@var`, `a.b.c` names) into one token.
//!
//! It is deliberately dialect-tolerant (MySQL, PostgreSQL, SQL Server, Oracle, SQLite): it
//! accepts the union of their lexical forms, because the attacker chooses the dialect.

use super::keywords::{FuncClass, Kw, lookup_function, lookup_keyword};

/// How a binary or unary operator behaves in an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// `=`, `<`, `>`, `<=`, `>=`, `<>`, `!=`, `<=>`, `==`, `:=`.
    Compare,
    /// `+`, `-`, `*`, `/`, `%`, `^`, `|`, `&`, `<<`, `>>`, `::`.
    Arith,
    /// `&&`, `||` (MySQL logic; `||` is concatenation elsewhere, an operator either way).
    Logic,
    /// `!`, `~`: prefix only.
    Unary,
}

/// One token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A quoted string; `closed` is false when the input ended inside it.
    Str { quote: u8, closed: bool },
    /// A numeric literal (decimal, `0x..`, `0b..`, exponent).
    Number,
    /// A word: a keyword when `kw` is set, a function when `func` is set and it is called
    /// (`call`: followed by `(`), a name otherwise. `system`: a name in SQL-Server system
    /// procedure style (`xp_`, `sp_`) or schema-qualified with a dot.
    Word {
        kw: Option<Kw>,
        func: Option<FuncClass>,
        call: bool,
        system: bool,
    },
    /// `@var`, `@@var`, `:var` (T-SQL, MySQL, Oracle bind style).
    Variable,
    /// An operator.
    Op(OpKind),
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `;`.
    Semicolon,
    /// A comment. `terminal`: it runs to the end of the input (unclosed `/*`, or `--`/`#`
    /// with no newline after), so it swallows whatever the application appends.
    Comment { terminal: bool, blank: bool },
    /// Any other byte (`?`, `$`, `{`, `:` alone, `"` in contexts where it cannot quote...).
    Other,
}

impl Tok {
    /// One character for the fingerprint (libinjection-like letters).
    pub(crate) fn letter(self) -> char {
        match self {
            Tok::Str { .. } => 's',
            Tok::Number => '1',
            Tok::Word { kw: Some(k), .. } => k.letter(),
            Tok::Word {
                func: Some(_),
                call: true,
                ..
            } => 'f',
            Tok::Word { .. } => 'n',
            Tok::Variable => 'v',
            Tok::Op(OpKind::Logic) => '&',
            Tok::Op(_) => 'o',
            Tok::LParen => '(',
            Tok::RParen => ')',
            Tok::Comma => ',',
            Tok::Semicolon => ';',
            Tok::Comment { .. } => 'c',
            Tok::Other => '?',
        }
    }

    /// True for a word that is the keyword `k`.
    pub(crate) fn is_kw(self, k: Kw) -> bool {
        matches!(self, Tok::Word { kw: Some(x), .. } if x == k)
    }
}

/// Longest word or number looked at for keyword matching; longer words are plain names.
const MAX_KEYWORD_LEN: usize = 32;
/// Longest SQL Server `[name]` recognised.
const MAX_BRACKET_NAME: usize = 128;

fn is_space(b: u8) -> bool {
    // ASCII whitespace, VT, NUL (MySQL and others skip it in some paths) and the Latin-1
    // no-break space byte, which MySQL treats as whitespace.
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x00 | 0xa0)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 && b != 0xa0
}

/// Tokenizes `input` as if it were injected into a SQL statement right after `prefix`
/// (`None`: as-is; `Some(q)`: inside a string quoted with `q`, so the first token is that
/// string's tail).
pub(crate) fn tokenize(input: &[u8], prefix: Option<u8>) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0usize;
    let n = input.len();
    let at = |k: usize| input.get(k).copied().unwrap_or(0);
    if let Some(q) = prefix {
        let (end, closed) = scan_string(input, 0, q);
        out.push(Tok::Str { quote: q, closed });
        i = end;
    }
    // Inside a MySQL executable comment `/*! ... */`: its `*/` is skipped as whitespace.
    let mut in_exec_comment = false;
    while i < n {
        let b = at(i);
        if is_space(b) {
            i += 1;
            continue;
        }
        match b {
            b'\'' | b'"' => {
                let (end, closed) = scan_string(input, i + 1, b);
                out.push(Tok::Str { quote: b, closed });
                i = end;
            }
            b'`' => {
                // Quoted identifier: a name.
                let end = find_byte(input, i + 1, b'`').map_or(n, |e| e + 1);
                out.push(Tok::Word {
                    kw: None,
                    func: None,
                    call: false,
                    system: false,
                });
                i = end;
            }
            b'[' if prefix.is_none() || !out.is_empty() => {
                // SQL Server `[name]`, only if closed soon on the same line; otherwise Other.
                // Bounded search keeps `[[[[...` linear.
                let window = input
                    .get(..(i + 1 + MAX_BRACKET_NAME).min(n))
                    .unwrap_or(input);
                match find_byte(window, i + 1, b']') {
                    Some(e)
                        if e > i + 1 && !input.get(i + 1..e).unwrap_or(&[]).contains(&b'\n') =>
                    {
                        out.push(Tok::Word {
                            kw: None,
                            func: None,
                            call: false,
                            system: true,
                        });
                        i = e + 1;
                    }
                    _ => {
                        out.push(Tok::Other);
                        i += 1;
                    }
                }
            }
            b'#' => {
                i = line_comment(input, i, &mut out);
            }
            b'-' if at(i + 1) == b'-' => {
                i = line_comment(input, i, &mut out);
            }
            b'/' if at(i + 1) == b'*' => {
                if at(i + 2) == b'!' {
                    // MySQL executable comment: its body is code. Skip `/*!` and a version.
                    in_exec_comment = true;
                    i += 3;
                    while i < n && at(i).is_ascii_digit() {
                        i += 1;
                    }
                    continue;
                }
                match find_pair(input, i + 2, b'*', b'/') {
                    Some(e) => {
                        out.push(Tok::Comment {
                            terminal: false,
                            blank: false,
                        });
                        i = e + 2;
                    }
                    None => {
                        let blank = input
                            .get(i + 2..)
                            .is_some_and(|r| r.iter().all(|&c| is_space(c)));
                        out.push(Tok::Comment {
                            terminal: true,
                            blank,
                        });
                        i = n;
                    }
                }
            }
            b'*' if at(i + 1) == b'/' && in_exec_comment => {
                in_exec_comment = false;
                i += 2;
            }
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            b';' => {
                out.push(Tok::Semicolon);
                i += 1;
            }
            b'@' => {
                let mut e = i + 1;
                if at(e) == b'@' {
                    e += 1;
                }
                let start = e;
                while e < n && (is_word_byte(at(e)) || at(e) == b'.') {
                    e += 1;
                }
                if e == start {
                    out.push(Tok::Other);
                } else {
                    out.push(Tok::Variable);
                }
                i = e.max(i + 1);
            }
            b'\\' if at(i + 1) == b'N' && !is_word_byte(at(i + 2)) => {
                // MySQL's `\N`: NULL.
                out.push(Tok::Word {
                    kw: Some(Kw::Literal),
                    func: None,
                    call: false,
                    system: false,
                });
                i += 2;
            }
            b':' if at(i + 1) == b'=' => {
                out.push(Tok::Op(OpKind::Compare));
                i += 2;
            }
            b':' if at(i + 1) == b':' => {
                out.push(Tok::Op(OpKind::Arith));
                i += 2;
            }
            b'.' if at(i + 1).is_ascii_digit() => {
                i = number(input, i);
                out.push(Tok::Number);
            }
            b'0'..=b'9' => {
                let end = number(input, i);
                if end < n && is_word_byte(at(end)) && !is_num_suffix_ok(input, end) {
                    // `1950s`, `2ND`: a name that starts with digits.
                    let e = word_end(input, end);
                    out.push(Tok::Word {
                        kw: None,
                        func: None,
                        call: false,
                        system: false,
                    });
                    i = e;
                } else {
                    out.push(Tok::Number);
                    i = end;
                }
            }
            _ if is_word_byte(b) => {
                let end = word_end(input, i);
                let text = input.get(i..end).unwrap_or(&[]);
                // `N'..'`, `X'..'`, `B'..'`, `E'..'`, `_utf8'..'`: a prefixed string.
                if at(end) == b'\'' && is_string_prefix(text) {
                    let (e, closed) = scan_string(input, end + 1, b'\'');
                    out.push(Tok::Str {
                        quote: b'\'',
                        closed,
                    });
                    i = e;
                    continue;
                }
                out.push(word(input, text, end));
                i = end;
            }
            _ => {
                let (tok, len) = operator(input, i);
                out.push(tok);
                i += len;
            }
        }
    }
    out
}

fn find_byte(input: &[u8], from: usize, b: u8) -> Option<usize> {
    input
        .get(from..)?
        .iter()
        .position(|&x| x == b)
        .map(|p| p + from)
}

fn find_pair(input: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
    input
        .get(from..)?
        .windows(2)
        .position(|w| w == [a, b])
        .map(|p| p + from)
}

fn line_comment(input: &[u8], i: usize, out: &mut Vec<Tok>) -> usize {
    match find_byte(input, i, b'\n') {
        Some(e) => {
            out.push(Tok::Comment {
                terminal: false,
                blank: false,
            });
            e + 1
        }
        None => {
            let body_start = if input.get(i) == Some(&b'#') {
                i + 1
            } else {
                i + 2
            };
            let blank = input
                .get(body_start..)
                .is_some_and(|r| r.iter().all(|&c| is_space(c)));
            out.push(Tok::Comment {
                terminal: true,
                blank,
            });
            input.len()
        }
    }
}

/// Scans a string body starting at `from` (just after the opening quote). A doubled quote
/// and a backslash escape do not close it. Returns the index after the closing quote and
/// whether one was found.
fn scan_string(input: &[u8], from: usize, q: u8) -> (usize, bool) {
    let mut i = from;
    while let Some(&b) = input.get(i) {
        if b == b'\\' {
            i += 2;
            continue;
        }
        if b == q {
            if input.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return (i + 1, true);
        }
        i += 1;
    }
    (input.len(), false)
}

fn number(input: &[u8], start: usize) -> usize {
    let at = |k: usize| input.get(k).copied().unwrap_or(0);
    let mut i = start;
    if at(i) == b'0' && matches!(at(i + 1), b'x' | b'X') && at(i + 2).is_ascii_hexdigit() {
        i += 2;
        while at(i).is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    if at(i) == b'0' && matches!(at(i + 1), b'b' | b'B') && matches!(at(i + 2), b'0' | b'1') {
        i += 2;
        while matches!(at(i), b'0' | b'1') {
            i += 1;
        }
        return i;
    }
    while at(i).is_ascii_digit() {
        i += 1;
    }
    if at(i) == b'.' {
        i += 1;
        while at(i).is_ascii_digit() {
            i += 1;
        }
    }
    if matches!(at(i), b'e' | b'E') {
        let mut j = i + 1;
        if matches!(at(j), b'+' | b'-') {
            j += 1;
        }
        if at(j).is_ascii_digit() {
            while at(j).is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    i
}

/// A number directly followed by letters is still a number when those letters are a
/// keyword (`1and`, `1union`, `0or`): MySQL splits them, and attackers rely on it.
fn is_num_suffix_ok(input: &[u8], end: usize) -> bool {
    let e = word_end(input, end);
    input
        .get(end..e)
        .is_some_and(|w| lookup_keyword(w).is_some())
}

fn word_end(input: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(&b) = input.get(i) {
        if is_word_byte(b) {
            i += 1;
        } else if b == b'.'
            && input
                .get(i + 1)
                .is_some_and(|&c| is_word_byte(c) || c == b'.')
        {
            // `schema.table`, `master..xp_cmdshell`.
            i += 1;
        } else {
            break;
        }
    }
    i
}

fn is_string_prefix(text: &[u8]) -> bool {
    matches!(
        text,
        b"N" | b"n" | b"X" | b"x" | b"B" | b"b" | b"E" | b"e" | b"Q" | b"q"
    ) || text.first() == Some(&b'_') && text.len() <= 16
}

fn word(input: &[u8], text: &[u8], end: usize) -> Tok {
    let call = next_significant(input, end) == Some(b'(');
    let lower_prefix = |p: &[u8]| {
        text.len() > p.len()
            && text
                .get(..p.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(p))
    };
    let system = text.contains(&b'.') || lower_prefix(b"xp_") || lower_prefix(b"sp_");
    if text.len() > MAX_KEYWORD_LEN {
        return Tok::Word {
            kw: None,
            func: None,
            call,
            system,
        };
    }
    let kw = lookup_keyword(text);
    let func = lookup_function(text);
    // A keyword that is also a function (`IF`, `LEFT`, `CHAR`...) counts as a function
    // when called.
    let kw = if call && func.is_some() { None } else { kw };
    Tok::Word {
        kw,
        func,
        call,
        system,
    }
}

/// The next byte that is not whitespace and not inside a closed block comment.
fn next_significant(input: &[u8], from: usize) -> Option<u8> {
    let mut i = from;
    loop {
        let b = *input.get(i)?;
        if is_space(b) {
            i += 1;
        } else if b == b'/' && input.get(i + 1) == Some(&b'*') {
            i = find_pair(input, i + 2, b'*', b'/')? + 2;
        } else {
            return Some(b);
        }
    }
}

fn operator(input: &[u8], i: usize) -> (Tok, usize) {
    let at = |k: usize| input.get(k).copied().unwrap_or(0);
    let two = [at(i), at(i + 1)];
    if at(i) == b'<' && at(i + 1) == b'=' && at(i + 2) == b'>' {
        return (Tok::Op(OpKind::Compare), 3);
    }
    match &two {
        b"<=" | b">=" | b"<>" | b"!=" | b"==" | b"!<" | b"!>" => {
            return (Tok::Op(OpKind::Compare), 2);
        }
        b"&&" | b"||" => return (Tok::Op(OpKind::Logic), 2),
        b"<<" | b">>" => return (Tok::Op(OpKind::Arith), 2),
        _ => {}
    }
    let tok = match at(i) {
        b'=' | b'<' | b'>' => Tok::Op(OpKind::Compare),
        b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' => Tok::Op(OpKind::Arith),
        b'!' | b'~' => Tok::Op(OpKind::Unary),
        _ => Tok::Other,
    };
    (tok, 1)
}
