//! The Runtime's cap on retained bytes: past `max_retained_bytes` of
//! transcripts and events in memory, new work is `capacity_exceeded`; what
//! a deleted Worker held is given back; a persistent store evicts idle
//! Workers to make room instead of refusing. The memory store never evicts
//! (it could not load a Worker again), whatever `max_resident_workers` says.

mod common;

use yoi_runtime_api::dto::{BusyPolicy, InputRequest};
use yoi_runtime_api::{ErrorCode, Runtime, test_util};
use yoi_runtime_embedded::{EmbeddedOptions, EmbeddedRuntime, Limits};

const CAP: usize = 400_000;

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        limits: Limits {
            max_retained_bytes: CAP,
            ..Limits::default()
        },
        ..common::options_with_slow_profile()
    }
}

/// One 50 KB turn (the input, its echoed reply, their events).
async fn big_turn(
    rt: &EmbeddedRuntime,
    worker: &yoi_runtime_api::WorkerId,
) -> yoi_runtime_api::Result<()> {
    rt.send_input(
        worker,
        InputRequest::new("y".repeat(50_000)).on_busy(BusyPolicy::Reject),
    )
    .await?;
    test_util::wait_idle(rt, worker).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_new_work_is_refused_until_a_worker_is_deleted() {
    let rt = EmbeddedRuntime::new(options()).unwrap();
    let worker = test_util::create(&rt, None).await;
    let mut turns = 0;
    let refused = loop {
        match big_turn(&rt, &worker).await {
            Ok(()) => turns += 1,
            Err(err) => break err,
        }
        assert!(
            turns < 50,
            "{turns} turns of 50 KB fit under a cap of {CAP} bytes"
        );
    };
    assert_eq!(refused.code(), ErrorCode::CapacityExceeded, "{refused}");
    assert!(
        refused.to_string().contains("max_retained_bytes"),
        "{refused}"
    );
    assert!(turns >= 1, "the first turn fits");
    let err = rt
        .create_worker(Default::default())
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::CapacityExceeded);

    // Deleting the Worker gives its bytes back.
    rt.delete_worker(&worker).await.unwrap();
    let fresh = test_util::create(&rt, None).await;
    big_turn(&rt, &fresh).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_store_evicts_idle_workers_to_make_room() {
    let path = test_util::temp_dir("retained").join("store.db");
    let (rt, _store) = common::sqlite_runtime(&path, options());
    let mut workers = Vec::new();
    // Far more than the cap in all, one turn each.
    for _ in 0..12 {
        let worker = test_util::create(&rt, None).await;
        big_turn(&rt, &worker).await.unwrap();
        workers.push(worker);
    }
    // Every Worker is still there, read back from the store when needed;
    // reading them all does not hold them all (about 150 KB each) in
    // memory: past the cap, idle ones go again.
    for worker in &workers {
        let entries = test_util::all_entries(&rt, worker).await;
        assert_eq!(entries.len(), 2, "{worker}");
        assert_eq!(entries[0].text.len(), 50_000);
        assert!(
            rt.retained_bytes() <= CAP + 200_000,
            "{} bytes retained while reading Workers back, cap {CAP}",
            rt.retained_bytes()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_keeps_every_worker_past_the_resident_cap() {
    let rt = EmbeddedRuntime::new(EmbeddedOptions {
        limits: Limits {
            max_resident_workers: 2,
            ..Limits::default()
        },
        ..common::options_with_slow_profile()
    })
    .unwrap();
    let mut workers = Vec::new();
    for n in 0..12 {
        let worker = test_util::create(&rt, None).await;
        test_util::send(&rt, &worker, &format!("hello {n}"), BusyPolicy::Reject).await;
        test_util::wait_idle(&rt, &worker).await;
        workers.push(worker);
    }
    // Read each several times, oldest first, as an LRU would count them.
    for _ in 0..3 {
        for (n, worker) in workers.iter().enumerate() {
            let entries = test_util::all_entries(&rt, worker).await;
            assert_eq!(test_util::user_texts(&entries), [format!("hello {n}")]);
        }
    }
    assert_eq!(rt.status().await.unwrap().workers.total(), 12);
}

/// How many of `tasks` succeeded.
async fn succeeded<T>(tasks: Vec<tokio::task::JoinHandle<yoi_runtime_api::Result<T>>>) -> usize {
    let mut ok = 0;
    for task in tasks {
        ok += usize::from(task.await.unwrap().is_ok());
    }
    ok
}

/// A fork copies its source's transcript, so it is checked against the
/// cap with the copy's size: forks refused for want of room leave the
/// Runtime under its cap, where a new empty Worker still fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_are_refused_before_they_would_pass_the_cap() {
    let rt = EmbeddedRuntime::new(options()).unwrap();
    let source = test_util::create(&rt, None).await;
    big_turn(&rt, &source).await.unwrap();
    let mut forks = 0;
    let refused = loop {
        match rt.fork_worker(&source, Default::default()).await {
            Ok(_) => forks += 1,
            Err(err) => break err,
        }
        assert!(forks < 20, "{forks} forks of 100 KB fit under {CAP} bytes");
    };
    assert_eq!(refused.code(), ErrorCode::CapacityExceeded, "{refused}");
    assert!(
        refused.to_string().contains("this needs about"),
        "{refused}"
    );
    assert!(forks >= 1, "the first fork fits");
    assert!(
        rt.retained_bytes() <= CAP,
        "{} bytes retained after {forks} forks, over the cap of {CAP}",
        rt.retained_bytes()
    );
    test_util::create(&rt, None).await;
}

/// Forks waiting together for their source to load from the store must
/// not all pass the cap once it has: each is checked, with its copy's
/// size, after the load and right before it copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_forks_of_an_evicted_worker_stay_near_the_cap() {
    const FORKS: usize = 16;
    let path = test_util::temp_dir("retained-forks").join("store.db");
    let (rt, _store) = common::sqlite_runtime(&path, options());
    let rt = std::sync::Arc::new(rt);
    let source = test_util::create(&*rt, None).await;
    big_turn(&rt, &source).await.unwrap();
    // Fill the cap with other Workers so the source is evicted to make
    // room for them.
    for _ in 0..6 {
        let other = test_util::create(&*rt, None).await;
        big_turn(&rt, &other).await.unwrap();
    }
    let forks: Vec<_> = (0..FORKS)
        .map(|_| {
            let (rt, source) = (rt.clone(), source.clone());
            tokio::spawn(async move { rt.fork_worker(&source, Default::default()).await })
        })
        .collect();
    let made = succeeded(forks).await;
    assert!(made >= 1, "no fork was made");
    // At most one copy (about 100 KB) per runtime thread past the cap.
    let bound = CAP + 2 * 110_000;
    assert!(
        rt.retained_bytes() <= bound,
        "{} bytes retained after {made} concurrent forks, over {bound}",
        rt.retained_bytes()
    );
}

/// Inputs waiting together for their Worker to load are each checked
/// after the load, with their size, right before they are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inputs_to_an_evicted_worker_stay_near_the_cap() {
    let path = test_util::temp_dir("retained-inputs").join("store.db");
    let (rt, _store) = common::sqlite_runtime(&path, options());
    let rt = std::sync::Arc::new(rt);
    let target = test_util::create(&*rt, Some(yoi_runtime_api::conformance::SLOW_PROFILE)).await;
    // Fill the cap with other Workers so the target is evicted.
    for _ in 0..6 {
        let other = test_util::create(&*rt, None).await;
        big_turn(&rt, &other).await.unwrap();
    }
    let inputs: Vec<_> = (0..16)
        .map(|_| {
            let (rt, target) = (rt.clone(), target.clone());
            tokio::spawn(async move {
                rt.send_input(
                    &target,
                    InputRequest::new("q".repeat(60_000)).on_busy(BusyPolicy::Queue),
                )
                .await
            })
        })
        .collect();
    let taken = succeeded(inputs).await;
    assert!(taken >= 1, "no input was taken");
    // At most one input (60 KB, with its event) per runtime thread past
    // the cap.
    let bound = CAP + 2 * 130_000;
    assert!(
        rt.retained_bytes() <= bound,
        "{} bytes retained after {taken} concurrent inputs, over {bound}",
        rt.retained_bytes()
    );
}
