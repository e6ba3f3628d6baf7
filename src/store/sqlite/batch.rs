//! The group-commit write path of the SQLite store: one dedicated connection, a whole
//! batch of writes in two round trips (look-ups, then one insert per table and the commit),
//! rows passed as JSON arrays to statements whose text never changes. What each write
//! does is the shared [`Plan`]'s decision.

use std::collections::HashMap;

use sqlx::{
    sqlite::{SqliteArguments, SqliteConnection},
    Arguments, Row,
};

use super::super::{
    fingerprint::TxnFingerprint, plan::Plan, StoreError, StoreResult, WriteOp, WriteOutcome,
};

/// The only writing connection, and whether a transaction may have been left open on it
/// (by a failed write, or a write whose future was dropped half-way).
pub(super) struct Writer {
    pub(super) conn: SqliteConnection,
    pub(super) open: bool,
}

impl Writer {
    /// Rolls back whatever an earlier write left open. An error means there was nothing
    /// to roll back, or the next `BEGIN` fails and the next write tries again.
    pub(super) async fn settle(&mut self) {
        if std::mem::take(&mut self.open) {
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
        }
    }
}

/// Opens the write transaction and, in the same round trip, finds which txn ids (`?` 1, with
/// the fingerprint each was recorded with) and event ids (`?` 2, with their row id and whether
/// they are stored decrypted) are known, and the highest event id and cursor handed out so far
/// (sqlite_sequence remembers cursors of pruned rows; the table's maximum covers a missing
/// entry). Keys travel as JSON arrays, so the statement text never changes (prepared once).
const BEGIN_AND_LOOK_UP: &str = "BEGIN IMMEDIATE; \
    SELECT 0, (SELECT COALESCE(MAX(id), 0) FROM events), \
        MAX((SELECT COALESCE(MAX(seq), 0) FROM inbox), \
            COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'inbox'), 0)); \
    SELECT 1, txn_id, events_digest, extras_digest FROM transactions \
        WHERE txn_id IN (SELECT value FROM json_each(?)); \
    SELECT 2, event_id, id, decrypted, event_type FROM events \
        WHERE event_id IN (SELECT value FROM json_each(?))";

// One statement per table, each taking its rows as one JSON array of arrays (`?` last) and,
// where the table has a time column, the time first. However many rows, the text is the
// same: no SQL to parse per row, no bind-parameter limit, and a cached prepared statement.
// ("WHERE true" resolves the parser's ambiguity between a join and an upsert clause.)
// A reused id takes the new transaction's fingerprint (its retry must match that one).
const UPSERT_TXNS: &str = "INSERT INTO transactions \
    (txn_id, handled_at, events_digest, extras_digest) \
    SELECT value->>0, ?, value->>1, value->>2 FROM json_each(?) WHERE true \
    ON CONFLICT (txn_id) DO UPDATE SET handled_at = excluded.handled_at, \
    events_digest = excluded.events_digest, extras_digest = excluded.extras_digest";
const INSERT_EVENTS: &str = "INSERT INTO events \
    (id, event_id, room_id, sender, event_type, content, origin_server_ts, decrypted, \
    received_at) \
    SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, \
    value->>7, ? \
    FROM json_each(?)";
// Explicit cursors also raise sqlite_sequence, so AUTOINCREMENT never hands out a used one.
const INSERT_INBOX: &str = "INSERT INTO inbox \
    (seq, slug, event_ref, mentioned, redelivered, received_at) \
    SELECT value->>0, value->>1, value->>2, value->>3, value->>4, ? FROM json_each(?)";
/// A redelivered event's clear type and content over its stored encrypted form, by row id.
const DECRYPT_EVENTS: &str = "UPDATE events SET event_type = j.value->>1, \
    content = j.value->>2, decrypted = 1 FROM json_each(?) AS j WHERE events.id = j.value->>0";
const INSERT_JOINS: &str = "INSERT INTO memberships (slug, room_id) \
    SELECT value->>0, value->>1 FROM json_each(?) WHERE true ON CONFLICT DO NOTHING";
const DELETE_LEAVES: &str = "DELETE FROM memberships WHERE (slug, room_id) IN \
    (SELECT value->>0, value->>1 FROM json_each(?))";
const UPSERT_AGENTS: &str = "INSERT INTO agents \
    (slug, registered, display_name, avatar_url, created_at) \
    SELECT value->>0, value->>1, value->>2, value->>3, ? FROM json_each(?) WHERE true \
    ON CONFLICT (slug) DO UPDATE SET registered = excluded.registered, \
    display_name = excluded.display_name, avatar_url = excluded.avatar_url";
const INSERT_SENT: &str = "INSERT INTO sent \
    (slug, room_id, client_txn_id, request_digest, event_id, sent_at) \
    SELECT value->>0, value->>1, value->>2, value->>3, value->>4, ? FROM json_each(?) \
    WHERE true ON CONFLICT DO NOTHING";
const INSERT_EFFECTS: &str = "INSERT INTO effects (effect, attempts, not_before, created_at) \
    SELECT j.value->>0, 0, n.now, n.now FROM (SELECT ? AS now) n, json_each(?) j";
