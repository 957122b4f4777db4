//! Metadata and updates: set at creation, patched later, shown everywhere.

use crate::dto::{CreateWorkerRequest, Metadata, UpdateWorkerRequest, WorkerEventKind};
use crate::error::ErrorCode;
use crate::id::WorkerId;
use crate::runtime::DynRuntime;

use super::Outcome;
use super::support::*;

fn pairs(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Metadata given at creation is shown in detail and list; an update renames
/// and merges a metadata patch (`null` removes a key) in one step, also on a
/// stopped Worker, and logs `worker_updated`; bad keys and empty updates are
/// `invalid_request` and change nothing. Without `update_worker` an update
/// is `unsupported_operation`.
pub async fn update_worker(rt: &DynRuntime) -> Outcome {
    let caps = caps(rt);
    if !caps.update_worker {
        let request = UpdateWorkerRequest {
            display_name: Some("renamed".into()),
            metadata: None,
        };
        assert_code(
            rt.update_worker(&WorkerId::new("w-nope").unwrap(), request)
                .await
                .map(|_| ()),
            ErrorCode::UnsupportedOperation,
            "update without update_worker",
        );
        return Outcome::Skipped("update_worker");
    }
    require!(caps, create_worker, stop);
    let created = rt
        .create_worker(CreateWorkerRequest {
            metadata: pairs(&[("project", "apollo"), ("team", "a")]),
            ..CreateWorkerRequest::default()
        })
        .await
        .unwrap();
    let worker = created.summary.worker_id.clone();
    assert_eq!(
        created.summary.metadata,
        pairs(&[("project", "apollo"), ("team", "a")])
    );
    let bad = rt
        .create_worker(CreateWorkerRequest {
            metadata: pairs(&[("bad key", "v")]),
            ..CreateWorkerRequest::default()
        })
        .await;
    let message = bad.as_ref().map(|_| ()).unwrap_err().to_string();
    assert_code(
        bad.map(|_| ()),
        ErrorCode::InvalidRequest,
        "a bad metadata key",
    );
    assert!(message.contains("bad key"), "names the key: {message}");

    let patch = UpdateWorkerRequest {
        display_name: Some("Renamed".into()),
        metadata: Some([("team".into(), None), ("stage".into(), Some("beta".into()))].into()),
    };
    let updated = rt.update_worker(&worker, patch).await.unwrap();
    let expected = pairs(&[("project", "apollo"), ("stage", "beta")]);
    assert_eq!(updated.summary.display_name, "Renamed");
    assert_eq!(updated.summary.metadata, expected);
    let detail = rt.worker(&worker).await.unwrap();
    assert_eq!(detail.summary.metadata, expected);
    if caps.list_workers {
        let listed = list_one_by_one(rt).await;
        let listed = listed.iter().find(|w| w.worker_id == worker).unwrap();
        assert_eq!(
            (listed.display_name.as_str(), &listed.metadata),
            ("Renamed", &expected)
        );
    }
    if caps.events_poll {
        let events = all_events(rt, &worker).await;
        assert!(events.iter().any(|e| matches!(
            &e.kind,
            WorkerEventKind::WorkerUpdated { display_name, metadata }
                if display_name == "Renamed" && *metadata == expected
        )));
    }

    // Refused updates change nothing.
    for request in [
        UpdateWorkerRequest::default(),
        UpdateWorkerRequest {
            display_name: None,
            metadata: Some([("no spaces".into(), Some("x".into()))].into()),
        },
        UpdateWorkerRequest {
            display_name: Some("  ".into()),
            metadata: None,
        },
    ] {
        assert_code(
            rt.update_worker(&worker, request).await.map(|_| ()),
            ErrorCode::InvalidRequest,
            "a bad update",
        );
    }
    let unchanged = rt.worker(&worker).await.unwrap();
    assert_eq!(unchanged.summary.metadata, expected);

    // A stopped Worker can still be organised.
    rt.stop(&worker).await.unwrap();
    let patch = UpdateWorkerRequest {
        display_name: None,
        metadata: Some([("project".into(), None)].into()),
    };
    let stopped = rt.update_worker(&worker, patch).await.unwrap();
    assert_eq!(stopped.summary.metadata, pairs(&[("stage", "beta")]));
    assert_code(
        rt.update_worker(
            &WorkerId::new("w-nope").unwrap(),
            UpdateWorkerRequest {
                display_name: Some("x".into()),
                metadata: None,
            },
        )
        .await
        .map(|_| ()),
        ErrorCode::UnknownWorker,
        "update of an unknown Worker",
    );
    Outcome::Passed
}
