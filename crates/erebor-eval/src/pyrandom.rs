//! A port of CPython's `random.Random` (Mersenne Twister MT19937), bit for bit.
//!
//! lm-evaluation-harness shuffles documents and draws few-shot examples with Python's
//! generator, so reproducing its prompts needs the same stream: seeding from an int with
//! `init_by_array` (the int's absolute value as little-endian 32-bit words), `random()`,
//! `getrandbits`, `_randbelow`, `shuffle` and both branches of `sample`, as in CPython 3.x
//! (3.11's `shuffle` dropped its `random` argument; the draws stayed the same).
//! `tests/pyrandom.rs` checks them against sequences CPython itself wrote
//! (`scripts/pyrandom_goldens.py`).

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// CPython's `random.Random`, seeded with an integer.
#[derive(Clone, Debug)]
pub struct PyRandom {
    state: Box<[u32; N]>,
    index: usize,
}

impl PyRandom {
    /// `random.Random(seed)` (equivalently `rnd = random.Random(); rnd.seed(seed)`) for a
    /// non-negative integer seed.
    pub fn new(seed: u64) -> Self {
        let low = (seed & 0xffff_ffff) as u32;
        let high = (seed >> 32) as u32;
        let key: Vec<u32> = if high == 0 {
            vec![low]
        } else {
            vec![low, high]
        };
        Self::from_key(&key)
    }

    /// Seeds from the 32-bit words of an integer, least significant first (CPython's
    /// `init_by_array`). An empty key is the seed 0.
    pub(crate) fn from_key(key: &[u32]) -> Self {
        let key: &[u32] = if key.is_empty() { &[0] } else { key };
        let mut rng = Self {
            state: Box::new([0; N]),
            index: N,
        };
        rng.init_genrand(19_650_218);
        rng.init_by_array(key);
        rng
    }