const UPSERT_UPGRADES: &str = "INSERT INTO room_upgrades (room_id, replacement, seen_at) \
    SELECT value->>0, value->>1, ? FROM json_each(?) WHERE true \
    ON CONFLICT (room_id) DO UPDATE SET replacement = excluded.replacement";
const INSERT_ENCRYPTED: &str = "INSERT INTO encrypted_rooms (room_id, seen_at) \
    SELECT value->>0, ? FROM json_each(?) WHERE true ON CONFLICT DO NOTHING";
/// What goes with a deleted agent, one statement per table (the floor after the inbox,
/// whose deletion raises it).
const DELETE_AGENTS: [&str; 6] = [
    "DELETE FROM agents WHERE slug IN (SELECT value FROM json_each(?))",
    "DELETE FROM memberships WHERE slug IN (SELECT value FROM json_each(?))",
    "DELETE FROM sent WHERE slug IN (SELECT value FROM json_each(?))",
    "DELETE FROM inbox WHERE slug IN (SELECT value FROM json_each(?))",
    "DELETE FROM inbox_floors WHERE slug IN (SELECT value FROM json_each(?))",
    "DELETE FROM e2ee_items WHERE slug IN (SELECT value FROM json_each(?))",
];
/// Crypto rows travel as JSON with their sealed value in hex.
const UPSERT_CRYPTO: &str = "INSERT INTO e2ee_items (slug, kind, item_key, value) \
    SELECT value->>0, value->>1, value->>2, unhex(value->>3) FROM json_each(?) WHERE true \
    ON CONFLICT (slug, kind, item_key) DO UPDATE SET value = excluded.value";
const DELETE_CRYPTO: &str = "DELETE FROM e2ee_items WHERE (slug, kind, item_key) IN \
    (SELECT value->>0, value->>1, value->>2 FROM json_each(?))";
const UPSERT_ROOMS: &str = "INSERT INTO rooms (room_id, alias, space_id, created_at) \
    SELECT value->>0, value->>1, value->>2, ? FROM json_each(?) WHERE true \
    ON CONFLICT (room_id) DO UPDATE SET alias = excluded.alias, space_id = excluded.space_id";

