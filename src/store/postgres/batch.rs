//! The group-commit write path of the PostgreSQL store: one database transaction per batch,
//! of at most five statements after `BEGIN`, whatever the batch holds:
//!
//! 1. [`CLAIM_TXNS`]: every txn id of the batch is upserted (a new id as a placeholder row)
//!    and its row comes back locked, with the fingerprint it was recorded with: the store's
//!    side of the verdicts, decided by the database. A daemon handling the same id at the
//!    same moment waits for this commit and then sees its fingerprint (so one of two
//!    concurrent copies of a transaction is recorded, the other is a `Duplicate`), where
//!    a look-up without a lock would let both record it.
//! 2. the shared [`Plan`] decides, from those rows, what each write does;
//! 3. agents deleted go, with what belongs to them ([`DELETE_AGENTS`], then
//!    [`DELETE_FLOORS`]: the first raises their floors through the trigger);
//! 4. [`WRITE_EVENTS`]: the candidate events are inserted `ON CONFLICT DO NOTHING`, so the
//!    database says which event ids are new (also against a concurrent writer, which it
//!    makes wait), and the recipients of those get cursors from the `inbox_cursors`
//!    sequence, in batch order;
//! 5. [`WRITE_LATE`], when the batch redelivers events decrypted after they were stored
//!    as they came: the clear event over the stored one where it is still encrypted (the
//!    database says which), and inbox rows for its recipients, cursors after the new
//!    events';
//! 6. [`super::facts`]: every other row, one statement; crypto rows of end-to-end
//!    encryption, when the batch has any, one more ([`super::e2ee`]);
//!
//! then `COMMIT`. Rows travel as typed arrays (`UNNEST`), so statements never change text
//! (each is prepared once per connection) and no batch meets a bind-parameter limit.
//!
//! The keys two writers given the same transaction contend for, txn ids and event ids, are
//! locked in key order (txn ids sorted, events inserted by event id), so such writers wait
//! for each other rather than deadlock. Other rows (agents, memberships, room facts) are
//! written in batch order; should two writers ever lock two of them in opposite orders,
//! PostgreSQL breaks the deadlock by failing one group commit, whose callers get an error
//! (a homeserver sends its transaction again).
//!
//! Cursors with several writers (replicas): a sequence never hands a value out twice, but
//! two writers could commit out of the order they drew values in, so a reader could see
//! cursor 12 before 11 is committed, and move past 11. So every group commit first takes
//! one transaction-level advisory lock ([`COMMIT_LOCK`]), held until it commits: group
//! commits of all replicas run one after another, and cursor order is commit order, as in
//! SQLite. (A group commit is a handful of statements for up to 512 writes; replicas share
//! its cost, not each write's.) This also makes the row-order deadlocks above impossible
//! between group commits.
//!
//! Before `COMMIT`, the batch's [`CommitNotice`] is published with `pg_notify`: delivered to
//! every listening replica when (and only if) the transaction commits, in commit order.

use std::{collections::HashMap, sync::LazyLock};

use sqlx::{Executor, PgConnection, Row};

use super::{facts, utf8, StoreError, StoreResult, WriteOp, WriteOutcome};
use crate::store::{fingerprint::TxnFingerprint, notice::CommitNotice, plan::Plan, EventDelivery};

/// The advisory lock every group commit holds until it commits (an arbitrary constant,
/// "mosaic" in ASCII).
const COMMIT_LOCK: i64 = 0x6d6f_7361_6963;
/// `BEGIN` and [`COMMIT_LOCK`] as one simple query (which has no parameters: the lock's
/// number is in the text), written once.
static BEGIN_LOCKED: LazyLock<String> =
    LazyLock::new(|| format!("BEGIN; SELECT pg_advisory_xact_lock({COMMIT_LOCK})"));
/// The channel commit notices go to.
pub const NOTICE_CHANNEL: &str = "mosaic_commits";

/// `handled_at` of a row [`CLAIM_TXNS`] inserted: no committed row has it (every claimed
/// id is new, so it is recorded and its row rewritten in the same commit).
const CLAIMED: i64 = -1;

/// `$1`: the batch's txn ids, `$2`: [`CLAIMED`]. A stored row is updated to itself, which
/// locks it until the commit and returns what it holds.
const CLAIM_TXNS: &str = "INSERT INTO transactions AS t (txn_id, handled_at) \
    SELECT id, $2 FROM unnest($1::bytea[]) AS u(id) ORDER BY id \
    ON CONFLICT (txn_id) DO UPDATE SET handled_at = t.handled_at \
    RETURNING txn_id, handled_at, events_digest, extras_digest";

