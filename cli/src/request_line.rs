//! `yoi serve`'s line per answered request, written without a `tracing`
//! event.
//!
//! Through `tracing`, the request line is an event dispatched to the
//! subscriber, which visits its five fields one by one through `dyn` calls
//! and writes each piece through a `dyn fmt::Write`: with [`LogFormat`] and
//! [`LogFields`], about 2,400 user-space instructions, where the bare
//! handler of `loadgen instructions` spends about 15,000 on a whole request
//! (docs/benchmarks.md §10). [`RequestLine`] is the server's
//! [`RequestLog`]: it writes the bytes those two write for the event, into
//! a buffer kept per thread, and hands them to the same [`BatchedWriter`]
//! as an info line.
//!
//! **The line is the subscriber's, byte for byte** (`tests/log_lines.rs`
//! compares the two), and **it is written only when the log filter enables
//! the event's target at info** ([`REQUEST_LOG_TARGET`]; so
//! `RUST_LOG=info,yoi_workspace_server::middleware=warn` still drops it).
//! `yoi` uses it only when standard output is not a terminal: with colour,
//! the subscriber's own format writes every line. A line that cannot be
//! written is dropped, as the subscriber drops it.
//!
//! [`LogFormat`]: crate::log_format::LogFormat
//! [`LogFields`]: crate::log_fields::LogFields

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write;
use std::time::SystemTime;

use tracing::Level;
use yoi_workspace_server::request_log::{AnsweredRequest, REQUEST_LOG_TARGET, RequestLog};

use crate::log_fields::debug_is_verbatim;
use crate::log_format::{level_text, write_timestamp};
use crate::log_output::BatchedWriter;

/// Writes each answered request's line into a [`BatchedWriter`]: see the
/// module documentation.
pub struct RequestLine<W: Write + Send + 'static> {
    writer: BatchedWriter<W>,
}

// Debug shows no log bytes, as the writer's does not.
impl<W: Write + Send + 'static> fmt::Debug for RequestLine<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLine").finish_non_exhaustive()
    }
}

thread_local! {
    /// The line being written on this thread, its capacity kept.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<W: Write + Send + 'static> RequestLine<W> {
    /// Lines into `writer`, which should be the one the process's
    /// subscriber writes into, so that the lines keep their order.
    pub fn new(writer: BatchedWriter<W>) -> Self {
        Self { writer }
    }
}

impl<W: Write + Send + 'static> RequestLog for RequestLine<W> {
    fn answered(&self, request: &AnsweredRequest<'_>) {
        if !tracing::enabled!(target: REQUEST_LOG_TARGET, Level::INFO) {
            return;
        }
        LINE.with(|line| {
            // Never borrowed twice: nothing below logs.
            let Ok(mut line) = line.try_borrow_mut() else {
                return;
            };
            line.clear();
            if write_line(&mut line, request, SystemTime::now()).is_ok() {
                let _ = self.writer.write_info_line(line.as_bytes());
            }
        });
    }
}

/// The subscriber's line for `request` at `now`, with its newline.
fn write_line(line: &mut String, request: &AnsweredRequest<'_>, now: SystemTime) -> fmt::Result {
    write_timestamp(line, now)?;
    line.push_str(level_text(&Level::INFO));
    line.push(' ');
    line.push_str(REQUEST_LOG_TARGET);
    // The message, then each field as `LogFields` writes it: the method by
    // `Display`, the route by `Debug` (quoted), the numbers in decimal.
    line.push_str(": request method=");
    line.push_str(request.method.as_str());
    line.push_str(" route=");
    if debug_is_verbatim(request.route) {
        line.push('"');
        line.push_str(request.route);
        line.push('"');
    } else {
        write!(line, "{:?}", request.route)?;
    }
    line.push_str(" status=");
    line.push_str(itoa::Buffer::new().format(request.status));
    line.push_str(" latency_us=");
    line.push_str(itoa::Buffer::new().format(request.latency_us));
    line.push('\n');
    Ok(())
}
