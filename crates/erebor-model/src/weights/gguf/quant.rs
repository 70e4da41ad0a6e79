//! Dequantisation of the GGML tensor types erebor reads, to f32 (layouts from ggml-common.h).

use half::{bf16, f16};

/// GGML tensor types supported here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
            30 => GgufTensorType::BF16,
            _ => return None,
        })
    }

    /// Elements per block and bytes per block.
    pub fn block(self) -> (usize, usize) {
        match self {
            GgufTensorType::F32 => (1, 4),
            GgufTensorType::F16 | GgufTensorType::BF16 => (1, 2),
            GgufTensorType::Q8_0 => (32, 34),
            GgufTensorType::Q4_0 => (32, 18),
            GgufTensorType::Q4_1 => (32, 20),
        }
    }

    /// Bytes needed for `n` elements, or `None` when `n` is not a whole number of blocks.
    pub fn byte_len(self, n: usize) -> Option<usize> {
        let (per, bytes) = self.block();
        n.is_multiple_of(per).then_some(n / per * bytes)
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantises `bytes` (exactly [`GgufTensorType::byte_len`] long) to f32.
pub fn dequantize(ty: GgufTensorType, bytes: &[u8]) -> Vec<f32> {
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
                out.extend(block[2..].iter().map(|&q| d * f32::from(q as i8)));
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
    }
}

#[cfg(test)]
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
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let out = dequantize(GgufTensorType::Q8_0, &block);
        for (i, x) in out.iter().enumerate() {
            assert_eq!(*x, 0.25 * (i as f32 - 16.0));
        }
    }
}
