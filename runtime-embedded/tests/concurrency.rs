//! Many tasks sending to one Worker at once, with each busy policy: every
//! accepted input appears exactly once in the transcript, in order.

mod common;

use yoi_runtime_api::test_util;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use yoi_runtime_api::dto::{
    BusyPolicy, CreateWorkerRequest, EntryRole, EntryStatus, InputAcceptance, InputRequest,
    TranscriptEntry,
};
use yoi_runtime_api::{BusyReason, ProfileName, Runtime, RuntimeError, WorkerId};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, ProfileConfig};

const TASKS: usize = 16;
const SENDS_PER_TASK: usize = 4;

fn runtime() -> EmbeddedRuntime {
    EmbeddedRuntime::new(EmbeddedOptions {
        profiles: vec![ProfileConfig::echo(
            ProfileName::new("quick").unwrap(),
            Duration::from_millis(5),
        )],
        ..EmbeddedOptions::default()
    })
    .unwrap()
}

async fn worker(rt: &EmbeddedRuntime) -> WorkerId {
    let request = CreateWorkerRequest {
        profile: Some(ProfileName::new("quick").unwrap()),
        ..CreateWorkerRequest::default()
    };
    rt.create_worker(request).await.unwrap().summary.worker_id
}

/// Sends from `TASKS` tasks at once; returns every acceptance with its text.
async fn hammer(
    rt: &EmbeddedRuntime,
    worker: &WorkerId,
    policy: BusyPolicy,
    retry_when_busy: bool,
) -> Vec<(String, InputAcceptance)> {
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let rt = rt.clone();
        let worker = worker.clone();
        handles.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for n in 0..SENDS_PER_TASK {
                let text = format!("task {task} message {n}");
                loop {
                    let request = InputRequest::new(text.clone()).on_busy(policy);
                    match rt.send_input(&worker, request).await {
                        Ok(acceptance) => {
                            accepted.push((text.clone(), acceptance));
                            break;
                        }
                        Err(RuntimeError::WorkerBusy { reason, .. }) => {
                            assert!(
                                policy == BusyPolicy::Reject && reason == BusyReason::TurnRunning
                                    || policy == BusyPolicy::Queue
                                        && reason == BusyReason::QueueFull,
                                "{policy:?} refused with {reason:?}"
                            );
                            if !retry_when_busy {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            }
            accepted
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    all
}

/// The invariant: each accepted input is in the transcript exactly once,
/// at the index its acceptance named, and acceptance order (by cursor) is
/// transcript order.
fn assert_exactly_once_in_order(
    accepted: &[(String, InputAcceptance)],
    entries: &[TranscriptEntry],
) {
    let users: Vec<&TranscriptEntry> = entries
        .iter()
        .filter(|e| e.role == EntryRole::User)
        .collect();
    assert_eq!(users.len(), accepted.len(), "one user entry per acceptance");
    let by_index: HashMap<u64, &TranscriptEntry> = users.iter().map(|e| (e.index, *e)).collect();
    for (text, acceptance) in accepted {
        let entry = by_index[&acceptance.transcript_index];
        assert_eq!(&entry.text, text);
        assert_eq!(entry.input_id.as_ref(), Some(&acceptance.input_id));
    }
    let mut by_cursor: Vec<&InputAcceptance> = accepted.iter().map(|(_, a)| a).collect();
    // The embedded Runtime's cursors are `<seq>.<epoch>`: order by `seq`.
    by_cursor.sort_by_key(|a| {
        let seq = a.cursor.as_str().split('.').next().unwrap();
        seq.parse::<u64>().unwrap()
    });
    let indexes: Vec<u64> = by_cursor.iter().map(|a| a.transcript_index).collect();
    let mut sorted = indexes.clone();
    sorted.sort_unstable();
    assert_eq!(indexes, sorted, "acceptance order is transcript order");
}

/// Waits for the Worker to settle, checks [`assert_exactly_once_in_order`],
/// and returns its transcript and each input's reply statuses.
async fn settle(
    rt: &EmbeddedRuntime,
    worker: &WorkerId,
    accepted: &[(String, InputAcceptance)],
) -> (Vec<TranscriptEntry>, HashMap<String, Vec<EntryStatus>>) {
    test_util::wait_idle(rt, worker).await;
    let entries = test_util::all_entries(rt, worker).await;
    assert_exactly_once_in_order(accepted, &entries);
    let replies = replies_for(&entries);
    (entries, replies)
}

/// Every accepted input got exactly one reply, and it completed.
fn assert_each_complete(
    accepted: &[(String, InputAcceptance)],
    replies: &HashMap<String, Vec<EntryStatus>>,
) {
    for (_, acceptance) in accepted {
        assert_eq!(
            replies[acceptance.input_id.as_str()],
            [EntryStatus::Complete]
        );
    }
}

fn replies_for(entries: &[TranscriptEntry]) -> HashMap<String, Vec<EntryStatus>> {
    let mut replies: HashMap<String, Vec<EntryStatus>> = HashMap::new();
    for entry in entries.iter().filter(|e| e.role == EntryRole::Assistant) {
        let id = entry.input_id.as_ref().unwrap().to_string();
        replies.entry(id).or_default().push(entry.status);
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reject_policy_with_retries() {
    let rt = runtime();
    let worker = worker(&rt).await;
    let accepted = hammer(&rt, &worker, BusyPolicy::Reject, true).await;
    assert_eq!(
        accepted.len(),
        TASKS * SENDS_PER_TASK,
        "every input got in eventually"
    );
    let (_, replies) = settle(&rt, &worker, &accepted).await;
    assert_each_complete(&accepted, &replies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_policy_runs_everything_accepted() {
    let rt = runtime();
    let worker = worker(&rt).await;
    let accepted = hammer(&rt, &worker, BusyPolicy::Queue, false).await;
    assert!(!accepted.is_empty());
    // Every accepted input got exactly one complete reply, run in order.
    let (entries, replies) = settle(&rt, &worker, &accepted).await;
    assert_each_complete(&accepted, &replies);
    let reply_order: Vec<u64> = entries
        .iter()
        .filter(|e| e.role == EntryRole::Assistant)
        .map(|e| {
            let id = e.input_id.as_ref().unwrap();
            accepted
                .iter()
                .find(|(_, a)| &a.input_id == id)
                .unwrap()
                .1
                .transcript_index
        })
        .collect();
    let mut sorted = reply_order.clone();
    sorted.sort_unstable();
    assert_eq!(reply_order, sorted, "queued inputs run in acceptance order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interrupt_policy_keeps_every_input_and_one_reply_each() {
    let rt = runtime();
    let worker = worker(&rt).await;
    let accepted = hammer(&rt, &worker, BusyPolicy::Interrupt, false).await;
    assert_eq!(
        accepted.len(),
        TASKS * SENDS_PER_TASK,
        "interrupt never refuses"
    );
    let (_, replies) = settle(&rt, &worker, &accepted).await;
    for (_, acceptance) in &accepted {
        let statuses = &replies[acceptance.input_id.as_str()];
        assert_eq!(statuses.len(), 1);
        assert!(matches!(
            statuses[0],
            EntryStatus::Complete | EntryStatus::Cancelled
        ));
    }
    // The last accepted input was never interrupted.
    let last = accepted
        .iter()
        .max_by_key(|(_, a)| a.transcript_index)
        .unwrap();
    assert_eq!(replies[last.1.input_id.as_str()], [EntryStatus::Complete]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_workers_in_parallel_stay_independent() {
    let rt = Arc::new(runtime());
    let mut handles = Vec::new();
    for n in 0..32 {
        let rt = rt.clone();
        handles.push(tokio::spawn(async move {
            let worker = worker(&rt).await;
            let text = format!("worker {n}");
            rt.send_input(&worker, InputRequest::new(text.clone()))
                .await
                .unwrap();
            test_util::wait_idle(&rt, &worker).await;
            let entries = test_util::all_entries(&rt, &worker).await;
            assert_eq!(entries.len(), 2);
            assert_eq!(entries[1].text, format!("echo: {text}"));
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let status = rt.status().await.unwrap();
    assert_eq!(status.workers.idle, 32);
    assert_eq!(status.workers.running, 0);
}