/// `$1`: slugs. Agent, memberships, send keys and inbox go in one statement (the inbox's
/// deletion raises the floor; its trigger runs at the end of the statement).
const DELETE_AGENTS: &str = "WITH agent AS (DELETE FROM agents WHERE slug = ANY($1)), \
    membership AS (DELETE FROM memberships WHERE slug = ANY($1)), \
    sent_key AS (DELETE FROM sent WHERE slug = ANY($1)), \
    crypto AS (DELETE FROM e2ee_items WHERE slug = ANY($1)) \
    DELETE FROM inbox WHERE slug = ANY($1)";
/// `$1`: slugs; after [`DELETE_AGENTS`], which raised them.
const DELETE_FLOORS: &str = "DELETE FROM inbox_floors WHERE slug = ANY($1)";

/// What [`WRITE_EVENTS`] and [`WRITE_LATE`] share after their `candidate` and `written`:
/// the recipients (parameters: event numbers, slugs, mentioned) of the events written get
/// cursors drawn from the sequence, matched to them in order, and inbox rows (`redelivered`
/// as given); the answer is `(0, event number, NULL)` per event written and `(1, recipient
/// number, cursor)` per inbox row.
macro_rules! deliver_written {
    ($numbers:literal, $slugs:literal, $mentioned:literal, $redelivered:literal) => {
        concat!(
            "delivered AS MATERIALIZED ( \
                SELECT r.n, r.slug, r.mentioned, w.id AS event_ref, \
                    row_number() OVER (ORDER BY r.n) AS rank \
                FROM unnest(",
            $numbers,
            "::int8[], ",
            $slugs,
            "::text[], ",
            $mentioned,
            "::bool[]) WITH ORDINALITY AS r(event_n, slug, mentioned, n) \
                JOIN candidate c ON c.n = r.event_n \
                JOIN written w ON w.event_id = c.event_id), \
            drawn AS MATERIALIZED ( \
                SELECT seq, row_number() OVER (ORDER BY seq) AS rank FROM ( \
                    SELECT nextval('inbox_cursors') AS seq \
                    FROM generate_series(1, (SELECT count(*) FROM delivered))) s), \
            inbox_rows AS ( \
                INSERT INTO inbox (seq, slug, event_ref, mentioned, redelivered, received_at) \
                SELECT d.seq, delivered.slug, delivered.event_ref, delivered.mentioned, ",
            $redelivered,
            ", $1 \
                FROM delivered JOIN drawn d USING (rank)) \
            SELECT 0::int4 AS kind, c.n, NULL::int8 AS seq \
                FROM written JOIN candidate c USING (event_id) \
            UNION ALL \
            SELECT 1, delivered.n, d.seq FROM delivered JOIN drawn d USING (rank)"
        )
    };
}

/// `$1` now; candidate events (`$2`..`$8`: event id, room, sender, type, content,
/// origin_server_ts, decrypted), numbered from 1 in batch order; their recipients (`$9`: the
/// number of the event, `$10` slug, `$11` mentioned), in batch order. Returns `(0, event number,
/// NULL)` per event written and `(1, recipient number, cursor)` per inbox row. Cursors are
/// drawn from the sequence, then matched to the rows in order (the drawing order of
/// `nextval` within one statement is not promised).
const WRITE_EVENTS: &str = concat!(
    "WITH candidate AS MATERIALIZED ( \
        SELECT * FROM unnest($2::bytea[], $3::text[], $4::text[], $5::bytea[], $6::text[], \
            $7::int8[], $8::bool[]) WITH ORDINALITY \
            AS c(event_id, room_id, sender, event_type, content, origin_server_ts, decrypted, n)), \
    written AS ( \
        INSERT INTO events \
            (event_id, room_id, sender, event_type, content, origin_server_ts, decrypted, \
            received_at) \
        SELECT event_id, room_id, sender, event_type, content, origin_server_ts, decrypted, $1 \
            FROM candidate ORDER BY event_id \
        ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id), \
    ",
    deliver_written!("$9", "$10", "$11", "false")
);

