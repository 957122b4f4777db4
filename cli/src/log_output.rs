//! Where the server's log lines go: standard output, in batches.
//!
//! A busy server logs a line per request, and a `write` per line costs about
//! as much as the rest of the line's work. Lines at `INFO` and below are
//! therefore gathered in memory and written together by a flusher thread at
//! most [`BATCH_DELAY`] after the first of them. `WARN` and `ERROR` lines
//! are written at once, after everything gathered before them, so the
//! output keeps the order of the lines. The gathered bytes are bounded:
//! past [`FLUSH_EARLY_BYTES`] the flusher is woken before its delay is up,
//! and past [`MAX_GATHERED_BYTES`] (a flusher that fell behind) the line's
//! writer writes them itself.
//!
//! **Nothing is allocated or freed per line in the steady state**: the
//! gathered bytes and the flusher's spare buffer keep their capacity and
//! are swapped at each write, so a line is a copy under a short lock (the
//! request threads share it) and the flusher never frees memory another
//! thread allocated (which takes that thread's allocator lock).
//!
//! What this costs: a process killed with `kill -9` loses the info lines of
//! its last [`BATCH_DELAY`] at most. Dropping the [`FlushGuard`] (when
//! `main` returns, or unwinds from a panic) writes everything.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The most time an info line waits before it is written.
pub const BATCH_DELAY: Duration = Duration::from_millis(20);

/// The most bytes gathered before a line's writer writes them itself:
/// more than [`BATCH_DELAY`] of request lines at 50,000 requests a second,
/// so that a busy server's lines are written by the flusher, a few times
/// per delay, and not by the requests' threads. (It and the flusher's
/// spare buffer are allocated once: 512 KiB.)
pub const MAX_GATHERED_BYTES: usize = 256 * 1024;

/// Gathered bytes past which the flusher writes without waiting for the
/// rest of its [`BATCH_DELAY`].
pub const FLUSH_EARLY_BYTES: usize = MAX_GATHERED_BYTES / 2;

/// A [`MakeWriter`] for `tracing_subscriber::fmt` that batches info lines
/// into `sink` (standard output in `yoi`).
pub struct BatchedWriter<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
}

/// Stops the flusher thread and writes what is gathered, when dropped.
#[must_use = "dropping the guard stops the flusher"]
pub struct FlushGuard<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
    flusher: Option<JoinHandle<()>>,
}

struct Shared<W> {
    /// Lock order: `sink` before `gathered`, so that bytes taken from
    /// `gathered` reach the sink before any gathered after them.
    sink: Mutex<Output<W>>,
    gathered: Mutex<Gathered>,
    /// Signalled when `gathered` stops being empty, when it passes
    /// [`FLUSH_EARLY_BYTES`], and on close.
    not_empty: Condvar,
    /// [`BATCH_DELAY`], but for tests.
    delay: Duration,
}

/// The output, and the buffer the gathered bytes are swapped into to be
/// written (empty between writes, its capacity kept).
struct Output<W> {
    writer: W,
    spare: Vec<u8>,
}

struct Gathered {
    bytes: Vec<u8>,
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while writing a log line leaves nothing half-updated that
    // matters: at worst a partial line.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W: Write + Send + 'static> Shared<W> {
    /// Writes what is gathered, then `line`, holding the sink throughout.
    fn write_through(&self, line: &[u8]) -> io::Result<()> {
        let mut sink = lock(&self.sink);
        let Output { writer, spare } = &mut *sink;
        std::mem::swap(&mut lock(&self.gathered).bytes, spare);
        let written = Self::write_both(writer, spare, line);
        spare.clear();
        written
    }

    fn write_both(writer: &mut W, gathered: &[u8], line: &[u8]) -> io::Result<()> {
        if !gathered.is_empty() {
            writer.write_all(gathered)?;
        }
        if !line.is_empty() {
            writer.write_all(line)?;
        }
        writer.flush()
    }

