//! Dequantisation of the GGML tensor types erebor reads, to f32 (layouts from ggml-common.h).

use half::{bf16, f16};

/// GGML tensor types supported here. `Debug` prints ggml's name (`Q4_K`, `Q8_0`, `F32`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GgufTensorType {
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
    /// bfloat16.
    BF16,
    /// Blocks of 32: f16 scale `d`, 32 × i8; `x = d·q`.
    Q8_0,
    /// Blocks of 32: f16 scale `d`, 16 bytes of nibbles; `x = d·(q − 8)`.
    Q4_0,
    /// Blocks of 32: f16 scale `d`, f16 min `m`, 16 bytes of nibbles; `x = d·q + m`.
    Q4_1,
    /// Super-blocks of 256 (`block_q4_K`, 144 bytes): f16 `d` and `dmin`, 12 bytes packing eight
    /// 6-bit scales and mins, 128 bytes of nibbles; sub-block `j` of 32 is
    /// `x = (d·sc_j)·q − dmin·m_j`.
    Q4K,
    /// Super-blocks of 256 (`block_q5_K`, 176 bytes): as Q4K plus 32 bytes holding each value's
    /// fifth bit (bit `j` of `qh[l]` for sub-block `j`).
    Q5K,
    /// Super-blocks of 256 (`block_q6_K`, 210 bytes): 128 bytes of low nibbles, 64 bytes of high
    /// 2-bit pairs, sixteen i8 scales, f16 `d`; `x = (d·sc)·(q − 32)` for 16-value groups.
    Q6K,
}

impl GgufTensorType {
    /// Maps the `ggml_type` id; `None` for types not supported here.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => GgufTensorType::F32,
            1 => GgufTensorType::F16,
            2 => GgufTensorType::Q4_0,
            3 => GgufTensorType::Q4_1,
            8 => GgufTensorType::Q8_0,
            12 => GgufTensorType::Q4K,
            13 => GgufTensorType::Q5K,
            14 => GgufTensorType::Q6K,
            30 => GgufTensorType::BF16,
            _ => return None,
        })
    }

    /// ggml's name of the type, as `gguf` and llama.cpp print it.
    pub fn name(self) -> &'static str {
        match self {
            GgufTensorType::F32 => "F32",
            GgufTensorType::F16 => "F16",
            GgufTensorType::BF16 => "BF16",
            GgufTensorType::Q8_0 => "Q8_0",
            GgufTensorType::Q4_0 => "Q4_0",
            GgufTensorType::Q4_1 => "Q4_1",
            GgufTensorType::Q4K => "Q4_K",
            GgufTensorType::Q5K => "Q5_K",
            GgufTensorType::Q6K => "Q6_K",
        }
    }

    /// Elements per block and bytes per block.
    pub fn block(self) -> (usize, usize) {
        match self {
            GgufTensorType::F32 => (1, 4),
            GgufTensorType::F16 | GgufTensorType::BF16 => (1, 2),
            GgufTensorType::Q8_0 => (32, 34),
            GgufTensorType::Q4_0 => (32, 18),
            GgufTensorType::Q4_1 => (32, 20),
            GgufTensorType::Q4K => (QK_K, 144),
            GgufTensorType::Q5K => (QK_K, 176),
            GgufTensorType::Q6K => (QK_K, 210),
        }
    }

    /// Bytes needed for `n` elements, or `None` when `n` is not a whole number of blocks.
    pub(crate) fn byte_len(self, n: usize) -> Option<usize> {
        let (per, bytes) = self.block();
        n.is_multiple_of(per).then_some(n / per * bytes)
    }
}

impl std::fmt::Debug for GgufTensorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Values per K-quant super-block (`QK_K` in ggml-common.h).
const QK_K: usize = 256;

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantises `bytes` (exactly [`GgufTensorType::byte_len`] long) to f32.
pub(crate) fn dequantize(ty: GgufTensorType, bytes: &[u8]) -> Vec<f32> {
    match ty {
        GgufTensorType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        GgufTensorType::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        GgufTensorType::BF16 => bytes
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        GgufTensorType::Q8_0 => {
            let mut out = Vec::with_capacity(bytes.len() / 34 * 32);
            for block in bytes.chunks_exact(34) {
                let d = f16_at(block, 0);
                out.extend(block[2..].iter().map(|&q| d * f32::from(q.cast_signed())));
            }
            out
        }
        GgufTensorType::Q4_0 => {
            let mut out = Vec::with_capacity(bytes.len() / 18 * 32);
            for block in bytes.chunks_exact(18) {
                let d = f16_at(block, 0);
                let qs = &block[2..];
                out.extend(qs.iter().map(|&q| d * (f32::from(q & 0x0F) - 8.0)));
                out.extend(qs.iter().map(|&q| d * (f32::from(q >> 4) - 8.0)));
            }
            out
        }
        GgufTensorType::Q4_1 => {
            let mut out = Vec::with_capacity(bytes.len() / 20 * 32);
            for block in bytes.chunks_exact(20) {
                let d = f16_at(block, 0);
                let m = f16_at(block, 2);
                let qs = &block[4..];
                out.extend(qs.iter().map(|&q| d * f32::from(q & 0x0F) + m));
                out.extend(qs.iter().map(|&q| d * f32::from(q >> 4) + m));
            }
            out
        }
        GgufTensorType::Q4K => k_quant(bytes, 144, dequantize_q4_k),
        GgufTensorType::Q5K => k_quant(bytes, 176, dequantize_q5_k),
        GgufTensorType::Q6K => k_quant(bytes, 210, dequantize_q6_k),
    }
}

