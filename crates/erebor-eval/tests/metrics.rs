//! Metric logic on hand-computed cases.

// The metrics of these hand-made cases are exact (0, 1, halves, means of a few such):
// equality is the check.
#![allow(clippy::float_cmp)]

use erebor_eval::metrics::{
    ExactMatch, INVALID_ANSWER, acc, acc_norm, argmax, gsm8k_correct, gsm8k_extract, mc1, mc2,
    regex_filter,
};
use regex::Regex;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

#[test]
fn argmax_is_numpys() {
    assert_eq!(
        argmax(&[-1.0, -0.5, -0.5, -2.0]),
        1,
        "ties go to the first maximum"
    );
    assert_eq!(argmax(&[-3.0, -3.0]), 0);
    assert_eq!(
        argmax(&[-1.0, f64::NAN, 0.0, f64::NAN]),
        1,
        "numpy returns the first NaN"
    );
    assert_eq!(argmax(&[f64::NEG_INFINITY, -1e300]), 1);
}

#[test]
fn acc_and_acc_norm_by_character_length() {
    // lls: -6 for "a cat" (5 chars), -4 for "dog" (3 chars).
    let choices = strings(&["a cat", "dog"]);
    let lls = [-6.0, -4.0];
    assert_eq!(acc(&lls, 1), 1.0);
    // normalised: -1.2 vs -1.333…: the longer choice wins.
    assert_eq!(acc_norm(&lls, &choices, 0), 1.0);
    assert_eq!(acc_norm(&lls, &choices, 1), 0.0);
    // Characters, not bytes: "été" is 3 characters (5 bytes). -3/3 = -1 beats -2.2/2 = -1.1.
    let accented = strings(&["été", "ab"]);
    assert_eq!(acc_norm(&[-3.0, -2.2], &accented, 0), 1.0);
    // A tie after normalisation goes to the first: -2/2 == -4/4.
    assert_eq!(acc_norm(&[-2.0, -4.0], &strings(&["ab", "abcd"]), 0), 1.0);
    assert_eq!(acc_norm(&[-2.0, -4.0], &strings(&["ab", "abcd"]), 1), 0.0);
}

#[test]
fn mc1_and_mc2_by_hand() {
    assert_eq!(mc1(&[-1.0, -2.0, -0.5], 0), 0.0);
    assert_eq!(
        mc1(&[-1.0, -1.0, -3.0], 0),
        1.0,
        "a tie with the first (true) answer counts for it"
    );
    // p = e^-1, e^-2 (true) and e^-1 (false): (e^-1 + e^-2) / (2 e^-1 + e^-2).
    let want = ((-1f64).exp() + (-2f64).exp()) / (2.0 * (-1f64).exp() + (-2f64).exp());
    let got = mc2(&[-1.0, -2.0, -1.0], &[1, 1, 0]);
    assert!((got - want).abs() < 1e-15, "{got} vs {want}");
    // Equal log-likelihoods: the true share is the count share.
    assert!((mc2(&[-3.0; 4], &[1, 0, 0, 0]) - 0.25).abs() < 1e-15);
    // Log-likelihoods so low that e^ll underflows: the same ratio from shifted values.
    let low = mc2(&[-2000.0, -2001.0], &[1, 0]);
    let want = 1.0 / (1.0 + (-1f64).exp());
    assert!((low - want).abs() < 1e-12, "{low} vs {want}");
}

#[test]
fn gsm8k_answers_as_b281b09_extracts_them() {
    assert_eq!(gsm8k_extract("so 3 + 4 = 7\n#### 7"), "7");
    assert_eq!(
        gsm8k_extract("#### 1,234.5 dollars"),
        "1234.5",
        "commas removed"
    );
    assert_eq!(gsm8k_extract("#### -12"), "-12");
    assert_eq!(gsm8k_extract("#### 5\n#### 6"), "5", "the first match");
    assert_eq!(gsm8k_extract("The answer is 7"), INVALID_ANSWER);
    assert_eq!(
        gsm8k_extract("####7"),
        INVALID_ANSWER,
        "the space is part of the pattern"
    );
    assert_eq!(
        gsm8k_correct(" 2 + 2 = 4\n#### 4", "2+2=4\n#### 4"),
        Some(true)
    );
    assert_eq!(
        gsm8k_correct("#### 4.0", "#### 4"),
        Some(false),
        "an exact string compare"
    );
    assert_eq!(gsm8k_correct("#### 1,000", "#### 1000"), Some(true));
    assert_eq!(gsm8k_correct("no answer", "#### 4"), Some(false));
    assert_eq!(
        gsm8k_correct("#### 4", "four"),
        None,
        "a reference without #### is an error"
    );
}

#[test]
fn lm_eval_04_regex_filter_and_exact_match() {
    let strict = Regex::new(r"#### (\-?[0-9\.\,]+)").unwrap();
    assert_eq!(
        regex_filter(&strict, 0, INVALID_ANSWER, "x #### 1,5 and #### 7"),
        "1,5"
    );
    assert_eq!(
        regex_filter(&strict, -1, INVALID_ANSWER, "x #### 1,5 and #### 7"),
        "7"
    );
    assert_eq!(
        regex_filter(&strict, 0, INVALID_ANSWER, "nothing"),
        INVALID_ANSWER
    );
    let flexible = Regex::new(r"(-?[$0-9.,]{2,})|(-?[0-9]+)").unwrap();
    assert_eq!(
        regex_filter(&flexible, -1, INVALID_ANSWER, "is 3 then $1,200"),
        "$1,200"
    );
    assert_eq!(
        regex_filter(&flexible, -1, INVALID_ANSWER, "only 7"),
        "7",
        "the first non-empty group"
    );
    let em = ExactMatch::gsm8k_v04();
    assert_eq!(
        em.score("1,200", "so\n#### 1200"),
        1.0,
        "commas and everything up to #### ignored"
    );
    assert_eq!(
        em.score("$5.", "#### 5"),
        1.0,
        "dollar and final period ignored"
    );
    assert_eq!(em.score("6", "#### 5"), 0.0);
    let plain = ExactMatch {
        ignore_case: true,
        ignore_punctuation: true,
        ..ExactMatch::default()
    };
    assert_eq!(plain.score("Paris!", "paris"), 1.0);
    assert_eq!(ExactMatch::default().score("Paris", "paris"), 0.0);
}
