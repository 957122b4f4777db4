//! Fills a data directory for start-up measurements, and reports what a
//! transcript entry and an event cost on disk.
//!
//! ```text
//! cargo run --release -p yoi-runtime-embedded --example store_fill -- DIR [WORKERS] [EVENTS]
//! ```
//!
//! Writes `DIR/runtimes/backend-internal/yoi.sqlite3` (the layout of
//! `yoi serve --data-dir DIR`) with WORKERS idle Workers (default 100,000),
//! 10 transcript entries each, and EVENTS events (default 5,000,000) spread
//! over them: rows in the store's own schema, written in bulk. Then
//! `yoi-loadgen startup --data-dir DIR` measures the server over it.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, params};
use yoi_runtime_api::dto::{WorkerEvent, WorkerEventKind};
use yoi_runtime_api::{EventCursor, InputId, Timestamp, WorkerId};
use yoi_runtime_embedded::EmbeddedOptions;
use yoi_runtime_embedded::store::{LoadBounds, SqliteStore};

const ENTRIES_PER_WORKER: u64 = 10;

fn main_file_bytes(conn: &Connection, path: &Path) -> u64 {
    // Fold the WAL into the file, so its size is the data's.
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: store_fill DIR [WORKERS] [EVENTS]");
    let workers: u64 = args.next().map_or(100_000, |a| a.parse().unwrap());
    let events: u64 = args.next().map_or(5_000_000, |a| a.parse().unwrap());
    let folder = Path::new(&dir).join("runtimes").join("backend-internal");
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("yoi.sqlite3");
    let _ = std::fs::remove_file(&path);
    // The store makes the schema.
    let options = EmbeddedOptions::default();
    let retain = LoadBounds {
        entries: options.limits.max_transcript_entries,
        events: options.limits.max_events_per_worker,
        client_ids: options.limits.max_remembered_client_ids,
    };
    SqliteStore::open(&path, retain).unwrap().close();

    let started = Instant::now();
    let mut conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let id = |n: u64| -> WorkerId { format!("w-{n:018}").parse().unwrap() };
    let now = Timestamp::now();
    let nanos = now.as_offset_date_time().unix_timestamp_nanos() as i64;
    let per_worker = events.div_ceil(workers.max(1));

    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO workers (id, display_name, profile, fallback, intent, created_at,
                   state, updated_at, transcript_len, pending_inputs, last_cursor, next_seq)
                 VALUES (?1, ?2, 'default', 1, NULL, ?3, 'idle', ?3, ?4, 0, ?5, ?6)",
            )
            .unwrap();
        for n in 0..workers {
            let worker = id(n);
            let last = format!("{per_worker}.aaaaaa");
            insert
                .execute(params![
                    worker.as_str(),
                    format!("worker {n}"),
                    nanos,
                    ENTRIES_PER_WORKER as i64,
                    last,
                    per_worker as i64 + 1
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    let after_workers = main_file_bytes(&conn, &path);

    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO entries (worker_id, idx, role, text, at, status, input_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'complete', ?6)",
            )
            .unwrap();
        for n in 0..workers {
            let worker = id(n);
            for index in 0..ENTRIES_PER_WORKER {
                let (role, text) = if index % 2 == 0 {
                    (
                        "user",
                        format!("question number {index} about the subject at hand"),
                    )
                } else {
                    (
                        "assistant",
                        format!(
                            "echo: question number {} about the subject at hand",
                            index - 1
                        ),
                    )
                };
                let input = format!("in-{n:010}{index:08}");
                insert
                    .execute(params![
                        worker.as_str(),
                        index as i64,
                        role,
                        text,
                        nanos,
                        input
                    ])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    let after_entries = main_file_bytes(&conn, &path);

    // Events in segments of up to 50, as the writer stores a batch's events.
    const SEGMENT: u64 = 50;
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO events (worker_id, first_seq, last_seq, events) VALUES (?1, ?2, ?3, ?4)",
            )
            .unwrap();
        let mut written = 0;
        'all: for n in 0..workers {
            let worker = id(n);
            let input_id: InputId = format!("in-{n:018}").parse().unwrap();
            let mut seq = 1;
            while seq <= per_worker {
                let last = (seq + SEGMENT - 1)
                    .min(per_worker)
                    .min(seq + events - written - 1);
                let segment: Vec<(u64, WorkerEvent)> = (seq..=last)
                    .map(|s| {
                        (
                            s,
                            WorkerEvent {
                                cursor: EventCursor::new(format!("{s}.aaaaaa")).unwrap(),
                                worker_id: worker.clone(),
                                at: now,
                                kind: WorkerEventKind::TextDelta {
                                    input_id: input_id.clone(),
                                    transcript_index: 1,
                                    delta: " word".to_owned(),
                                },
                            },
                        )
                    })
                    .collect();
                insert
                    .execute(params![
                        worker.as_str(),
                        seq as i64,
                        last as i64,
                        serde_json::to_string(&segment).unwrap()
                    ])
                    .unwrap();
                written += last - seq + 1;
                if written >= events {
                    break 'all;
                }
                seq = last + 1;
            }
        }
    }
    tx.commit().unwrap();
    let after_events = main_file_bytes(&conn, &path);

    let entries = workers * ENTRIES_PER_WORKER;
    println!(
        "store_fill: {workers} workers, {entries} entries, {events} events in {:.1} s; \
         {:.0} bytes per worker row, {:.0} bytes per transcript entry, {:.0} bytes per event; \
         file {:.1} MiB",
        started.elapsed().as_secs_f64(),
        after_workers as f64 / workers.max(1) as f64,
        (after_entries - after_workers) as f64 / entries.max(1) as f64,
        (after_events - after_entries) as f64 / events.max(1) as f64,
        after_events as f64 / (1 << 20) as f64
    );
}