/// Applies `block_fn` to each `size`-byte super-block, collecting 256 values per block.
fn k_quant(bytes: &[u8], size: usize, block_fn: fn(&[u8], &mut [f32])) -> Vec<f32> {
    let mut out = vec![0.0; bytes.len() / size * QK_K];
    for (block, values) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(QK_K)) {
        block_fn(block, values);
    }
    out
}

/// The 6-bit scale and min of sub-block `j` (0..8) from the 12 packed bytes: ggml-quants.c's
/// `get_scale_min_k4`.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The eight `(d·sc_j, dmin·m_j)` pairs of a Q4K/Q5K block, each product rounded to f32 as
/// ggml's `dequantize_row_q4_K` rounds it.
fn k_scales(block: &[u8]) -> [(f32, f32); 8] {
    let d = f16_at(block, 0);
    let dmin = f16_at(block, 2);
    let scales = &block[4..16];
    std::array::from_fn(|j| {
        let (sc, m) = scale_min_k4(j, scales);
        (d * f32::from(sc), dmin * f32::from(m))
    })
}

/// ggml's `dequantize_row_q4_K` for one block: 64-value chunks share 32 bytes, low nibbles
/// first (sub-block `2c`), then high nibbles (`2c + 1`).
fn dequantize_q4_k(block: &[u8], out: &mut [f32]) {
    let scales = k_scales(block);
    let qs = &block[16..144];
    for (j, &(d, m)) in scales.iter().enumerate() {
        let bytes = &qs[j / 2 * 32..j / 2 * 32 + 32];
        let shift = if j % 2 == 0 { 0 } else { 4 };
        for (l, &q) in bytes.iter().enumerate() {
            out[j * 32 + l] = d * f32::from((q >> shift) & 0xF) - m;
        }
    }
}

/// ggml's `dequantize_row_q5_K` for one block: the Q4K nibbles plus 16 where bit `j` of
/// `qh[l]` is set.
fn dequantize_q5_k(block: &[u8], out: &mut [f32]) {
    let scales = k_scales(block);
    let qh = &block[16..48];
    let qs = &block[48..176];
    for (j, &(d, m)) in scales.iter().enumerate() {
        let bytes = &qs[j / 2 * 32..j / 2 * 32 + 32];
        let shift = if j % 2 == 0 { 0 } else { 4 };
        for (l, &q) in bytes.iter().enumerate() {
            let high = if qh[l] & (1 << j) != 0 { 16 } else { 0 };
            out[j * 32 + l] = d * f32::from(((q >> shift) & 0xF) + high) - m;
        }
    }
}

/// ggml's `dequantize_row_q6_K` for one block: two halves of 128 values, each from 64 bytes of
/// low nibbles, 32 bytes of 2-bit highs and 8 scales (one per 16 values).
fn dequantize_q6_k(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 208);
    for half in 0..2 {
        let ql = &block[half * 64..half * 64 + 64];
        let qh = &block[128 + half * 32..128 + half * 32 + 32];
        let sc = &block[192 + half * 8..192 + half * 8 + 8];
        let y = &mut out[half * 128..half * 128 + 128];
        for l in 0..32 {
            let is = l / 16;
            let q = [
                (ql[l] & 0xF) | ((qh[l] & 3) << 4),
                (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
                (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
            ];
            for (k, q) in q.into_iter().enumerate() {
                let scale = d * f32::from(sc[is + 2 * k].cast_signed());
                y[l + 32 * k] = scale * f32::from(q.cast_signed() - 32);
            }
        }
    }
}

#[cfg(test)]
// The blocks hold small multiples of powers of two: their dequantised values are exact in f32.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    fn h(x: f32) -> [u8; 2] {
        f16::from_f32(x).to_le_bytes()
    }

    #[test]
    fn q4_1_block_is_scale_times_nibble_plus_min() {
        // d = 0.5, m = -1.0; byte j holds low nibble j%16 and high nibble 15 - j%16.
        let mut block = Vec::new();
        block.extend(h(0.5));
        block.extend(h(-1.0));
        for j in 0..16u8 {
            block.push(j | ((15 - j) << 4));
        }
        let out = dequantize(GgufTensorType::Q4_1, &block);
        assert_eq!(out.len(), 32);
        for j in 0..16 {
            assert_eq!(out[j], 0.5 * j as f32 - 1.0, "low nibble {j}");
            assert_eq!(out[j + 16], 0.5 * (15 - j) as f32 - 1.0, "high nibble {j}");
        }
    }

    #[test]
    fn q4_0_block_is_centred_on_eight() {
        let mut block = Vec::new();
        block.extend(h(2.0));
        block.extend(std::iter::repeat_n(0x0Fu8, 16));
        let out = dequantize(GgufTensorType::Q4_0, &block);
        assert!(out[..16].iter().all(|&x| x == 14.0));
        assert!(out[16..].iter().all(|&x| x == -16.0));
    }

    #[test]
    fn q8_0_block_is_signed() {
        let mut block = Vec::new();
        block.extend(h(0.25));
        block.extend((0..32i8).map(|i| (i - 16).cast_unsigned()));
        let out = dequantize(GgufTensorType::Q8_0, &block);
        for (i, x) in out.iter().enumerate() {
            assert_eq!(*x, 0.25 * (i as f32 - 16.0));
        }
    }
}
