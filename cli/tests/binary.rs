//! The binary refuses bad configuration with a clear message and exit code 2.

use std::process::Command;

fn server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_yoi"));
    for var in [
        "YOI_BIND",
        "YOI_WORKSPACE",
        "YOI_CONFIG",
        "YOI_TOKEN_FILE",
        "YOI_TOKEN",
    ] {
        command.env_remove(var);
    }
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
fn help_lists_the_flags() {
    let output = server().arg("--help").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for flag in ["--bind", "--workspace", "--config", "--token-file"] {
        assert!(stdout.contains(flag), "{stdout}");
    }
}
