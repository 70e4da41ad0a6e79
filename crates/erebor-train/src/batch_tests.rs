use super::*;

fn sft_row(id: &str, ids: &[u32], spans: &[[u32; 2]]) -> TokenisedSft {
    TokenisedSft {
        id: id.into(),
        input_ids: ids.to_vec(),
        target_spans: spans.to_vec(),
    }
}

#[test]
fn sft_targets_are_shifted_and_masked_to_assistant_spans() {
    // Two assistant turns: tokens 2..4 and 6..7 (a multi-turn conversation).
    let rows = [sft_row(
        "a",
        &[10, 11, 12, 13, 14, 15, 16],
        &[[2, 4], [6, 7]],
    )];
    let (examples, dropped) = prepare_sft(&rows, 16).unwrap();
    assert_eq!(dropped, 0);
    let batch = sft_batch(&[&examples[0]], 4);
    assert_eq!(batch.seq_len, 8);
    assert_eq!(batch.input_ids, vec![10, 11, 12, 13, 14, 15, 16, 0]);
    assert_eq!(batch.targets, vec![11, 12, 13, 14, 15, 16, 0, 0]);
    // Position t predicts token t+1: tokens 2, 3 and 6 are targets.
    assert_eq!(batch.loss_mask, vec![0., 1., 1., 0., 0., 1., 0., 0.]);
    assert_eq!(batch.target_count(), 3);
    assert_eq!(batch.real_tokens, 7);
}

#[test]
fn sft_truncation_keeps_the_start_and_drops_rows_without_targets() {
    let rows = [
        sft_row("long", &[1, 2, 3, 4, 5, 6], &[[3, 6]]),
        sft_row("gone", &[1, 2, 3, 4, 5, 6], &[[5, 6]]),
    ];
    let (examples, dropped) = prepare_sft(&rows, 4).unwrap();
    assert_eq!(dropped, 1);
    assert_eq!(examples.len(), 1);
    assert_eq!(examples[0].input_ids, vec![1, 2, 3, 4]);
    assert_eq!(examples[0].target_count(), 1);
}

#[test]
fn a_span_outside_the_row_names_the_row() {
    let rows = [
        sft_row("ok", &[1, 2], &[[1, 2]]),
        sft_row("bad", &[1, 2], &[[1, 5]]),
    ];
    let error = prepare_sft(&rows, 8).unwrap_err();
    assert_eq!(error.row, 1);
    assert_eq!(
        error.to_string(),
        "row 1 (id `bad`): target span [1, 5) is outside its 2 tokens"
    );
}

#[test]
fn packing_resets_positions_and_never_predicts_across_examples() {
    let rows = [
        sft_row("a", &[1, 2, 3], &[[1, 3]]),
        sft_row("b", &[4, 5], &[[1, 2]]),
        sft_row("c", &[6, 7, 8, 9], &[[2, 4]]),
    ];
    let (examples, _) = prepare_sft(&rows, 8).unwrap();
    let packed = pack(&examples, 6);
    assert_eq!(packed.len(), 2, "a+b fit in 6, c starts a new row");
    assert_eq!(packed[0].target_count(), 3);
    let batch = packed_batch(&[&packed[0], &packed[1]], 1);
    assert_eq!(batch.seq_len, 5);
    assert_eq!(&batch.input_ids[..5], &[1, 2, 3, 4, 5]);
    // Position 2 (token 3, end of a) would predict 4 (start of b): masked.
    assert_eq!(&batch.loss_mask[..5], &[1., 1., 0., 1., 0.]);
    let positions = batch.position_ids.as_ref().unwrap();
    assert_eq!(&positions[..5], &[0, 1, 2, 0, 1]);
    let segments = batch.segment_ids.as_ref().unwrap();
    assert_eq!(&segments[..5], &[0, 0, 0, 1, 1]);
    // Row 2: c alone, padded by one; padding gets the no-segment marker.
    assert_eq!(&segments[5..], &[0, 0, 0, 0, u32::MAX]);
    assert_eq!(&batch.loss_mask[5..], &[0., 1., 1., 0., 0.]);
    assert_eq!(batch.target_count(), 5);
}

fn pair(prompt: &[u32], chosen: &[u32], rejected: &[u32]) -> TokenisedPreference {
    TokenisedPreference {
        id: "p".into(),
        prompt_ids: prompt.to_vec(),
        chosen_ids: chosen.to_vec(),
        rejected_ids: rejected.to_vec(),
    }
}

#[test]
fn pair_batches_put_chosen_rows_first_and_mask_the_prompt() {
    let pairs = prepare_pairs(&[pair(&[1, 2], &[3, 4], &[5])], 16, 8).unwrap();
    let batch = pair_batch(&[&pairs[0]], 1);
    assert_eq!(batch.rows, 2);
    assert_eq!(batch.seq_len, 4);
    assert_eq!(batch.input_ids, vec![1, 2, 3, 4, 1, 2, 5, 0]);
    assert_eq!(batch.loss_mask, vec![0., 1., 1., 0., 0., 1., 0., 0.]);
    assert_eq!(batch.targets, vec![2, 3, 4, 0, 2, 5, 0, 0]);
}

#[test]
fn pair_truncation_cuts_the_prompt_from_the_left_then_completions_from_the_right() {
    let rows = [pair(&[1, 2, 3, 4, 5, 6], &[7, 8, 9, 10], &[11, 12])];
    let pairs = prepare_pairs(&rows, 6, 3).unwrap();
    assert_eq!(pairs[0].prompt_ids, vec![4, 5, 6]);
    assert_eq!(pairs[0].chosen_ids, vec![7, 8, 9]);
    assert_eq!(pairs[0].rejected_ids, vec![11, 12]);
    // Short enough: untouched.
    let pairs = prepare_pairs(&rows, 12, 3).unwrap();
    assert_eq!(pairs[0].prompt_ids.len(), 6);
    // Empty completion: an error naming the row.
    let error = prepare_pairs(&[pair(&[1], &[], &[2])], 8, 4).unwrap_err();
    assert!(error.to_string().contains("row 0 (id `p`)"), "{error}");
}
