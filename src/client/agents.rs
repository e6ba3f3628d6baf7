//! `mosaic-as send | typing | agents | provision`: what an agent process or a coordinator
//! does most, from the command line. Each prints what a script needs on stdout (an event
//! id, a room id, a table or `--json`), and nothing else.

use reqwest::Method;
use serde_json::{json, Value};

use super::{BridgeClient, ClientError};

/// What `send` asks for.
#[derive(Debug, Default)]
pub struct Send {
    pub agent: String,
    pub room: String,
    pub body: String,
    pub txn_id: Option<String>,
    pub reply_to: Option<String>,
    pub thread: Option<String>,
    /// The body is plain text (not Markdown).
    pub plain: bool,
}

/// Sends a message as the agent; its event id.
pub fn send(client: &BridgeClient, args: &Send) -> Result<String, ClientError> {
    if args.body.is_empty() {
        return Err(ClientError::Usage("the message body is empty".into()));
    }
    let mut body = json!({ "agent": args.agent, "room_id": args.room, "body": args.body });
    for (key, value) in [
        ("txn_id", &args.txn_id),
        ("reply_to", &args.reply_to),
        ("thread_root", &args.thread),
    ] {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    if args.plain {
        body["format"] = json!("plain");
    }
    let answer = client.call(Method::POST, "/bridge/v1/messages", Some(&body))?;
    text(&answer, "event_id")
}

/// Turns the agent's typing indicator on (for `timeout_ms`) or off.
pub fn typing(
    client: &BridgeClient,
    agent: &str,
    room: &str,
    on: bool,
    timeout_ms: Option<u64>,
) -> Result<String, ClientError> {
    let mut body = json!({ "agent": agent, "room_id": room, "typing": on });
    if let Some(t) = timeout_ms {
        body["timeout_ms"] = json!(t);
    }
    client.call(Method::POST, "/bridge/v1/typing", Some(&body))?;
    Ok(format!(
        "{agent} {} in {room}",
        if on { "typing" } else { "stopped typing" }
    ))
}

/// Every agent the token acts for (all pages): a table, or `--json` (one array).
pub fn agents(client: &BridgeClient, as_json: bool) -> Result<String, ClientError> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let path = match after.as_str() {
            "" => "/bridge/v1/agents?limit=100".to_owned(),
            after => format!("/bridge/v1/agents?limit=100&after={after}"),
        };
        let page = client.call(Method::GET, &path, None)?;
        all.extend(page["agents"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) if !next.is_empty() => after = next.to_owned(),
            _ => break,
        }
    }
    if as_json {
        return Ok(Value::Array(all).to_string());
    }
    let mut out = format!(
        "{:<24} {:<5} {:>5} {:>6} {:<6} {}",
        "AGENT", "LIVE", "ROOMS", "QUEUED", "TYPING", "DISPLAY NAME"
    );
    for a in &all {
        let count = |key: &str| a[key].as_array().map_or(0, Vec::len);
        out.push_str(&format!(
            "\n{:<24} {:<5} {:>5} {:>6} {:<6} {}",
            a["agent"].as_str().unwrap_or("?"),
            if a["live"] == true { "yes" } else { "no" },
            count("joined_rooms"),
            a["queued_messages"].as_u64().unwrap_or(0),
            if count("typing_rooms") > 0 { "yes" } else { "" },
            a["display_name"].as_str().unwrap_or(""),
        ));
    }
    if all.is_empty() {
        out.push_str("\n(no agents)");
    }
    Ok(out)
}

/// What `provision` asks for.
#[derive(Debug, Default)]
pub struct Provision {
    pub name: String,
    pub alias: Option<String>,
    pub topic: Option<String>,
    pub agents: Vec<String>,
    pub invite: Vec<String>,
    pub space: Option<String>,
    pub txn_id: Option<String>,
}

/// Creates a room with agents in it; its room id (or the whole answer with `--json`).
pub fn provision(
    client: &BridgeClient,
    args: &Provision,
    as_json: bool,
) -> Result<String, ClientError> {
    let mut body = json!({
        "name": args.name,
        "agents": super::tokens::split(&args.agents),
        "invite": super::tokens::split(&args.invite),
    });
    for (key, value) in [
        ("alias", &args.alias),
        ("topic", &args.topic),
        ("space_id", &args.space),
        ("txn_id", &args.txn_id),
    ] {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    let answer = client.call(Method::POST, "/bridge/v1/provision/rooms", Some(&body))?;
    if as_json {
        return Ok(answer.to_string());
    }
    text(&answer, "room_id")
}

/// A string member of an answer.
fn text(answer: &Value, key: &str) -> Result<String, ClientError> {
    answer[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ClientError::Unexpected {
            status: 200,
            body: answer.to_string(),
        })
}
