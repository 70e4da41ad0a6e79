//! The DPOP paper's pair sets built from the real files in ../shared/data: exact counts, the
//! low-edit property on real GSM8K solutions, and contamination numbers checked against an
//! independent Python implementation of the same rules.

use erebor_core::dataset::PreferenceRecord;
use erebor_data::builders::low_edit::{final_answer, numbers};
use erebor_data::contamination::ContaminationIndex;
use erebor_data::mappers::{self, LowEditOptions, MapSpec, Mapped, Record};
use erebor_data::read::{Format, SourceFile, read_all};
use erebor_data::stats::{normalized_levenshtein, words};
use std::path::{Path, PathBuf};

fn shared(relative: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(relative);
    if path.exists() {
        Some(path)
    } else {
        // Under CI=true ../shared is always laid beside the checkout: fail, never skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is absent and CI=true: shared fixtures are required on CI",
            path.display()
        );
        println!(
            "skipping: {} is absent (../shared is not beside the checkout)",
            path.display()
        );
        None
    }
}

fn rows(path: &Path) -> Vec<erebor_data::read::RawRow> {
    let file = SourceFile {
        path: path.to_owned(),
        name: path.display().to_string(),
    };
    read_all(&file, Format::from_name(&file.name).unwrap()).unwrap()
}

fn pairs(path: &Path, spec: &MapSpec) -> (usize, Vec<PreferenceRecord>, usize) {
    let rows = rows(path);
    let mut out = Vec::new();
    let mut skipped = 0;
    for row in &rows {
        match mappers::apply(spec, "t", None, row).unwrap() {
            Mapped::Records(records) => {
                out.extend(records.into_iter().map(|record| match record {
                    Record::Preference(pair) => pair,
                    Record::Sft(_) => panic!("not a pair"),
                }));
            }
            Mapped::Skipped(_) => skipped += 1,
        }
    }
    (rows.len(), out, skipped)
}

#[test]
fn arc_challenge_train_gives_3357_pairs_from_1119_questions() {
    let Some(path) = shared("data/leaderboard/arc_challenge_train.jsonl") else {
        return;
    };
    let (questions, pairs, _) = pairs(&path, &MapSpec::Arc);
    assert_eq!((questions, pairs.len()), (1119, 3357));
    // The first row: gold 0 ("dry palms"), so the three pairs reject choices 1, 2, 3.
    assert_eq!(pairs[0].chosen, "dry palms");
    let rejected: Vec<_> = pairs[..3]
        .iter()
        .map(|pair| pair.rejected.as_str())
        .collect();
    assert_eq!(
        rejected,
        [
            "wet palms",
            "palms covered with oil",
            "palms covered with lotion"
        ]
    );
    assert_eq!(pairs[0].id, "t/Mercury_SC_415702/1");
}

#[test]
fn hellaswag_train_gives_119715_pairs_from_39905_contexts() {
    let Some(path) = shared("data/leaderboard/hellaswag_train.jsonl") else {
        return;
    };
    let (contexts, pairs, _) = pairs(&path, &MapSpec::Hellaswag);
    assert_eq!((contexts, pairs.len()), (39905, 119_715));
    assert_eq!(
        pairs[0].chosen,
        ", the man continues removing the snow on his car."
    );
}

#[test]
fn raw_hellaswag_validation_rows_build_pairs_too() {
    let Some(path) = shared("data/leaderboard/hellaswag_validation.jsonl") else {
        return;
    };
    let (contexts, pairs, _) = pairs(&path, &MapSpec::Hellaswag);
    assert_eq!((contexts, pairs.len()), (10042, 3 * 10042));
    assert_eq!(
        pairs[0].prompt[0].content,
        "Roof shingle removal: A man is sitting on a roof. He"
    );
    assert_eq!(pairs[0].chosen, "starts pulling up roofing on a roof.");
}

