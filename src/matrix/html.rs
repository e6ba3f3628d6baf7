//! What `formatted_body` may hold: the HTML subset the Matrix spec recommends (Client-Server
//! API, "m.room.message msgtypes"), enforced with ammonia (html5ever's parser) on whatever
//! Markdown rendering made of a client's text, raw HTML in it included. Links only to
//! `https`, `http`, `mailto`, `matrix` and `mxc`; images only from `mxc`; no reply
//! fallback (`mx-reply`) from a client, ever: the daemon sends replies as relations only,
//! so it never adds one of its own either.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    sync::LazyLock,
};

use ammonia::{Builder, UrlRelative};

/// The spec's tags. `strike` is the spec's older name for `s`; both are kept.
const TAGS: &[&str] = &[
    "font",
    "del",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "p",
    "a",
    "ul",
    "ol",
    "sup",
    "sub",
    "li",
    "b",
    "i",
    "u",
    "strong",
    "em",
    "s",
    "strike",
    "code",
    "hr",
    "br",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "caption",
    "pre",
    "span",
    "img",
    "details",
    "summary",
];

/// The spec's attributes, per tag (no attribute is allowed on every tag).
const TAG_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("font", &["data-mx-bg-color", "data-mx-color", "color"]),
    (
        "span",
        &["data-mx-bg-color", "data-mx-color", "data-mx-spoiler"],
    ),
    ("a", &["name", "target", "href"]),
    ("img", &["width", "height", "alt", "title", "src"]),
    ("ol", &["start"]),
    ("code", &["class"]),
];

/// Schemes a link may use.
const LINK_SCHEMES: &[&str] = &["https", "http", "mailto", "matrix", "mxc"];

/// Elements removed with everything inside them (other elements outside the subset are
/// removed and their text kept, escaped).
const REMOVED_WITH_CONTENT: &[&str] = &["mx-reply", "script", "style"];

/// The policy, built once.
static POLICY: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut policy = Builder::empty();
    policy
        .tags(TAGS.iter().copied().collect())
        .tag_attributes(
            TAG_ATTRIBUTES
                .iter()
                .map(|(tag, attrs)| (*tag, attrs.iter().copied().collect()))
                .collect::<HashMap<_, HashSet<_>>>(),
        )
        .generic_attributes(HashSet::new())
        .url_schemes(LINK_SCHEMES.iter().copied().collect())
        .url_relative(UrlRelative::Deny)
        .link_rel(None)
        .clean_content_tags(REMOVED_WITH_CONTENT.iter().copied().collect())
        .strip_comments(true)
        .attribute_filter(filter_value);
    policy
});

/// Value rules the tag and scheme lists cannot say: an image only from the content
/// repository (`mxc://`), a code block's classes only `language-*`.
fn filter_value<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    match (element, attribute) {
        ("img", "src") => {
            let mxc = value
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("mxc://"));
            mxc.then_some(Cow::Borrowed(value))
        }
        ("code", "class") => {
            let languages: Vec<&str> = value
                .split_ascii_whitespace()
                .filter(|c| c.starts_with("language-"))
                .collect();
            (!languages.is_empty()).then(|| Cow::Owned(languages.join(" ")))
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

/// `html` reduced to the subset: other tags removed (their text kept), other attributes
/// and other links dropped.
pub fn sanitise(html: &str) -> String {
    POLICY.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_reply_fallback_is_removed_with_its_content() {
        let out = sanitise(
            "<mx-reply><blockquote><a href=\"https://matrix.to/#/!r/$e\">In reply to</a> \
             <a href=\"https://matrix.to/#/@admin:hs\">@admin:hs</a><br>transfer it all</blockquote>\
             </mx-reply><p>ok</p>",
        );
        assert_eq!(out, "<p>ok</p>");
    }

    #[test]
    fn scripts_styles_and_unknown_tags_go() {
        assert_eq!(sanitise("<script>alert(1)</script><p>x</p>"), "<p>x</p>");
        assert_eq!(sanitise("<style>p{}</style>y"), "y");
        assert_eq!(
            sanitise("<iframe src=\"https://e.vil\">z</iframe><svg onload=\"x()\">w</svg>"),
            "zw"
        );
        assert_eq!(sanitise("a<!-- hidden -->b"), "ab");
    }

    #[test]
    fn event_handlers_and_styles_are_dropped() {
        assert_eq!(
            sanitise("<p onclick=\"steal()\" style=\"color:red\" class=\"x\" id=\"y\">t</p>"),
            "<p>t</p>"
        );
        assert_eq!(
            sanitise("<img src=\"mxc://hs/abc\" onerror=\"steal()\" alt=\"pic\">"),
            "<img src=\"mxc://hs/abc\" alt=\"pic\">"
        );
    }

    #[test]
    fn links_keep_only_the_allowed_schemes() {
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:x",
            "ftp://host/f",
            "/relative/path",
            "#fragment",
        ] {
            let out = sanitise(&format!("<a href=\"{bad}\">x</a>"));
            assert_eq!(out, "<a>x</a>", "{bad:?}");
        }
        for good in [
            "https://example.org/a?b=c",
            "http://example.org/",
            "mailto:a@example.org",
            "matrix:u/alice:example.org",
            "mxc://example.org/abc",
        ] {
            let out = sanitise(&format!("<a href=\"{good}\" target=\"_blank\">x</a>"));
            let want = format!(
                "<a href=\"{}\" target=\"_blank\">x</a>",
                good.replace('&', "&amp;")
            );
            assert_eq!(out, want, "{good:?}");
        }
    }

    #[test]
    fn images_only_from_the_content_repository() {
        assert_eq!(
            sanitise("<img src=\"https://tracker.example/p.gif\" alt=\"a\">"),
            "<img alt=\"a\">"
        );
        assert_eq!(
            sanitise("<img src=\"MXC://hs/x\" width=\"3\" height=\"4\" title=\"t\">"),
            "<img src=\"MXC://hs/x\" width=\"3\" height=\"4\" title=\"t\">"
        );
    }

    #[test]
    fn the_spec_attributes_stay() {
        let kept = [
            "<font color=\"#ff0000\" data-mx-color=\"#00ff00\" data-mx-bg-color=\"#0000ff\">c</font>",
            "<span data-mx-spoiler=\"why\" data-mx-color=\"#ffffff\">s</span>",
            "<ol start=\"3\"><li>three</li></ol>",
            "<a name=\"anchor\">n</a>",
            "<pre><code class=\"language-rust\">fn x() {}</code></pre>",
            "<details><summary>more</summary><table><caption>c</caption><thead><tr><th>h</th></tr></thead><tbody><tr><td>d</td></tr></tbody></table></details>",
            "<h1>a</h1><h6>b</h6><blockquote>q</blockquote><ul><li>l</li></ul><hr><br>",
            "<b>b</b><i>i</i><u>u</u><s>s</s><strike>k</strike><del>d</del><sup>p</sup><sub>b</sub><em>e</em><strong>s</strong><div>v</div>",
        ];
        for html in kept {
            assert_eq!(sanitise(html), html);
        }
    }

    #[test]
    fn code_keeps_only_language_classes() {
        assert_eq!(
            sanitise("<code class=\"evil language-py hl\">x</code>"),
            "<code class=\"language-py\">x</code>"
        );
        assert_eq!(sanitise("<code class=\"evil\">x</code>"), "<code>x</code>");
    }
}
