//! The config file, overrides and the start-up refusals.

mod common;

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use yoi::config::{ConfigError, FileConfig, Overrides, RuntimeConfig, StoreConfig};
use yoi_runtime_embedded::EmbeddedOptions;

const EXAMPLE: &str = include_str!("../../docs/config.example.toml");

fn parse(text: &str) -> Result<FileConfig, ConfigError> {
    FileConfig::parse(Path::new("yoi.toml"), text)
}

/// No file, these overrides, no environment.
fn with_overrides(overrides: Overrides) -> yoi::config::ServerConfig {
    FileConfig::default().resolve(overrides, |_| None).unwrap()
}

fn parse_error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

/// The error of a file that parses but does not resolve (no environment).
fn resolve_error(text: &str) -> String {
    parse(text)
        .unwrap()
        .resolve(Overrides::default(), |_| None)
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn the_documented_example_starts_as_shipped() {
    let config = parse(EXAMPLE).unwrap();
    // No environment at all: the example needs no key.
    let server = config.resolve(Overrides::default(), |_| None).unwrap();
    assert_eq!(server.bind.to_string(), "127.0.0.1:7840");
    assert_eq!(server.max_body_bytes, 1_048_576);
    let embedded = only_embedded(&server.runtimes);
    assert_eq!(embedded.limits.max_input_bytes, 65_536);
    let names: Vec<&str> = embedded.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["slow", "local-llama"]);
    assert!(server.token.is_none());
}

#[test]
fn no_file_means_the_embedded_default() {
    let server = FileConfig::default()
        .resolve(Overrides::default(), |_| None)
        .unwrap();
    let embedded = only_embedded(&server.runtimes);
    assert!(embedded.profiles.is_empty());
    assert_eq!(embedded.default_profile.as_str(), "default");
    assert_eq!(embedded.runtime_id.as_str(), "backend-internal");
}

/// The one Runtime of a default configuration: the embedded one.
fn only_embedded(runtimes: &[RuntimeConfig]) -> &EmbeddedOptions {
    match runtimes {
        [RuntimeConfig::Embedded { options, .. }] => options,
        other => panic!("expected one embedded runtime, got {other:?}"),
    }
}

#[test]
fn a_workspace_adds_local_compat_after_the_embedded_runtime() {
    let server = with_overrides(Overrides {
        workspace: Some("/tmp/somewhere".into()),
        ..Overrides::default()
    });
    let ids: Vec<String> = server.runtimes.iter().map(runtime_id).collect();
    assert_eq!(ids, ["backend-internal", "local-compat"]);
}

fn runtime_id(runtime: &RuntimeConfig) -> String {
    match runtime {
        RuntimeConfig::Embedded { options, .. } => options.runtime_id.to_string(),
        RuntimeConfig::LocalCompat { runtime_id, .. } => runtime_id.to_string(),
        _ => unreachable!("no other kinds yet"),
    }
}

#[test]
fn runtimes_tables_replace_the_defaults() {
    let server = parse(
        r#"
        [[runtimes]]
        id = "alpha"
        kind = "embedded"
        display_name = "Alpha"

        [[runtimes]]
        id = "records"
        kind = "local_compat"
        workspace = "/tmp/ws"

        [[runtimes]]
        id = "beta"
        kind = "embedded"
        "#,
    )
    .unwrap()
    .resolve(Overrides::default(), |_| None)
    .unwrap();
    let ids: Vec<String> = server.runtimes.iter().map(runtime_id).collect();
    assert_eq!(ids, ["alpha", "records", "beta"]);
    let RuntimeConfig::Embedded { options: alpha, .. } = &server.runtimes[0] else {
        panic!("alpha is embedded")
    };
    assert_eq!(alpha.display_name, "Alpha");
}

