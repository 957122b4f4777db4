//! Pins the JSON shape of every DTO, and checks that nothing secret can
//! travel through one.

use crate::dto::*;
use crate::*;

fn at() -> Timestamp {
    Timestamp::from_unix_nanos(1_700_000_000_000_000_000).unwrap()
}

fn summary() -> WorkerSummary {
    WorkerSummary {
        runtime_id: "backend-internal".parse().unwrap(),
        worker_id: "w-0000000001".parse().unwrap(),
        display_name: "Research".into(),
        profile: ProfileRef {
            name: "default".parse().unwrap(),
            fallback: true,
        },
        state: WorkerState::Idle,
        created_at: at(),
        updated_at: at(),
        transcript_len: 2,
        pending_inputs: 0,
        last_cursor: Some("7".parse().unwrap()),
        metadata: [("project".to_owned(), "apollo".to_owned())].into(),
    }
}

fn event(kind: WorkerEventKind) -> WorkerEvent {
    WorkerEvent {
        cursor: "3".parse().unwrap(),
        worker_id: "w-0000000001".parse().unwrap(),
        at: at(),
        kind,
    }
}

#[test]
fn runtime_dtos() {
    let caps = Capabilities {
        list_workers: true,
        create_worker: true,
        send_input: true,
        max_input_bytes: Some(65536),
        ..Capabilities::default()
    };
    insta::assert_json_snapshot!(RuntimeSummary {
        runtime_id: "backend-internal".parse().unwrap(),
        display_name: "Backend".into(),
        implementation: ImplementationKind::Embedded,
        capabilities: caps,
    });
    let mut workers = WorkerCounts::default();
    workers.add(WorkerState::Idle);
    workers.add(WorkerState::Running);
    insta::assert_json_snapshot!(RuntimeStatus {
        runtime_id: "backend-internal".parse().unwrap(),
        state: RuntimeState::Degraded,
        workers,
    });
}

