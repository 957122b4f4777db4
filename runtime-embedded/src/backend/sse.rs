//! The `data:` payloads of a Server-Sent Events body, read incrementally.
//!
//! **Each byte is scanned once** (the search for the end of a line resumes
//! where the last one stopped), a line longer than the cap is an error
//! rather than a growing buffer, and a line that is not UTF-8 is an error
//! rather than a stall.

/// Why the event stream cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SseError {
    /// A line is longer than the cap.
    LineTooLong(usize),
    /// A line is not UTF-8.
    NotUtf8,
}

/// Splits bytes into events and hands back the `data` of each.
#[derive(Debug)]
pub(crate) struct SseData {
    buffer: Vec<u8>,
    /// Bytes of `buffer` already searched for a line end.
    scanned: usize,
    max_line: usize,
    /// The `data` lines of the event being read.
    data: Option<String>,
}

impl SseData {
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            buffer: Vec::new(),
            scanned: 0,
            max_line,
            data: None,
        }
    }

    /// Adds `bytes` and returns the data of every event they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, SseError> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(offset) = self.buffer[self.scanned..].iter().position(|&b| b == b'\n') {
            let end = self.scanned + offset;
            let line = &self.buffer[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > self.max_line {
                return Err(SseError::LineTooLong(self.max_line));
            }
            let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
            if let Some(event) = data_line(&mut self.data, line) {
                events.push(event);
            }
            start = end + 1;
            self.scanned = start;
        }
        self.buffer.drain(..start);
        // What is left has no line end in it.
        self.scanned = self.buffer.len();
        if self.buffer.len() > self.max_line {
            return Err(SseError::LineTooLong(self.max_line));
        }
        Ok(events)
    }
}

/// One complete line into `data`; the event's data when the line ends it.
fn data_line(data: &mut Option<String>, line: &str) -> Option<String> {
    {
        if line.is_empty() {
            return data.take();
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => *data = Some(value.to_owned()),
            }
        }
        // Comments (`: ...`), `event`, `id` and `retry` do not matter here.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let text =
            "data: one\n\n: comment\ndata: two\r\ndata: lines\r\n\r\nevent: x\ndata:three\n\n";
        for split in 0..text.len() {
            let mut parser = SseData::new(1024);
            let mut events = parser.push(&text.as_bytes()[..split]).unwrap();
            events.extend(parser.push(&text.as_bytes()[split..]).unwrap());
            assert_eq!(events, ["one", "two\nlines", "three"], "split at {split}");
        }
    }

    #[test]
    fn a_line_past_the_cap_is_an_error_even_before_it_ends() {
        let mut parser = SseData::new(16);
        assert_eq!(parser.push(b"data: 0123456789"), Ok(vec![]));
        assert_eq!(parser.push(b"abcdef"), Err(SseError::LineTooLong(16)));
        let mut parser = SseData::new(16);
        assert_eq!(
            parser.push(b"data: 0123456789abcdef\n"),
            Err(SseError::LineTooLong(16))
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_stall() {
        let mut parser = SseData::new(1024);
        assert_eq!(parser.push(b"data: \xff\xfe\n\n"), Err(SseError::NotUtf8));
    }

    #[test]
    fn a_long_line_in_many_pieces_is_scanned_once() {
        // 1 MiB in 1-byte pieces: linear, so this is quick even unoptimized.
        let mut parser = SseData::new(2 << 20);
        parser.push(b"data: ").unwrap();
        for _ in 0..(1 << 20) {
            assert!(parser.push(b"a").unwrap().is_empty());
        }
        let events = parser.push(b"\n\n").unwrap();
        assert_eq!(events[0].len(), 1 << 20);
    }
}
