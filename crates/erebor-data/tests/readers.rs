//! Readers and mappings on every format: rows come back in order with their place, and a bad
//! row names its `file:line` (or Parquet row group and row) and field exactly.

use erebor_data::mappers::{self, MapSpec, Mapped, Record};
use erebor_data::read::{Format, RawRow, SourceFile, expand_local, read_all, read_file};
use erebor_data::{DataError, RowLocation};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn source(path: &Path) -> SourceFile {
    SourceFile {
        path: path.to_owned(),
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
    }
}

/// Maps every row of a file, failing on the first error.
fn map_file(path: &Path, format: Format, spec: &MapSpec) -> Result<Vec<Record>, DataError> {
    let mut records = Vec::new();
    read_file(&source(path), format, &mut |row| {
        match mappers::apply(spec, "t", None, &row?)? {
            Mapped::Records(made) => records.extend(made),
            Mapped::Skipped(reason) => panic!("skipped: {reason}"),
        }
        Ok(())
    })?;
    Ok(records)
}

fn arc_row(gold: &str) -> String {
    format!(r#"{{"id": "q", "question": "Q?", "choices": ["a", "b", "c"], "gold": {gold}}}"#)
}

#[test]
fn jsonl_bad_json_and_bad_fields_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arc.jsonl");
    let text = format!(
        "{}\n\n{{\"id\": \"x\",\n{}\n",
        arc_row("0"),
        arc_row("\"two\"")
    );
    std::fs::write(&path, text).unwrap();

    let mut seen = Vec::new();
    read_file(&source(&path), Format::Jsonl, &mut |row| {
        seen.push(
            row.map(|row| row.location)
                .map_err(|error| error.to_string()),
        );
        Ok(())
    })
    .unwrap();
    assert_eq!(
        seen.len(),
        3,
        "the blank line is skipped, reading goes on after a bad line"
    );
    assert_eq!(
        seen[0],
        Ok(RowLocation::Line {
            file: "arc.jsonl".into(),
            line: 1
        })
    );
    let syntax = seen[1].clone().unwrap_err();
    assert_eq!(
        syntax,
        "arc.jsonl:3: invalid JSON: EOF while parsing a value (column 11)"
    );

    std::fs::write(&path, format!("{}\n{}\n", arc_row("0"), arc_row("\"two\""))).unwrap();
    let error = map_file(&path, Format::Jsonl, &MapSpec::Arc)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "arc.jsonl:2: field `gold`: expected a non-negative integer, found a string (\"two\")"
    );
}

#[test]
fn json_arrays_report_the_line_each_element_starts_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conv.json");
    let text = r#"[
  {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
  {
    "id": "b",
    "conversations": [{"from": "human", "value": "hi"}, {"from": "robot", "value": "beep"}]
  }
]"#;
    std::fs::write(&path, text).unwrap();
    let rows = read_all(&source(&path), Format::Json).unwrap();
    let lines: Vec<_> = rows.iter().map(|row| row.location.to_string()).collect();
    assert_eq!(lines, ["conv.json:2", "conv.json:3"]);
    let spec = MapSpec::Sharegpt { field: None };
    let error = map_file(&path, Format::Json, &spec)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "conv.json:3: field `conversations.1.from`: `robot` is not a ShareGPT speaker (human, gpt, system)"
    );

    std::fs::write(&path, "[\n {\"id\": 1},\n {\"id\": 2,,}\n]").unwrap();
    let error = read_all(&source(&path), Format::Json)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("conv.json:3: invalid JSON: "), "{error}");
    std::fs::write(&path, "{\"rows\": []}").unwrap();
    let error = read_all(&source(&path), Format::Json)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("conv.json:1: expected a JSON array"),
        "{error}"
    );
}

