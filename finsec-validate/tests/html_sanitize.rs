//! HTML sanitising: the named policies keep what they promise, and no output of any policy
//! contains a script or style element, an event handler, a style attribute or a
//! `javascript:`/`data:` URL. Outputs are parsed with html5ever (the parser ammonia uses, same
//! version) into an `RcDom` and the tree is walked; nothing is checked by substring search.
//! Inputs: every line of the public XSS corpus (PayloadsAllTheThings), raw and percent-decoded,
//! and random HTML-like strings built from tag, attribute and URL fragments.
#![cfg(test)]

use std::collections::HashSet;

use finsec_validate::html::{NOTES_LINK_REL, sanitize};
use finsec_validate::{HtmlError, HtmlPolicy, HtmlSanitizer};
use html5ever::tendril::TendrilSink;
use html5ever::{QualName, local_name, ns, parse_document, parse_fragment};
use markup5ever_rcdom::{Handle, NodeData, RcDom};
use proptest::prelude::*;

/// Corpus lines that change under percent-decoding (run both as given and decoded).
const EXPECTED_PERCENT_DECODED: usize = 28;

const XSS_CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/xss/xss_payloads.txt"
);

/// Elements each policy may leave in its output.
fn allowed_elements(policy: HtmlPolicy) -> HashSet<&'static str> {
    let basic = ["b", "i", "u", "em", "strong"];
    match policy {
        HtmlPolicy::Notes => basic
            .into_iter()
            .chain(["p", "br", "ul", "ol", "li", "code", "a"])
            .collect(),
        _ => basic.into_iter().collect(),
    }
}

/// Parses `html` twice (as a `div` fragment, as browsers do for `innerHTML`, and as a whole
/// document) and returns every problem found. Empty means the output is safe.
fn problems(policy: HtmlPolicy, html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let fragment = parse_fragment(
        RcDom::default(),
        Default::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        vec![],
        false,
    )
    .one(html);
    walk(policy, &fragment.document, &mut found);
    let document = parse_document(RcDom::default(), Default::default()).one(html);
    walk(policy, &document.document, &mut found);
    found
}

/// Browsers strip leading/trailing C0 controls and spaces from URLs and remove tabs and
/// newlines anywhere in them; the scheme is case-insensitive.
fn url_scheme_is_dangerous(value: &str) -> bool {
    let cleaned: String = value
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect::<String>()
        .to_ascii_lowercase();
    ["javascript:", "data:", "vbscript:"]
        .iter()
        .any(|s| cleaned.starts_with(s))
}

fn walk(policy: HtmlPolicy, node: &Handle, found: &mut Vec<String>) {
    if let NodeData::Element {
        name,
        attrs,
        template_contents,
        ..
    } = &node.data
    {
        let local: &str = &name.local;
        let tag = local.to_ascii_lowercase();
        // html/head/body are created by the parser around the fragment or document.
        let wrapper = matches!(tag.as_str(), "html" | "head" | "body");
        if tag == "script" || tag == "style" {
            found.push(format!("{tag} element"));
        }
        if !wrapper && !allowed_elements(policy).contains(tag.as_str()) {
            found.push(format!("element {tag} not in the {policy} allow-list"));
        }
        if name.ns != ns!(html) {
            found.push(format!("element {tag} in foreign namespace {:?}", name.ns));
        }
        for attr in attrs.borrow().iter() {
            let attr_name = AsRef::<str>::as_ref(&attr.name.local).to_ascii_lowercase();
            let value: &str = &attr.value;
            if attr_name.starts_with("on") {
                found.push(format!("event handler {attr_name} on {tag}"));
            }
            if attr_name == "style" {
                found.push(format!("style attribute on {tag}"));
            }
            if url_scheme_is_dangerous(value) {
                found.push(format!("dangerous url {value:?} in {attr_name} on {tag}"));
            }
            let allowed = match (tag.as_str(), attr_name.as_str()) {
                ("a", "href") => {
                    let lower = value.to_ascii_lowercase();
                    ["http:", "https:", "mailto:"]
                        .iter()
                        .any(|s| lower.starts_with(s))
                }
                ("a", "rel") => value == "noopener noreferrer",
                _ => false,
            };
            if !allowed || policy == HtmlPolicy::Basic {
                found.push(format!("attribute {attr_name}={value:?} on {tag}"));
            }
        }
        if let Some(contents) = template_contents.borrow().as_ref() {
            walk(policy, contents, found);
        }
    }
    if let NodeData::Comment { .. } | NodeData::ProcessingInstruction { .. } = &node.data {
        found.push("comment or processing instruction".to_owned());
    }
    for child in node.children.borrow().iter() {
        walk(policy, child, found);
    }
}