/// `$1` now; redeliveries (`$2`..`$4`: event id, clear type, clear content), numbered from
/// 1 in batch order; their recipients (`$5` the number of the redelivery, `$6` slug, `$7`
/// mentioned). An event is rewritten only while it is stored encrypted. Answers as
/// [`WRITE_EVENTS`] does (`0` per event rewritten, `1` per inbox row with its cursor).
const WRITE_LATE: &str = concat!(
    "WITH candidate AS MATERIALIZED ( \
        SELECT * FROM unnest($2::bytea[], $3::bytea[], $4::text[]) WITH ORDINALITY \
            AS c(event_id, event_type, content, n)), \
    written AS ( \
        UPDATE events e SET event_type = c.event_type, content = c.content, decrypted = true \
        FROM candidate c \
        WHERE e.event_id = c.event_id AND NOT e.decrypted \
            AND e.event_type = 'm.room.encrypted'::bytea \
        RETURNING e.id, e.event_id), \
    ",
    deliver_written!("$5", "$6", "$7", "true")
);

/// Opens a group commit's database transaction on `conn` and takes [`COMMIT_LOCK`], in one
/// round trip (two statements in one simple query).
pub(super) async fn begin(conn: &mut PgConnection) -> StoreResult<()> {
    conn.execute(BEGIN_LOCKED.as_str()).await?;
    Ok(())
}

/// Applies `batch` in the database transaction [`begin`] opened on `tx` and commits it;
/// outcomes in batch order. On error the connection is left inside the failed
/// transaction: the caller closes it, which rolls the transaction back.
pub(super) async fn apply(
    tx: &mut PgConnection,
    batch: &[WriteOp],
    now: i64,
    origin: u64,
) -> StoreResult<Vec<WriteOutcome>> {
    let recorded = claim_txns(tx, batch).await?;
    // The database tells which event ids are new, on insert, and which stored events are
    // still encrypted, on update: none is known beforehand.
    let plan = Plan::new(batch, &recorded, |_| false, |_| true)?;
    if !plan.deleted.is_empty() {
        sqlx::query(DELETE_AGENTS)
            .bind(&plan.deleted)
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_FLOORS)
            .bind(&plan.deleted)
            .execute(&mut *tx)
            .await?;
    }
    let written = write_events(tx, &plan.events, now).await?;
    let late = write_late(tx, &plan.late, now).await?;
    facts::write(tx, &plan, now).await?;
    super::e2ee::write(tx, &plan).await?;
    let outcomes = plan.outcomes(written, late)?;
    if let Some(notice) = CommitNotice::of(origin, batch, &outcomes) {
        notify(tx, &notice).await?;
    }
    tx.execute("COMMIT").await?;
    Ok(outcomes)
}

/// Publishes `notice` on [`NOTICE_CHANNEL`] when the transaction of `conn` commits.
pub(super) async fn notify(conn: &mut PgConnection, notice: &CommitNotice) -> StoreResult<()> {
    for payload in notice.payloads() {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTICE_CHANNEL)
            .bind(payload)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Claims the batch's txn ids (see [`CLAIM_TXNS`]): what the store had recorded under
/// each, for the ids it had.
async fn claim_txns(
    conn: &mut PgConnection,
    batch: &[WriteOp],
) -> StoreResult<HashMap<String, Option<TxnFingerprint>>> {
    let mut ids: Vec<&[u8]> = batch
        .iter()
        .filter_map(|op| match op {
            WriteOp::Transaction(t) => Some(t.txn_id.as_bytes()),
            _ => None,
        })
        .collect();
    let mut recorded = HashMap::new();
    if ids.is_empty() {
        return Ok(recorded);
    }
    // One row per id: an upsert may not touch a row twice.
    ids.sort_unstable();
    ids.dedup();
    let rows = sqlx::query(CLAIM_TXNS)
        .bind(&ids)
        .bind(CLAIMED)
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        if row.get::<i64, _>(1) == CLAIMED {
            continue;
        }
        let events: Option<String> = row.get(2);
        let extras: Option<String> = row.get(3);
        let fingerprint = events.and_then(|e| TxnFingerprint::from_hex(&e, extras.as_deref()));
        recorded.insert(utf8(row.get(0), "txn id")?, fingerprint);
    }
    Ok(recorded)
}

