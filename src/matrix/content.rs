//! Builds `m.room.message` content from a bridge send: msgtype, Markdown rendering
//! (pulldown-cmark, HTML only when the body has markup, then reduced to the spec's subset
//! by [`super::html`]), reply and thread relations (no reply fallback in the body), edits
//! (`m.replace` with `m.new_content` and a fallback body), and intentional mentions.

use pulldown_cmark::{html, Options, Parser};
use ruma::{
    events::{
        relation::{InReplyTo, Reply, Thread},
        room::message::{
            EmoteMessageEventContent, FormattedBody, MessageType, NoticeMessageEventContent,
            Relation, ReplacementMetadata, RoomMessageEventContent, TextMessageEventContent,
        },
        Mentions,
    },
    OwnedEventId, OwnedUserId,
};
use serde::Deserialize;

/// `msgtype` accepted on the bridge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum MsgType {
    #[default]
    #[serde(rename = "m.text")]
    Text,
    #[serde(rename = "m.notice")]
    Notice,
    #[serde(rename = "m.emote")]
    Emote,
    /// A file the agent uploaded (`url`, with `info`): the body is its caption or name.
    #[serde(rename = "m.image")]
    Image,
    #[serde(rename = "m.file")]
    File,
    #[serde(rename = "m.audio")]
    Audio,
    #[serde(rename = "m.video")]
    Video,
}

impl MsgType {
    /// The msgtype's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Text => "m.text",
            Self::Notice => "m.notice",
            Self::Emote => "m.emote",
            Self::Image => "m.image",
            Self::File => "m.file",
            Self::Audio => "m.audio",
            Self::Video => "m.video",
        }
    }

    /// Whether the type carries a file (`url`, `info`) rather than text.
    pub const fn is_media(self) -> bool {
        matches!(self, Self::Image | Self::File | Self::Audio | Self::Video)
    }
}

/// The message type of a file: its `url` and `info` checked against the spec's shape of
/// the msgtype (`info.size` a number, `info.mimetype` a string...).
pub fn media_message(
    msgtype: MsgType,
    body: &str,
    url: &ruma::MxcUri,
    info: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<MessageType, String> {
    let mut data = serde_json::Map::new();
    data.insert("url".into(), serde_json::Value::String(url.to_string()));
    if let Some(info) = info {
        data.insert("info".into(), serde_json::Value::Object(info));
    }
    MessageType::new(msgtype.as_str(), body.to_owned(), data).map_err(|e| e.to_string())
}

/// `format` accepted on the bridge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    #[default]
    Markdown,
    Plain,
}

/// Everything that shapes one outgoing message.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub body: String,
    pub msgtype: MsgType,
    pub format: BodyFormat,
    pub reply_to: Option<OwnedEventId>,
    pub thread_root: Option<OwnedEventId>,
    pub mentions: Vec<OwnedUserId>,
    /// The agent's earlier message this one replaces (an edit keeps the original's
    /// relation: the caller gives neither `reply_to` nor `thread_root` with it).
    pub edit_of: Option<OwnedEventId>,
    /// A file message, built by [`media_message`] (its body is not Markdown).
    pub media: Option<MessageType>,
}

impl OutgoingMessage {
    /// The Matrix event content.
    pub fn to_content(&self) -> RoomMessageEventContent {
        let msgtype = match &self.media {
            Some(media) => media.clone(),
            None => self.text(),
        };
        self.related(RoomMessageEventContent::new(msgtype))
    }

    /// The text message type: Markdown rendered when asked and there is markup.
    fn text(&self) -> MessageType {
        let html = match self.format {
            BodyFormat::Markdown => markdown_to_html(&self.body),
            BodyFormat::Plain => None,
        };
        let body = self.body.clone();
        match (self.msgtype, html) {
            (MsgType::Text, Some(h)) => MessageType::Text(TextMessageEventContent::html(body, h)),
            (MsgType::Text, None) => MessageType::Text(TextMessageEventContent::plain(body)),
            (MsgType::Notice, Some(h)) => {
                MessageType::Notice(NoticeMessageEventContent::html(body, h))
            }
            (MsgType::Notice, None) => MessageType::Notice(NoticeMessageEventContent::plain(body)),
            (MsgType::Emote, Some(h)) => {
                MessageType::Emote(EmoteMessageEventContent::html(body, h))
            }
            (MsgType::Emote, None) => MessageType::Emote(EmoteMessageEventContent::plain(body)),
            // File types come built (`media`); as text they are their body.
            (_, _) => MessageType::Text(TextMessageEventContent::plain(body)),
        }
    }