fn assert_safe(policy: HtmlPolicy, input: &str) -> String {
    let out = sanitize(policy, input).unwrap();
    assert_eq!(out.policy(), policy);
    let problems = problems(policy, out.as_str());
    assert!(
        problems.is_empty(),
        "{policy} output of {input:?} is {:?}: {problems:?}",
        out.as_str()
    );
    out.into_string()
}

/// Percent-decodes `s` (invalid escapes kept as is, invalid UTF-8 replaced), as a request
/// decoder in front of the sanitiser would.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (
                (bytes[i + 1] as char).to_digit(16),
                (bytes[i + 2] as char).to_digit(16),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn policy_names_round_trip() {
    for p in HtmlPolicy::ALL {
        assert_eq!(p.name().parse::<HtmlPolicy>().unwrap(), p);
        assert_eq!(p.to_string(), p.name());
    }
    assert_eq!("basic".parse::<HtmlPolicy>().unwrap(), HtmlPolicy::Basic);
    assert_eq!("notes".parse::<HtmlPolicy>().unwrap(), HtmlPolicy::Notes);
    let e = "Notes".parse::<HtmlPolicy>().unwrap_err();
    assert_eq!(
        e,
        HtmlError::UnknownPolicy {
            name: "Notes".into()
        }
    );
    assert_eq!(e.code(), "html.unknown_policy");
    assert_eq!(e.to_string(), "unknown html policy \"Notes\"");
    // The name in the error is truncated.
    let long = "x".repeat(1000);
    let HtmlError::UnknownPolicy { name } = long.parse::<HtmlPolicy>().unwrap_err() else {
        panic!("wrong error")
    };
    assert_eq!(name.len(), 64);
}

