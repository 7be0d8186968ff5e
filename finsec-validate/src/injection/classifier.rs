//! Judges a token stream by SQL grammar: does the input, placed in a given context,
//! continue the host query as valid SQL *and* do something a plain value never does?
//!
//! The core is a small expression automaton (operand / operator alternation with
//! parentheses, function calls, sub-queries and `CASE`) that runs over the tokens after the
//! point where the input would start in the host query. It stops at the first token that
//! cannot continue an expression and reports where and why it stopped; the rules in
//! [`classify`] then decide from that end point and the signals gathered on the way.
//!
//! Every loop moves forward; the only look-aheads ([`LOOKAHEAD`] tokens at most) are for
//! argument lists and select lists, so the work is linear in the input length.

use super::keywords::{FuncClass, Kw, Role};
use super::tokenizer::{OpKind, Tok};
use super::{Context, Rule};

/// Most tokens a bounded look-ahead (argument list, select list) examines.
const LOOKAHEAD: usize = 256;
/// Deepest parenthesis nesting tracked; deeper input is judged by what was seen so far.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Operand,
    Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Ran out of tokens.
    Eof,
    /// A comment that runs to the end of the input.
    TerminalComment,
    /// `;` at an operator position (index of the `;`).
    Semicolon(usize),
    /// A set operation keyword at an operator position.
    Union(usize),
    /// A statement keyword.
    Statement(usize),
    /// A clause keyword (ORDER, GROUP, HAVING, LIMIT, INTO, PROCEDURE, FROM, WHERE...).
    Clause(usize),
    /// A token that cannot continue the expression.
    Invalid,
}

#[derive(Debug, Default, Clone, Copy)]
struct Signals {
    /// A comparison (`=`, `<`, `LIKE`, `IN`, `IS`...).
    compare: bool,
    /// A symbolic comparison whose two sides are both literals (`1=1`, `'a'='a'`): the
    /// shape of a tautology or contradiction.
    tautology: bool,
    /// The same with two names (`x=x`): weaker, URLs and prose have `a=b`.
    name_tautology: bool,
    /// Names (plain words) seen as operands.
    names: usize,
    /// `AND`/`OR`/`XOR`/`&&`/`||`.
    logic: bool,
    /// A literal operand right after an operator (`' - '`, `OR 'x'`, `OR TRUE`).
    literal_after_op: bool,
    /// A call of a known SQL function.
    known_call: bool,
    /// A known function called inside another call's arguments.
    nested_call: bool,
    /// A call of a dangerous function (delay, file, network, error extraction).
    dangerous_call: bool,
    /// A parenthesised `SELECT`.
    subquery: bool,
    /// `)` closing a parenthesis the host query opened.
    host_close: bool,
    /// Operators (arithmetic, comparison, logic) seen.
    operators: usize,
    /// A boolean literal (`TRUE`, `FALSE`, `NULL`) as the operand of a logic operator.
    bool_after_logic: bool,
    /// A complete `CASE ... END` expression.
    case_expr: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Group,
    Call,
}

struct Scan {
    stop: Stop,
    state: State,
    sig: Signals,
    /// The last operand was a plain name (not a literal, call or parenthesis).
    last_was_name: bool,
    /// Index of the token where the scan stopped.
    pos: usize,
}

fn is_literal(t: Tok) -> bool {
    matches!(
        t,
        Tok::Str { .. }
            | Tok::Number
            | Tok::Variable
            | Tok::Word {
                kw: Some(Kw::Literal),
                ..
            }
    )
}

fn is_name(t: Tok) -> bool {
    matches!(
        t,
        Tok::Word {
            kw: None,
            call: false,
            ..
        }
    )
}

fn is_operand(t: Tok) -> bool {
    is_literal(t) || is_name(t)
}

fn is_logic(t: Tok) -> bool {
    matches!(t, Tok::Op(OpKind::Logic))
        || matches!(t, Tok::Word { kw: Some(k), .. } if k.role() == Role::Logic)
}

