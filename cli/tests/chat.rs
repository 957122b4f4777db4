//! `yoi chat` against a live `yoi serve`: a turn streams in, Ctrl-C
//! (a real SIGINT) cancels the running turn, a second Ctrl-C quits.

mod common;

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::process::{
    Server, create_worker, free_port, get_json, slow_profile_config, worker_detail, yoi,
};
use yoi_runtime_api::test_util::temp_dir;

/// `yoi chat`'s output so far, fed by a reader thread.
struct Output {
    chunks: mpsc::Receiver<String>,
    text: String,
}

impl Output {
    fn of(child: &mut Child) -> Self {
        let mut stdout = child.stdout.take().unwrap();
        let (send, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            while let Ok(n @ 1..) = stdout.read(&mut buffer) {
                if send
                    .send(String::from_utf8_lossy(&buffer[..n]).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
        Self {
            chunks,
            text: String::new(),
        }
    }

    /// Waits until the output contains `needle`.
    fn wait_for(&mut self, needle: &str) {
        while !self.text.contains(needle) {
            match self.chunks.recv_timeout(Duration::from_secs(20)) {
                Ok(chunk) => self.text.push_str(&chunk),
                Err(err) => panic!("no {needle:?} ({err}); output so far: {:?}", self.text),
            }
        }
    }
}

/// `command` with piped stdin and stdout: the child, its output reader and
/// its input.
fn spawn_piped(mut command: std::process::Command) -> (Child, Output, ChildStdin) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let output = Output::of(&mut child);
    let stdin = child.stdin.take().unwrap();
    (child, output, stdin)
}

/// `yoi chat ARGS` on `server`.
fn chat(server: &Server, args: &[&str]) -> (Child, Output, ChildStdin) {
    let mut command = yoi();
    command.args(["chat", "--url", &server.base]).args(args);
    spawn_piped(command)
}

fn interrupt(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streams_a_reply_and_ctrl_c_cancels_the_running_turn() {
    let dir = temp_dir("yoi-chat");
    let config = slow_profile_config(&dir, 4_000);
    let server = Server::start(&["--memory", "--config", &config]).await;
    let (mut chat, mut output, mut stdin) = chat(&server, &["--profile", "slow"]);

    // A whole turn: the echo arrives in pieces over four seconds.
    writeln!(stdin, "one two three four five six").unwrap();
    output.wait_for("echo:");
    assert!(
        !output.text.contains("six"),
        "printed as it streams: {:?}",
        output.text
    );
    output.wait_for("one two three four five six\n");

    // Ctrl-C while a reply streams cancels that turn and keeps chatting.
    writeln!(stdin, "seven eight nine ten eleven twelve").unwrap();
    output.wait_for("echo: seven");
    interrupt(&chat);
    output.wait_for("[cancelled]");
    assert!(chat.try_wait().unwrap().is_none(), "still chatting");

    let client = reqwest::Client::new();
    let workers = get_json(&client, format!("{}/api/workers", server.base)).await;
    let worker = workers["items"][0]["worker_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let transcript = get_json(
        &client,
        format!(
            "{}/api/runtimes/backend-internal/workers/{worker}/transcript",
            server.base
        ),
    )
    .await;
    let statuses: Vec<&str> = transcript["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["role"] == "assistant")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["complete", "cancelled"]);

    // Ctrl-C with nothing running quits, leaving the Worker.
    interrupt(&chat);
    let status = tokio::task::spawn_blocking(move || chat.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_attaches_to_a_worker_and_waits_for_replies_at_end_of_input() {
    let server = Server::start(&["--memory"]).await;
    let client = reqwest::Client::new();
    let worker = &create_worker(&client, &server.base, serde_json::json!({})).await;
    // Piped input that ends at once: the replies still come before exit.
    let (mut chat, mut output, mut stdin) = chat(&server, &["--worker", worker]);
    writeln!(stdin, "alpha\nbeta").unwrap();
    drop(stdin);
    output.wait_for("echo: alpha\necho: beta\n");
    let status = tokio::task::spawn_blocking(move || chat.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    let detail = worker_detail(&client, &server.base, worker).await;
    assert_eq!(detail["transcript_len"], 4);

    // An unknown Worker is a clear error and exit 1.
    let output = yoi()
        .args(["chat", "--url", &server.base, "--worker", "w-nope"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("w-nope"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_terminal_ctrl_c_is_the_terminals_own_and_ctrl_d_quits() {
    // `script` gives `yoi chat` a pseudo-terminal: the line discipline edits
    // lines, turns Ctrl-C (0x03) into SIGINT and Ctrl-D (0x04) into the end
    // of input, as for a person at a terminal.
    let dir = temp_dir("yoi-chat-pty");
    let config = slow_profile_config(&dir, 4_000);
    let server = Server::start(&["--memory", "--config", &config]).await;
    // `exec`: whatever `$SHELL` runs the command must not stay as its
    // parent, or Ctrl-C (sent to the terminal's whole foreground group)
    // kills that shell (dash does not exec a lone `-c` command), and
    // `script` reports the shell's death by SIGINT as exit 130.
    let command = format!(
        "exec {} chat --url {} --profile slow",
        env!("CARGO_BIN_EXE_yoi"),
        server.base
    );
    let mut script = std::process::Command::new("script");
    script
        .args(["-qefc", &command, "/dev/null"])
        .env_remove("YOI_TOKEN");
    let (mut chat, mut output, mut terminal) = spawn_piped(script);
    output.wait_for("Ctrl-D quits");
    // A typo erased with Backspace (0x7f) by the terminal's line editing.
    terminal.write_all(b"hellp\x7fo there\n").unwrap();
    output.wait_for("echo: hello there");
    output.wait_for("echo: hello there\r\n");
    terminal
        .write_all(b"one two three four five six seven\n")
        .unwrap();
    output.wait_for("echo: one");
    terminal.write_all(b"\x03").unwrap();
    output.wait_for("[cancelled]");
    terminal.write_all(b"\x04").unwrap();
    let status = tokio::task::spawn_blocking(move || chat.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}: {:?}", output.text);
    // The terminal echoed the typo, but the server got the edited line.
    assert!(!output.text.contains("echo: hellp"), "{:?}", output.text);
}

/// The two mistakes a first `yoi chat` meets say what to do: no server at
/// the address (named, with the flag that sets it), and a missing token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_says_what_to_do_without_a_server_or_a_token() {
    let nowhere = format!(
        "http://127.0.0.1:{}",
        common::process::free_port("127.0.0.1")
    );
    let output = yoi()
        .args(["chat", "--url", &nowhere])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&nowhere) && stderr.contains("--url"),
        "{stderr}"
    );

    let dir = temp_dir("chat-token");
    let token = dir.join("token");
    std::fs::write(&token, "chat-test-token").unwrap();
    let server = Server::start(&["--memory", "--token-file", token.to_str().unwrap()]).await;
    let output = yoi()
        .args(["chat", "--url", &server.base])
        .env_remove("YOI_TOKEN")
        .env_remove("YOI_TOKEN_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--token-file"), "{stderr}");
    assert!(!stderr.contains("chat-test-token"), "{stderr}");
}

/// The stream of replies outlives a server that is away for longer than
/// the client's own reconnection (about 7 s): chat opens it again, and the
/// reply to an input sent once the server is back still prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_reopens_its_replies_after_a_long_outage() {
    let data = temp_dir("chat-outage").join("data");
    let bind = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let args = ["--data-dir", data.to_str().unwrap()];
    let server = Server::start_at(&["serve"], &bind, &args, &[]).await;
    let client = reqwest::Client::new();
    let worker = create_worker(&client, &server.base, serde_json::json!({})).await;
    let (mut chat, mut output, mut stdin) = chat(&server, &["--worker", &worker]);
    writeln!(stdin, "before").unwrap();
    output.wait_for("echo: before\n");
    // A clean stop: everything the chat saw is on disk.
    assert!(server.terminate().success());
    // Past the remote client's reconnection backoff, so its stream ends.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let server = Server::start_at(&["serve"], &bind, &args, &[]).await;
    // Another client sends an input; its reply reaches the chat.
    let input = client
        .post(format!(
            "{}/api/runtimes/backend-internal/workers/{worker}/input",
            server.base
        ))
        .json(&serde_json::json!({ "text": "after" }))
        .send()
        .await
        .unwrap();
    assert_eq!(input.status(), 202);
    output.wait_for("echo: after\n");
    drop(stdin);
    let status = tokio::task::spawn_blocking(move || chat.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
}
