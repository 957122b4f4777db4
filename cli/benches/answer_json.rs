//! The two answers sent most, a Worker's detail and a transcript page of
//! two entries, encoded by `serde_json` and by their `WriteJson` encoders
//! (the same bytes), into the 1 KiB buffer the server starts with.
//!
//! `cargo bench -p yoi --bench answer_json`

use criterion::{Criterion, criterion_group, criterion_main};
use yoi_runtime_api::dto::{
    EntryRole, EntryStatus, ProfileRef, TranscriptEntry, TranscriptPage, WorkerDetail, WorkerState,
    WorkerSummary, WriteJson,
};
use yoi_runtime_api::{EventCursor, InputId, ProfileName, RuntimeId, Timestamp, WorkerId};

fn detail() -> WorkerDetail {
    let at = Timestamp::from_unix_nanos(1_796_061_960_141_752_630).unwrap();
    WorkerDetail {
        summary: WorkerSummary {
            runtime_id: RuntimeId::new("backend-internal").unwrap(),
            worker_id: WorkerId::new("w-01m8q1xwj96qck5bbd").unwrap(),
            display_name: "w-01m8q1xwj96qck5bbd".to_owned(),
            profile: ProfileRef {
                name: ProfileName::new("default").unwrap(),
                fallback: true,
            },
            state: WorkerState::Idle,
            created_at: at,
            updated_at: at,
            transcript_len: 2,
            pending_inputs: 0,
            last_cursor: Some(EventCursor::new("8.57xp11").unwrap()),
            metadata: Default::default(),
        },
        intent: None,
        forked_from: None,
    }
}

fn page() -> TranscriptPage {
    let at = Timestamp::from_unix_nanos(1_796_061_960_141_752_630).unwrap();
    let input_id = InputId::new("in-01m8q4ezp471fe01ht").unwrap();
    let entry = |index, role, text: &str| TranscriptEntry {
        index,
        role,
        text: text.to_owned(),
        at,
        status: EntryStatus::Complete,
        input_id: Some(input_id.clone()),
    };
    TranscriptPage {
        start: 0,
        limit: 50,
        total: 2,
        next_start: None,
        entries: vec![
            entry(0, EntryRole::User, "hello"),
            entry(1, EntryRole::Assistant, "echo: hello"),
        ],
    }
}

fn encode<T: WriteJson + serde::Serialize>(c: &mut Criterion, name: &str, value: &T) {
    let mut group = c.benchmark_group(name);
    group.bench_function("serde_json", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(1024);
            serde_json::to_writer(&mut out, value).unwrap();
            out
        })
    });
    group.bench_function("WriteJson", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(1024);
            value.write_json(&mut out).unwrap();
            out
        })
    });
    group.finish();
}

fn answers(c: &mut Criterion) {
    encode(c, "worker detail", &detail());
    encode(c, "transcript page", &page());
}

criterion_group!(benches, answers);
criterion_main!(benches);
