//! The binary: refusals with a clear message and exit code (2 for
//! configuration, 3 for a store), and what a restart keeps or forgets.

mod common;

use std::process::Command;

use common::process::{Server, get_json, post_json, yoi};
use serde_json::{Value, json};
use yoi_runtime_api::test_util::temp_dir;

fn server() -> Command {
    let mut command = yoi();
    // Never the developer's own data directory.
    command.arg("--memory");
    command
}

#[test]
fn missing_config_file_exits_2() {
    let output = server()
        .args(["--config", "/nonexistent/yoi.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read config file"), "{stderr}");
}

#[test]
fn public_bind_without_token_exits_2() {
    let output = server().args(["--bind", "0.0.0.0:0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without a token"), "{stderr}");
}

#[test]
fn a_bind_that_fails_names_the_address_and_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = server()
        .args(["--bind", &format!("localhost:{port}")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("--bind"), "{stderr}");
    assert!(stderr.contains("YOI_BIND"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn a_token_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("token-mode");
    let token = dir.join("token");
    std::fs::write(&token, "SENTINEL-TOKEN-MODE\n").unwrap();
    // The server stops at the taken port, after reading its configuration.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let run = |mode: u32| {
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(mode)).unwrap();
        let output = server()
            .args(["--bind", &bind, "--token-file"])
            .arg(&token)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let shared = run(0o644);
    assert!(
        shared.contains("other users of this machine can read the token file"),
        "{shared}"
    );
    assert!(shared.contains("mode=644"), "{shared}");
    assert!(!shared.contains("token-mode"), "no path in {shared}");
    assert!(!shared.contains("SENTINEL"), "{shared}");
    let private = run(0o600);
    assert!(!private.contains("token file"), "{private}");
}

#[test]
fn a_bind_that_is_not_an_address_exits_2_saying_what_is_expected() {
    for bad in ["example.org:80", "localhost:99999", "7840"] {
        let output = server().args(["--bind", bad]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--bind"), "{bad}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_accepts_localhost_port() {
    let port = common::process::free_port("127.0.0.1");
    // Waits until `/healthz` answers at localhost:PORT.
    let _server =
        Server::start_at(&["serve"], &format!("localhost:{port}"), &["--memory"], &[]).await;
    // It is 127.0.0.1 that listens.
    let runtimes = get_json(
        &reqwest::Client::new(),
        format!("http://127.0.0.1:{port}/api/runtimes"),
    )
    .await;
    assert_eq!(
        runtimes["items"][0]["runtime_id"], "backend-internal",
        "{runtimes}"
    );
}

#[test]
fn help_lists_the_flags() {
    let output = server().arg("--help").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for flag in ["--bind", "--workspace", "--config", "--token-file"] {
        assert!(stdout.contains(flag), "{stdout}");
    }
}

const RT: &str = "api/runtimes/backend-internal";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_with_memory_old_ids_are_404_and_old_cursors_410() {
    let client = reqwest::Client::new();
    let server = Server::start(&["--memory"]).await;
    let alice = post_json(&client, format!("{}/{RT}/workers", server.base), json!({})).await;
    let alice = alice["worker_id"].as_str().unwrap().to_owned();
    let accepted = post_json(
        &client,
        format!("{}/{RT}/workers/{alice}/input?wait_ms=5000", server.base),
        json!({ "text": "hi" }),
    )
    .await;
    let cursor = accepted["next_cursor"].as_str().unwrap().to_owned();
    server.kill();

    let server = Server::start(&["--memory"]).await;
    let gone = client
        .get(format!("{}/{RT}/workers/{alice}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let bob = post_json(&client, format!("{}/{RT}/workers", server.base), json!({})).await;
    let bob = bob["worker_id"].as_str().unwrap().to_owned();
    assert_ne!(bob, alice, "an id is never reused");
    post_json(
        &client,
        format!("{}/{RT}/workers/{bob}/input?wait_ms=5000", server.base),
        json!({ "text": "hello" }),
    )
    .await;
    // Alice's cursor names an older log: never taken for one of Bob's.
    let stale = client
        .get(format!(
            "{}/{RT}/workers/{bob}/events?after={cursor}",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 410);
    let resumed = client
        .get(format!("{}/{RT}/workers/{bob}/events/stream", server.base))
        .header("last-event-id", &cursor)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_data_dir_workers_survive_a_restart() {
    let client = reqwest::Client::new();
    let data = temp_dir("data-dir");
    let data = data.to_str().unwrap();
    let server = Server::start(&["--data-dir", data]).await;
    let worker = post_json(
        &client,
        format!("{}/{RT}/workers", server.base),
        json!({ "display_name": "kept" }),
    )
    .await;
    let worker = worker["worker_id"].as_str().unwrap().to_owned();
    let done = post_json(
        &client,
        format!("{}/{RT}/workers/{worker}/input?wait_ms=5000", server.base),
        json!({ "text": "remember me" }),
    )
    .await;
    assert_eq!(done["outcome"], "completed");
    let runtimes: Value = get_json(&client, format!("{}/api/runtimes", server.base)).await;
    assert_eq!(
        runtimes["items"][0]["capabilities"]["persistent_store"],
        true
    );
    // The input was durable before it was answered; the rest of the turn
    // is checked by the crash test.
    server.kill();

    let server = Server::start(&["--data-dir", data]).await;
    let detail: Value = get_json(&client, format!("{}/{RT}/workers/{worker}", server.base)).await;
    assert_eq!(detail["display_name"], "kept");
    let transcript: Value = get_json(
        &client,
        format!("{}/{RT}/workers/{worker}/transcript", server.base),
    )
    .await;
    assert_eq!(transcript["entries"][0]["text"], "remember me");
}

/// `yoi backup` while the server runs gives a data directory a new server
/// opens, with every Worker made before it and none made after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_backup_opens_as_a_data_directory() {
    let client = reqwest::Client::new();
    let live = temp_dir("backup-live");
    let server = Server::start(&["--data-dir", live.to_str().unwrap()]).await;
    let workers = format!("{}/{RT}/workers", server.base);
    let kept = post_json(&client, workers.clone(), json!({ "display_name": "kept" })).await;
    let kept = kept["worker_id"].as_str().unwrap().to_owned();
    let done = post_json(
        &client,
        format!("{workers}/{kept}/input?wait_ms=5000"),
        json!({ "text": "in the backup" }),
    )
    .await;
    assert_eq!(done["outcome"], "completed");
    // The input was durable when accepted; the reply is written by a later
    // group commit. A list reads its writes (it waits for everything
    // recorded to be durable), so after it the finished turn is on disk.
    let listed = get_json(&client, workers.clone()).await;
    assert_eq!(listed["items"][0]["worker_id"], kept.as_str());

    let copy = temp_dir("backup-copy").join("copy");
    let backup = yoi()
        .args(["backup", "--data-dir"])
        .args([&live, &copy])
        .output()
        .unwrap();
    assert!(backup.status.success(), "{backup:?}");
    assert_eq!(
        String::from_utf8_lossy(&backup.stdout),
        "backed up runtime 'backend-internal'\n"
    );
    // As private as the store it copies.
    #[cfg(unix)]
    for folder in [&copy, &copy.join("runtimes/backend-internal")] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(folder).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", folder.display());
    }
    let later = post_json(&client, workers, json!({ "display_name": "later" })).await;
    let later = later["worker_id"].as_str().unwrap().to_owned();
    server.kill();

    let restored = Server::start(&["--data-dir", copy.to_str().unwrap()]).await;
    let workers = format!("{}/{RT}/workers", restored.base);
    let detail = get_json(&client, format!("{workers}/{kept}")).await;
    assert_eq!(detail["display_name"], "kept");
    let transcript = get_json(&client, format!("{workers}/{kept}/transcript")).await;
    assert_eq!(transcript["entries"][0]["text"], "in the backup");
    assert_eq!(transcript["entries"][1]["text"], "echo: in the backup");
    let missing = client
        .get(format!("{workers}/{later}"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[test]
fn a_backup_refuses_a_used_destination_and_a_missing_or_damaged_store() {
    let run = |data_dir: &std::path::Path, to: &std::path::Path| {
        yoi()
            .args(["backup", "--data-dir"])
            .args([data_dir, to])
            .output()
            .unwrap()
    };
    let empty = temp_dir("backup-empty");
    let nothing = run(&empty, &empty.join("copy"));
    assert_eq!(nothing.status.code(), Some(2), "{nothing:?}");
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no store to back up"));

    let damaged = temp_dir("backup-damaged");
    let folder = damaged.join("runtimes").join("backend-internal");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("yoi.sqlite3"), vec![0x42; 4096]).unwrap();
    // A good store beside it ("a-good" is copied first): nothing of the
    // backup is left when the damaged one fails.
    let good = damaged.join("runtimes").join("a-good");
    std::fs::create_dir_all(&good).unwrap();
    let conn = rusqlite::Connection::open(good.join("yoi.sqlite3")).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let refused = run(&damaged, &damaged.join("copy"));
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("runtime 'backend-internal'"), "{stderr}");
    assert!(!damaged.join("copy").exists(), "a partial backup was left");
    let empty_copy = temp_dir("backup-empty-copy");
    let refused = run(&damaged, &empty_copy);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert_eq!(std::fs::read_dir(&empty_copy).unwrap().count(), 0);

    // A folder with something in it is not written into.
    let used = temp_dir("backup-used");
    std::fs::write(used.join("keep.txt"), b"mine").unwrap();
    let in_the_way = run(&damaged, &used);
    assert_eq!(in_the_way.status.code(), Some(2), "{in_the_way:?}");
    assert!(String::from_utf8_lossy(&in_the_way.stderr).contains("not empty"));
    assert_eq!(std::fs::read_dir(&used).unwrap().count(), 1);
}

#[test]
fn a_store_that_cannot_be_opened_exits_3_with_a_clear_message() {
    /// What stderr must say, and how to spoil the data directory.
    type Case = (&'static str, fn(&std::path::Path));
    let cases: [Case; 3] = [
        ("damaged", |dir| {
            let folder = dir.join("runtimes").join("backend-internal");
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("yoi.sqlite3"), vec![0x42; 4096]).unwrap();
        }),
        ("upgrade yoi", |dir| {
            let folder = dir.join("runtimes").join("backend-internal");
            std::fs::create_dir_all(&folder).unwrap();
            let conn = rusqlite::Connection::open(folder.join("yoi.sqlite3")).unwrap();
            // Far past any schema this program knows.
            conn.pragma_update(None, "user_version", 9_999).unwrap();
        }),
        ("cannot be used", |dir| {
            // The data directory's runtimes folder is a file.
            std::fs::write(dir.join("runtimes"), b"not a folder").unwrap();
        }),
    ];
    for (expected, prepare) in cases {
        let dir = temp_dir("refused-store");
        prepare(&dir);
        let output = yoi()
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3), "{expected}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(stderr.contains("backend-internal"), "{stderr}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folders_yoi_creates_for_its_data_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let parent = temp_dir("private-data");
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = parent.join("data");
    let server = Server::start(&["--data-dir", data.to_str().unwrap()]).await;
    let folder = data.join("runtimes").join("backend-internal");
    for created in [&data, &data.join("runtimes"), &folder] {
        assert_eq!(mode(created), 0o700, "{}", created.display());
    }
    assert!(folder.join("yoi.sqlite3").exists());
    // A folder that was there already keeps its mode.
    assert_eq!(mode(&parent), 0o755);
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_data_directory_exits_3_until_the_first_is_gone() {
    let client = reqwest::Client::new();
    let dir = temp_dir("claimed-data");
    let data = dir.join("data");
    let args = ["--data-dir", data.to_str().unwrap()];
    let first = Server::start(&args).await;
    let worker = post_json(&client, format!("{}/{RT}/workers", first.base), json!({})).await;
    let worker = worker["worker_id"].as_str().unwrap().to_owned();
    // `yoi runtime serve` is refused the same way as `yoi serve`.
    for command in [
        &["serve"][..],
        &["runtime", "serve", "--id", "backend-internal"][..],
    ] {
        let output = yoi()
            .args(command)
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3), "{command:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let holder = format!("in use by another process (pid {})", first.pid());
        assert!(stderr.contains(&holder), "{stderr}");
        assert!(stderr.contains("backend-internal"), "{stderr}");
        assert!(!stderr.contains("claimed-data"), "no path in {stderr}");
    }
    // The first is untouched; killed, it leaves no claim behind.
    let detail = get_json(&client, format!("{}/{RT}/workers/{worker}", first.base)).await;
    assert_eq!(detail["worker_id"], worker.as_str());
    first.kill();
    let second = Server::start(&args).await;
    let detail = get_json(&client, format!("{}/{RT}/workers/{worker}", second.base)).await;
    assert_eq!(detail["worker_id"], worker.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_running_turns_writes_everything_and_keeps_the_queue() {
    let client = reqwest::Client::new();
    let dir = temp_dir("sigterm");
    let config = common::process::slow_profile_config(&dir, 3_000);
    let data = dir.join("data");
    let args = [
        "--config",
        config.as_str(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let server = Server::start(&args).await;
    let worker = post_json(
        &client,
        format!("{}/{RT}/workers", server.base),
        json!({ "profile": "slow" }),
    )
    .await;
    let worker = worker["worker_id"].as_str().unwrap().to_owned();
    let input = format!("{}/{RT}/workers/{worker}/input", server.base);
    post_json(&client, input.clone(), json!({ "text": "cut short" })).await;
    post_json(
        &client,
        input,
        json!({ "text": "waits", "on_busy": "queue" }),
    )
    .await;
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "a clean stop");

    let server = Server::start(&args).await;
    // The queued input runs after the restart.
    let mut transcript = Value::Null;
    for _ in 0..100 {
        transcript = get_json(
            &client,
            format!("{}/{RT}/workers/{worker}/transcript", server.base),
        )
        .await;
        if transcript["entries"][4]["status"] == "complete" {
            break;
        }
        let detail = get_json(&client, format!("{}/{RT}/workers/{worker}", server.base)).await;
        let after = detail["last_cursor"].as_str().unwrap().to_owned();
        let _ = client
            .get(format!(
                "{}/{RT}/workers/{worker}/events?after={after}&wait_ms=5000",
                server.base
            ))
            .send()
            .await;
    }
    let entries: Vec<(String, String)> = transcript["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["text"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(entries[0], ("cut short".into(), "complete".into()));
    assert_eq!(entries[1].1, "failed", "{entries:?}");
    assert_eq!(entries[2], ("waits".into(), "complete".into()));
    assert_eq!(
        entries[3],
        (
            "The turn failed: the runtime shut down during the turn".into(),
            "complete".into()
        )
    );
    assert_eq!(entries[4], ("echo: waits".into(), "complete".into()));
}

#[test]
fn startup_prints_the_console_api_and_openapi_urls_and_how_to_sign_in() {
    use std::io::{BufRead, BufReader};
    let dir = temp_dir("startup-lines");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "STARTUP-SENTINEL-TOKEN\n").unwrap();
    let port = common::process::free_port("127.0.0.1");
    let mut child = server()
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .arg("--token-file")
        .arg(&token_file)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("a token is required");
        lines.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = lines.join("\n");
    for expected in [
        format!("Console: http://127.0.0.1:{port}/"),
        format!("API: http://127.0.0.1:{port}/api/runtimes"),
        format!("OpenAPI document: http://127.0.0.1:{port}/api/openapi.json"),
        "sign in to the console".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected} in {text}");
    }
    assert!(!text.contains("STARTUP-SENTINEL"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a pipe: {text}"
    );
}

/// `yoi serve` into a pipe under `rust_log`: its whole output after one
/// `GET /healthz` and SIGTERM.
fn output_after_one_request(rust_log: &str) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let port = common::process::free_port("127.0.0.1");
    let mut child = server()
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", rust_log)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    // Listening once the start lines are out.
    while !text.contains("OpenAPI document") {
        assert_ne!(stdout.read_line(&mut text).unwrap(), 0, "{text}");
    }
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    connection
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    connection.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let pid = child.id();
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    stdout.read_to_string(&mut text).unwrap();
    assert!(child.wait().unwrap().success(), "{text}");
    text
}

#[test]
fn each_request_is_one_line_in_the_log_unless_its_target_is_filtered_out() {
    let text = output_after_one_request("info");
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("request method="))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    // The timestamp, then the line `tracing-subscriber`'s format writes.
    let (timestamp, rest) = lines[0].split_at(27);
    assert!(
        timestamp.len() == 27 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "{timestamp}"
    );
    let (fixed, latency) = rest
        .split_once(" latency_us=")
        .unwrap_or_else(|| panic!("{rest}"));
    assert_eq!(
        fixed,
        r#"  INFO yoi_workspace_server::middleware: request method=GET route="/healthz" status=200"#
    );
    assert!(latency.parse::<u64>().is_ok(), "{latency}");

    let text = output_after_one_request("info,yoi_workspace_server::middleware=warn");
    assert!(text.contains("stopped"), "{text}");
    assert!(!text.contains("request method="), "{text}");
}