    fn init_genrand(&mut self, seed: u32) {
        self.state[0] = seed;
        for i in 1..N {
            let previous = self.state[i - 1];
            // i < N = 624.
            #[allow(clippy::cast_possible_truncation)]
            let i_u32 = i as u32;
            self.state[i] = 1_812_433_253u32
                .wrapping_mul(previous ^ (previous >> 30))
                .wrapping_add(i_u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        let mt = &mut self.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let previous = mt[i - 1];
            // CPython adds the key index as a `uint32_t`, i.e. modulo 2^32.
            #[allow(clippy::cast_possible_truncation)]
            let j_u32 = j as u32;
            mt[i] = (mt[i] ^ (previous ^ (previous >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j_u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let previous = mt[i - 1];
            // i < N = 624.
            #[allow(clippy::cast_possible_truncation)]
            let i_u32 = i as u32;
            mt[i] = (mt[i] ^ (previous ^ (previous >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i_u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
    }

    fn regenerate(&mut self) {
        let mt = &mut self.state;
        let twist = |upper: u32, lower: u32, far: u32| {
            let y = (upper & UPPER_MASK) | (lower & LOWER_MASK);
            far ^ (y >> 1) ^ if y & 1 == 1 { MATRIX_A } else { 0 }
        };
        for k in 0..N - M {
            mt[k] = twist(mt[k], mt[k + 1], mt[k + M]);
        }
        for k in N - M..N - 1 {
            mt[k] = twist(mt[k], mt[k + 1], mt[k + M - N]);
        }
        mt[N - 1] = twist(mt[N - 1], mt[0], mt[M - 1]);
        self.index = 0;
    }

    /// The next raw 32-bit output (CPython's `genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.regenerate();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random()`: a float in [0, 1) with 53 random bits from two 32-bit outputs.
    pub fn random(&mut self) -> f64 {
        let a = u64::from(self.next_u32() >> 5);
        let b = u64::from(self.next_u32() >> 6);
        (a * 67_108_864 + b) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `getrandbits(k)` for `k <= 128`: 32-bit words least significant first, the last one
    /// shifted right to keep `k` bits.
    ///
    /// # Panics
    /// When `k > 128`.
    pub fn getrandbits(&mut self, k: u32) -> u128 {
        assert!(k <= 128, "getrandbits supports at most 128 bits, got {k}");
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return u128::from(self.next_u32() >> (32 - k));
        }
        let mut value = 0u128;
        let mut left = k;
        let mut shift = 0;
        while left > 0 {
            let mut word = self.next_u32();
            if left < 32 {
                word >>= 32 - left;
            }
            value |= u128::from(word) << shift;
            shift += 32;
            left = left.saturating_sub(32);
        }
        value
    }

    /// `_randbelow(n)`: uniform in `[0, n)` by rejection on `getrandbits(n.bit_length())`;
    /// 0 for `n == 0`, as CPython's.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let bits = u64::BITS - n.leading_zeros();
        loop {
            // At most 64 random bits.
            #[allow(clippy::cast_possible_truncation)]
            let r = self.getrandbits(bits) as u64;
            if r < n {
                return r;
            }
        }
    }

    /// `randrange(start, stop, step)`; `stop = None` is `randrange(start)`.
    ///
    /// # Panics
    /// On an empty range or a zero step, where CPython raises `ValueError`.
    // `start`, `stop` and `step` are CPython's names.
    #[allow(clippy::similar_names)]
    pub fn randrange(&mut self, start: i64, stop: Option<i64>, step: i64) -> i64 {
        let Some(stop) = stop else {
            assert!(start > 0, "empty range for randrange({start})");
            return self.pick(0, 1, i128::from(start));
        };
        assert!(step != 0, "zero step for randrange()");
        let width = i128::from(stop) - i128::from(start);
        if step == 1 {
            assert!(width > 0, "empty range for randrange({start}, {stop})");
            return self.pick(start, 1, width);
        }
        let step_wide = i128::from(step);
        let count = if step > 0 {
            (width + step_wide - 1).div_euclid(step_wide)
        } else {
            (width + step_wide + 1).div_euclid(step_wide)
        };
        assert!(
            count > 0,
            "empty range for randrange({start}, {stop}, {step})"
        );
        self.pick(start, step, count)
    }

    /// `start + step * _randbelow(count)`, for the positive `count` of values of a range of
    /// `i64`s from `start` by `step`.
    // Such a range has fewer than 2^64 values, and the pick is one of them, an `i64`.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn pick(&mut self, start: i64, step: i64, count: i128) -> i64 {
        let offset = i128::from(step) * i128::from(self.randbelow(count as u64));
        (i128::from(start) + offset) as i64
    }

    /// `_randbelow(n)` for a bound on indices.
    // The index is below `n`, a `usize`.
    #[allow(clippy::cast_possible_truncation)]
    fn randbelow_index(&mut self, n: usize) -> usize {
        self.randbelow(n as u64) as usize
    }

    /// `shuffle(x)` in place: Fisher–Yates from the end with `_randbelow(i + 1)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.randbelow_index(i + 1);
            items.swap(i, j);
        }
    }

    /// The indices `sample(range(n), k)` picks, in order. `sample(population, k)` picks the
    /// population's items at these indices.
    ///
    /// # Panics
    /// When `k > n`, where CPython raises `ValueError`.
    pub fn sample_indices(&mut self, n: usize, k: usize) -> Vec<usize> {
        assert!(k <= n, "sample larger than population ({k} > {n})");
        if n <= sample_setsize(k) {
            let mut pool: Vec<usize> = (0..n).collect();
            (0..k)
                .map(|i| {
                    let j = self.randbelow_index(n - i);
                    let picked = pool[j];
                    pool[j] = pool[n - i - 1];
                    picked
                })
                .collect()
        } else {
            let mut selected = std::collections::HashSet::with_capacity(k);
            (0..k)
                .map(|_| {
                    loop {
                        let j = self.randbelow_index(n);
                        if selected.insert(j) {
                            break j;
                        }
                    }
                })
                .collect()
        }
    }

    /// `sample(population, k)`: `k` distinct items, in the order drawn.
    ///
    /// # Panics
    /// When `k > population.len()`.
    pub fn sample<T: Clone>(&mut self, population: &[T], k: usize) -> Vec<T> {
        self.sample_indices(population.len(), k)
            .into_iter()
            .map(|i| population[i].clone())
            .collect()
    }
}

/// CPython's threshold in `sample`: a population of at most this size is copied into a pool,
/// a larger one is sampled by rejection against a set of picked indices.
pub fn sample_setsize(k: usize) -> usize {
    let mut size = 21;
    if k > 5 {
        // ceil(log4(3k)): positive and small.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let exponent = ((k as f64 * 3.0).ln() / 4f64.ln()).ceil() as u32;
        size += 4usize.pow(exponent);
    }
    size
}
