//! Everything a group commit writes besides events and inboxes, in one statement: each
//! table's rows as arrays, each table one part of the statement. The plan gives each key
//! at most once per table (an upsert may not touch a row twice in one statement), and a
//! membership either joins or leaves, so no two parts touch the same row.

use sqlx::PgConnection;

use super::StoreResult;
use crate::store::plan::Plan;

/// `$1` now; transactions (`$2`..`$4`), joins (`$5`, `$6`), leaves (`$7`, `$8`), agents
/// (`$9`..`$12`), send keys (`$13`..`$17`), effects (`$18`, in batch order: their ids
/// follow it), rooms (`$19`..`$21`), encrypted rooms (`$22`), upgrades (`$23`, `$24`).
/// A reused txn id takes the new transaction's fingerprint; a send key and an encrypted
/// room keep what the store has; everything else takes the batch's last word.
const WRITE_FACTS: &str = "WITH txn AS ( \
        INSERT INTO transactions AS t (txn_id, handled_at, events_digest, extras_digest) \
        SELECT id, $1, ev, ex FROM unnest($2::bytea[], $3::text[], $4::text[]) AS u(id, ev, ex) \
        ON CONFLICT (txn_id) DO UPDATE SET handled_at = excluded.handled_at, \
            events_digest = excluded.events_digest, extras_digest = excluded.extras_digest), \
    joined AS ( \
        INSERT INTO memberships (slug, room_id) \
        SELECT * FROM unnest($5::text[], $6::text[]) ON CONFLICT DO NOTHING), \
    left_room AS ( \
        DELETE FROM memberships m USING unnest($7::text[], $8::text[]) AS l(slug, room_id) \
        WHERE m.slug = l.slug AND m.room_id = l.room_id), \
    agent AS ( \
        INSERT INTO agents AS a (slug, registered, display_name, avatar_url, created_at) \
        SELECT slug, registered, display_name, avatar_url, $1 \
        FROM unnest($9::text[], $10::bool[], $11::bytea[], $12::bytea[]) \
            AS u(slug, registered, display_name, avatar_url) \
        ON CONFLICT (slug) DO UPDATE SET registered = excluded.registered, \
            display_name = excluded.display_name, avatar_url = excluded.avatar_url), \
    sent_key AS ( \
        INSERT INTO sent (slug, room_id, client_txn_id, request_digest, event_id, sent_at) \
        SELECT slug, room_id, client_txn_id, request_digest, event_id, $1 \
        FROM unnest($13::text[], $14::text[], $15::bytea[], $16::text[], $17::bytea[]) \
            AS u(slug, room_id, client_txn_id, request_digest, event_id) \
        ON CONFLICT DO NOTHING), \
    effect AS ( \
        INSERT INTO effects (effect, attempts, not_before, created_at) \
        SELECT effect, 0, $1, $1 FROM unnest($18::text[]) WITH ORDINALITY AS u(effect, n) \
        ORDER BY n), \
    room AS ( \
        INSERT INTO rooms AS r (room_id, alias, space_id, created_at) \
        SELECT room_id, alias, space_id, $1 \
        FROM unnest($19::text[], $20::text[], $21::text[]) AS u(room_id, alias, space_id) \
        ON CONFLICT (room_id) DO UPDATE SET alias = excluded.alias, space_id = excluded.space_id), \
    encrypted AS ( \
        INSERT INTO encrypted_rooms (room_id, seen_at) \
        SELECT room_id, $1 FROM unnest($22::text[]) AS u(room_id) ON CONFLICT DO NOTHING) \
    INSERT INTO room_upgrades AS g (room_id, replacement, seen_at) \
    SELECT room_id, replacement, $1 FROM unnest($23::text[], $24::text[]) AS u(room_id, replacement) \
    ON CONFLICT (room_id) DO UPDATE SET replacement = excluded.replacement";

/// Writes the plan's rows other than events and inboxes (nothing when it has none).
pub(super) async fn write(conn: &mut PgConnection, plan: &Plan<'_>, now: i64) -> StoreResult<()> {
    let nothing = plan.txns.is_empty()
        && plan.joins.is_empty()
        && plan.leaves.is_empty()
        && plan.agents.is_empty()
        && plan.sent.is_empty()
        && plan.effects.is_empty()
        && plan.rooms.is_empty()
        && plan.encrypted.is_empty()
        && plan.upgrades.is_empty();
    if nothing {
        return Ok(());
    }
    let (join_slugs, join_rooms): (Vec<&str>, Vec<&str>) = plan.joins.iter().copied().unzip();
    let (leave_slugs, leave_rooms): (Vec<&str>, Vec<&str>) = plan.leaves.iter().copied().unzip();
    let (upgraded, replacements): (Vec<&str>, Vec<&str>) = plan.upgrades.iter().copied().unzip();
    sqlx::query(WRITE_FACTS)
        .bind(now)
        .bind(
            plan.txns
                .iter()
                .map(|t| t.txn_id.as_bytes())
                .collect::<Vec<_>>(),
        )
        .bind(
            plan.txns
                .iter()
                .map(|t| t.events_digest.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            plan.txns
                .iter()
                .map(|t| t.extras_digest.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(join_slugs)
        .bind(join_rooms)
        .bind(leave_slugs)
        .bind(leave_rooms)
        .bind(
            plan.agents
                .iter()
                .map(|a| a.slug.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(plan.agents.iter().map(|a| a.registered).collect::<Vec<_>>())
        .bind(
            plan.agents
                .iter()
                .map(|a| a.display_name.as_deref().map(str::as_bytes))
                .collect::<Vec<_>>(),
        )
        .bind(
            plan.agents
                .iter()
                .map(|a| a.avatar_url.as_deref().map(str::as_bytes))
                .collect::<Vec<_>>(),
        )
        .bind(plan.sent.iter().map(|s| s.slug).collect::<Vec<_>>())
        .bind(plan.sent.iter().map(|s| s.room_id).collect::<Vec<_>>())
        .bind(
            plan.sent
                .iter()
                .map(|s| s.client_txn.as_bytes())
                .collect::<Vec<_>>(),
        )
        .bind(
            plan.sent
                .iter()
                .map(|s| s.request_digest.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            plan.sent
                .iter()
                .map(|s| s.event_id.as_bytes())
                .collect::<Vec<_>>(),
        )
        .bind(&plan.effects)
        .bind(
            plan.rooms
                .iter()
                .map(|r| r.room_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            plan.rooms
                .iter()
                .map(|r| r.alias.as_ref().map(|a| a.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(
            plan.rooms
                .iter()
                .map(|r| r.space_id.as_ref().map(|s| s.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(&plan.encrypted)
        .bind(upgraded)
        .bind(replacements)
        .execute(conn)
        .await?;
    Ok(())
}
