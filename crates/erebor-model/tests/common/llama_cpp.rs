//! llama.cpp's row permutation of q/k weights, written from `convert_hf_to_gguf.py`: the
//! independent reference the GGUF loader's unpermute is tested against (by tests/gguf.rs and
//! by the unit test in src/weights/gguf/source.rs, which includes this file).

/// llama.cpp's `permute`: rows reshaped `(n_head, 2, rows/n_head/2, cols)` with axes 1 and 2
/// swapped.
pub(crate) fn permute(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    let half = rows / n_head / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..n_head {
        for pair in 0..2 {
            for i in 0..half {
                let src = (h * 2 + pair) * half + i;
                let dst = (h * half + i) * 2 + pair;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}
