//! A bridge message body through `matrix::content::markdown_to_html` (Markdown, raw HTML in
//! it included, then the spec's HTML subset), and the same text straight through
//! `matrix::html::sanitise`. What leaves must be safe to show in any Matrix client: no
//! script, no event handler, no style, no link to a scheme outside the allowed ones, no
//! planted reply fallback. The checks read the *markup* of the output (tags and attribute
//! values), not its text: the text may well say `javascript:` or `mx-reply`, escaped.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic_as::matrix::{content::markdown_to_html, html::sanitise};

/// Elements that must never come out, whatever the policy allows otherwise.
const FORBIDDEN_TAGS: &[&str] = &[
    "script", "style", "mx-reply", "iframe", "object", "embed", "svg", "math", "form", "input",
    "button", "link", "meta", "base", "frame", "frameset", "template", "noscript", "textarea",
];
/// Attributes that must never come out (besides every `on*` event handler).
const FORBIDDEN_ATTRIBUTES: &[&str] = &["style", "srcdoc", "formaction", "xlink:href", "id"];
/// Link schemes the policy allows (relative links are denied).
const LINK_SCHEMES: &[&str] = &["https:", "http:", "mailto:", "matrix:", "mxc:"];

/// One start tag of the output: its name and its attributes (values entity-decoded).
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
}

/// The start tags of `html` as html5ever serialises it: text and attribute values escape
/// `&` and `"`, text also `<` and `>`; values are always double-quoted; comments are
/// stripped by the policy. Anything else is a serialisation the checks cannot read, and
/// fails the run (it would be worth a look).
fn start_tags(html: &str) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        if let Some(after) = rest.strip_prefix('/') {
            let close = after.find('>').expect("an end tag closes");
            let name = &after[..close];
            assert!(is_name(name), "end tag {name:?} in {html:?}");
            rest = &after[close + 1..];
            continue;
        }
        let end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '>')
            .expect("a start tag closes");
        let name = &rest[..end];
        assert!(is_name(name), "start tag {name:?} in {html:?}");
        let mut tag = Tag {
            name: name.to_owned(),
            attributes: Vec::new(),
        };
        rest = rest[end..].trim_start();
        while !rest.starts_with('>') {
            let eq = rest.find('=').expect("an attribute has a value");
            let attribute = rest[..eq].to_owned();
            let value = rest[eq + 1..].strip_prefix('"').expect("a quoted value");
            let quote = value.find('"').expect("a closing quote");
            tag.attributes.push((attribute, decode(&value[..quote])));
            rest = value[quote + 1..].trim_start();
        }
        rest = &rest[1..];
        tags.push(tag);
    }
    tags
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An attribute value as a browser reads it (the serialiser's escapes only).
fn decode(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// A URL as a browser's URL parser sees its scheme: leading C0 controls and spaces
/// dropped, tabs and newlines removed anywhere, ASCII case ignored.
fn scheme_view(url: &str) -> String {
    url.trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The safety properties of one piece of sanitised output.
fn check(html: &str) {
    // Raw text never opens a tag: `<` in text is escaped.
    assert!(!html.to_ascii_lowercase().contains("<script"), "{html:?}");
    for tag in start_tags(html) {
        let name = tag.name.to_ascii_lowercase();
        assert!(
            !FORBIDDEN_TAGS.contains(&name.as_str()),
            "<{name}> in {html:?}"
        );
        for (attribute, value) in &tag.attributes {
            let attribute = attribute.to_ascii_lowercase();
            assert!(
                !attribute.starts_with("on"),
                "{attribute} on <{name}> in {html:?}"
            );
            assert!(
                !FORBIDDEN_ATTRIBUTES.contains(&attribute.as_str()),
                "{attribute} in {html:?}"
            );
            let url = scheme_view(value);
            if attribute == "href" {
                assert!(
                    LINK_SCHEMES.iter().any(|s| url.starts_with(s)),
                    "href {value:?} in {html:?}"
                );
            }
            if attribute == "src" {
                assert!(
                    name == "img" && url.starts_with("mxc://"),
                    "src {value:?} in {html:?}"
                );
            }
            for bad in ["javascript:", "vbscript:", "data:"] {
                if matches!(attribute.as_str(), "href" | "src") {
                    assert!(!url.starts_with(bad), "{attribute} {value:?} in {html:?}");
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Bridge bodies are JSON strings: always UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(html) = markdown_to_html(text) {
        assert!(!html.trim().is_empty(), "Some(empty) for {text:?}");
        check(&html);
    }
    let clean = sanitise(text);
    check(&clean);
    // Sanitising what was sanitised keeps it safe (a client may re-sanitise a quote of it).
    // It is *not* idempotent, so that is not asserted: the parser drops a `<pre>`'s first
    // newline on every pass (`<pre>\n\n\nx</pre>` takes three passes to settle), and
    // elements removed around a `<p>` can leave `<p>z<p></p></p>`, which re-parses as
    // siblings. Both are harmless; neither is a fixed point after any set number of passes.
    check(&sanitise(&clean));
});
