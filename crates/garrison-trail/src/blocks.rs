//! JSON structure found 64 bytes at a time, after the first stage of simdjson (Langdale and
//! Lemire, "Parsing Gigabytes of JSON per Second", 2019): each block becomes bit masks of its
//! quotes, backslashes and structural characters; escaped characters and the insides of
//! strings are then masked out with integer arithmetic, so that a record's structure (its
//! braces, brackets, colons and commas outside strings) is known without looking at its
//! strings one by one. Only the block classification uses SIMD (SSE2, part of every x86-64
//! CPU); other targets classify byte by byte with the same result.

const EVEN_BITS: u64 = 0x5555_5555_5555_5555;

/// The positions (relative to the start of the bytes given) of `{ } [ ] : ,` outside
/// strings, in order. State carries from block to block: whether the block before ended
/// inside a string, or on a backslash that escapes the next byte.
pub struct Structurals<'a> {
    b: &'a [u8],
    /// Start of the block whose bits are in `bits`.
    at: usize,
    bits: u64,
    escaped_carry: u64,
    in_string_carry: u64,
}

impl<'a> Structurals<'a> {
    /// `b` must start outside a string.
    pub fn new(b: &'a [u8]) -> Structurals<'a> {
        let mut s = Structurals { b, at: 0, bits: 0, escaped_carry: 0, in_string_carry: 0 };
        s.bits = s.block(0);
        s
    }

    /// Classifies the block at `at` (padded with spaces past the end).
    fn block(&mut self, at: usize) -> u64 {
        let rest = &self.b[at.min(self.b.len())..];
        let m = if rest.len() >= 64 {
            classify(rest[..64].try_into().expect("64 bytes"))
        } else {
            let mut pad = [b' '; 64];
            pad[..rest.len()].copy_from_slice(rest);
            classify(&pad)
        };
        let escaped = escaped(m.backslash, &mut self.escaped_carry);
        let quotes = m.quote & !escaped;
        let in_string = prefix_xor(quotes) ^ self.in_string_carry;
        // All ones when the block ends inside a string.
        self.in_string_carry = 0u64.wrapping_sub(in_string >> 63);
        m.structural & !in_string
    }
}

impl Iterator for Structurals<'_> {
    type Item = (usize, u8);

    fn next(&mut self) -> Option<(usize, u8)> {
        loop {
            if self.bits != 0 {
                let i = self.at + self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                return Some((i, self.b[i]));
            }
            self.at += 64;
            if self.at >= self.b.len() {
                return None;
            }
            self.bits = self.block(self.at);
        }
    }
}

/// One block's bit masks: bit i is byte i.
#[derive(Debug, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    structural: u64,
}

/// Bytes escaped by a backslash (simdjson's branch-free method): a run of backslashes escapes
/// the byte after it when the run is odd in length. `carry` says the block before ended on an
/// odd run.
fn escaped(backslash: u64, carry: &mut u64) -> u64 {
    let backslash = backslash & !*carry;
    let follows_escape = (backslash << 1) | *carry;
    let odd_starts = backslash & !EVEN_BITS & !follows_escape;
    let (even_starts, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    let invert = even_starts << 1;
    (EVEN_BITS ^ invert) & follows_escape
}

/// Bit i of the result is the xor of bits 0..=i: from an opening quote up to (not including)
/// the quote that closes it.
fn prefix_xor(mut x: u64) -> u64 {
    for s in [1, 2, 4, 8, 16, 32] {
        x ^= x << s;
    }
    x
}

#[cfg(target_arch = "x86_64")]
fn classify(b: &[u8; 64]) -> Masks {
    use std::arch::x86_64::*;
    let (mut quote, mut backslash, mut structural) = (0u64, 0u64, 0u64);
    for (i, lane) in b.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of every x86-64 CPU (the target's baseline); the load reads the
        // 16 bytes of `lane` and has no alignment requirement.
        let (q, bs, st) = unsafe {
            let v = _mm_loadu_si128(lane.as_ptr().cast::<__m128i>());
            let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            // `[` and `]` are `{` and `}` with bit 5 clear.
            let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let brackets = _mm_or_si128(
                _mm_cmpeq_epi8(folded, _mm_set1_epi8(b'{' as i8)),
                _mm_cmpeq_epi8(folded, _mm_set1_epi8(b'}' as i8)),
            );
            (
                _mm_movemask_epi8(eq(b'"')),
                _mm_movemask_epi8(eq(b'\\')),
                _mm_movemask_epi8(_mm_or_si128(brackets, _mm_or_si128(eq(b':'), eq(b',')))),
            )
        };
        let bits = |m: i32| u64::from(m as u16) << (16 * i);
        quote |= bits(q);
        backslash |= bits(bs);
        structural |= bits(st);
    }
    Masks { quote, backslash, structural }
}

#[cfg(not(target_arch = "x86_64"))]
fn classify(b: &[u8; 64]) -> Masks {
    classify_bytes(b)
}

/// Byte by byte: other targets, and the reference the SIMD version is tested against.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classify_bytes(b: &[u8; 64]) -> Masks {
    let mut m = Masks { quote: 0, backslash: 0, structural: 0 };
    for (i, c) in b.iter().enumerate() {
        let bit = 1u64 << i;
        match c {
            b'"' => m.quote |= bit,
            b'\\' => m.backslash |= bit,
            b'{' | b'}' | b'[' | b']' | b':' | b',' => m.structural |= bit,
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Structural characters outside strings, the slow way: byte by byte. A backslash
    /// escapes the byte after it wherever it is (in valid JSON only inside strings; the
    /// blocks read invalid JSON the same way, and the parser refuses it later).
    fn reference(b: &[u8]) -> Vec<(usize, u8)> {
        let (mut out, mut in_string, mut escape) = (vec![], false, false);
        for (i, &c) in b.iter().enumerate() {
            let escaped = escape;
            escape = c == b'\\' && !escaped;
            if c == b'"' && !escaped {
                in_string = !in_string;
            } else if !in_string && matches!(c, b'{' | b'}' | b'[' | b']' | b':' | b',') {
                out.push((i, c));
            }
        }
        out
    }

    #[test]
    fn escapes_and_strings_across_blocks() {
        for doc in [
            r#"{"a":"x\"y","b":[1,{"c":"}"}]}"#.to_string(),
            format!(r#"{{"a":"{}","b":1}}"#, "\\\\".repeat(40)),
            format!(r#"{{"a":"{}\"{}","b":1}}"#, "\\\\".repeat(31), "x".repeat(70)),
            format!(r#"{{"{}":{{}}}}"#, "q".repeat(63)),
        ] {
            assert_eq!(Structurals::new(doc.as_bytes()).collect::<Vec<_>>(), reference(doc.as_bytes()), "{doc}");
        }
    }

    proptest! {
        /// Any bytes (weighted towards quotes, backslashes and structure, across block
        /// boundaries) give exactly the byte-by-byte answer.
        #[test]
        fn structure_matches_the_byte_by_byte_reading(
            bytes in proptest::collection::vec(prop_oneof![
                Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b':'), Just(b','),
                Just(b'a'), Just(b' '), Just(b'{' | 0x80), Just(b']' ^ 0x20), any::<u8>()], 0..400)
        ) {
            prop_assert_eq!(Structurals::new(&bytes).collect::<Vec<_>>(), reference(&bytes));
        }

        #[test]
        fn simd_and_byte_classification_agree(block in proptest::collection::vec(any::<u8>(), 64)) {
            let b: &[u8; 64] = block.as_slice().try_into().unwrap();
            prop_assert_eq!(classify(b), classify_bytes(b));
        }
    }
}