#[test]
fn low_edit_pairs_from_real_gsm8k_solutions_change_exactly_one_number() {
    let Some(path) = shared("data/leaderboard/gsm8k_test.jsonl") else {
        return;
    };
    let spec = MapSpec::LowEdit(LowEditOptions {
        seed: 11,
        ..Default::default()
    });
    let (solutions, pairs, skipped) = pairs(&path, &spec);
    assert_eq!(solutions, 1319);
    assert_eq!(pairs.len() + skipped, 1319);
    assert!(
        skipped < 20,
        "{skipped} solutions without an `= number` result"
    );
    let mut distances = Vec::new();
    for pair in &pairs {
        assert!(
            !pair.chosen.contains("<<"),
            "annotations are stripped: {}",
            pair.chosen
        );
        let (chosen_last, rejected_last) =
            (pair.chosen.lines().last(), pair.rejected.lines().last());
        assert_eq!(chosen_last, rejected_last, "the final line is kept");
        assert!(final_answer(&pair.rejected).is_some());
        let (before, after) = (numbers(&pair.chosen), numbers(&pair.rejected));
        assert_eq!(
            before.len(),
            after.len(),
            "{}\n---\n{}",
            pair.chosen,
            pair.rejected
        );
        let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 1, "{}\n---\n{}", pair.chosen, pair.rejected);
        let distance = normalized_levenshtein(&words(&pair.chosen), &words(&pair.rejected));
        assert!(
            distance > 0.0 && distance <= 0.1,
            "edit distance {distance} outside (0, 10%]: {}",
            pair.rejected
        );
        distances.push(distance);
    }
    let mean = distances.iter().sum::<f64>() / distances.len() as f64;
    assert!(mean < 0.03, "mean word-level edit distance {mean}");

    // Deterministic: the same seed gives the same pairs, another seed different ones.
    let (_, again, _) = self::pairs(&path, &spec);
    assert_eq!(again, pairs);
    let other = MapSpec::LowEdit(LowEditOptions {
        seed: 12,
        ..Default::default()
    });
    let (_, other_pairs, _) = self::pairs(&path, &other);
    let differing = other_pairs
        .iter()
        .zip(&pairs)
        .filter(|(a, b)| a.rejected != b.rejected)
        .count();
    assert!(differing > pairs.len() / 2, "{differing}");
}

fn questions(relative: &str) -> Option<Vec<String>> {
    let path = shared(relative)?;
    Some(
        rows(&path)
            .iter()
            .map(|row| row.value["question"].as_str().unwrap().to_owned())
            .collect(),
    )
}

/// Reference counts from a separate Python implementation of the same rules (lower case,
/// non-alphanumeric runs to one space, exact match or a shared 13-word n-gram):
/// ARC-Challenge train against ARC-Challenge test + validation flags 10 questions, 7 exact;
/// against MMLU test 1, exact.
#[test]
fn arc_train_overlap_with_its_test_split_matches_the_reference_count() {
    let (Some(train), Some(test), Some(validation), Some(mmlu)) = (
        questions("data/leaderboard/arc_challenge_train.jsonl"),
        questions("data/leaderboard/arc_challenge_test.jsonl"),
        questions("data/leaderboard/arc_challenge_validation.jsonl"),
        questions("data/leaderboard/mmlu_test.jsonl"),
    ) else {
        return;
    };
    let count = |eval: &[(&str, &Vec<String>)]| {
        let mut index = ContaminationIndex::new(13);
        for (name, items) in eval {
            for (position, text) in items.iter().enumerate() {
                index.add(name, position, text);
            }
        }
        let flags: Vec<_> = train.iter().filter_map(|text| index.check(text)).collect();
        let exact = flags
            .iter()
            .filter(|flag| flag.kind == erebor_data::contamination::OverlapKind::Exact)
            .count();
        (flags.len(), exact)
    };
    assert_eq!(
        count(&[("arc_test", &test), ("arc_validation", &validation)]),
        (10, 7)
    );
    assert_eq!(count(&[("mmlu_test", &mmlu)]), (1, 1));
}

#[test]
fn sharegpt_conversations_map_to_sft_records() {
    let Some(path) = shared("data/sft/fastchat_dummy_conversation.json") else {
        return;
    };
    let rows = rows(&path);
    let spec = MapSpec::Sharegpt { field: None };
    let mut records = Vec::new();
    for row in &rows {
        match mappers::apply(&spec, "fastchat", None, row).unwrap() {
            Mapped::Records(made) => records.extend(made),
            Mapped::Skipped(reason) => panic!("{reason}"),
        }
    }
    assert_eq!(records.len(), 500);
    let Record::Sft(first) = &records[0] else {
        panic!("not SFT")
    };
    assert_eq!(first.id, "fastchat/identity_0");
    let roles: Vec<_> = first.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(first.messages[3].content, "You too!");
}
