//! `mosaic-as tail AGENT`: follows an agent's inbox as it arrives, over the bridge's
//! Server-Sent Events stream, reconnecting with the last cursor (`Last-Event-ID`) when the
//! stream ends (the daemon ends each after `limits.stream_max_s`) or breaks. One line per
//! item: readable (coloured on a terminal, unless `NO_COLOR` is set), or the item's JSON
//! with `--json`.

use std::{
    io::{BufRead, BufReader, Write},
    time::Duration,
};

use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde_json::Value;

use super::{BridgeClient, ClientError};

/// What `tail` asks for.
#[derive(Debug, Default)]
pub struct Tail {
    pub agent: String,
    /// A cursor, `latest`, or none (the oldest item kept).
    pub since: Option<String>,
    pub json: bool,
    /// Stop after this many items.
    pub count: Option<u64>,
    pub color: bool,
}

/// Follows the inbox, writing each item to `out`, until `count` items (or forever).
pub fn follow(client: &BridgeClient, args: &Tail, out: &mut dyn Write) -> Result<(), ClientError> {
    let mut cursor = args.since.clone().unwrap_or_default();
    let mut shown = 0u64;
    loop {
        let path = format!("/bridge/v1/agents/{}/events", args.agent);
        let mut request = client
            .stream_http()
            .get(format!("{}{path}", client.base))
            .header(AUTHORIZATION, format!("Bearer {}", client.token))
            .header(ACCEPT, "text/event-stream");
        if !cursor.is_empty() {
            request = request.header("Last-Event-ID", &cursor);
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: client.base.clone(),
            reason: super::without_url(&e),
        };
        let answer = request.send().map_err(unreachable)?;
        if !answer.status().is_success() {
            let status = answer.status().as_u16();
            let body = answer.text().unwrap_or_default();
            return Err(super::error_of(status, &body));
        }
        let mut id = String::new();
        let mut data = String::new();
        let mut kind = String::new();
        for line in BufReader::new(answer).lines() {
            let Ok(line) = line else { break };
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if line.is_empty() && !data.is_empty() {
                let item: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                let text = match (kind.as_str(), args.json) {
                    ("gap", true) => data.clone(),
                    ("gap", false) => {
                        "-- items were removed by retention before this point --".into()
                    }
                    (_, true) => data.clone(),
                    (_, false) => readable(&item, args.color),
                };
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
                if kind != "gap" {
                    cursor = id.clone();
                    shown += 1;
                    if args.count.is_some_and(|n| shown >= n) {
                        return Ok(());
                    }
                }
                data.clear();
                kind.clear();
            }
        }
        // The stream ended: on again from the last cursor.
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One item as a line a person reads: time, room, sender, what happened.
pub fn readable(item: &Value, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let ts = item["origin_server_ts"].as_i64().unwrap_or(0) / 1000;
    let time = format!(
        "{:02}:{:02}:{:02}",
        (ts / 3600) % 24,
        (ts / 60) % 60,
        ts % 60
    );
    let content = &item["content"];
    let what = match item["type"].as_str().unwrap_or("") {
        _ if item["encrypted"] == true => "[encrypted: cannot be read]".to_owned(),
        "m.room.message" => content["body"].as_str().unwrap_or("").to_owned(),
        "m.reaction" => format!(
            "reacted {}",
            content["m.relates_to"]["key"].as_str().unwrap_or("?")
        ),
        "m.typing" if content["typing"] == true => "is typing".into(),
        "m.typing" => "stopped typing".into(),
        "m.receipt" => format!("read {}", content["event_id"].as_str().unwrap_or("?")),
        "m.room.member" => format!(
            "membership: {}",
            content["membership"].as_str().unwrap_or("?")
        ),
        other => format!("[{other}]"),
    };
    let mention = if item["mentioned"] == true {
        paint("1;33", " @")
    } else {
        String::new()
    };
    format!(
        "{} {} {}{}: {}",
        paint("2", &time),
        paint("2", item["room_id"].as_str().unwrap_or("?")),
        paint("36", item["sender"].as_str().unwrap_or("?")),
        mention,
        what
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn items_read_as_one_line_each() {
        let item = json!({"cursor": "5", "mentioned": true, "room_id": "!r:hs",
            "event_id": "$e", "sender": "@h:hs", "type": "m.room.message",
            "content": {"body": "hi"}, "origin_server_ts": 3_723_000});
        assert_eq!(readable(&item, false), "01:02:03 !r:hs @h:hs @: hi");
        assert!(readable(&item, true).contains("\x1b[36m@h:hs\x1b[0m"));
        let typing = json!({"room_id": "!r:hs", "sender": "@h:hs", "type": "m.typing",
            "content": {"typing": false}, "origin_server_ts": 0});
        assert!(readable(&typing, false).ends_with("@h:hs: stopped typing"));
    }
}