    /// Gathers `line`; writes through when the gathered bytes would pass
    /// the bound.
    fn gather(&self, line: &[u8]) -> io::Result<()> {
        {
            let mut gathered = lock(&self.gathered);
            if gathered.closed || gathered.bytes.len() + line.len() > MAX_GATHERED_BYTES {
                drop(gathered);
                return self.write_through(line);
            }
            let before = gathered.bytes.len();
            gathered.bytes.extend_from_slice(line);
            let after = gathered.bytes.len();
            // The flusher waits for the first line, then for the early
            // mark or its delay: it needs waking at those two points only.
            if before != 0 && (before >= FLUSH_EARLY_BYTES || after < FLUSH_EARLY_BYTES) {
                return Ok(());
            }
        }
        self.not_empty.notify_one();
        Ok(())
    }

    /// The flusher: waits for a first line, lets more gather for
    /// [`BATCH_DELAY`] or up to [`FLUSH_EARLY_BYTES`], writes them; until
    /// closed.
    fn flush_loop(&self) {
        loop {
            let closed = {
                let mut gathered = lock(&self.gathered);
                while gathered.bytes.is_empty() && !gathered.closed {
                    gathered = self
                        .not_empty
                        .wait(gathered)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                let (gathered, _) = self
                    .not_empty
                    .wait_timeout_while(gathered, self.delay, |gathered| {
                        gathered.bytes.len() < FLUSH_EARLY_BYTES && !gathered.closed
                    })
                    .unwrap_or_else(PoisonError::into_inner);
                gathered.closed
            };
            // A log line that cannot be written has nowhere to be reported.
            let _ = self.write_through(&[]);
            if closed {
                return;
            }
        }
    }
}

impl<W: Write + Send + 'static> BatchedWriter<W> {
    /// A writer into `sink`, and the guard that owns its flusher thread.
    pub fn new(sink: W) -> io::Result<(Self, FlushGuard<W>)> {
        Self::with_delay(sink, BATCH_DELAY)
    }

    fn with_delay(sink: W, delay: Duration) -> io::Result<(Self, FlushGuard<W>)> {
        let shared = Arc::new(Shared {
            sink: Mutex::new(Output {
                writer: sink,
                spare: Vec::with_capacity(MAX_GATHERED_BYTES),
            }),
            gathered: Mutex::new(Gathered {
                bytes: Vec::with_capacity(MAX_GATHERED_BYTES),
                closed: false,
            }),
            not_empty: Condvar::new(),
            delay,
        });
        let flusher = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("yoi-log".to_owned())
                .spawn(move || shared.flush_loop())?
        };
        Ok((
            Self {
                shared: shared.clone(),
            },
            FlushGuard {
                shared,
                flusher: Some(flusher),
            },
        ))
    }
}

impl<W: Write + Send + 'static> Drop for FlushGuard<W> {
    fn drop(&mut self) {
        lock(&self.shared.gathered).closed = true;
        self.shared.not_empty.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        // Lines logged while the flusher stopped.
        let _ = self.shared.write_through(&[]);
    }
}

/// The writer of one log line.
pub struct LineWriter<'a, W: Write + Send + 'static> {
    shared: &'a Shared<W>,
    at_once: bool,
}

impl<W: Write + Send + 'static> Write for LineWriter<'_, W> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        if self.at_once {
            self.shared.write_through(line)?;
        } else {
            self.shared.gather(line)?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + Send + 'static> MakeWriter<'a> for BatchedWriter<W> {
    type Writer = LineWriter<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            at_once: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            // In `tracing`, the more severe level is the smaller.
            at_once: *meta.level() <= Level::WARN,
        }
    }
}

impl<W: Write + Send + 'static> BatchedWriter<W> {
    /// Writes `line`, one whole line, as an info line: gathered, like the
    /// lines of the subscriber this writer serves, and in order with them.
    pub fn write_info_line(&self, line: &[u8]) -> io::Result<()> {
        self.shared.gather(line)
    }
}

// Another writer into the same sink, sharing its lines' order.
impl<W: Write + Send + 'static> Clone for BatchedWriter<W> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

// Debug shows no log bytes: a line may hold what a log reader should see
// only at its level.
impl<W: Write + Send + 'static> std::fmt::Debug for BatchedWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchedWriter").finish_non_exhaustive()
    }
}

impl<W: Write + Send + 'static> std::fmt::Debug for FlushGuard<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushGuard").finish_non_exhaustive()
    }
}

