//! `mosaic-as token create | list | revoke`: issued bridge tokens from the command line.
//! `create` prints the new token's value and nothing else on stdout (what it issued goes to
//! stderr), so `TOKEN=$(mosaic-as token create ...)` keeps exactly the value.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{json, Value};

use super::{BridgeClient, ClientError};

/// What `token create` asks for.
#[derive(Debug, Default)]
pub struct Create {
    pub name: String,
    /// Scope names; each item may itself be a comma list.
    pub scopes: Vec<String>,
    /// Agent patterns; each item may itself be a comma list.
    pub agents: Vec<String>,
    /// A duration such as `30d`, `12h` or `3600s`.
    pub expires_in: Option<String>,
    pub rate_per_s: Option<u32>,
}

/// What a successful `create` shows: the value (stdout) and what was issued (stderr).
pub struct Created {
    pub value: String,
    pub summary: String,
}

pub(super) fn split(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|i| i.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn expires_in_s(raw: &str) -> Result<u64, ClientError> {
    let plain = raw.trim();
    let duration = match plain.parse::<u64>() {
        Ok(s) => Duration::from_secs(s),
        Err(_) => humantime::parse_duration(plain).map_err(|e| {
            ClientError::Usage(format!(
                "--expires-in: {raw:?} is not a duration like 30d, 12h or 3600s ({e})"
            ))
        })?,
    };
    Ok(duration.as_secs())
}

pub fn create(client: &BridgeClient, args: &Create) -> Result<Created, ClientError> {
    let mut body = json!({
        "name": args.name,
        "scopes": split(&args.scopes),
        "agents": split(&args.agents),
    });
    if let Some(raw) = &args.expires_in {
        body["expires_in_s"] = json!(expires_in_s(raw)?);
    }
    if let Some(rate) = args.rate_per_s {
        body["rate_per_s"] = json!(rate);
    }
    let token = client.call(Method::POST, "/bridge/v1/tokens", Some(&body))?;
    let value = token["token"]
        .as_str()
        .ok_or_else(|| ClientError::Unexpected {
            status: 201,
            body: "an answer without a token".into(),
        })?
        .to_owned();
    Ok(Created {
        value,
        summary: format!("issued {}", describe(&token)),
    })
}

pub fn list(client: &BridgeClient, as_json: bool) -> Result<String, ClientError> {
    let answer = client.call(Method::GET, "/bridge/v1/tokens", None)?;
    if as_json {
        return Ok(serde_json::to_string_pretty(&answer["tokens"]).expect("JSON serialises"));
    }
    let tokens = answer["tokens"].as_array().cloned().unwrap_or_default();
    if tokens.is_empty() {
        return Ok("no issued tokens".into());
    }
    let rows: Vec<[String; 5]> = tokens
        .iter()
        .map(|t| {
            [
                text(&t["id"]),
                text(&t["name"]),
                joined(&t["scopes"]),
                joined(&t["agents"]),
                expiry(t),
            ]
        })
        .collect();
    Ok(table(["ID", "NAME", "SCOPES", "AGENTS", "EXPIRES"], &rows))
}

pub fn revoke(client: &BridgeClient, id: &str) -> Result<String, ClientError> {
    let path = format!(
        "/bridge/v1/tokens/{}",
        percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
    );
    client.call(Method::DELETE, &path, None)?;
    Ok(format!("revoked {id}"))
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn joined(v: &Value) -> String {
    let items: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

fn expiry(t: &Value) -> String {
    let Some(ms) = t["expires_at"].as_u64() else {
        return "never".into();
    };
    let at = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms));
    if t["expired"].as_bool().unwrap_or(false)
        || UNIX_EPOCH + Duration::from_millis(ms) <= SystemTime::now()
    {
        format!("expired {at}")
    } else {
        at.to_string()
    }
}

fn describe(t: &Value) -> String {
    format!(
        "{} {:?}: scopes {}; agents {}; expires {}",
        text(&t["id"]),
        text(&t["name"]),
        joined(&t["scopes"]),
        joined(&t["agents"]),
        expiry(t)
    )
}

/// Left-aligned columns, two spaces apart.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_durations() {
        assert_eq!(
            split(&["send,read".into(), " profile ".into()]),
            ["send", "read", "profile"]
        );
        assert_eq!(expires_in_s("30d").unwrap(), 30 * 24 * 3600);
        assert_eq!(expires_in_s("3600").unwrap(), 3600);
        assert_eq!(expires_in_s("12h").unwrap(), 12 * 3600);
        let e = expires_in_s("soon").unwrap_err().to_string();
        assert!(e.starts_with("--expires-in: \"soon\""), "{e}");
    }

    #[test]
    fn tables_line_up() {
        let rows = [
            ["tok_1".to_owned(), "a".to_owned()],
            ["tok_22".into(), "bb".into()],
        ];
        assert_eq!(
            table(["ID", "NAME"], &rows),
            "ID      NAME\ntok_1   a\ntok_22  bb"
        );
        let t = json!({"expires_at": null});
        assert_eq!(expiry(&t), "never");
        let old = json!({"expires_at": 1000, "expired": true});
        assert_eq!(expiry(&old), "expired 1970-01-01T00:00:01Z");
    }
}
