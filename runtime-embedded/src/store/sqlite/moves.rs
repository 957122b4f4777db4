//! The changes of `updated_at` an `updated_at` pass needs (search.rs):
//! one row `(new_key, worker_id, old_key)` per change a commit writes, kept
//! for `PASS_HORIZON_SECS` and at most `MAX_MOVES` rows. **A pass whose
//! snapshot is before `search_state.forgotten` (the newest move dropped
//! for room) is refused**, never answered with a gap.

use rusqlite::{OptionalExtension, Transaction, params};
use yoi_runtime_api::WorkerId;
use yoi_runtime_api::dto::PASS_HORIZON_SECS;

/// The most moves kept on disk (about 60 bytes each).
pub(super) const MAX_MOVES: i64 = 1_000_000;

/// Records the change of a Worker's `updated_at` to `new_key`, if it
/// changes; whether it did.
pub(super) fn record(
    tx: &Transaction<'_>,
    worker_id: &WorkerId,
    new_key: i64,
) -> rusqlite::Result<bool> {
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO worker_moves (new_key, worker_id, old_key)
             SELECT ?2, id, updated_at FROM workers WHERE id = ?1 AND updated_at < ?2",
        )?
        .execute(params![worker_id.as_str(), new_key])?;
    Ok(inserted > 0)
}

/// Drops moves older than the horizon (before `newest`), and the oldest
/// past `MAX_MOVES`, noting the newest one dropped for room. `count` is
/// the writer's running count of rows.
pub(super) fn trim(tx: &Transaction<'_>, newest: i64, count: &mut i64) -> rusqlite::Result<()> {
    trim_to(tx, newest, count, MAX_MOVES)
}

fn trim_to(
    tx: &Transaction<'_>,
    newest: i64,
    count: &mut i64,
    max_moves: i64,
) -> rusqlite::Result<()> {
    let dropped = tx
        .prepare_cached("DELETE FROM worker_moves WHERE new_key < ?1")?
        .execute(params![
            newest.saturating_sub(PASS_HORIZON_SECS * 1_000_000_000)
        ])?;
    *count -= dropped as i64;
    if *count <= max_moves {
        return Ok(());
    }
    // Down to 90 %, so this runs rarely.
    let excess = *count - max_moves * 9 / 10;
    let cut: Option<i64> = tx
        .prepare_cached("SELECT new_key FROM worker_moves ORDER BY new_key LIMIT 1 OFFSET ?1")?
        .query_row(params![excess - 1], |row| row.get(0))
        .optional()?;
    if let Some(cut) = cut {
        let dropped = tx
            .prepare_cached("DELETE FROM worker_moves WHERE new_key <= ?1")?
            .execute(params![cut])?;
        *count -= dropped as i64;
        tx.prepare_cached("UPDATE search_state SET forgotten = MAX(forgotten, ?1)")?
            .execute(params![cut])?;
    }
    Ok(())
}

/// The rows on disk, at start.
pub(super) fn count(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM worker_moves", [], |row| row.get(0))
        .unwrap_or(0)
}

/// The newest move dropped for room: passes with an older snapshot are
/// refused.
pub(super) fn forgotten(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT forgotten FROM search_state")?
        .query_row([], |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> rusqlite::Connection {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO workers (id, display_name, profile, fallback, created_at, state,
               updated_at, transcript_len, pending_inputs, next_seq)
             VALUES ('w-a', 'a', 'default', 0, 10, 'idle', 10, 0, 0, 1)",
        )
        .unwrap();
        conn
    }

    #[test]
    fn a_change_is_a_move_and_no_change_is_none() {
        let mut conn = store();
        let tx = conn.transaction().unwrap();
        let id: WorkerId = "w-a".parse().unwrap();
        assert!(record(&tx, &id, 20).unwrap());
        tx.execute("UPDATE workers SET updated_at = 20 WHERE id = 'w-a'", [])
            .unwrap();
        assert!(!record(&tx, &id, 20).unwrap(), "the same updated_at");
        let (old, new): (i64, i64) = tx
            .query_row("SELECT old_key, new_key FROM worker_moves", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((old, new), (10, 20));
    }

    #[test]
    fn past_the_cap_the_oldest_go_and_forgotten_says_up_to_where() {
        let mut conn = store();
        let tx = conn.transaction().unwrap();
        let id: WorkerId = "w-a".parse().unwrap();
        let mut count = 0;
        for new_key in 11..=30 {
            assert!(record(&tx, &id, new_key).unwrap());
            tx.execute(
                "UPDATE workers SET updated_at = ?1 WHERE id = 'w-a'",
                [new_key],
            )
            .unwrap();
            count += 1;
        }
        assert_eq!(forgotten(&tx).unwrap(), i64::MIN);
        trim_to(&tx, 30, &mut count, 10).unwrap();
        // Down to 90 % of 10: the 9 newest moves (22..=30) stay.
        let kept: Vec<i64> = tx
            .prepare("SELECT new_key FROM worker_moves ORDER BY new_key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kept, (22..=30).collect::<Vec<_>>());
        assert_eq!(count, 9);
        assert_eq!(forgotten(&tx).unwrap(), 21);
    }
}