/// Writes the candidate events and their inbox rows (see [`WRITE_EVENTS`]); per event, the
/// cursors of its recipients, or `None` when the store already had its id.
async fn write_events(
    conn: &mut PgConnection,
    events: &[&EventDelivery],
    now: i64,
) -> StoreResult<Vec<Option<Vec<i64>>>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut event_ids = Vec::with_capacity(events.len());
    let mut rooms = Vec::with_capacity(events.len());
    let mut senders = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut contents = Vec::with_capacity(events.len());
    let mut times = Vec::with_capacity(events.len());
    let mut decrypted = Vec::with_capacity(events.len());
    let (mut event_numbers, mut slugs, mut mentioned) = (Vec::new(), Vec::new(), Vec::new());
    for (i, d) in events.iter().enumerate() {
        let ev = &d.event;
        event_ids.push(ev.event_id.as_str().as_bytes());
        rooms.push(ev.room_id.as_str());
        senders.push(ev.sender.as_str());
        types.push(ev.event_type.as_bytes());
        contents.push(ev.content.get());
        times.push(ev.origin_server_ts);
        decrypted.push(ev.decrypted);
        for (slug, m) in &d.recipients {
            event_numbers.push(i as i64 + 1);
            slugs.push(slug.as_str());
            mentioned.push(*m);
        }
    }
    let rows = sqlx::query(WRITE_EVENTS)
        .bind(now)
        .bind(&event_ids)
        .bind(&rooms)
        .bind(&senders)
        .bind(&types)
        .bind(&contents)
        .bind(&times)
        .bind(&decrypted)
        .bind(&event_numbers)
        .bind(&slugs)
        .bind(&mentioned)
        .fetch_all(&mut *conn)
        .await?;
    cursors_by_event(events, rows)
}

/// Writes the redeliveries and their inbox rows (see [`WRITE_LATE`]); per redelivery, the
/// cursors of its recipients, or `None` when the store's event was not encrypted.
async fn write_late(
    conn: &mut PgConnection,
    late: &[&EventDelivery],
    now: i64,
) -> StoreResult<Vec<Option<Vec<i64>>>> {
    if late.is_empty() {
        return Ok(Vec::new());
    }
    let event_ids: Vec<&[u8]> = late.iter().map(|d| d.event.event_id.as_bytes()).collect();
    let types: Vec<&[u8]> = late.iter().map(|d| d.event.event_type.as_bytes()).collect();
    let contents: Vec<&str> = late.iter().map(|d| d.event.content.get()).collect();
    let (mut event_numbers, mut slugs, mut mentioned) = (Vec::new(), Vec::new(), Vec::new());
    for (i, d) in late.iter().enumerate() {
        for (slug, m) in &d.recipients {
            event_numbers.push(i as i64 + 1);
            slugs.push(slug.as_str());
            mentioned.push(*m);
        }
    }
    let rows = sqlx::query(WRITE_LATE)
        .bind(now)
        .bind(&event_ids)
        .bind(&types)
        .bind(&contents)
        .bind(&event_numbers)
        .bind(&slugs)
        .bind(&mentioned)
        .fetch_all(&mut *conn)
        .await?;
    cursors_by_event(late, rows)
}

/// Per delivery of `events`, the cursors a [`WRITE_EVENTS`]-shaped answer gave its
/// recipients (numbered event by event, in recipient order), or `None` for an event the
/// statement did not write.
fn cursors_by_event(
    events: &[&EventDelivery],
    rows: Vec<sqlx::postgres::PgRow>,
) -> StoreResult<Vec<Option<Vec<i64>>>> {
    let recipients: usize = events.iter().map(|d| d.recipients.len()).sum();
    let mut is_new = vec![false; events.len()];
    let mut cursor_of = vec![None; recipients];
    let out_of_range = || StoreError::Corrupt("write_events answered an unknown row".into());
    for row in rows {
        let n = usize::try_from(row.get::<i64, _>(1) - 1).map_err(|_| out_of_range())?;
        let slot = match row.get::<i32, _>(0) {
            0 => is_new.get_mut(n).map(|new| *new = true),
            _ => cursor_of
                .get_mut(n)
                .map(|cursor| *cursor = row.get::<Option<i64>, _>(2)),
        };
        slot.ok_or_else(out_of_range)?;
    }
    // Recipients are numbered event by event: each event's are the next run of them.
    let mut next = 0;
    events
        .iter()
        .zip(is_new)
        .map(|(d, new)| {
            let own = &cursor_of[next..next + d.recipients.len()];
            next += d.recipients.len();
            new.then(|| {
                own.iter()
                    .map(|c| {
                        c.ok_or_else(|| StoreError::Corrupt("inbox row without cursor".into()))
                    })
                    .collect::<StoreResult<Vec<i64>>>()
            })
            .transpose()
        })
        .collect()
}
