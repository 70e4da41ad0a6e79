//! Reading a step's events file while it grows.

use erebor_core::StepEvent;
use erebor_core::events::parse_event_line;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Reads complete lines appended to an events file since the last call.
pub(crate) struct EventTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// Lines that were not valid events (kept for the step log message).
    pub bad_lines: u64,
}

impl EventTail {
    /// Starts at the beginning of `path` (which may not exist yet).
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            offset: 0,
            partial: Vec::new(),
            bad_lines: 0,
        }
    }

    /// The events appended since the last call. A last line without its newline is kept for
    /// the next call (the step is still writing it).
    pub(crate) fn read_new(&mut self) -> std::io::Result<Vec<StepEvent>> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(last_newline) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
        let mut events = Vec::new();
        for line in String::from_utf8_lossy(&complete).lines() {
            match parse_event_line(line) {
                Ok(Some(event)) => events.push(event),
                Ok(None) => {}
                Err(_) => self.bad_lines += 1,
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut tail = EventTail::new(&path);
        assert!(tail.read_new().unwrap().is_empty());
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(
            b"{\"event\":\"metric\",\"key\":\"a\",\"index\":0,\"value\":1.0}\n{\"event\":\"met",
        )
        .unwrap();
        let first = tail.read_new().unwrap();
        assert_eq!(
            first,
            vec![StepEvent::Metric {
                key: "a".into(),
                index: 0,
                value: 1.0
            }]
        );
        file.write_all(b"ric\",\"key\":\"a\",\"index\":1,\"value\":2.0}\nnot json\n")
            .unwrap();
        let second = tail.read_new().unwrap();
        assert_eq!(
            second,
            vec![StepEvent::Metric {
                key: "a".into(),
                index: 1,
                value: 2.0
            }]
        );
        assert_eq!(tail.bad_lines, 1);
    }
}
