//! The request log line: `tracing-subscriber`'s default format against
//! [`yoi::log_format::LogFormat`], alone and with
//! [`yoi::log_fields::LogFields`], and [`yoi::request_line::RequestLine`]
//! without an event (all four the same bytes), each through the batched
//! writer `yoi serve` uses, into a sink.
//!
//! `cargo bench -p yoi --bench log_line`

use axum::http::Method;
use criterion::{Criterion, criterion_group, criterion_main};
use tracing::Dispatch;
use tracing_subscriber::EnvFilter;
use yoi::log_fields::LogFields;
use yoi::log_format::LogFormat;
use yoi::log_output::BatchedWriter;
use yoi::request_line::RequestLine;
use yoi_workspace_server::{AnsweredRequest, RequestLog};

const ROUTE: &str = "/api/runtimes/{runtime_id}/workers/{worker_id}";

/// The event `RequestLogLayer` logs for each request without a
/// `RequestLog`.
fn request_line(n: u64) {
    tracing::info!(
        message = "request",
        method = %Method::GET,
        route = ROUTE,
        status = 200u16,
        latency_us = n % 97,
    );
}

fn log_line(c: &mut Criterion) {
    let mut group = c.benchmark_group("request log line");
    for name in [
        "default format",
        "LogFormat",
        "LogFormat and LogFields",
        "RequestLine",
    ] {
        let (writer, _flush) = BatchedWriter::new(std::io::sink()).unwrap();
        // Leaked once per variant: a `RequestLog` is `'static` in `yoi`.
        let direct: &'static RequestLine<_> = Box::leak(Box::new(RequestLine::new(writer.clone())));
        let builder = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .with_env_filter(EnvFilter::new("info"));
        let dispatch = match name {
            "default format" => Dispatch::new(builder.finish()),
            "LogFormat" => Dispatch::new(builder.event_format(LogFormat::default()).finish()),
            _ => Dispatch::new(
                builder
                    .event_format(LogFormat::default())
                    .fmt_fields(LogFields::default())
                    .finish(),
            ),
        };
        tracing::dispatcher::with_default(&dispatch, || {
            let mut n = 0;
            group.bench_function(name, |b| {
                b.iter(|| {
                    n += 1;
                    if name == "RequestLine" {
                        direct.answered(&AnsweredRequest {
                            method: &Method::GET,
                            route: ROUTE,
                            status: 200,
                            latency_us: n % 97,
                        });
                    } else {
                        request_line(n);
                    }
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, log_line);
criterion_main!(benches);
