//! GGUF metadata values and a bounds-checked little-endian reader.

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// Any unsigned integer type.
    U64(u64),
    /// Any signed integer type.
    I64(i64),
    /// f32 or f64.
    F64(f64),
    /// bool.
    Bool(bool),
    /// UTF-8 string.
    Str(String),
    /// Array of values (long arrays of numbers are kept; tokenizer vocabularies are large but
    /// only read once).
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// As an unsigned integer (non-negative integers of any width).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            MetaValue::U64(v) => Some(*v),
            MetaValue::I64(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }

    /// As a float (integers convert).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MetaValue::F64(v) => Some(*v),
            MetaValue::U64(v) => Some(*v as f64),
            MetaValue::I64(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// As a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Reads little-endian values from a byte slice; every read checks the bounds.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

type R<T> = std::result::Result<T, String>;

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| format!("truncated: needs {n} bytes at offset {}", self.pos))?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> R<[u8; N]> {
        Ok(self.bytes(N)?.try_into().expect("length checked"))
    }

    pub(crate) fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A u64 count, length or offset as `usize` (an error where this platform's is narrower).
    pub(crate) fn usize(&mut self) -> R<usize> {
        let n = self.u64()?;
        usize::try_from(n).map_err(|_| format!("{n} does not fit in this platform's usize"))
    }

    pub(crate) fn string(&mut self) -> R<String> {
        let len = self.usize()?;
        let bytes = self.bytes(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("string is not UTF-8: {e}"))
    }

    /// A value of GGUF type `ty`.
    pub(crate) fn value(&mut self, ty: u32) -> R<MetaValue> {
        Ok(match ty {
            0 => MetaValue::U64(u64::from(self.array::<1>()?[0])),
            1 => MetaValue::I64(i64::from(self.array::<1>()?[0].cast_signed())),
            2 => MetaValue::U64(u64::from(u16::from_le_bytes(self.array()?))),
            3 => MetaValue::I64(i64::from(i16::from_le_bytes(self.array()?))),
            4 => MetaValue::U64(u64::from(self.u32()?)),
            5 => MetaValue::I64(i64::from(i32::from_le_bytes(self.array()?))),
            6 => MetaValue::F64(f64::from(f32::from_le_bytes(self.array()?))),
            7 => MetaValue::Bool(self.array::<1>()?[0] != 0),
            8 => MetaValue::Str(self.string()?),
            9 => {
                let item_ty = self.u32()?;
                let n = self.usize()?;
                if n > self.buf.len() {
                    return Err(format!("array of {n} items is longer than the file"));
                }
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(item_ty)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(self.u64()?),
            11 => MetaValue::I64(i64::from_le_bytes(self.array()?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array()?)),
            other => return Err(format!("unknown metadata value type {other}")),
        })
    }
}
