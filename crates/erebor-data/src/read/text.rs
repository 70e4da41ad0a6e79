//! Text formats: JSON lines, JSON arrays, CSV and TSV.

use super::{RawRow, SourceFile, open_maybe_gzip};
use crate::error::{DataError, RowLocation};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};

type Visit<'a> = &'a mut dyn FnMut(Result<RawRow, DataError>) -> Result<(), DataError>;

/// `serde_json`'s message without its " at line L column C" tail (we report our own place).
fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(index) => format!("{} (column {})", &text[..index], error.column()),
        None => text,
    }
}

fn line_location(file: &SourceFile, line: u64) -> RowLocation {
    RowLocation::Line {
        file: file.name.clone(),
        line,
    }
}

pub(super) fn read_jsonl(file: &SourceFile, visit: Visit<'_>) -> Result<(), DataError> {
    let mut reader = BufReader::new(open_maybe_gzip(&file.path)?);
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|source| DataError::io(&file.path, source))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let text = line.trim();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.is_empty() {
            continue;
        }
        let location = line_location(file, number);
        let row = match serde_json::from_str::<Value>(text) {
            Ok(value) => Ok(RawRow { location, value }),
            Err(error) => Err(DataError::Syntax {
                location,
                message: format!("invalid JSON: {}", json_message(&error)),
            }),
        };
        visit(row)?;
    }
}

pub(super) fn read_json_array(file: &SourceFile, visit: Visit<'_>) -> Result<(), DataError> {
    let mut bytes = Vec::new();
    open_maybe_gzip(&file.path)?
        .read_to_end(&mut bytes)
        .map_err(|source| DataError::io(&file.path, source))?;
    let mut cursor = ArrayCursor {
        bytes: &bytes,
        offset: 0,
        line: 1,
    };
    if bytes.starts_with("\u{feff}".as_bytes()) {
        cursor.offset = 3;
    }
    cursor.skip_whitespace();
    let syntax = |line: u64, message: String| DataError::Syntax {
        location: line_location(file, line),
        message,
    };
    if cursor.peek() != Some(b'[') {
        return Err(syntax(
            cursor.line,
            "expected a JSON array of rows (`[ {...}, ... ]`); use a .jsonl file for one row per line".into(),
        ));
    }
    cursor.advance(1);
    cursor.skip_whitespace();
    if cursor.peek() == Some(b']') {
        return Ok(());
    }
    loop {
        cursor.skip_whitespace();
        let start_line = cursor.line;
        let mut stream =
            serde_json::Deserializer::from_slice(&bytes[cursor.offset..]).into_iter::<Value>();
        let value = match stream.next() {
            Some(Ok(value)) => value,
            Some(Err(error)) => {
                let line = start_line + error.line() as u64 - 1;
                return Err(syntax(
                    line,
                    format!("invalid JSON: {}", json_message(&error)),
                ));
            }
            None => return Err(syntax(cursor.line, "the JSON array is not closed".into())),
        };
        let consumed = stream.byte_offset();
        cursor.advance(consumed);
        visit(Ok(RawRow {
            location: line_location(file, start_line),
            value,
        }))?;
        cursor.skip_whitespace();
        match cursor.peek() {
            Some(b',') => cursor.advance(1),
            Some(b']') => return Ok(()),
            _ => {
                return Err(syntax(
                    cursor.line,
                    "expected `,` or `]` after an array element".into(),
                ));
            }
        }
    }
}

/// Walks a byte buffer keeping the 1-based line number of the current offset.
struct ArrayCursor<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl ArrayCursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.offset).copied()
    }

    fn advance(&mut self, count: usize) {
        let end = (self.offset + count).min(self.bytes.len());
        // The bytes of one row or separator, just parsed: counting them is cheap next to parsing,
        // and not worth a dependency (`bytecount`).
        #[allow(clippy::naive_bytecount)]
        let newlines = self.bytes[self.offset..end]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count() as u64;
        self.line += newlines;
        self.offset = end;
    }

    fn skip_whitespace(&mut self) {
        while let Some(byte) = self.peek() {
            if !byte.is_ascii_whitespace() {
                break;
            }
            self.advance(1);
        }
    }
}

pub(super) fn read_delimited(
    file: &SourceFile,
    delimiter: u8,
    visit: Visit<'_>,
) -> Result<(), DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_reader(open_maybe_gzip(&file.path)?);
    let headers = reader
        .headers()
        .map_err(|error| DataError::Syntax {
            location: line_location(file, 1),
            message: format!("cannot read the header line: {error}"),
        })?
        .clone();
    for record in reader.records() {
        let row = match record {
            Ok(record) => {
                let line = record.position().map_or(0, csv::Position::line);
                let object = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(key, value)| (key.to_owned(), Value::String(value.to_owned())))
                    .collect();
                Ok(RawRow {
                    location: line_location(file, line),
                    value: Value::Object(object),
                })
            }
            Err(error) => match error.position() {
                Some(position) => Err(DataError::Syntax {
                    location: line_location(file, position.line()),
                    message: csv_message(&error, headers.len()),
                }),
                None => {
                    return Err(DataError::File {
                        file: file.name.clone(),
                        message: error.to_string(),
                    });
                }
            },
        };
        visit(row)?;
    }
    Ok(())
}

fn csv_message(error: &csv::Error, header_fields: usize) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths { len, .. } => {
            format!("the record has {len} fields, the header has {header_fields}")
        }
        csv::ErrorKind::Utf8 { err, .. } => format!("field {} is not UTF-8", err.field() + 1),
        _ => error.to_string(),
    }
}
