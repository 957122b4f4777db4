//! The server's log lines: `LogFormat` with `LogFields` writes what
//! `tracing-subscriber`'s default format writes, apart from how it reads
//! the clock; `RequestLine` writes what they write for the request event.

mod common;

use axum::http::Method;
use common::LogBuffer;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use yoi::log_fields::LogFields;
use yoi::log_format::LogFormat;
use yoi::log_output::{BatchedWriter, FlushGuard};
use yoi::request_line::RequestLine;

/// A failure with a cause, as `record_error` sees one.
#[derive(Debug)]
struct Failure(Option<std::io::Error>);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the write failed")
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.as_ref().map(|err| err as _)
    }
}

/// Events of every level, with and without spans, with fields of
/// every kind the server logs (and some it might).
fn emit() {
    tracing::info!(method = %"GET", route = "/api/runtimes/{runtime_id}", status = 200u16, latency_us = 17u64, "request");
    // The request line as the server writes it: the message a string field.
    tracing::info!(message = "request", method = %"GET", route = "/api/runtimes/{runtime_id}", status = 200u16, latency_us = 17u64);
    tracing::warn!(error = %"it \"broke\" badly", left = 3, "connections still open");
    tracing::error!(flag = true, ratio = 0.5, signed = -4i64, "the store failed");
    tracing::debug!("a debug line");
    tracing::trace!(text = "tab\there", "a trace line");
    tracing::info!(
        smallest = i64::MIN,
        largest = u64::MAX,
        zero = 0u64,
        off = false,
        quoted = "say \"hi\"",
        unicode = "ünïcödé",
        escape = "\u{1b}[31mred",
        r#type = "raw name",
        empty = "",
        "fields of every kind"
    );
    tracing::info!(
        message = "a message \u{1b}[31m given as a string",
        after = 1u8
    );
    tracing::info!(first = "no message", second = ?Some(3));
    // Past the 256 bytes `LogFields` gathers before writing: a field that
    // overflows them, then a value written through `Debug` across them.
    let long = "r".repeat(200);
    let longer = format!("{:?}", "d".repeat(300));
    tracing::info!(
        before = 7u64,
        long = long.as_str(),
        shown = %longer,
        debugged = ?"e".repeat(100),
        after = true,
        "fields longer than the gathered bytes"
    );
    tracing::info!(
        "a message longer than the stack buffer of `LogFields`, {} {}",
        "which writes it through the default visitor instead, as it does",
        "every message that is not printable ASCII"
    );
    let failure = Failure(Some(std::io::Error::other("disk full")));
    tracing::error!(
        error = &failure as &(dyn std::error::Error + 'static),
        "with a cause"
    );
    let alone = Failure(None);
    tracing::error!(
        error = &alone as &(dyn std::error::Error + 'static),
        "without one"
    );
    let outer = tracing::info_span!("request", method = %"POST", route = "/x", n = 5u64);
    let _outer = outer.enter();
    tracing::info!("inside one span");
    let inner = tracing::info_span!("turn", r#ref = "q\"uote");
    let _inner = inner.enter();
    tracing::warn!(worker_id = "w-1", "inside two spans");
    tracing::info!(target: "another::target", "a line with its own target");
}

fn lines_with(default_format: bool) -> String {
    let buffer = LogBuffer::default();
    let builder = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .with_max_level(Level::TRACE);
    if default_format {
        tracing::subscriber::with_default(builder.finish(), emit);
    } else {
        tracing::subscriber::with_default(
            builder
                .event_format(LogFormat::default())
                .fmt_fields(LogFields::default())
                .finish(),
            emit,
        );
    }
    buffer.text()
}

#[test]
fn lines_are_the_default_formats_apart_from_the_instant() {
    let ours = lines_with(false);
    let theirs = lines_with(true);
    assert_eq!(ours.lines().count(), 16, "{ours}");
    // The message as a format string or as a string field: the same line.
    let request: Vec<&str> = ours.lines().take(2).map(|line| &line[27..]).collect();
    assert_eq!(request[0], request[1]);
    assert_eq!(ours.lines().count(), theirs.lines().count());
    // The timestamp is the first 27 bytes: `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
    for (a, b) in ours.lines().zip(theirs.lines()) {
        assert_eq!(a[27..], b[27..], "\n{a}\n{b}");
        assert!(a.as_bytes()[26] == b'Z' && b.as_bytes()[26] == b'Z', "{a}");
    }
}

/// The requests both request-line tests send: matched and unmatched
/// routes, a wrong method, an extension method, an answer with a body.
async fn send_requests(state: &yoi::AppState) {
    let app = common::TestApp {
        state: state.clone(),
    };
    app.get("/healthz").await;
    app.get("/api/runtimes").await;
    app.get("/no/such/route").await;
    app.send(Method::DELETE, "/healthz", None).await;
    app.send(Method::from_bytes(b"PURGE").unwrap(), "/api/runtimes", None)
        .await;
    app.post(
        "/api/runtimes/backend-internal/workers",
        serde_json::json!({}),
    )
    .await;
}

/// The request lines of `text`, each without its timestamp (the first 27
/// bytes) and its latency's digits.
fn request_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.contains(": request method="))
        .map(|line| {
            let (before, latency) = line[27..].split_once(" latency_us=").unwrap();
            assert!(
                !latency.is_empty() && latency.bytes().all(|b| b.is_ascii_digit()),
                "{line}"
            );
            before.to_owned()
        })
        .collect()
}

/// The server's state (the default Runtimes) with its request lines
/// written by a [`RequestLine`] into `buffer`, through a batched writer
/// whose guard writes everything when dropped.
async fn state_with_request_line(
    buffer: &LogBuffer,
) -> (
    yoi::AppState,
    FlushGuard<LogBuffer>,
    BatchedWriter<LogBuffer>,
) {
    let (writer, guard) = BatchedWriter::new(buffer.clone()).unwrap();
    let line: &'static RequestLine<LogBuffer> =
        Box::leak(Box::new(RequestLine::new(writer.clone())));
    let state = common::TestApp::new().await.state.with_request_log(line);
    (state, guard, writer)
}

/// The subscriber `yoi serve` sets, into `writer`, under `filter`.
fn yoi_subscriber<W>(writer: W, filter: &str) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(EnvFilter::new(filter))
        .event_format(LogFormat::default())
        .fmt_fields(LogFields::default())
        .finish()
}