/// Writes one group commit with two round trips to sqlx's worker thread (each statement
/// sent costs one): [`BEGIN_AND_LOOK_UP`], then one insert per table that has rows and
/// `COMMIT`. The outcome of each write is decided by the shared [`Plan`] (see its rules);
/// new events get the next ids, inbox rows the next cursors, both in batch order, so
/// cursors grow in commit order for every agent.
///
/// Picking ids here is sound because this connection is the only writer and `IMMEDIATE`
/// holds the write lock from the look-ups to the commit. On error the transaction may be
/// left open: the caller rolls it back.
pub(super) async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &[WriteOp],
    now: i64,
) -> StoreResult<Vec<WriteOutcome>> {
    let mut txn_ids: Vec<&str> = Vec::new();
    let mut event_ids: Vec<&str> = Vec::new();
    for op in batch {
        if let WriteOp::Transaction(t) = op {
            txn_ids.push(&t.txn_id);
            event_ids.extend(t.deliveries.iter().map(|d| d.event.event_id.as_str()));
        }
    }
    let rows = sqlx::query(BEGIN_AND_LOOK_UP)
        .bind(json(&txn_ids)?)
        .bind(json(&event_ids)?)
        .fetch_all(&mut *conn)
        .await?;
    // txn id → the fingerprint it was recorded with (`None`: a row from before fingerprints).
    let mut known_txns: HashMap<String, Option<TxnFingerprint>> = HashMap::new();
    // event id → (row id, still encrypted).
    let mut known_events: HashMap<String, (i64, bool)> = HashMap::new();
    let (mut next_id, mut next_seq) = (0i64, 0i64);
    for row in rows {
        match row.get::<i64, _>(0) {
            0 => (next_id, next_seq) = (row.get(1), row.get(2)),
            1 => {
                let events: Option<String> = row.get(2);
                let extras: Option<String> = row.get(3);
                let recorded = events.and_then(|e| TxnFingerprint::from_hex(&e, extras.as_deref()));
                known_txns.insert(row.get(1), recorded);
            }
            _ => {
                let encrypted =
                    !row.get::<bool, _>(3) && row.get::<&str, _>(4) == "m.room.encrypted";
                known_events.insert(row.get(1), (row.get(2), encrypted));
            }
        }
    }
    let plan = Plan::new(
        batch,
        &known_txns,
        |id| known_events.contains_key(id),
        |id| {
            known_events
                .get(id)
                .is_some_and(|(_, encrypted)| *encrypted)
        },
    )?;

    // Every candidate is new here (the look-up saw every stored event id): ids and
    // cursors in batch order.
    let mut event_rows: Vec<EventRow> = Vec::with_capacity(plan.events.len());
    let mut inbox_rows: Vec<(i64, &str, i64, bool, bool)> = Vec::new();
    let mut written = Vec::with_capacity(plan.events.len());
    for d in &plan.events {
        let ev = &d.event;
        next_id += 1;
        event_rows.push((
            next_id,
            ev.event_id.as_str(),
            ev.room_id.as_str(),
            ev.sender.as_str(),
            &ev.event_type,
            ev.content.get(),
            ev.origin_server_ts,
            ev.decrypted,
        ));
        let cursors = d
            .recipients
            .iter()
            .map(|(slug, mentioned)| {
                next_seq += 1;
                inbox_rows.push((next_seq, slug.as_str(), next_id, *mentioned, false));
                next_seq
            })
            .collect();
        written.push(Some(cursors));
    }
    // Redeliveries after the new events: the plan took only events stored encrypted.
    let mut decrypted_rows: Vec<(i64, &str, &str)> = Vec::with_capacity(plan.late.len());
    let mut late = Vec::with_capacity(plan.late.len());
    for d in &plan.late {
        let ev = &d.event;
        let Some(&(id, _)) = known_events.get(ev.event_id.as_str()) else {
            late.push(None);
            continue;
        };
        decrypted_rows.push((id, &ev.event_type, ev.content.get()));
        let cursors = d
            .recipients
            .iter()
            .map(|(slug, mentioned)| {
                next_seq += 1;
                inbox_rows.push((next_seq, slug.as_str(), id, *mentioned, true));
                next_seq
            })
            .collect();
        late.push(Some(cursors));
    }

    // Write every row and commit: one round trip.
    let mut w = Statements::default();
    for statement in DELETE_AGENTS {
        w.rows(statement, None, &plan.deleted)?;
    }
    let txn_rows: Vec<_> = plan
        .txns
        .iter()
        .map(|t| (t.txn_id, &t.events_digest, &t.extras_digest))
        .collect();
    w.rows(UPSERT_TXNS, Some(now), &txn_rows)?;
    w.rows(INSERT_EVENTS, Some(now), &event_rows)?;
    w.rows(DECRYPT_EVENTS, None, &decrypted_rows)?;
    w.rows(INSERT_INBOX, Some(now), &inbox_rows)?;
    w.rows(INSERT_JOINS, None, &plan.joins)?;
    w.rows(DELETE_LEAVES, None, &plan.leaves)?;
    let agents: Vec<_> = plan
        .agents
        .iter()
        .map(|a| {
            (
                a.slug.as_str(),
                a.registered,
                &a.display_name,
                &a.avatar_url,
            )
        })
        .collect();
    w.rows(UPSERT_AGENTS, Some(now), &agents)?;
    let sent: Vec<_> = plan
        .sent
        .iter()
        .map(|s| {
            (
                s.slug,
                s.room_id,
                s.client_txn,
                &s.request_digest,
                s.event_id,
            )
        })
        .collect();
    w.rows(INSERT_SENT, Some(now), &sent)?;
    let effects: Vec<_> = plan.effects.iter().map(|e| (e,)).collect();
    w.rows(INSERT_EFFECTS, Some(now), &effects)?;
    let rooms: Vec<_> = plan
        .rooms
        .iter()
        .map(|r| (r.room_id.as_str(), &r.alias, &r.space_id))
        .collect();
    w.rows(UPSERT_ROOMS, Some(now), &rooms)?;
    let encrypted: Vec<_> = plan.encrypted.iter().map(|room| (*room,)).collect();
    w.rows(INSERT_ENCRYPTED, Some(now), &encrypted)?;
    w.rows(UPSERT_UPGRADES, Some(now), &plan.upgrades)?;
    let kept: Vec<_> = plan
        .crypto_kept
        .iter()
        .map(|(slug, kind, key, value)| (slug, kind, key, hex::encode(value)))
        .collect();
    w.rows(UPSERT_CRYPTO, None, &kept)?;
    w.rows(DELETE_CRYPTO, None, &plan.crypto_deleted)?;
    w.sql.push_str("COMMIT");
    sqlx::query_with(&w.sql, w.args).execute(&mut *conn).await?;
    plan.outcomes(written, late)
}

/// `(id, event_id, room_id, sender, type, content, origin_server_ts, decrypted)`
type EventRow<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str, i64, bool);

fn json<T: serde::Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("row encoding: {e}")))
}

/// Statements sent as one; sqlx binds the `?` parameters across them in order.
#[derive(Default)]
struct Statements {
    sql: String,
    args: SqliteArguments<'static>,
}

impl Statements {
    /// Appends `statement` with its parameters (the time when it takes one, then the
    /// rows as JSON), unless there are no rows.
    fn rows<T: serde::Serialize>(
        &mut self,
        statement: &str,
        now: Option<i64>,
        rows: &[T],
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.sql.push_str(statement);
        self.sql.push_str("; ");
        let encode = |e| StoreError::Corrupt(format!("row encoding: {e}"));
        if let Some(now) = now {
            self.args.add(now).map_err(encode)?;
        }
        self.args.add(json(rows)?).map_err(encode)?;
        Ok(())
    }
}