#[test]
fn csv_records_become_string_fields_and_short_records_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pairs.csv");
    let text = "question,chosen,rejected\n\"Two, words?\",yes,no\nonly,two\n\"Q3\",\"multi\nline\",x\nQ4,,x\n";
    std::fs::write(&path, text).unwrap();
    let mut outcomes = Vec::new();
    read_file(&source(&path), Format::Csv, &mut |row| {
        outcomes.push(row.map(|row| row.value).map_err(|error| error.to_string()));
        Ok(())
    })
    .unwrap();
    assert_eq!(outcomes.len(), 4);
    assert_eq!(outcomes[0].as_ref().unwrap()["question"], "Two, words?");
    assert_eq!(
        outcomes[1],
        Err("pairs.csv:3: the record has 2 fields, the header has 3".into())
    );
    assert_eq!(outcomes[2].as_ref().unwrap()["chosen"], "multi\nline");

    let spec = MapSpec::PreferenceFields {
        prompt: "question".into(),
        chosen: "chosen".into(),
        rejected: "rejected".into(),
        system: None,
    };
    std::fs::write(&path, "question,chosen\nQ1,yes\n").unwrap();
    let error = map_file(&path, Format::Csv, &spec).unwrap_err().to_string();
    assert_eq!(error, "pairs.csv:2: field `rejected`: missing (or null)");
}

#[test]
fn gzip_files_and_globs_read_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    for (name, first) in [("part-1.jsonl.gz", 10), ("part-0.jsonl.gz", 0)] {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        for index in first..first + 3 {
            writeln!(encoder, "{{\"n\": {index}}}").unwrap();
        }
        std::fs::write(dir.path().join(name), encoder.finish().unwrap()).unwrap();
    }
    let files = expand_local("part-*.jsonl.gz", dir.path()).unwrap();
    let mut numbers = Vec::new();
    for file in &files {
        let format = Format::from_name(&file.to_string_lossy()).unwrap();
        for row in read_all(&source(file), format).unwrap() {
            numbers.push(row.value["n"].as_u64().unwrap());
        }
    }
    assert_eq!(numbers, [0, 1, 2, 10, 11, 12]);
}

#[test]
fn parquet_rows_written_by_pyarrow_read_with_nested_fields() {
    let rows: Vec<RawRow> =
        read_all(&source(&fixture("arc_hub.parquet")), Format::Parquet).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].value["choices"]["text"][1], "carbon dioxide");
    assert_eq!(
        rows[2].location,
        RowLocation::Parquet {
            file: "arc_hub.parquet".into(),
            row_group: 1,
            row: 0
        }
    );
    let pairs = map_file(&fixture("arc_hub.parquet"), Format::Parquet, &MapSpec::Arc).unwrap();
    assert_eq!(pairs.len(), 3 + 2 + 4);
    let Record::Preference(first) = &pairs[0] else {
        panic!("not a pair")
    };
    assert_eq!(
        (
            first.id.as_str(),
            first.chosen.as_str(),
            first.rejected.as_str()
        ),
        ("t/Mercury_1/0", "carbon dioxide", "oxygen")
    );

    let error = map_file(
        &fixture("arc_hub_bad.parquet"),
        Format::Parquet,
        &MapSpec::Arc,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "arc_hub_bad.parquet: row group 1, row 0: field `answerKey`: `F` is not one of the labels [\"A\", \"B\", \"C\", \"D\", \"E\"]"
    );
}

#[test]
fn ultrafeedback_message_lists_from_parquet_become_a_pair() {
    let pairs = map_file(
        &fixture("ultrafeedback.parquet"),
        Format::Parquet,
        &MapSpec::Ultrafeedback,
    )
    .unwrap();
    let Record::Preference(pair) = &pairs[0] else {
        panic!("not a pair")
    };
    assert_eq!(pair.prompt.len(), 1);
    assert_eq!(pair.prompt[0].content, "Name a prime.");
    assert_eq!(
        (pair.chosen.as_str(), pair.rejected.as_str()),
        ("7 is prime.", "9 is prime.")
    );
}

#[test]
fn a_file_that_is_not_parquet_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    std::fs::write(&path, "not parquet at all").unwrap();
    let error = read_all(&source(&path), Format::Parquet)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("x.parquet: not a readable Parquet file"),
        "{error}"
    );
}
