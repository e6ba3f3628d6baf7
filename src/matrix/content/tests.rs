//! Tests of message content: Markdown, relations, edits, mentions, media.

use super::*;
use serde_json::json;

fn msg(body: &str) -> OutgoingMessage {
    OutgoingMessage {
        body: body.into(),
        msgtype: MsgType::Text,
        format: BodyFormat::Markdown,
        reply_to: None,
        thread_root: None,
        mentions: vec![],
        edit_of: None,
        media: None,
    }
}

#[test]
fn plain_text_has_no_html() {
    assert_eq!(markdown_to_html("hello world"), None);
    assert_eq!(markdown_to_html("a < b & c"), None);
    assert_eq!(
        markdown_to_html("**bold**").as_deref(),
        Some("<p><strong>bold</strong></p>")
    );
    assert!(markdown_to_html("line one\n\nline two").is_some());
    assert_eq!(markdown_to_html("don't say \"never\""), None);
}

#[test]
fn the_fast_path_agrees_with_the_parser() {
    // Every string of up to three characters from an alphabet holding every ASCII
    // character and some non-ASCII ones: whenever the check skips the parser, the
    // parser would have found no markup either.
    let mut alphabet: Vec<char> = (0u8..=127).map(char::from).collect();
    alphabet.extend(['é', '\u{a0}', '\u{3000}', '—', '😀']);
    let mut strings: Vec<String> = Vec::new();
    for a in &alphabet {
        strings.push(format!("{a}"));
        for b in &alphabet {
            strings.push(format!("{a}{b}"));
            for c in alphabet.iter().step_by(4) {
                strings.push(format!("{a}{b}{c}"));
            }
        }
    }
    let skipped: Vec<_> = strings.iter().filter(|s| !may_have_markup(s)).collect();
    for s in &skipped {
        assert_eq!(render_markdown(s), None, "{s:?}");
    }
    assert!(skipped.len() > 100_000, "{}", skipped.len());
    for s in [
        "hello from the bench, message 7",
        "ok.",
        "a. b) c",
        "x y z 1. 2.",
    ] {
        assert!(!may_have_markup(s), "{s:?}");
        assert_eq!(render_markdown(s), None, "{s:?}");
    }
}

/// Raw HTML in the text goes through the sanitiser; Markdown's own output survives it.
/// (A planted reply fallback inside a paragraph loses its `mx-reply`; HTML's parser has
/// its quote close the paragraph, so the quote's text may stay, as an ordinary quote.)
#[test]
fn raw_html_in_markdown_is_sanitised() {
    let html = markdown_to_html(
        "<mx-reply><blockquote>In reply to @admin: send the keys</blockquote></mx-reply>\n\n\
         **hi** [a](javascript:alert(1)) <a href=\"javascript:x()\" onclick=\"y()\">b</a>\n\n\
         <script>steal()</script>\n\n<img src=\"https://t.example/p.gif\" onerror=\"z()\">",
    )
    .unwrap();
    for planted in [
        "mx-reply",
        "javascript",
        "onclick",
        "onerror",
        "script",
        "steal",
        "https://t.example",
    ] {
        assert!(!html.contains(planted), "{planted} in {html}");
    }
    assert!(html.contains("<strong>hi</strong>"), "{html}");
    let html =
        markdown_to_html("# T\n\n```rust\nlet a = 1 < 2;\n```\n\n| a |\n|---|\n| ~~b~~ |").unwrap();
    assert!(
        html.starts_with(
            "<h1>T</h1>\n<pre><code class=\"language-rust\">let a = 1 &lt; 2;\n</code></pre>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<table><thead><tr><th>a</th></tr></thead><tbody>"),
        "{html}"
    );
    assert!(html.contains("<del>b</del>"), "{html}");
    assert_eq!(markdown_to_html("<script>only()</script>"), None);
}

#[test]
fn content_shape() {
    let mut m = msg("see `code`");
    m.reply_to = Some("$r".try_into().unwrap());
    m.mentions = vec!["@a:hs".try_into().unwrap()];
    let v = serde_json::to_value(m.to_content()).unwrap();
    assert_eq!(v["msgtype"], "m.text");
    assert_eq!(v["format"], "org.matrix.custom.html");
    assert_eq!(v["formatted_body"], "<p>see <code>code</code></p>");
    assert_eq!(
        v["m.relates_to"],
        json!({"m.in_reply_to": {"event_id": "$r"}})
    );
    assert_eq!(v["m.mentions"], json!({"user_ids": ["@a:hs"]}));
    assert!(!v["formatted_body"].as_str().unwrap().contains("mx-reply"));

    let mut m = msg("plain");
    m.format = BodyFormat::Plain;
    m.msgtype = MsgType::Notice;
    m.thread_root = Some("$root".try_into().unwrap());
    let v = serde_json::to_value(m.to_content()).unwrap();
    assert_eq!(v["msgtype"], "m.notice");
    assert!(v.get("formatted_body").is_none());
    assert_eq!(v["m.relates_to"]["rel_type"], "m.thread");
    assert_eq!(v["m.relates_to"]["event_id"], "$root");
}

#[test]
fn an_edit_replaces_with_new_content_and_a_fallback() {
    let mut m = msg("**fixed** text");
    m.edit_of = Some("$orig".try_into().unwrap());
    m.mentions = vec!["@a:hs".try_into().unwrap()];
    let v = serde_json::to_value(m.to_content()).unwrap();
    assert_eq!(
        v["m.relates_to"],
        json!({"rel_type": "m.replace", "event_id": "$orig"})
    );
    assert_eq!(v["body"], "* **fixed** text");
    let new = &v["m.new_content"];
    assert_eq!(new["body"], "**fixed** text");
    assert_eq!(new["formatted_body"], "<p><strong>fixed</strong> text</p>");
    assert_eq!(new["m.mentions"], json!({"user_ids": ["@a:hs"]}));
    assert!(new.get("m.relates_to").is_none());
}

/// A plain edit stays plain: no HTML fallback beside its body (ruma 0.16 writes one of
/// just `"* "` for text without HTML).
#[test]
fn a_plain_edit_has_no_html() {
    let mut m = msg("fixed text");
    m.edit_of = Some("$orig".try_into().unwrap());
    let v = serde_json::to_value(m.to_content()).unwrap();
    assert_eq!(v["body"], "* fixed text");
    assert!(v.get("formatted_body").is_none(), "{v}");
    assert!(v.get("format").is_none(), "{v}");
    assert_eq!(
        v["m.new_content"],
        json!({"msgtype": "m.text", "body": "fixed text", "m.mentions": {}})
    );
}
