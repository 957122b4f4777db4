//! `WriteJson` writes exactly the bytes `serde_json` writes, for arbitrary
//! Worker details and transcript pages.

use proptest::prelude::*;
use yoi_runtime_api::dto::{
    EntryRole, EntryStatus, ForkedFrom, ProfileRef, TranscriptEntry, TranscriptPage, WorkerDetail,
    WorkerState, WorkerSummary, WriteJson,
};
use yoi_runtime_api::{EventCursor, InputId, ProfileName, RuntimeId, Timestamp, WorkerId};

/// Ids short enough to be held inline and long enough not to be.
fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,40}".prop_filter("not . or ..", |id| id != "." && id != "..")
}

/// Any text: control characters, quotes, backslashes, any Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        "[\u{0}-\u{1f}\"\\\\a-z]{0,20}",
    ]
}

/// Instants in and (rarely) outside the years RFC 3339 can write.
fn timestamp() -> impl Strategy<Value = Timestamp> {
    let in_range = -62_167_219_200_000_000_000i128..253_402_300_800_000_000_000i128;
    prop_oneof![
        20 => in_range.prop_map(|nanos| Timestamp::from_unix_nanos(nanos).unwrap()),
        // Before the year 0 (as far back as `time` goes).
        1 => (-377_705_116_800_000_000_000i128..-62_167_219_200_000_000_000i128)
            .prop_filter_map("a time `time` has", Timestamp::from_unix_nanos),
    ]
}

fn state() -> impl Strategy<Value = WorkerState> {
    prop::sample::select(vec![
        WorkerState::Idle,
        WorkerState::Running,
        WorkerState::Stopping,
        WorkerState::Stopped,
        WorkerState::Failed,
    ])
}

prop_compose! {
    fn detail()(
        runtime_id in id(),
        worker_id in id(),
        display_name in text(),
        profile in "[a-z]{1,30}",
        fallback in any::<bool>(),
        state in state(),
        created_at in timestamp(),
        updated_at in timestamp(),
        transcript_len in any::<u64>(),
        pending_inputs in any::<u64>(),
        last_cursor in proptest::option::of(id()),
        metadata in proptest::collection::btree_map(text(), text(), 0..4),
        intent in proptest::option::of(text()),
        forked_from in proptest::option::of((id(), any::<u64>())),
    ) -> WorkerDetail {
        WorkerDetail {
            summary: WorkerSummary {
                runtime_id: RuntimeId::new(runtime_id).unwrap(),
                worker_id: WorkerId::new(worker_id).unwrap(),
                display_name,
                profile: ProfileRef { name: ProfileName::new(profile).unwrap(), fallback },
                state,
                created_at,
                updated_at,
                transcript_len,
                pending_inputs,
                last_cursor: last_cursor.map(|c| EventCursor::new(c).unwrap()),
                metadata,
            },
            intent,
            forked_from: forked_from.map(|(worker_id, transcript_index)| ForkedFrom {
                worker_id: WorkerId::new(worker_id).unwrap(),
                transcript_index,
            }),
        }
    }
}

prop_compose! {
    fn entry()(
        index in any::<u64>(),
        role in prop::sample::select(vec![
            EntryRole::User, EntryRole::Assistant, EntryRole::System, EntryRole::Notice,
        ]),
        text in text(),
        at in timestamp(),
        status in prop::sample::select(vec![
            EntryStatus::Complete, EntryStatus::Partial, EntryStatus::Cancelled,
            EntryStatus::Failed, EntryStatus::RolledBack,
        ]),
        input_id in proptest::option::of(id()),
    ) -> TranscriptEntry {
        TranscriptEntry {
            index, role, text, at, status,
            input_id: input_id.map(|id| InputId::new(id).unwrap()),
        }
    }
}

prop_compose! {
    fn page()(
        start in any::<u64>(),
        limit in any::<u32>(),
        total in any::<u64>(),
        next_start in proptest::option::of(any::<u64>()),
        entries in proptest::collection::vec(entry(), 0..4),
    ) -> TranscriptPage {
        TranscriptPage { start, limit, total, next_start, entries }
    }
}

/// Ours is serde's, or both refuse.
fn same_as_serde<T: WriteJson + serde::Serialize>(value: &T) -> Result<(), TestCaseError> {
    let mut ours = Vec::new();
    let written = value.write_json(&mut ours);
    match serde_json::to_vec(value) {
        Ok(theirs) => {
            prop_assert!(written.is_ok());
            prop_assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
        Err(_) => prop_assert!(written.is_err()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_worker_detail_is_serdes_json(detail in detail()) {
        same_as_serde(&detail)?;
    }

    #[test]
    fn a_transcript_page_is_serdes_json(page in page()) {
        same_as_serde(&page)?;
    }
}