    /// `content` with the message's relation, mentions and, for an edit, replacement.
    fn related(&self, mut content: RoomMessageEventContent) -> RoomMessageEventContent {
        content.relates_to = match (&self.thread_root, &self.reply_to) {
            (Some(root), Some(reply)) => {
                Some(Relation::Thread(Thread::reply(root.clone(), reply.clone())))
            }
            (Some(root), None) => Some(Relation::Thread(Thread::without_fallback(root.clone()))),
            (None, Some(reply)) => Some(Relation::Reply(Reply::new(InReplyTo::new(reply.clone())))),
            (None, None) => None,
        };
        content.mentions = Some(Mentions::with_user_ids(self.mentions.iter().cloned()));
        match &self.edit_of {
            Some(original) => {
                let plain = formatted(&mut content.msgtype).is_none_or(|f| f.is_none());
                let mut edit =
                    content.make_replacement(ReplacementMetadata::new(original.clone(), None));
                if plain {
                    // ruma gives a plain edit an HTML fallback of just "* ": a client
                    // showing it would lose the text.
                    if let Some(f) = formatted(&mut edit.msgtype) {
                        *f = None;
                    }
                }
                edit
            }
            None => content,
        }
    }
}

/// The HTML body of a text-like message (`None` for other types).
fn formatted(msgtype: &mut MessageType) -> Option<&mut Option<FormattedBody>> {
    match msgtype {
        MessageType::Text(t) => Some(&mut t.formatted),
        MessageType::Notice(n) => Some(&mut n.formatted),
        MessageType::Emote(e) => Some(&mut e.formatted),
        _ => None,
    }
}

/// Renders CommonMark (with tables and strikethrough) to HTML in the spec's subset (raw HTML
/// in the text is sanitised like the rest), or `None` when the body has no markup (its HTML
/// would be just the escaped text in one paragraph) or nothing is left of it.
pub fn markdown_to_html(body: &str) -> Option<String> {
    if !may_have_markup(body) {
        return None;
    }
    let html = super::html::sanitise(&render_markdown(body)?);
    (!html.trim().is_empty()).then_some(html)
}

/// Whether `body` may hold markup. `false` only for one line that neither starts nor ends
/// with white space, does not start with a digit (a list item), and has no character that
/// can open any construct: the parser would make one plain paragraph of it. Most agent
/// messages are like that, and this check saves them the parse.
fn may_have_markup(body: &str) -> bool {
    let Some(first) = body.chars().next() else {
        return true;
    };
    first.is_whitespace()
        || first.is_ascii_digit()
        || body.ends_with(char::is_whitespace)
        || body.bytes().any(|c| {
            matches!(
                c,
                b'\n'
                    | b'\r'
                    | b'\t'
                    | b'*'
                    | b'_'
                    | b'`'
                    | b'['
                    | b']'
                    | b'!'
                    | b'<'
                    | b'>'
                    | b'&'
                    | b'\\'
                    | b'~'
                    | b'|'
                    | b'#'
                    | b'-'
                    | b'+'
                    | b'='
            )
        })
}

fn render_markdown(body: &str) -> Option<String> {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let mut out = String::with_capacity(body.len() + 16);
    html::push_html(&mut out, Parser::new_ext(body, opts));
    let trimmed = out.trim_end();
    let plain = trimmed
        .strip_prefix("<p>")
        .and_then(|s| s.strip_suffix("</p>"))
        .filter(|inner| !inner.contains('<') && *inner == escape_text(body.trim()));
    match plain {
        Some(_) => None,
        None => Some(trimmed.to_owned()),
    }
}

/// Text escaped the way the renderer escapes a paragraph's text (`<`, `>`, `&`; quotes
/// stay as they are).
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    pulldown_cmark_escape::escape_html_body_text(&mut out, s).expect("writing to a String");
    out
}

#[cfg(test)]
mod tests;
