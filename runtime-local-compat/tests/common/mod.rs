//! A workspace of record files made by the test.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use yoi_runtime_api::conformance::Seeder;
use yoi_runtime_api::{DynRuntime, WorkerId};

/// A fresh workspace with an empty workers folder.
pub fn workspace(label: &str) -> PathBuf {
    let dir = yoi_runtime_api::test_util::temp_dir(label);
    std::fs::create_dir_all(dir.join(".yoi").join("workers")).unwrap();
    dir
}

pub fn folder(workspace: &Path, name: &str) -> PathBuf {
    workspace.join(".yoi").join("workers").join(name)
}

pub fn record(name: &str) -> Value {
    json!({
        "name": name,
        "profile": "default",
        "state": "idle",
        "pid": 4242,
        "socket_path": format!("/run/SENTINEL/{name}.sock"),
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:06Z"
    })
}

/// Writes `worker.json` (and the transcript, when given).
pub fn write_worker(workspace: &Path, name: &str, record: &Value, transcript: Option<&[u8]>) {
    let dir = folder(workspace, name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("worker.json"), record.to_string()).unwrap();
    if let Some(bytes) = transcript {
        std::fs::write(dir.join("transcript.jsonl"), bytes).unwrap();
    }
}

/// One transcript line.
pub fn line(role: &str, text: &str) -> String {
    format!(
        "{}\n",
        json!({"role": role, "text": text, "at": "2026-01-02T03:04:05Z"})
    )
}

/// Seeds Workers for the conformance suite by writing their files.
pub struct FileSeeder {
    pub workspace: PathBuf,
}

#[async_trait]
impl Seeder for FileSeeder {
    fn can_seed(&self, _: &DynRuntime) -> bool {
        true
    }

    async fn seed(&self, _: &DynRuntime, display_name: &str, inputs: &[&str]) -> WorkerId {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("seeded-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut record = record(&name);
        record["display_name"] = json!(display_name);
        let transcript: String = inputs
            .iter()
            .flat_map(|text| {
                [
                    line("user", text),
                    line("assistant", &format!("echo: {text}")),
                ]
            })
            .collect();
        write_worker(&self.workspace, &name, &record, Some(transcript.as_bytes()));
        name.parse().unwrap()
    }
}
