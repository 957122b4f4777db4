//! Every variant: codes, wire round trips, status table, redaction.
use super::*;

fn rid() -> RuntimeId {
    RuntimeId::new("rt").unwrap()
}
fn wid() -> WorkerId {
    WorkerId::new("w-1").unwrap()
}

/// One value of every variant. The `match` makes this fail to compile
/// when a variant is added without a sample.
pub(crate) fn one_of_each() -> Vec<RuntimeError> {
    let all = vec![
        RuntimeError::invalid_request("text must not be blank"),
        RuntimeError::from(WorkerId::new("../x").unwrap_err()),
        RuntimeError::UnknownRuntime { runtime_id: rid() },
        RuntimeError::UnknownWorker {
            runtime_id: rid(),
            worker_id: wid(),
        },
        RuntimeError::UnknownProfile {
            runtime_id: rid(),
            profile: ProfileName::new("nope").unwrap(),
            known: vec![
                ProfileName::new("default").unwrap(),
                ProfileName::new("slow").unwrap(),
            ],
        },
        RuntimeError::WorkerBusy {
            runtime_id: rid(),
            worker_id: wid(),
            reason: BusyReason::QueueFull,
        },
        RuntimeError::WorkerStopped {
            runtime_id: rid(),
            worker_id: wid(),
        },
        RuntimeError::RuntimeUnavailable {
            runtime_id: rid(),
            message: "shutting down".into(),
        },
        RuntimeError::UnsupportedOperation {
            runtime_id: rid(),
            operation: Operation::SendInput,
        },
        RuntimeError::LimitTooLarge {
            field: "limit".into(),
            requested: 500,
            max: 200,
        },
        RuntimeError::CursorExpired {
            runtime_id: rid(),
            worker_id: Some(wid()),
            cursor: EventCursor::new("3").unwrap(),
        },
        RuntimeError::PayloadTooLarge {
            what: "input text".into(),
            size: 70000,
            max: 65536,
        },
        RuntimeError::internal("store failed", "disk /var/secret/path is full"),
        RuntimeError::Unauthorized,
        RuntimeError::RouteNotFound,
        RuntimeError::MethodNotAllowed,
        RuntimeError::UnsupportedMediaType,
        RuntimeError::HostNotAllowed,
        RuntimeError::CapacityExceeded {
            what: "connections".into(),
        },
        RuntimeError::CrossSiteRequest {
            reason: "origin https://evil.example is not allowed".into(),
        },
        RuntimeError::TooManyAttempts {
            retry_after_secs: 3,
        },
        RuntimeError::NotReady {
            reason: "the server is shutting down".into(),
        },
        RuntimeError::InputIdConflict {
            runtime_id: rid(),
            worker_id: wid(),
            client_input_id: InputId::new("retry-1").unwrap(),
            input_id: InputId::new("in-1").unwrap(),
        },
    ];
    for err in &all {
        match err {
            RuntimeError::InvalidRequest { .. }
            | RuntimeError::InvalidId { .. }
            | RuntimeError::UnknownRuntime { .. }
            | RuntimeError::UnknownWorker { .. }
            | RuntimeError::UnknownProfile { .. }
            | RuntimeError::WorkerBusy { .. }
            | RuntimeError::WorkerStopped { .. }
            | RuntimeError::RuntimeUnavailable { .. }
            | RuntimeError::UnsupportedOperation { .. }
            | RuntimeError::LimitTooLarge { .. }
            | RuntimeError::CursorExpired { .. }
            | RuntimeError::PayloadTooLarge { .. }
            | RuntimeError::Internal { .. }
            | RuntimeError::Unauthorized
            | RuntimeError::RouteNotFound
            | RuntimeError::MethodNotAllowed
            | RuntimeError::UnsupportedMediaType
            | RuntimeError::HostNotAllowed
            | RuntimeError::CapacityExceeded { .. }
            | RuntimeError::CrossSiteRequest { .. }
            | RuntimeError::TooManyAttempts { .. }
            | RuntimeError::NotReady { .. }
            | RuntimeError::InputIdConflict { .. } => {}
        }
    }
    all
}

#[test]
fn every_code_is_covered_once_and_parses_back() {
    let errors = one_of_each();
    let codes: Vec<ErrorCode> = errors.iter().map(RuntimeError::code).collect();
    assert_eq!(codes, ErrorCode::ALL, "one sample per code, in order");
    for code in ErrorCode::ALL {
        assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
        let json = serde_json::to_string(code).unwrap();
        assert_eq!(json, format!("\"{}\"", code.as_str()));
    }
    assert_eq!("nope".parse::<ErrorCode>(), Err(UnknownErrorCode));
}