#[test]
fn basic_keeps_inline_emphasis_only() {
    let p = HtmlPolicy::Basic;
    assert_eq!(
        assert_safe(
            p,
            "<b>bold</b> <i>it</i> <u>u</u> <em>em</em> <strong>s</strong>"
        ),
        "<b>bold</b> <i>it</i> <u>u</u> <em>em</em> <strong>s</strong>"
    );
    assert_eq!(assert_safe(p, "<p>para</p><br>"), "para");
    assert_eq!(
        assert_safe(p, r#"<a href="https://example.com">link</a>"#),
        "link"
    );
    assert_eq!(
        assert_safe(
            p,
            r#"<b title="t" class="c" id="i" style="color:red">x</b>"#
        ),
        "<b>x</b>"
    );
    assert_eq!(assert_safe(p, "a < b & c"), "a &lt; b &amp; c");
    assert_eq!(assert_safe(p, "<script>alert(1)</script>ok"), "ok");
    assert_eq!(assert_safe(p, "<style>b{}</style>ok"), "ok");
    assert_eq!(assert_safe(p, "<!-- hidden -->ok"), "ok");
    assert_eq!(assert_safe(p, "<b>unclosed"), "<b>unclosed</b>");
}

#[test]
fn notes_keeps_structure_and_safe_links() {
    let p = HtmlPolicy::Notes;
    assert_eq!(
        assert_safe(
            p,
            "<p>a<br>b</p><ul><li>x</li></ul><ol><li>y</li></ol><code>c</code>"
        ),
        "<p>a<br>b</p><ul><li>x</li></ul><ol><li>y</li></ol><code>c</code>"
    );
    let rel = NOTES_LINK_REL;
    assert_eq!(rel, "noopener noreferrer");
    assert_eq!(
        assert_safe(p, r#"<a href="https://example.com/x?a=1">x</a>"#),
        format!(r#"<a href="https://example.com/x?a=1" rel="{rel}">x</a>"#)
    );
    assert_eq!(
        assert_safe(
            p,
            r#"<a href="http://example.com" rel="opener" target="_blank">x</a>"#
        ),
        format!(r#"<a href="http://example.com" rel="{rel}">x</a>"#)
    );
    assert_eq!(
        assert_safe(p, r#"<a href="mailto:ops@example.com">m</a>"#),
        format!(r#"<a href="mailto:ops@example.com" rel="{rel}">m</a>"#)
    );
    // Other schemes and relative URLs lose the href; the link text stays.
    for href in [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "&#106;avascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "ftp://example.com",
        "/internal/admin",
        "relative/path",
        "//evil.example",
    ] {
        let out = assert_safe(p, &format!(r#"<a href="{href}">x</a>"#));
        assert_eq!(out, format!(r#"<a rel="{rel}">x</a>"#), "{href}");
    }
    assert_eq!(
        assert_safe(p, r#"<p onclick="x()" style="color:red" class="c">t</p>"#),
        "<p>t</p>"
    );
    assert_eq!(
        assert_safe(
            p,
            r#"<img src=x onerror=alert(1)><iframe src="https://x"></iframe>t"#
        ),
        "t"
    );
    assert_eq!(
        assert_safe(p, "<h1>title</h1><table><tr><td>c</td></tr></table>"),
        "titlec"
    );
}

#[test]
fn input_size_is_limited() {
    let s = HtmlSanitizer::new(HtmlPolicy::Notes);
    assert_eq!(s.policy(), HtmlPolicy::Notes);
    assert_eq!(s.max_input_bytes(), HtmlSanitizer::DEFAULT_MAX_INPUT_BYTES);
    let small = s.with_max_input_bytes(10).unwrap();
    assert_eq!(small.sanitize("<b>12</b>").unwrap().as_str(), "<b>12</b>");
    let e = small.sanitize("<b>123</b>x").unwrap_err();
    assert_eq!(
        e,
        HtmlError::InputTooLarge {
            max: 10,
            actual: 11
        }
    );
    assert_eq!(e.code(), "html.too_large");
    let e = s.with_max_input_bytes(0).unwrap_err();
    assert_eq!(e, HtmlError::ZeroLimit);
    assert_eq!(e.code(), "html.zero_limit");
    let big = "a".repeat(HtmlSanitizer::DEFAULT_MAX_INPUT_BYTES + 1);
    assert!(matches!(
        sanitize(HtmlPolicy::Basic, &big),
        Err(HtmlError::InputTooLarge { .. })
    ));
}

#[test]
fn safe_html_accessors() {
    let out = sanitize(HtmlPolicy::Basic, "<b>x</b>").unwrap();
    assert_eq!(out.as_str(), "<b>x</b>");
    assert_eq!(out.as_ref(), "<b>x</b>");
    assert_eq!(out.to_string(), "<b>x</b>");
    assert_eq!(out.policy(), HtmlPolicy::Basic);
}

#[test]
fn the_tree_checker_catches_what_it_must() {
    // The checker itself is tested on unsafe markup, so a passing corpus means something.
    let p = HtmlPolicy::Notes;
    for bad in [
        "<script>x</script>",
        "<svg><script>x</script></svg>",
        "<b onclick=x>t</b>",
        "<b ONMOUSEOVER=x>t</b>",
        "<b style=color:red>t</b>",
        "<a href=javascript:x>t</a>",
        "<a href=' &#14;jav&#x09;ascript:x'>t</a>",
        "<a href=DATA:text/html,x>t</a>",
        "<template><img src=x onerror=y></template>",
        "<!-- c -->",
        "<img src=x>",
        "<a href=https://x rel=opener>t</a>",
    ] {
        assert!(!problems(p, bad).is_empty(), "{bad}");
    }
    assert!(!problems(HtmlPolicy::Basic, "<p>t</p>").is_empty());
    assert!(problems(p, "<p>t</p>").is_empty());
}

#[test]
fn every_xss_corpus_line_is_neutralised_under_every_policy() {
    let text = std::fs::read_to_string(XSS_CORPUS).unwrap();
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
    let mut decoded_variants = 0;
    let mut runs = 0;
    for line in &lines {
        let decoded = percent_decode(line);
        let mut inputs = vec![(*line).to_owned()];
        if decoded != *line {
            decoded_variants += 1;
            inputs.push(decoded);
        }
        for input in &inputs {
            for policy in HtmlPolicy::ALL {
                let out = assert_safe(policy, input);
                // The cached builder and a fresh one configured identically agree.
                assert_eq!(
                    policy.ammonia_builder().clean(input).to_string(),
                    out,
                    "{policy}: {input:?}"
                );
                runs += 1;
            }
        }
    }
    assert_eq!(lines.len(), 416, "corpus lines");
    assert_eq!(
        decoded_variants, EXPECTED_PERCENT_DECODED,
        "percent-decoded variants"
    );
    assert_eq!(
        runs,
        (416 + EXPECTED_PERCENT_DECODED) * HtmlPolicy::ALL.len()
    );
}

/// Fragments random inputs are built from: tags, attributes, URLs, quotes, entities and
/// parser-confusing pieces.
const FRAGMENTS: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "\"",
    "'",
    "`",
    "=",
    " ",
    "\t",
    "\n",
    "\x0c",
    "\0",
    "&",
    "&#",
    "x",
    "&lt;",
    "&#106;",
    "&#x6A;",
    "&#0000106",
    "&colon;",
    "&Tab;",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<?",
    "<!DOCTYPE html>",
    "<script>",
    "</script>",
    "<script src=//x>",
    "<style>",
    "</style>",
    "<svg>",
    "</svg>",
    "<math>",
    "<mtext>",
    "<mglyph>",
    "<table>",
    "<noscript>",
    "<template>",
    "<textarea>",
    "<title>",
    "<xmp>",
    "<iframe",
    "<img",
    "<a",
    "<b",
    "<p",
    "<li",
    "<code",
    "<object",
    "<embed",
    "<form",
    "<input",
    "<base",
    "<meta",
    "<link",
    "<body",
    "<details",
    "<video",
    "<foreignObject>",
    "<annotation-xml encoding=text/html>",
    "</a>",
    "</b>",
    "</p>",
    " href=",
    " src=",
    " xlink:href=",
    " action=",
    " formaction=",
    " onerror=",
    " onload=",
    " OnClick=",
    " onmouseover=",
    " style=",
    " srcdoc=",
    " open",
    " rel=",
    " target=_blank",
    " id=",
    " class=",
    "javascript:",
    "JAVASCRIPT:",
    "java\tscript:",
    "java&#x09;script:",
    " javascript:",
    "data:text/html;base64,PHNjcmlwdD4=",
    "vbscript:",
    "http://example.com",
    "https://example.com/?q=1",
    "mailto:a@example.com",
    "//evil",
    "alert(1)",
    "expression(alert(1))",
    "url(javascript:x)",
    "\u{202E}",
    "\u{FEFF}",
];

fn html_ish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
            1 => "\\PC{0,4}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// No policy ever outputs executable markup, styles, or elements/attributes outside its
    /// allow-list.
    #[test]
    fn no_policy_outputs_executable_markup(input in html_ish()) {
        for policy in HtmlPolicy::ALL {
            let out = sanitize(policy, &input).unwrap();
            let problems = problems(policy, out.as_str());
            prop_assert!(problems.is_empty(), "{} output of {:?} is {:?}: {:?}", policy, input, out.as_str(), problems);
        }
    }
}