#[tokio::test]
async fn the_request_line_is_the_subscribers_event_byte_for_byte() {
    // Through the subscriber: the event the request layer logs.
    let through_tracing = LogBuffer::default();
    let subscriber = yoi_subscriber(through_tracing.clone(), "info");
    {
        let _default = tracing::subscriber::set_default(subscriber);
        send_requests(&common::TestApp::new().await.state).await;
    }
    // Written by `RequestLine`, under a subscriber that writes the rest.
    let written = LogBuffer::default();
    let (state, guard, writer) = state_with_request_line(&written).await;
    let subscriber = yoi_subscriber(writer, "info");
    {
        let _default = tracing::subscriber::set_default(subscriber);
        send_requests(&state).await;
    }
    drop(guard);

    let expected = request_lines(&through_tracing.text());
    assert_eq!(expected.len(), 6, "{}", through_tracing.text());
    assert!(
        expected.iter().any(|line| line.contains("method=PURGE")),
        "{expected:?}"
    );
    assert_eq!(request_lines(&written.text()), expected);
    for line in written.text().lines() {
        assert_eq!(line.as_bytes()[26], b'Z', "{line}");
    }
}

#[tokio::test]
async fn the_request_line_follows_the_log_filter() {
    let written = LogBuffer::default();
    let (state, guard, writer) = state_with_request_line(&written).await;
    let subscriber = yoi_subscriber(writer, "info,yoi_workspace_server::middleware=warn");
    {
        let _default = tracing::subscriber::set_default(subscriber);
        send_requests(&state).await;
        tracing::info!("still written");
    }
    drop(guard);
    let text = written.text();
    assert!(text.contains("still written"), "{text}");
    assert_eq!(request_lines(&text), Vec::<String>::new(), "{text}");
}
