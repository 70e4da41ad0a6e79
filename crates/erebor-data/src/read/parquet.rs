//! Parquet files, read row by row with the `parquet` crate's record API and turned into JSON
//! values (strings, numbers, lists, structs and maps, as `datasets` stores them).

use super::{RawRow, SourceFile};
use crate::error::{DataError, RowLocation};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};
use serde_json::{Number, Value};
use std::fs::File;
use std::path::Path;

type Visit<'a> = &'a mut dyn FnMut(Result<RawRow, DataError>) -> Result<(), DataError>;

pub(super) fn read_parquet(file: &SourceFile, visit: Visit<'_>) -> Result<(), DataError> {
    let gzip = Path::new(&file.name)
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("gz"));
    if gzip {
        return Err(DataError::File {
            file: file.name.clone(),
            message:
                "a gzip-compressed Parquet file cannot be read; Parquet compresses its own pages"
                    .into(),
        });
    }
    let handle = File::open(&file.path).map_err(|source| DataError::io(&file.path, source))?;
    let reader = SerializedFileReader::new(handle).map_err(|error| DataError::File {
        file: file.name.clone(),
        message: format!("not a readable Parquet file: {error}"),
    })?;
    for row_group in 0..reader.num_row_groups() {
        let group = reader
            .get_row_group(row_group)
            .map_err(|error| DataError::File {
                file: file.name.clone(),
                message: format!("row group {row_group}: {error}"),
            })?;
        let rows = group.get_row_iter(None).map_err(|error| DataError::File {
            file: file.name.clone(),
            message: format!("row group {row_group}: {error}"),
        })?;
        for (row, result) in rows.enumerate() {
            let location = RowLocation::Parquet {
                file: file.name.clone(),
                row_group,
                row,
            };
            let record = result.map_err(|error| DataError::Syntax {
                location: location.clone(),
                message: format!("cannot decode the row: {error}"),
            })?;
            visit(Ok(RawRow {
                location,
                value: row_to_json(&record),
            }))?;
        }
    }
    Ok(())
}

fn row_to_json(row: &Row) -> Value {
    Value::Object(
        row.get_column_iter()
            .map(|(name, field)| (name.clone(), field_to_json(field)))
            .collect(),
    )
}

fn float(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

fn field_to_json(field: &Field) -> Value {
    match field {
        Field::Null => Value::Null,
        Field::Bool(value) => Value::Bool(*value),
        Field::Byte(value) => Value::from(*value),
        Field::Short(value) => Value::from(*value),
        Field::Int(value) => Value::from(*value),
        Field::Long(value) => Value::from(*value),
        Field::UByte(value) => Value::from(*value),
        Field::UShort(value) => Value::from(*value),
        Field::UInt(value) => Value::from(*value),
        Field::ULong(value) => Value::from(*value),
        Field::Float16(value) => float(f64::from(*value)),
        Field::Float(value) => float(f64::from(*value)),
        Field::Double(value) => float(*value),
        Field::Str(text) => Value::String(text.clone()),
        Field::Bytes(bytes) => match std::str::from_utf8(bytes.data()) {
            Ok(text) => Value::String(text.to_owned()),
            Err(_) => Value::Array(bytes.data().iter().map(|&byte| Value::from(byte)).collect()),
        },
        Field::Group(row) => row_to_json(row),
        Field::ListInternal(list) => {
            Value::Array(list.elements().iter().map(field_to_json).collect())
        }
        Field::MapInternal(map) => Value::Object(
            map.entries()
                .iter()
                .map(|(key, value)| {
                    let key = match field_to_json(key) {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (key, field_to_json(value))
                })
                .collect(),
        ),
        // Dates, times, timestamps and decimals: their display form is the readable one.
        other => Value::String(other.to_string()),
    }
}