/// The wire form of every code: serialize, parse back, and get the same
/// error (an internal error's message stays behind).
#[test]
fn every_variant_round_trips_through_its_wire_form() {
    for err in one_of_each() {
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["code"], err.code().as_str(), "{json}");
        let rebuilt: RuntimeError = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(rebuilt.code(), err.code());
        assert_eq!(serde_json::to_value(&rebuilt).unwrap(), json);
        if err.code() != ErrorCode::Internal {
            assert_eq!(rebuilt.to_string(), err.to_string());
        }
    }
}

#[cfg(feature = "http")]
#[test]
fn every_variant_round_trips_through_a_problem_document() {
    for err in one_of_each() {
        let code = err.code();
        let detail = err.public_message();
        let json = serde_json::to_value(Problem::from(err)).unwrap();
        assert_eq!(json["type"], format!("urn:yoi:problem:{code}"));
        assert_eq!(json["status"], code.http_status().as_u16());
        assert_eq!(json["detail"], detail);
        let problem: Problem = serde_json::from_value(json).unwrap();
        assert_eq!(problem.status(), code.http_status());
        assert_eq!(problem.into_error().code(), code);
    }
}

#[test]
fn incomplete_or_unknown_wire_forms_are_refused() {
    // A code without the fields it needs, or a code this version does not
    // know, does not parse; a client reports the peer as broken.
    for json in [
        r#"{"code":"unknown_worker","runtime_id":"rt"}"#,
        r#"{"code":"worker_busy","runtime_id":"rt","worker_id":"w","reason":"bored"}"#,
        r#"{"code":"from_the_future"}"#,
        r#"{"runtime_id":"rt"}"#,
    ] {
        assert!(
            serde_json::from_str::<RuntimeError>(json).is_err(),
            "{json}"
        );
    }
}

#[test]
fn internal_details_never_reach_the_public_message_or_body() {
    let err = RuntimeError::internal("store failed", "disk /var/secret/path is full");
    assert!(!err.public_message().contains("/var/secret"));
    let json = serde_json::to_string(&err).unwrap();
    assert!(!json.contains("/var/secret"), "{json}");
    assert!(!json.contains("store failed"), "{json}");
    assert!(!err.to_string().contains("/var/secret"));
    assert!(!format!("{err:?}").contains("/var/secret"), "{err:?}");
    // Logs can still reach the cause through the source chain.
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.to_string().contains("/var/secret"));
}

#[test]
fn error_bodies_snapshot() {
    insta::assert_json_snapshot!(one_of_each());
}

#[cfg(feature = "http")]
#[test]
fn status_table_is_exhaustive_and_fixed() {
    let table: Vec<(&str, u16)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str(), c.http_status().as_u16()))
        .collect();
    assert_eq!(
        table,
        vec![
            ("invalid_request", 400),
            ("invalid_id", 400),
            ("unknown_runtime", 404),
            ("unknown_worker", 404),
            ("unknown_profile", 422),
            ("worker_busy", 409),
            ("worker_stopped", 409),
            ("runtime_unavailable", 503),
            ("unsupported_operation", 501),
            ("limit_too_large", 400),
            ("cursor_expired", 410),
            ("payload_too_large", 413),
            ("internal", 500),
            ("unauthorized", 401),
            ("route_not_found", 404),
            ("method_not_allowed", 405),
            ("unsupported_media_type", 415),
            ("host_not_allowed", 403),
            ("capacity_exceeded", 503),
            ("cross_site_request", 403),
            ("too_many_attempts", 429),
            ("not_ready", 503),
            ("input_id_conflict", 409),
        ]
    );
}

#[test]
fn an_expired_cursor_names_the_log_it_was_read_from() {
    let worker = RuntimeError::CursorExpired {
        runtime_id: rid(),
        worker_id: Some(wid()),
        cursor: EventCursor::new("3.x").unwrap(),
    };
    assert_eq!(
        worker.to_string(),
        "cursor '3.x' is not valid for the events of worker 'w-1' in runtime 'rt' (expired or unknown); read again without a cursor"
    );
    let runtime = RuntimeError::CursorExpired {
        runtime_id: rid(),
        worker_id: None,
        cursor: EventCursor::new("3.x").unwrap(),
    };
    assert_eq!(
        runtime.to_string(),
        "cursor '3.x' is not valid for the event stream of runtime 'rt' (expired or unknown); read again without a cursor"
    );
}
