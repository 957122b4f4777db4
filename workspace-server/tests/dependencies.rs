//! The server speaks the contract only: it may not depend on any Runtime
//! implementation, so a new Runtime never needs a change here.

use std::process::Command;

#[test]
fn the_server_depends_on_the_contract_and_no_runtime_implementation() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let server = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "yoi-workspace-server")
        .unwrap();
    let ours: Vec<&str> = server["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        // Normal and build dependencies; tests may use anything.
        .filter(|d| d["kind"] != "dev")
        .filter_map(|d| d["name"].as_str())
        .filter(|name| name.starts_with("yoi"))
        .collect();
    assert_eq!(ours, ["yoi-runtime-api"]);
}