/// Runs the expression automaton over `g[start..]`.
///
/// `state`: what the first token must be (`Operator`: the input continues after a value
/// of the host query). `host_close`: a `)` with no `(` open closes a parenthesis of the
/// host query, and a top-level `,` continues a host list (`ORDER BY a, <input>`).
fn scan_expr(g: &[Tok], start: usize, state: State, host_close: bool) -> Scan {
    let mut st = state;
    let mut sig = Signals::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut opened_any = false;
    let mut case_depth = 0usize;
    // Tautology tracking: the left operand of the last comparison, and the last operand.
    let mut last_operand: Option<Tok> = match state {
        State::Operator => start.checked_sub(1).and_then(|k| g.get(k)).copied(),
        State::Operand => None,
    };
    let mut cmp_left: Option<Tok> = None;
    let mut prev_was_op = false;
    let mut prev_was_logic = false;
    let mut last_was_name = false;
    let mut i = start;
    let stop = loop {
        let Some(&t) = g.get(i) else { break Stop::Eof };
        let this_is_op;
        match t {
            _ if is_operand(t) => {
                match st {
                    State::Operand => {
                        st = State::Operator;
                        if prev_was_op && is_literal(t) {
                            sig.literal_after_op = true;
                        }
                        if prev_was_logic && t.is_kw(Kw::Literal) {
                            sig.bool_after_logic = true;
                        }
                        last_was_name = is_name(t);
                        if last_was_name {
                            sig.names += 1;
                        }
                        if let Some(l) = cmp_left.take() {
                            if is_literal(l) && is_literal(t) {
                                sig.tautology = true;
                            } else if is_name(l) && is_name(t) {
                                sig.name_tautology = true;
                            }
                        }
                        last_operand = Some(t);
                    }
                    State::Operator => {
                        // Adjacent string literals concatenate (MySQL, standard SQL).
                        if !(matches!(t, Tok::Str { .. })
                            && matches!(last_operand, Some(Tok::Str { .. })))
                        {
                            break Stop::Invalid;
                        }
                    }
                }
                this_is_op = false;
            }
            Tok::Word {
                call: true,
                func,
                kw: None,
                ..
            } => {
                if st != State::Operand {
                    break Stop::Invalid;
                }
                match func {
                    Some(FuncClass::Dangerous) => sig.dangerous_call = true,
                    Some(FuncClass::Known) => {
                        if stack.contains(&Frame::Call) {
                            sig.nested_call = true;
                        }
                        sig.known_call = true;
                    }
                    None => {}
                }
                last_was_name = false;
                // The `(` follows: consume it here as a call frame.
                if g.get(i + 1) == Some(&Tok::LParen) {
                    if stack.len() >= MAX_DEPTH {
                        break Stop::Eof;
                    }
                    stack.push(Frame::Call);
                    opened_any = true;
                    i += 1;
                    // Empty argument list.
                    if g.get(i + 1) == Some(&Tok::RParen) {
                        stack.pop();
                        i += 1;
                        st = State::Operator;
                    }
                } else {
                    // `(` hidden behind a comment the grammar stream dropped: a name.
                    st = State::Operator;
                }
                this_is_op = false;
                last_operand = None;
                cmp_left = None;
            }
            Tok::LParen => {
                if st != State::Operand {
                    break Stop::Invalid;
                }
                if g.get(i + 1).is_some_and(|n| n.is_kw(Kw::Select)) {
                    sig.subquery = true;
                    last_was_name = false;
                    match matching_paren(g, i) {
                        Some(close) => {
                            i = close + 1;
                            st = State::Operator;
                            last_operand = None;
                            prev_was_op = false;
                            prev_was_logic = false;
                            continue;
                        }
                        None => {
                            // The input ends inside the sub-query: the host closes it.
                            st = State::Operator;
                            break Stop::Eof;
                        }
                    }
                }
                if stack.len() >= MAX_DEPTH {
                    break Stop::Eof;
                }
                last_was_name = false;
                stack.push(Frame::Group);
                opened_any = true;
                this_is_op = false;
            }
            Tok::RParen => {
                match st {
                    State::Operator => {
                        if stack.pop().is_none() {
                            if host_close && !opened_any {
                                sig.host_close = true;
                            } else {
                                break Stop::Invalid;
                            }
                        }
                    }
                    State::Operand => {
                        if i == start && host_close && stack.is_empty() {
                            sig.host_close = true;
                            st = State::Operator;
                        } else {
                            break Stop::Invalid;
                        }
                    }
                }
                this_is_op = false;
            }
            Tok::Comma => {
                if st != State::Operator || stack.is_empty() && !host_close {
                    break Stop::Invalid;
                }
                st = State::Operand;
                this_is_op = false;
                cmp_left = None;
            }
            _ if is_logic(t) => {
                if st != State::Operator {
                    break Stop::Invalid;
                }
                st = State::Operand;
                sig.logic = true;
                sig.operators += 1;
                this_is_op = true;
                cmp_left = None;
                prev_was_logic = true;
                i += 1;
                prev_was_op = this_is_op;
                continue;
            }
            Tok::Op(OpKind::Compare) => {
                if st != State::Operator {
                    break Stop::Invalid;
                }
                st = State::Operand;
                sig.compare = true;
                sig.operators += 1;
                cmp_left = last_operand;
                this_is_op = true;
            }
            Tok::Op(OpKind::Arith) => {
                // In operand position: a sign, or `*` in `COUNT(*)` / `SELECT *`.
                if st == State::Operator {
                    st = State::Operand;
                    sig.operators += 1;
                    cmp_left = None;
                }
                this_is_op = true;
            }
            Tok::Op(OpKind::Unary)
            | Tok::Word {
                kw: Some(Kw::Not | Kw::Binary | Kw::Exists),
                ..
            } => {
                if st == State::Operator {
                    // `x NOT LIKE`, `x NOT IN`, `x NOT BETWEEN`.
                    let next_is_wordop = matches!(g.get(i + 1), Some(Tok::Word { kw: Some(k), .. }) if k.role() == Role::WordOp);
                    if !(t.is_kw(Kw::Not) && next_is_wordop) {
                        break Stop::Invalid;
                    }
                }
                this_is_op = prev_was_op;
            }
            Tok::Word { kw: Some(k), .. } if k.role() == Role::WordOp => {
                // `SOUNDS LIKE`: two word operators in a row.
                let after_wordop = i > start
                    && matches!(g.get(i - 1), Some(Tok::Word { kw: Some(p), .. }) if p.role() == Role::WordOp);
                if st != State::Operator && !after_wordop {
                    break Stop::Invalid;
                }
                st = State::Operand;
                if !matches!(k, Kw::Div | Kw::Collate | Kw::Escape) {
                    sig.compare = true;
                }
                sig.operators += 1;
                this_is_op = true;
            }
            Tok::Word {
                kw: Some(Kw::Case), ..
            } => {
                if st != State::Operand {
                    break Stop::Invalid;
                }
                case_depth += 1;
                this_is_op = false;
            }
            Tok::Word {
                kw: Some(Kw::When | Kw::Then | Kw::Else),
                ..
            } => {
                if case_depth == 0 {
                    break Stop::Invalid;
                }
                st = State::Operand;
                this_is_op = false;
            }
            Tok::Word {
                kw: Some(Kw::End), ..
            } => {
                if case_depth == 0 || st != State::Operator {
                    break Stop::Invalid;
                }
                case_depth -= 1;
                if case_depth == 0 {
                    sig.case_expr = true;
                }
                this_is_op = false;
            }
            Tok::Word {
                kw: Some(Kw::As), ..
            } => {
                // `CAST(x AS CHAR)`: a type name follows inside a call; elsewhere an alias.
                if st != State::Operator {
                    break Stop::Invalid;
                }
                if stack.last() == Some(&Frame::Call) {
                    st = State::Operand;
                } else if g.get(i + 1).is_some_and(|&n| is_operand(n)) {
                    i += 1;
                } else {
                    break Stop::Invalid;
                }
                this_is_op = false;
            }
            Tok::Word {
                kw: Some(Kw::From | Kw::For | Kw::Using),
                ..
            } if st == State::Operator && stack.last() == Some(&Frame::Call) => {
                // `SUBSTRING(x FROM 1 FOR 1)`, `CONVERT(x USING utf8)`.
                st = State::Operand;
                this_is_op = false;
            }
            Tok::Word { kw: Some(k), .. } if k.role() == Role::Union => {
                if st != State::Operator {
                    break Stop::Invalid;
                }
                break Stop::Union(i);
            }
            Tok::Word { kw: Some(k), .. } if k.role() == Role::Statement => {
                break Stop::Statement(i);
            }
            Tok::Word { kw: Some(_), .. } => {
                if st != State::Operator {
                    break Stop::Invalid;
                }
                break Stop::Clause(i);
            }
            Tok::Semicolon => {
                if st != State::Operator {
                    break Stop::Invalid;
                }
                break Stop::Semicolon(i);
            }
            Tok::Comment { terminal: true, .. } => break Stop::TerminalComment,
            _ => break Stop::Invalid,
        }
        prev_was_op = this_is_op;
        prev_was_logic = false;
        i += 1;
    };
    Scan {
        stop,
        state: st,
        sig,
        last_was_name,
        pos: i,
    }
}