#[test]
fn worker_dtos() {
    insta::assert_json_snapshot!(WorkerDetail {
        summary: summary(),
        intent: Some("summarise papers".into()),
        forked_from: Some(ForkedFrom {
            worker_id: "w-0000000000".parse().unwrap(),
            transcript_index: 4,
        }),
    });
    insta::assert_json_snapshot!(WorkerPage {
        items: vec![summary()],
        next_after: Some("w-0000000001".parse().unwrap()),
        next_cursor: Some("c1.cam.cbf29ce484222325.0.0.w-0000000001".into()),
    });
    let request: CreateWorkerRequest =
        serde_json::from_str(r#"{"display_name":"A","profile":"default"}"#).unwrap();
    insta::assert_json_snapshot!(request);
    assert!(serde_json::from_str::<CreateWorkerRequest>(r#"{"socket":"/tmp/x"}"#).is_err());
}

#[test]
fn input_dtos() {
    let request: InputRequest = serde_json::from_str(r#"{"text":"hi"}"#).unwrap();
    assert_eq!(request.on_busy, BusyPolicy::Reject);
    let request: InputRequest =
        serde_json::from_str(r#"{"text":"hi","client_input_id":"c-1","on_busy":"queue"}"#).unwrap();
    insta::assert_json_snapshot!(request);
    insta::assert_json_snapshot!(InputAcceptance {
        input_id: "in-1".parse().unwrap(),
        transcript_index: 4,
        state: WorkerState::Running,
        cursor: "12".parse().unwrap(),
    });
}

#[test]
fn transcript_dtos() {
    insta::assert_json_snapshot!(TranscriptPage {
        start: 0,
        limit: 50,
        total: 2,
        next_start: None,
        entries: vec![
            TranscriptEntry {
                index: 0,
                role: EntryRole::User,
                text: "hello".into(),
                at: at(),
                status: EntryStatus::Complete,
                input_id: Some("in-1".parse().unwrap()),
            },
            TranscriptEntry {
                index: 1,
                role: EntryRole::Assistant,
                text: "hel".into(),
                at: at(),
                status: EntryStatus::Partial,
                input_id: Some("in-1".parse().unwrap()),
            },
        ],
    });
}

#[test]
fn event_dtos() {
    let input_id: InputId = "in-1".parse().unwrap();
    let kinds = vec![
        WorkerEventKind::WorkerCreated {
            display_name: "Research".into(),
            profile: summary().profile,
        },
        WorkerEventKind::InputAccepted {
            input_id: input_id.clone(),
            transcript_index: 0,
        },
        WorkerEventKind::TurnStarted {
            input_id: input_id.clone(),
            transcript_index: 1,
        },
        WorkerEventKind::TextDelta {
            input_id: input_id.clone(),
            transcript_index: 1,
            delta: "Hel".into(),
        },
        WorkerEventKind::TurnCompleted {
            input_id: input_id.clone(),
            transcript_index: 1,
        },
        WorkerEventKind::TurnCancelled {
            input_id: input_id.clone(),
            transcript_index: 1,
        },
        WorkerEventKind::TurnFailed {
            input_id,
            transcript_index: 1,
            reason: FailureReason {
                code: FailureCode::RateLimited,
                message: "the model endpoint answered HTTP 429".into(),
                http_status: Some(429),
            },
        },
        WorkerEventKind::WorkerStopped {},
        WorkerEventKind::StateChanged {
            from: WorkerState::Idle,
            to: WorkerState::Running,
        },
    ];
    let events: Vec<WorkerEvent> = kinds.into_iter().map(event).collect();
    for e in &events {
        let json = serde_json::to_value(e).unwrap();
        assert_eq!(json["kind"], e.kind_name());
        let back: WorkerEvent = serde_json::from_value(json).unwrap();
        assert_eq!(&back, e);
    }
    insta::assert_json_snapshot!(EventPage {
        events,
        next_cursor: Some("3".parse().unwrap()),
        has_more: false,
    });
}

/// A sentinel planted in every free-text field and in an internal error's
/// cause must show up only where a client put it, never through an error.
#[test]
fn sentinel_secret_never_leaks_through_errors() {
    const SENTINEL: &str = "sk-SENTINEL-7f3a9c";
    let internal = RuntimeError::internal(
        "model backend failed",
        format!("connect to https://user:{SENTINEL}@10.0.0.1/v1 failed"),
    );
    let body = serde_json::to_string(&internal).unwrap();
    for text in [
        body,
        internal.to_string(),
        internal.public_message(),
        format!("{internal:?}"),
    ] {
        assert!(!text.contains(SENTINEL), "leaked: {text}");
    }
    // Invalid ids never echo the rejected value either.
    let err = RuntimeError::from(WorkerId::new(format!("{SENTINEL}/x")).unwrap_err());
    let body = serde_json::to_string(&err).unwrap();
    assert!(!body.contains(SENTINEL) && !format!("{err:?}").contains(SENTINEL));
    let id_err = "sk SENTINEL".parse::<InputId>().unwrap_err();
    assert!(!format!("{id_err:?} {id_err}").contains("SENTINEL"));
}

#[test]
fn query_dtos() {
    insta::assert_json_snapshot!(WorkerListQuery {
        after: Some("w-0000000001".parse().unwrap()),
        limit: Some(10),
        ..WorkerListQuery::default()
    });
    insta::assert_json_snapshot!(TranscriptQuery {
        start: Some(100),
        limit: None,
    });
    insta::assert_json_snapshot!(EventQuery {
        after: Some("41".parse().unwrap()),
        limit: Some(100),
    });
    // Absent fields default; ids in queries are validated too.
    let query: EventQuery = serde_json::from_str("{}").unwrap();
    assert_eq!(query, EventQuery::default());
    assert!(serde_json::from_str::<WorkerListQuery>(r#"{"after":"../x"}"#).is_err());
}

/// `WorkerDetail` is written and read through flat forms instead of serde's
/// `flatten`: the JSON must be the flattened form's, field for field.
#[test]
fn worker_detail_is_the_flattened_summary_and_its_own_fields() {
    #[derive(serde::Serialize)]
    struct Flattened<'a> {
        #[serde(flatten)]
        summary: &'a WorkerSummary,
        intent: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        forked_from: Option<&'a ForkedFrom>,
    }
    let mut bare = summary();
    bare.last_cursor = None;
    bare.metadata = Metadata::default();
    let details = [
        WorkerDetail {
            summary: summary(),
            intent: Some("say \"hi\"\n".into()),
            forked_from: Some(ForkedFrom {
                worker_id: "w-0000000000".parse().unwrap(),
                transcript_index: 4,
            }),
        },
        WorkerDetail {
            summary: bare,
            intent: None,
            forked_from: None,
        },
    ];
    for detail in details {
        let ours = serde_json::to_string(&detail).unwrap();
        let flattened = serde_json::to_string(&Flattened {
            summary: &detail.summary,
            intent: detail.intent.as_deref(),
            forked_from: detail.forked_from.as_ref(),
        })
        .unwrap();
        assert_eq!(ours, flattened);
        assert_eq!(serde_json::from_str::<WorkerDetail>(&ours).unwrap(), detail);
    }
    // Read as before: metadata and forked_from may be missing, unknown
    // fields are ignored, and a missing summary field is an error.
    let mut value = serde_json::to_value(WorkerDetail {
        summary: summary(),
        intent: None,
        forked_from: None,
    })
    .unwrap();
    let object = value.as_object_mut().unwrap();
    object.remove("metadata");
    object.insert("added_later".into(), serde_json::json!({"x": 1}));
    let read: WorkerDetail = serde_json::from_value(value.clone()).unwrap();
    assert!(read.summary.metadata.is_empty() && read.forked_from.is_none());
    value.as_object_mut().unwrap().remove("state");
    assert!(serde_json::from_value::<WorkerDetail>(value).is_err());
}