#[test]
fn bad_runtimes_tables_are_refused_by_id() {
    let resolve = |text: &str| {
        parse(text)
            .and_then(|file| file.resolve(Overrides::default(), |_| None))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let err = resolve(
        "[[runtimes]]\nid = \"a\"\nkind = \"embedded\"\n[[runtimes]]\nid = \"a\"\nkind = \"local_compat\"\nworkspace = \"/x\"",
    );
    assert!(
        err.contains("runtime 'a'") && err.contains("earlier"),
        "{err}"
    );
    let err = resolve("[[runtimes]]\nid = \"r\"\nkind = \"local_compat\"");
    assert!(
        err.contains("runtime 'r'") && err.contains("workspace"),
        "{err}"
    );
    let err = resolve("[[runtimes]]\nid = \"e\"\nkind = \"embedded\"\nworkspace = \"/x\"");
    assert!(err.contains("runtime 'e'"), "{err}");
    let err = resolve("[[runtimes]]\nid = \"x\"\nkind = \"martian\"");
    assert!(err.contains("martian") || err.contains("kind"), "{err}");
    let err = resolve("[[runtimes]]\nid = \"../x\"\nkind = \"embedded\"");
    assert!(
        err.contains("runtime_id") || err.contains("invalid"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_named() {
    let err = parse("colour = \"blue\"").unwrap_err().to_string();
    assert!(err.contains("colour"), "{err}");
    let err = parse("[limits]\nmax_inptu_bytes = 3")
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_inptu_bytes"), "{err}");
    let err = parse("[[profiles]]\nname = \"p\"\nbackend = \"echo\"\napi_key = \"sk-x\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("api_key"), "{err}");
    assert!(!err.contains("sk-x"), "the value is not echoed: {err}");
}

#[test]
fn parse_errors_say_line_column_and_key_on_one_line() {
    let err = parse_error("bind_nothing = 1\n[limits]\nmax_input_bytes = \"x\"");
    assert!(
        err.contains("line 1, column 1, key `bind_nothing`"),
        "{err}"
    );
    let err = parse_error("[limits]\nmax_input_bytes = \"x\"");
    assert!(
        err.contains("line 2, column 19, key `limits.max_input_bytes`"),
        "{err}"
    );
    assert!(err.contains("expected u64"), "{err}");
    let err = parse_error("[[runtimes]]\nid = \"a\"\nkind = \"embeded\"");
    assert!(
        err.contains("line 3, column 8, key `runtimes.kind`"),
        "{err}"
    );
    let err = parse_error("# a comment\nprofiles = [\n");
    assert!(err.contains("line 3, column 1"), "{err}");
    assert!(!err.contains('\n'), "one line: {err:?}");
}

#[test]
fn profile_keys_must_fit_the_backend() {
    let config =
        parse("[[profiles]]\nname = \"e\"\nbackend = \"echo\"\nbase_url = \"http://x\"").unwrap();
    let err = config
        .resolve(Overrides::default(), |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("profile 'e'") && err.contains("base_url"),
        "{err}"
    );
    let err = resolve_error("[[profiles]]\nname = \"o\"\nbackend = \"openai\"\nmodel = \"m\"");
    assert!(err.contains("needs base_url"), "{err}");
    let err = resolve_error(
        "[[profiles]]\nname = \"o\"\nbackend = \"openai\"\nbase_url = \"http://u:p@h/v1\"\nmodel = \"m\"",
    );
    assert!(err.contains("credentials"), "{err}");
    let err = parse("[[profiles]]\nname = \"x\"\nbackend = \"magic\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("magic") || err.contains("variant"), "{err}");
}

#[test]
fn a_missing_key_variable_is_an_error_naming_it() {
    let config = parse(
        "[[profiles]]\nname = \"hosted\"\nbackend = \"openai\"\n\
         base_url = \"https://api.example.org/v1\"\nmodel = \"m\"\n\
         api_key_env = \"OPENAI_API_KEY\"",
    )
    .unwrap();
    let err = config
        .resolve(Overrides::default(), |_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("OPENAI_API_KEY"), "{err}");
}

#[test]
fn default_profile_must_exist() {
    let err = resolve_error("default_profile = \"ghost\"");
    assert!(err.contains("ghost"), "{err}");
}

#[test]
fn public_bind_needs_a_token() {
    let overrides = || Overrides {
        bind: Some("0.0.0.0:7840".parse().unwrap()),
        ..Overrides::default()
    };
    let err = FileConfig::default()
        .resolve(overrides(), |_| None)
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::PublicWithoutToken { .. }),
        "{err}"
    );
    let with_token = Overrides {
        token: Some(SecretString::from("t0ken")),
        ..overrides()
    };
    assert!(FileConfig::default().resolve(with_token, |_| None).is_ok());
}

#[test]
fn token_file_is_read_and_trimmed() {
    let dir = common::temp_dir("token");
    let path = dir.join("token");
    std::fs::write(&path, "  s3cret\n").unwrap();
    let config = parse(&format!("token_file = {:?}", path.display().to_string())).unwrap();
    let server = config.resolve(Overrides::default(), |_| None).unwrap();
    assert_eq!(server.token.unwrap().expose_secret(), "s3cret");
    std::fs::write(&path, "\n").unwrap();
    let err = resolve_error(&format!("token_file = {:?}", path.display().to_string()));
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn cors_origins_are_checked() {
    let config =
        parse("cors_allowed_origins = [\"http://localhost:5173\", \"https://app.example:8443\"]")
            .unwrap();
    let server = config.resolve(Overrides::default(), |_| None).unwrap();
    assert_eq!(server.cors_allowed_origins.len(), 2);
    for bad in ["localhost:5173", "http://host/path", "*", "https://"] {
        let err = resolve_error(&format!("cors_allowed_origins = [{bad:?}]"));
        assert!(err.contains("cors_allowed_origins"), "{bad}: {err}");
    }
}

#[test]
fn allowed_hosts_are_bare_names() {
    let config = parse("allowed_hosts = [\"Yoi.LAN\", \"10.0.0.7\"]").unwrap();
    let server = config.resolve(Overrides::default(), |_| None).unwrap();
    assert_eq!(server.allowed_hosts, ["yoi.lan", "10.0.0.7"]);
    for bad in [
        "http://yoi.lan",
        "yoi.lan:7840",
        "yoi.lan/x",
        "",
        "*",
        "a b",
    ] {
        let err = resolve_error(&format!("allowed_hosts = [{bad:?}]"));
        assert!(err.contains("allowed_hosts"), "{bad}: {err}");
    }
}

#[test]
fn trusted_proxies_are_addresses_or_networks() {
    let config = parse("trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"]").unwrap();
    let server = config.resolve(Overrides::default(), |_| None).unwrap();
    for inside in ["127.0.0.1", "10.20.30.40", "fd00::1"] {
        assert!(
            server.trusted_proxies.contains(inside.parse().unwrap()),
            "{inside}"
        );
    }
    assert!(
        !server
            .trusted_proxies
            .contains("127.0.0.2".parse().unwrap())
    );
    assert!(
        with_overrides(Overrides::default())
            .trusted_proxies
            .is_empty()
    );
    for bad in ["localhost", "10.0.0.0/40", "10.0.0.1:80", ""] {
        let err = resolve_error(&format!("trusted_proxies = [{bad:?}]"));
        assert!(
            err.contains("trusted_proxies") && err.contains(&format!("'{bad}'")),
            "{bad}: {err}"
        );
    }
}

#[test]
fn debug_output_shows_no_paths_or_secrets() {
    let dir = common::temp_dir("SENTINEL-DEBUG");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "SENTINEL-TOKEN").unwrap();
    let text = format!(
        "token_file = {:?}\n{EXAMPLE}",
        token_file.display().to_string()
    )
    .replace("default_profile = \"default\"", "");
    let config = parse(&text).unwrap();
    let file_debug = format!("{config:?}");
    let overrides = Overrides {
        workspace: Some(dir.clone()),
        ..Overrides::default()
    };
    let overrides_debug = format!("{overrides:?}");
    let server = config
        .resolve(overrides, |_| Some("sk-SENTINEL-KEY".to_owned()))
        .unwrap();
    let server_debug = format!("{server:#?}");
    for text in [file_debug, overrides_debug, server_debug] {
        assert!(!text.contains("SENTINEL"), "{text}");
        assert!(!text.contains(dir.to_str().unwrap()), "{text}");
    }
}

fn store_of(runtime: &RuntimeConfig) -> String {
    match runtime {
        RuntimeConfig::Embedded { store, .. } => match store {
            StoreConfig::Memory => "memory".to_owned(),
            StoreConfig::Sqlite { path, .. } => path.display().to_string(),
            _ => unreachable!("no other stores yet"),
        },
        _ => "none".to_owned(),
    }
}

#[test]
fn a_data_dir_makes_embedded_runtimes_durable_and_memory_overrides_it() {
    let with_dir = with_overrides(Overrides {
        data_dir: Some("/data".into()),
        ..Overrides::default()
    });
    assert_eq!(
        store_of(&with_dir.runtimes[0]),
        "/data/runtimes/backend-internal/yoi.sqlite3"
    );
    let memory = with_overrides(Overrides {
        data_dir: Some("/data".into()),
        memory: true,
        ..Overrides::default()
    });
    assert_eq!(store_of(&memory.runtimes[0]), "memory");
    // No data directory at all: memory (the library's default; `yoi serve`
    // passes the platform data directory).
    let nothing = FileConfig::default()
        .resolve(Overrides::default(), |_| None)
        .unwrap();
    assert_eq!(store_of(&nothing.runtimes[0]), "memory");
    // Debug never shows the path.
    assert!(!format!("{with_dir:?}").contains("/data"), "{with_dir:?}");
}

#[test]
fn the_store_stall_time_reaches_each_sqlite_store() {
    let stall_of = |text: &str| {
        let config = parse(text)
            .unwrap()
            .resolve(
                Overrides {
                    data_dir: Some("/data".into()),
                    ..Overrides::default()
                },
                |_| None,
            )
            .unwrap();
        match &config.runtimes[0] {
            RuntimeConfig::Embedded {
                store: StoreConfig::Sqlite { stall_after, .. },
                ..
            } => *stall_after,
            _ => panic!("not a SQLite store"),
        }
    };
    assert_eq!(
        stall_of(""),
        yoi_runtime_embedded::store::SqliteStore::DEFAULT_STALL_AFTER
    );
    assert_eq!(
        stall_of("[limits]\nstore_stall_ms = 2500\n"),
        std::time::Duration::from_millis(2500)
    );
    let err = resolve_error("[limits]\nstore_stall_ms = 0\n");
    assert!(err.contains("limits.store_stall_ms"), "{err}");
}

#[test]
fn runtimes_entries_choose_their_store() {
    let text = r#"
        data_dir = "/srv/yoi"
        [[runtimes]]
        id = "durable"
        kind = "embedded"
        [[runtimes]]
        id = "scratch"
        kind = "embedded"
        store = "memory"
    "#;
    let server = parse(text)
        .unwrap()
        .resolve(Overrides::default(), |_| None)
        .unwrap();
    assert_eq!(
        store_of(&server.runtimes[0]),
        "/srv/yoi/runtimes/durable/yoi.sqlite3"
    );
    assert_eq!(store_of(&server.runtimes[1]), "memory");
    // sqlite without a data directory, or on a local-compat entry, is named.
    let err = resolve_error("[[runtimes]]\nid = \"d\"\nkind = \"embedded\"\nstore = \"sqlite\"");
    assert!(
        err.contains("runtime 'd'") && err.contains("data directory"),
        "{err}"
    );
    let err = resolve_error(
        "[[runtimes]]\nid = \"l\"\nkind = \"local_compat\"\nworkspace = \"/w\"\nstore = \"memory\"",
    );
    assert!(
        err.contains("runtime 'l'") && err.contains("store"),
        "{err}"
    );
}

#[test]
fn limits_reach_the_runtime_and_the_listener() {
    let config = parse(
        "[limits]\nmax_remembered_client_ids = 5000\nheader_timeout_ms = 2500\n\
         max_transcript_bytes = 1000000\nmax_event_log_bytes = 200000\nmax_live_workers = 9\n\
         max_header_bytes = 32768\nmax_connections = 64\nreserve_connections = 4\n\
         shutdown_grace_ms = 1500\nfailed_auth_burst = 4\nfailed_auth_refill_ms = 250\n",
    )
    .unwrap();
    let server = config.resolve(Overrides::default(), |_| None).unwrap();
    assert_eq!(
        only_embedded(&server.runtimes)
            .limits
            .max_remembered_client_ids,
        5000
    );
    let limits = server.connection_limits;
    assert_eq!(
        limits.header_timeout,
        std::time::Duration::from_millis(2500)
    );
    assert_eq!(
        (
            limits.max_header_bytes,
            limits.max_connections,
            limits.reserve_connections
        ),
        (32768, 64, 4)
    );
    assert_eq!(
        limits.shutdown_grace,
        std::time::Duration::from_millis(1500)
    );
    assert_eq!(
        server.failed_auth_limits,
        yoi_workspace_server::FailedAuthLimits {
            burst: 4,
            refill: std::time::Duration::from_millis(250)
        }
    );
    // Defaults when unset, and out-of-range values named.
    let defaults = with_overrides(Overrides::default());
    assert_eq!(
        defaults.connection_limits,
        yoi_workspace_server::ConnectionLimits::default()
    );
    assert_eq!(
        defaults.failed_auth_limits,
        yoi_workspace_server::FailedAuthLimits::default()
    );
    for (text, key) in [
        ("max_header_bytes = 100", "limits.max_header_bytes"),
        ("max_connections = 0", "limits.max_connections"),
        ("header_timeout_ms = 0", "limits.header_timeout_ms"),
        ("failed_auth_refill_ms = 0", "limits.failed_auth_refill_ms"),
        ("write_timeout_ms = 0", "limits.write_timeout_ms"),
        ("max_body_bytes = 0", "limits.max_body_bytes"),
        (
            "max_live_workers = 0",
            "max_live_workers must be at least 1",
        ),
        (
            "max_retained_bytes = 0",
            "max_retained_bytes must be at least 1",
        ),
        (
            "max_resident_workers = 0",
            "max_resident_workers must be at least 1",
        ),
        (
            "max_remembered_client_ids = 0",
            "max_remembered_client_ids must be at least 1",
        ),
    ] {
        let err = resolve_error(&format!("[limits]\n{text}\n"));
        assert!(err.contains(key), "{text}: {err}");
    }
}