/// Index of the `)` matching the `(` at `open`, within [`LOOKAHEAD`] tokens.
fn matching_paren(g: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &t) in g.iter().enumerate().skip(open).take(LOOKAHEAD) {
        match t {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// `UNION [ALL|DISTINCT] [(...] SELECT`.
fn union_select(g: &[Tok], i: usize) -> bool {
    let mut k = i + 1;
    while let Some(&t) = g.get(k) {
        match t {
            Tok::Word {
                kw: Some(Kw::All | Kw::Distinct),
                ..
            }
            | Tok::LParen => k += 1,
            _ => return t.is_kw(Kw::Select),
        }
    }
    false
}

/// What the select list after `SELECT` at `i` looks like: `Some(true)` when it is a
/// valid list followed by `FROM`, `Some(false)` when valid and made of literals, calls,
/// variables or `*` but with no `FROM`, `None` when it is not a select list (prose).
fn select_form(g: &[Tok], i: usize) -> Option<bool> {
    let mut k = i + 1;
    while let Some(Tok::Word {
        kw: Some(Kw::Distinct | Kw::All | Kw::Top),
        ..
    }) = g.get(k)
    {
        k += 1;
        if g.get(k) == Some(&Tok::Number) {
            k += 1;
        }
    }
    let first = *g.get(k)?;
    let sqlish_item = |t: Tok| {
        is_literal(t)
            || matches!(
                t,
                Tok::Word {
                    call: true,
                    kw: None,
                    ..
                } | Tok::Op(OpKind::Arith)
                    | Tok::LParen
            )
    };
    let mut sqlish = sqlish_item(first);
    let end = (k + LOOKAHEAD).min(g.len());
    let slice = g.get(..end)?;
    let mut pos = k;
    loop {
        let scan = scan_expr(slice, pos, State::Operand, false);
        sqlish |= scan.sig.known_call
            || scan.sig.dangerous_call
            || scan.sig.subquery
            || scan.sig.operators > 0;
        let at_stop = |idx: usize| g.get(idx).copied();
        match scan.stop {
            Stop::Clause(c) => {
                let t = at_stop(c)?;
                if t.is_kw(Kw::From) {
                    return Some(true);
                }
                if t.is_kw(Kw::As) {
                    // Alias: `expr AS name`, then `,` or more.
                    pos = c + 2;
                    match g.get(pos) {
                        Some(Tok::Comma) => {
                            pos += 1;
                            continue;
                        }
                        Some(n) if n.is_kw(Kw::From) => return Some(true),
                        _ => return sqlish.then_some(false),
                    }
                }
                return (sqlish
                    && matches!(
                        t,
                        Tok::Word {
                            kw: Some(
                                Kw::Into
                                    | Kw::Limit
                                    | Kw::Where
                                    | Kw::Order
                                    | Kw::Group
                                    | Kw::Having
                                    | Kw::Procedure
                            ),
                            ..
                        }
                    ))
                .then_some(false);
            }
            Stop::Invalid => {
                let mut idx = scan.pos;
                // An alias without AS: `SELECT @@version v`.
                if scan.state == State::Operator
                    && g.get(idx)
                        .is_some_and(|&t| is_name(t) || matches!(t, Tok::Str { .. }))
                {
                    idx += 1;
                    match g.get(idx) {
                        Some(n) if n.is_kw(Kw::From) => return Some(true),
                        Some(Tok::Comma) => {}
                        None | Some(Tok::Comment { .. } | Tok::Semicolon) => {
                            return sqlish.then_some(false);
                        }
                        _ => return None,
                    }
                }
                // A top-level comma separates items.
                if g.get(idx) == Some(&Tok::Comma) && idx > pos {
                    pos = idx + 1;
                    continue;
                }
                if g.get(idx) == Some(&Tok::RParen) && sqlish {
                    return Some(false);
                }
                return None;
            }
            Stop::Eof
            | Stop::TerminalComment
            | Stop::Semicolon(_)
            | Stop::Union(_)
            | Stop::Statement(_) => {
                return (sqlish && scan.state == State::Operator).then_some(false);
            }
        }
    }
}

fn is_object_kw(t: Option<&Tok>) -> bool {
    matches!(
        t,
        Some(Tok::Word {
            kw: Some(Kw::Table | Kw::Database | Kw::Procedure),
            ..
        })
    )
}

fn is_target_name(t: Option<&Tok>) -> bool {
    matches!(t, Some(Tok::Word { kw: None, .. } | Tok::Variable))
}

fn ends_here(t: Option<&Tok>) -> bool {
    matches!(
        t,
        None | Some(Tok::Semicolon | Tok::Comment { .. } | Tok::RParen)
    )
}

/// A well-formed statement start at `i` (statement keyword plus what must follow it).
fn statement_form(g: &[Tok], i: usize) -> bool {
    let Some(&Tok::Word { kw: Some(k), .. }) = g.get(i) else {
        return false;
    };
    let nx = |d: usize| g.get(i + d);
    match k {
        Kw::Select => select_form(g, i).is_some(),
        Kw::Insert | Kw::Replace => {
            let mut d = 1;
            if nx(d).is_some_and(|t| t.is_kw(Kw::Into)) {
                d += 1;
            }
            is_target_name(nx(d))
                && matches!(
                    nx(d + 1),
                    Some(
                        Tok::LParen
                            | Tok::Word {
                                kw: Some(Kw::Values | Kw::Select | Kw::Exec | Kw::Set),
                                ..
                            }
                    )
                )
        }
        Kw::Update => {
            is_target_name(nx(1))
                && nx(2).is_some_and(|t| t.is_kw(Kw::Set))
                && is_operand(nx(3).copied().unwrap_or(Tok::Other))
                && matches!(nx(4), Some(Tok::Op(OpKind::Compare)))
        }
        Kw::Delete => {
            nx(1).is_some_and(|t| t.is_kw(Kw::From))
                && is_target_name(nx(2))
                && (ends_here(nx(3)) || nx(3).is_some_and(|t| t.is_kw(Kw::Where)))
        }
        Kw::Drop | Kw::Create | Kw::Alter | Kw::Truncate => {
            is_object_kw(nx(1)) && is_target_name(nx(2))
        }
        Kw::Exec => matches!(
            nx(1),
            Some(Tok::LParen | Tok::Variable | Tok::Str { .. } | Tok::Word { system: true, .. })
        ),
        Kw::Declare => matches!(nx(1), Some(Tok::Variable)),
        Kw::Set => {
            matches!(nx(1), Some(Tok::Variable)) && matches!(nx(2), Some(Tok::Op(OpKind::Compare)))
        }
        Kw::Shutdown => ends_here(nx(1)),
        Kw::Waitfor => {
            nx(1).is_some_and(|t| t.is_kw(Kw::Delay) || t.is_kw(Kw::Time))
                && matches!(nx(2), Some(Tok::Str { .. }))
        }
        Kw::Begin => {
            nx(1).is_some_and(
                |t| matches!(t, Tok::Word { kw: Some(k), .. } if k.role() == Role::Statement),
            ) && statement_form(g, i + 1)
        }
        Kw::Goto => is_target_name(nx(1)),
        _ => false,
    }
}

/// A well-formed clause at `i` continuing a query (`ORDER BY 1`, `LIMIT 1`, `INTO
/// OUTFILE`, `PROCEDURE ANALYSE(`, `HAVING 1=1`, `FROM t`, `WHERE x`). Returns whether the
/// clause itself carries SQL evidence beyond its keyword (a literal, a comparison, a call).
fn clause_form(g: &[Tok], i: usize) -> Option<bool> {
    let Some(&Tok::Word { kw: Some(k), .. }) = g.get(i) else {
        return None;
    };
    let nx = |d: usize| g.get(i + d).copied();
    match k {
        Kw::Order | Kw::Group => {
            if !nx(1)?.is_kw(Kw::By) {
                return None;
            }
            let t = nx(2)?;
            if is_literal(t)
                || matches!(
                    t,
                    Tok::Word {
                        call: true,
                        func: Some(_),
                        ..
                    }
                )
            {
                Some(true)
            } else if is_operand(t) || matches!(t, Tok::Word { call: true, .. } | Tok::LParen) {
                Some(false)
            } else {
                None
            }
        }
        Kw::Limit | Kw::Offset => {
            // `LIMIT 1,1`, `LIMIT 1 OFFSET 1`, `LIMIT 1--`: a bare "limit 100" is prose.
            let tail = nx(2);
            (matches!(nx(1)?, Tok::Number)
                && (matches!(
                    tail,
                    Some(
                        Tok::Comma
                            | Tok::Semicolon
                            | Tok::Comment { blank: true, .. }
                            | Tok::Word {
                                kw: Some(Kw::Offset),
                                ..
                            }
                    )
                )))
            .then_some(true)
        }
        Kw::Into => matches!(
            nx(1)?,
            Tok::Variable
                | Tok::Word {
                    kw: Some(Kw::Outfile),
                    ..
                }
        )
        .then_some(true),
        Kw::Procedure => matches!(nx(1)?, Tok::Word { call: true, .. }).then_some(true),
        Kw::Having | Kw::Where => {
            let scan = scan_expr(g, i + 1, State::Operand, false);
            let ok = match scan.stop {
                Stop::Eof | Stop::TerminalComment | Stop::Semicolon(_) => {
                    scan.state == State::Operator
                }
                Stop::Union(_) | Stop::Clause(_) | Stop::Statement(_) => true,
                Stop::Invalid => false,
            };
            ok.then_some(
                scan.sig.compare || scan.sig.logic || scan.sig.known_call || scan.sig.subquery,
            )
        }
        Kw::From => {
            if !is_target_name(nx(1).as_ref()) {
                return None;
            }
            let after = nx(2);
            (after.is_none_or(|t| matches!(t, Tok::Semicolon | Tok::Comment { .. } | Tok::RParen))
                || after.is_some_and(|t| {
                    matches!(
                        t,
                        Tok::Word {
                            kw: Some(Kw::Where | Kw::Limit | Kw::Order | Kw::Group | Kw::Join),
                            ..
                        }
                    )
                }))
            .then_some(after.is_some_and(|t| {
                matches!(
                    t,
                    Tok::Word {
                        kw: Some(Kw::Where),
                        ..
                    }
                )
            }))
        }
        _ => None,
    }
}

/// Rules that hold wherever the tokens sit: a `UNION SELECT`, a statement after `;`, a
/// dangerous function called with an argument list, `WAITFOR DELAY '...'`.
fn anywhere(g: &[Tok]) -> Option<Rule> {
    for (i, &t) in g.iter().enumerate() {
        match t {
            Tok::Word {
                kw: Some(Kw::Union),
                ..
            } if union_select(g, i) => return Some(Rule::UnionSelect),
            Tok::Semicolon if statement_form(g, i + 1) => return Some(Rule::StackedQuery),
            Tok::Word {
                kw: Some(Kw::Waitfor),
                ..
            } if statement_form(g, i) => return Some(Rule::TimeDelay),
            Tok::LParen
                if g.get(i + 1).is_some_and(|t| t.is_kw(Kw::Select))
                    && select_form(g, i + 1).is_some() =>
            {
                return Some(Rule::Subquery);
            }
            Tok::Word {
                func: Some(FuncClass::Dangerous),
                call: true,
                kw: None,
                ..
            } if call_args_valid(g, i + 1) => {
                return Some(Rule::DangerousFunction);
            }
            _ => {}
        }
    }
    None
}

/// The tokens from the `(` at `open` to its `)` form an argument list (expressions
/// separated by commas), or the input ends inside it.
fn call_args_valid(g: &[Tok], open: usize) -> bool {
    if g.get(open) != Some(&Tok::LParen) {
        return false;
    }
    if g.get(open + 1) == Some(&Tok::RParen) {
        return true;
    }
    let end = matching_paren(g, open).unwrap_or_else(|| g.len().min(open + LOOKAHEAD));
    let Some(inner) = g.get(open + 1..end) else {
        return false;
    };
    // `sleep (ever)` is prose: a real call passes a literal, a variable or another call.
    if !inner
        .iter()
        .any(|&t| is_literal(t) || matches!(t, Tok::Word { call: true, .. }))
    {
        return false;
    }
    let mut pos = 0;
    loop {
        let scan = scan_expr(inner, pos, State::Operand, false);
        match scan.stop {
            Stop::Eof => return scan.state == State::Operator,
            Stop::Invalid => {
                let idx = scan.pos;
                if inner.get(idx) == Some(&Tok::Comma) && idx > pos {
                    pos = idx + 1;
                    continue;
                }
                return false;
            }
            Stop::Statement(_) | Stop::Union(_) | Stop::Clause(_) => return true,
            Stop::TerminalComment | Stop::Semicolon(_) => return false,
        }
    }
}

/// The grammar stream: the tokens minus comments that do not run to the end (inline `/**/`
/// and line comments ended by a newline are whitespace to a SQL engine).
pub(crate) fn grammar_stream(tokens: &[Tok]) -> Vec<Tok> {
    tokens
        .iter()
        .copied()
        .filter(|t| {
            !matches!(
                t,
                Tok::Comment {
                    terminal: false,
                    ..
                }
            )
        })
        .collect()
}

/// Classifies the grammar stream `g` of the input tokenized in `ctx`.
pub(crate) fn classify(g: &[Tok], ctx: Context) -> Option<Rule> {
    if let Some(r) = anywhere(g) {
        return Some(r);
    }
    match ctx {
        Context::AsIs => classify_as_is(g),
        Context::SingleQuote | Context::DoubleQuote => classify_after_quote(g),
    }
}

/// What may follow `UNION` in an attack: `SELECT`, `ALL`, `DISTINCT`, `(`, a comment, or
/// the end of the input.
fn union_follows(next: Option<&Tok>) -> bool {
    matches!(
        next,
        None | Some(
            Tok::LParen
                | Tok::Comment { .. }
                | Tok::Word {
                    kw: Some(Kw::All | Kw::Distinct | Kw::Select),
                    ..
                }
        )
    )
}

fn ends_with_blank_comment(g: &[Tok]) -> bool {
    matches!(
        g.last(),
        Some(Tok::Comment {
            terminal: true,
            blank: true
        })
    )
}

fn ends_with_comment(g: &[Tok]) -> bool {
    matches!(g.last(), Some(Tok::Comment { terminal: true, .. }))
}

fn is_statement_kw(t: Option<&Tok>) -> bool {
    matches!(t, Some(Tok::Word { kw: Some(k), .. }) if k.role() == Role::Statement || *k == Kw::If)
}

fn classify_after_quote(g: &[Tok]) -> Option<Rule> {
    // The first token is the host's string, closed by the input: a break-out.
    let Some(&Tok::Str {
        closed: true,
        quote,
    }) = g.first()
    else {
        return None;
    };
    if g.len() < 2 {
        return None;
    }
    let scan = scan_expr(g, 1, State::Operator, true);
    let sig = scan.sig;
    // Evidence that the continuation is SQL and not a quoted word in prose: logic, a
    // tautology-shaped comparison, a SQL call, a sub-query.
    let evidence = (sig.logic && (sig.literal_after_op || sig.compare || sig.bool_after_logic))
        || sig.tautology
        || sig.known_call
        || sig.subquery
        || sig.case_expr;
    match scan.stop {
        Stop::TerminalComment => {
            // `admin'--`: nothing between the break and a comment that cuts the query.
            // A comment with text after the quote (`FOO BAR'# BLAH`) is prose.
            // With a comparison or logic in between, any comment.
            (scan.state == State::Operator
                && (evidence || ends_with_blank_comment(g) || sig.compare || sig.logic))
                .then_some(Rule::CommentTruncation)
        }
        Stop::Semicolon(i) => {
            let next = g.get(i + 1);
            (evidence
                || is_statement_kw(next)
                || matches!(
                    next,
                    Some(Tok::Comment {
                        terminal: true,
                        blank: true
                    })
                ))
            .then_some(Rule::StackedQuery)
        }
        Stop::Statement(i) => statement_form(g, i).then_some(Rule::StackedQuery),
        Stop::Clause(i) => clause_form(g, i)
            .filter(|&body| body || ends_with_comment(g) || evidence)
            .map(|_| Rule::ClauseInjection),
        Stop::Union(i) => union_follows(g.get(i + 1)).then_some(Rule::UnionSelect),
        Stop::Invalid => {
            (sig.logic && (sig.tautology || sig.name_tautology)).then_some(Rule::BreakOutExpression)
        }
        Stop::Eof => {
            // In the single-quote context (SQL's own string delimiter), an operator that
            // joins the closed string to one the host's closing quote ends (`A' - 'B`,
            // `' = '`): implicit conversion attacks. Not in the double-quote context, where
            // `"` is an inch mark or a quotation in prose.
            let rejoined = quote == b'\''
                && sig.operators > 0
                && matches!(
                    g.last(),
                    Some(Tok::Str {
                        quote: b'\'',
                        closed: false
                    })
                );
            (scan.state == State::Operator && (evidence || rejoined))
                .then_some(Rule::BreakOutExpression)
        }
    }
}

/// Tokens that can follow a value of the host query (`WHERE id = 1 <input>`).
fn can_follow_value(t: Option<&Tok>) -> bool {
    match t {
        Some(Tok::Op(OpKind::Compare | OpKind::Logic) | Tok::RParen) => true,
        Some(&Tok::Word { kw: Some(k), .. }) => {
            matches!(k.role(), Role::Logic | Role::WordOp | Role::Union)
                || matches!(
                    k,
                    Kw::Order
                        | Kw::Group
                        | Kw::Having
                        | Kw::Where
                        | Kw::Limit
                        | Kw::Into
                        | Kw::Procedure
                        | Kw::As
                        | Kw::Not
                )
        }
        _ => false,
    }
}

fn classify_as_is(g: &[Tok]) -> Option<Rule> {
    if let Some(Tok::Word { kw: Some(k), .. }) = g.first()
        && k.role() == Role::Statement
        && statement_form(g, 0)
    {
        return Some(Rule::Statement);
    }
    // Either the input is a value (`WHERE id = <input>`) or it continues after one
    // (`WHERE id = 1 <input>`, the shape of `' OR 1=1`-less payloads such as ` OR 1=1`).
    [State::Operand, State::Operator]
        .into_iter()
        .filter(|&st| st == State::Operand || can_follow_value(g.first()))
        .find_map(|st| judge_as_is(g, st))
}

fn judge_as_is(g: &[Tok], start: State) -> Option<Rule> {
    let scan = scan_expr(g, 0, start, true);
    let sig = scan.sig;
    // What a value never carries: a condition joined by logic to a tautology-shaped
    // comparison, a boolean literal, a call or a sub-query; a comparison with a SQL call;
    // nested SQL calls; a sub-query; a CASE expression.
    let literal_start = start == State::Operand
        && matches!(
            g.first(),
            Some(
                Tok::Number
                    | Tok::Str { .. }
                    | Tok::Variable
                    | Tok::LParen
                    | Tok::Op(OpKind::Arith)
            )
        );
    let strong = (sig.logic
        && (sig.tautology
            || sig.name_tautology
            || sig.known_call
            || sig.subquery
            || sig.bool_after_logic))
        || (literal_start && sig.logic && sig.compare)
        || (literal_start && sig.known_call && sig.operators > 0)
        || (sig.compare && sig.known_call)
        || sig.nested_call
        || sig.subquery
        || sig.case_expr;
    match scan.stop {
        // A literal value (no word of prose) ended by a bare comment: `1--`, `(1) OR 1 /*`.
        Stop::Eof | Stop::TerminalComment => (scan.state == State::Operator
            && (strong || literal_start && sig.names == 0 && ends_with_blank_comment(g)))
        .then_some(Rule::Tautology),
        Stop::Semicolon(i) => {
            // After a literal value or a closed host parenthesis, any statement keyword or
            // call: `1;DROP members`, `FOO); IF(...)`.
            let next = g.get(i + 1);
            let structural = (literal_start && sig.names == 0) || sig.host_close;
            (strong
                || statement_form(g, i + 1)
                || structural
                    && (is_statement_kw(next)
                        || matches!(next, Some(Tok::Word { call: true, .. }))))
            .then_some(Rule::StackedQuery)
        }
        Stop::Statement(i) => {
            let select = g.get(i).is_some_and(|t| t.is_kw(Kw::Select));
            ((scan.state == State::Operator || select) && statement_form(g, i))
                .then_some(Rule::StackedQuery)
        }
        Stop::Clause(i) => {
            let body = clause_form(g, i)?;
            (body || strong || sig.host_close || ends_with_blank_comment(g))
                .then_some(Rule::ClauseInjection)
        }
        Stop::Union(i) => {
            // `-1 UNION`, `1 UNION ALL --`: a set operation after a literal value.
            let next = g.get(i + 1);
            (!scan.last_was_name && union_follows(next)).then_some(Rule::UnionSelect)
        }
        Stop::Invalid => {
            (sig.logic && (sig.tautology || sig.name_tautology)).then_some(Rule::Tautology)
        }
    }
}