impl<W: Write + Send + 'static> std::fmt::Debug for LineWriter<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWriter")
            .field("at_once", &self.at_once)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read, and wait on, while the writer holds it.
    #[derive(Clone, Default)]
    struct Sink(Arc<(Mutex<Vec<u8>>, Condvar)>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            lock(&self.0.0).extend_from_slice(bytes);
            self.0.1.notify_all();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0.0).clone()).unwrap()
        }

        fn wait_for_bytes(&self) {
            let (bytes, written) = &*self.0;
            let (_bytes, waited) = written
                .wait_timeout_while(lock(bytes), Duration::from_secs(10), |b| b.is_empty())
                .unwrap();
            assert!(!waited.timed_out(), "nothing written");
        }
    }

    fn writer(shared: &Shared<Sink>, at_once: bool) -> LineWriter<'_, Sink> {
        LineWriter { shared, at_once }
    }

    #[test]
    fn a_warning_writes_the_gathered_info_lines_first_in_order() {
        let sink = Sink::default();
        let (batched, guard) = BatchedWriter::new(sink.clone()).unwrap();
        writer(&batched.shared, false)
            .write_all(b"info 1\n")
            .unwrap();
        writer(&batched.shared, false)
            .write_all(b"info 2\n")
            .unwrap();
        writer(&batched.shared, true).write_all(b"warn\n").unwrap();
        // Written when the warning returned, not later by the flusher.
        assert_eq!(sink.text(), "info 1\ninfo 2\nwarn\n");
        drop(guard);
    }

    #[test]
    fn gathered_bytes_stay_bounded_and_nothing_is_lost_or_reordered() {
        let sink = Sink::default();
        let (batched, guard) = BatchedWriter::new(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let shared = batched.shared.clone();
                std::thread::spawn(move || {
                    for line in 0..5_000 {
                        writer(&shared, false)
                            .write_all(
                                format!("t{thread} {line:05} {}\n", "x".repeat(40)).as_bytes(),
                            )
                            .unwrap();
                        assert!(lock(&shared.gathered).bytes.len() <= MAX_GATHERED_BYTES);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = sink.text();
        for thread in 0..4 {
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("t{thread} ")))
                .collect();
            assert_eq!(lines.len(), 5_000);
            assert!(lines.is_sorted(), "thread {thread}'s lines out of order");
        }
    }

    #[test]
    fn the_flusher_writes_gathered_lines_without_a_guard_drop() {
        let sink = Sink::default();
        let (batched, _guard) = BatchedWriter::new(sink.clone()).unwrap();
        writer(&batched.shared, false)
            .write_all(b"later\n")
            .unwrap();
        sink.wait_for_bytes();
        assert_eq!(sink.text(), "later\n");
    }

    #[test]
    fn the_flusher_writes_early_once_half_the_bound_is_gathered() {
        let sink = Sink::default();
        // Without the early mark, nothing would be written for an hour.
        let (batched, _guard) =
            BatchedWriter::with_delay(sink.clone(), Duration::from_secs(3600)).unwrap();
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..FLUSH_EARLY_BYTES / line.len() + 1 {
            writer(&batched.shared, false)
                .write_all(line.as_bytes())
                .unwrap();
        }
        sink.wait_for_bytes();
        assert!(sink.text().starts_with(&line));
    }

    #[test]
    fn gathering_keeps_its_buffers_across_writes() {
        let sink = Sink::default();
        let (batched, guard) = BatchedWriter::new(sink.clone()).unwrap();
        writer(&batched.shared, false).write_all(b"info\n").unwrap();
        sink.wait_for_bytes();
        // Swapped, not taken: neither side starts again from nothing.
        assert!(lock(&batched.shared.gathered).bytes.capacity() >= MAX_GATHERED_BYTES);
        assert!(lock(&batched.shared.sink).spare.capacity() >= MAX_GATHERED_BYTES);
        drop(guard);
    }

    #[test]
    fn lines_after_close_are_written_at_once() {
        let sink = Sink::default();
        let (batched, guard) = BatchedWriter::new(sink.clone()).unwrap();
        drop(guard);
        writer(&batched.shared, false).write_all(b"late\n").unwrap();
        assert_eq!(sink.text(), "late\n");
    }
}
