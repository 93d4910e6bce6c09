//! JSON structure found 64 bytes at a time, after the first stage of simdjson (Langdale and
//! Lemire, "Parsing Gigabytes of JSON per Second", 2019): each block becomes bit masks of its
//! quotes, backslashes and structural characters; escaped characters and the insides of
//! strings are then masked out with integer arithmetic, so that a record's structure (its
//! braces, brackets, colons and commas outside strings) is known without looking at its
//! strings one by one.
//!
//! The block classification is the only vector code, at the widest width the CPU has, chosen
//! at run time (`Width`): AVX-512BW classifies a block with one compare per character class,
//! AVX2 with two, SSE2 (part of every x86-64 CPU) with four; other targets classify byte by
//! byte with the same result. The caller is compiled once per width (`#[target_feature]`) so
//! that the classification inlines into its loop.

use std::marker::PhantomData;

const EVEN_BITS: u64 = 0x5555_5555_5555_5555;

/// One block's structure outside strings: bit i is byte i of the block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Block {
    /// `{` and `[`.
    pub open: u64,
    /// `}` and `]`.
    pub close: u64,
    /// `:`.
    pub colon: u64,
    /// `,`.
    pub comma: u64,
}

/// One block's bit masks, strings not yet masked out.
#[derive(Debug, PartialEq, Eq)]
pub struct Masks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
    colon: u64,
    comma: u64,
}

/// A way of classifying a block: one per vector width.
pub trait Width {
    fn masks(b: &[u8; 64]) -> Masks;

    /// Bit i of the result is the xor of bits 0..=i: from an opening quote up to (not
    /// including) the quote that closes it.
    #[inline(always)]
    fn prefix_xor(mut x: u64) -> u64 {
        for s in [1, 2, 4, 8, 16, 32] {
            x ^= x << s;
        }
        x
    }
}

/// The blocks of `b` in order, each with its structure. State carries from block to block:
/// whether the block before ended inside a string, or on a backslash that escapes the next
/// byte. `b` must start outside a string.
pub struct Blocks<'a, W> {
    b: &'a [u8],
    at: usize,
    escaped_carry: u64,
    in_string_carry: u64,
    width: PhantomData<W>,
}

impl<'a, W: Width> Blocks<'a, W> {
    #[inline(always)]
    pub fn new(b: &'a [u8]) -> Self {
        Blocks { b, at: 0, escaped_carry: 0, in_string_carry: 0, width: PhantomData }
    }

    /// The next block's start and structure (the last block padded with spaces).
    #[inline(always)]
    pub fn next_block(&mut self) -> Option<(usize, Block)> {
        let at = self.at;
        let rest = self.b.get(at..).filter(|r| !r.is_empty())?;
        self.at += 64;
        let m = match rest.first_chunk::<64>() {
            Some(block) => W::masks(block),
            None => {
                let mut pad = [b' '; 64];
                pad[..rest.len()].copy_from_slice(rest);
                W::masks(&pad)
            }
        };
        // Most blocks hold no backslash: skip the arithmetic (it gives 0 then).
        let escaped =
            if m.backslash | self.escaped_carry == 0 { 0 } else { escaped(m.backslash, &mut self.escaped_carry) };
        let in_string = W::prefix_xor(m.quote & !escaped) ^ self.in_string_carry;
        // All ones when the block ends inside a string.
        self.in_string_carry = 0u64.wrapping_sub(in_string >> 63);
        let out = !in_string;
        Some((at, Block { open: m.open & out, close: m.close & out, colon: m.colon & out, comma: m.comma & out }))
    }
}

/// Bytes escaped by a backslash (simdjson's branch-free method): a run of backslashes escapes
/// the byte after it when the run is odd in length. `carry` says the block before ended on an
/// odd run.
#[inline(always)]
fn escaped(backslash: u64, carry: &mut u64) -> u64 {
    let backslash = backslash & !*carry;
    let follows_escape = (backslash << 1) | *carry;
    let odd_starts = backslash & !EVEN_BITS & !follows_escape;
    let (even_starts, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    let invert = even_starts << 1;
    (EVEN_BITS ^ invert) & follows_escape
}

/// Byte by byte: other targets, and the reference the vector widths are tested against.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub struct Bytes;

impl Width for Bytes {
    fn masks(b: &[u8; 64]) -> Masks {
        let mut m = Masks { quote: 0, backslash: 0, open: 0, close: 0, colon: 0, comma: 0 };
        for (i, c) in b.iter().enumerate() {
            let bit = 1u64 << i;
            match c {
                b'"' => m.quote |= bit,
                b'\\' => m.backslash |= bit,
                b'{' | b'[' => m.open |= bit,
                b'}' | b']' => m.close |= bit,
                b':' => m.colon |= bit,
                b',' => m.comma |= bit,
                _ => {}
            }
        }
        m
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512, Sse2};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Masks, Width};

    // `[` and `]` are `{` and `}` with bit 5 clear, and no other byte is: OR-ing 0x20 folds
    // each pair into one compare.
    const OPEN: i8 = b'{' as i8;
    const CLOSE: i8 = b'}' as i8;

    /// 16 bytes at a time: every x86-64 CPU.
    pub struct Sse2;

    impl Width for Sse2 {
        #[inline(always)]
        fn masks(b: &[u8; 64]) -> Masks {
            let mut m = Masks { quote: 0, backslash: 0, open: 0, close: 0, colon: 0, comma: 0 };
            for (i, lane) in b.chunks_exact(16).enumerate() {
                // SAFETY: SSE2 is part of the x86-64 baseline; the load reads the 16 bytes of
                // `lane` and has no alignment requirement.
                let [q, bs, o, c, co, cm] = unsafe {
                    let v = _mm_loadu_si128(lane.as_ptr().cast::<__m128i>());
                    let eq = |c: i8| _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
                    let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
                    let feq = |c: i8| _mm_movemask_epi8(_mm_cmpeq_epi8(folded, _mm_set1_epi8(c)));
                    [eq(b'"' as i8), eq(b'\\' as i8), feq(OPEN), feq(CLOSE), eq(b':' as i8), eq(b',' as i8)]
                };
                let bits = |x: i32| u64::from(x as u16) << (16 * i);
                m.quote |= bits(q);
                m.backslash |= bits(bs);
                m.open |= bits(o);
                m.close |= bits(c);
                m.colon |= bits(co);
                m.comma |= bits(cm);
            }
            m
        }
    }

    /// Carry-less multiplication by all ones is the prefix xor in one instruction.
    #[inline(always)]
    fn clmul_prefix_xor(x: u64) -> u64 {
        // SAFETY: only reached from code compiled with `pclmulqdq` (the AVX2 and AVX-512
        // walkers, entered after `is_x86_feature_detected!`).
        unsafe {
            let r = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1), 0);
            _mm_cvtsi128_si64(r) as u64
        }
    }

    /// 32 bytes at a time.
    pub struct Avx2;

    impl Width for Avx2 {
        #[inline(always)]
        fn masks(b: &[u8; 64]) -> Masks {
            let mut m = Masks { quote: 0, backslash: 0, open: 0, close: 0, colon: 0, comma: 0 };
            for (i, lane) in b.chunks_exact(32).enumerate() {
                // SAFETY: reached only from the AVX2 walker, entered after
                // `is_x86_feature_detected!("avx2")`; the load reads `lane`'s 32 bytes, unaligned.
                let [q, bs, o, c, co, cm] = unsafe {
                    let v = _mm256_loadu_si256(lane.as_ptr().cast::<__m256i>());
                    let eq = |c: i8| _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(c)));
                    let folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
                    let feq = |c: i8| _mm256_movemask_epi8(_mm256_cmpeq_epi8(folded, _mm256_set1_epi8(c)));
                    [eq(b'"' as i8), eq(b'\\' as i8), feq(OPEN), feq(CLOSE), eq(b':' as i8), eq(b',' as i8)]
                };
                let bits = |x: i32| u64::from(x as u32) << (32 * i);
                m.quote |= bits(q);
                m.backslash |= bits(bs);
                m.open |= bits(o);
                m.close |= bits(c);
                m.colon |= bits(co);
                m.comma |= bits(cm);
            }
            m
        }

        #[inline(always)]
        fn prefix_xor(x: u64) -> u64 {
            clmul_prefix_xor(x)
        }
    }

    /// The whole block at once, straight into 64-bit masks.
    pub struct Avx512;

    impl Width for Avx512 {
        #[inline(always)]
        fn masks(b: &[u8; 64]) -> Masks {
            // SAFETY: reached only from the AVX-512 walker, entered after
            // `is_x86_feature_detected!("avx512bw")`; the load reads the block's 64 bytes, unaligned.
            unsafe {
                let v = _mm512_loadu_si512(b.as_ptr().cast::<__m512i>());
                let eq = |c: i8| _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(c));
                let folded = _mm512_or_si512(v, _mm512_set1_epi8(0x20));
                let feq = |c: i8| _mm512_cmpeq_epi8_mask(folded, _mm512_set1_epi8(c));
                Masks {
                    quote: eq(b'"' as i8),
                    backslash: eq(b'\\' as i8),
                    open: feq(OPEN),
                    close: feq(CLOSE),
                    colon: eq(b':' as i8),
                    comma: eq(b',' as i8),
                }
            }
        }

        #[inline(always)]
        fn prefix_xor(x: u64) -> u64 {
            clmul_prefix_xor(x)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The structural characters outside strings, in order, as the blocks give them.
    fn structurals<W: Width>(b: &[u8]) -> Vec<(usize, u8)> {
        let mut out = vec![];
        let mut blocks = Blocks::<W>::new(b);
        while let Some((at, block)) = blocks.next_block() {
            let mut bits = block.open | block.close | block.colon | block.comma;
            while bits != 0 {
                let i = at + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                out.push((i, b[i]));
            }
        }
        out
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,pclmulqdq")]
    fn structurals_avx2(b: &[u8]) -> Vec<(usize, u8)> {
        structurals::<Avx2>(b)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512bw,pclmulqdq")]
    fn structurals_avx512(b: &[u8]) -> Vec<(usize, u8)> {
        structurals::<Avx512>(b)
    }

    /// The widths this CPU can run, by name: the tests hold every one of them to the byte
    /// by byte reading.
    pub(crate) fn widths() -> Vec<&'static str> {
        let mut w = vec!["bytes"];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            w.push("sse2");
            if has!("avx2") && has!("pclmulqdq") {
                w.push("avx2");
            }
            if has!("avx512bw") && has!("pclmulqdq") {
                w.push("avx512");
            }
        }
        w
    }

    fn structurals_by(width: &str, b: &[u8]) -> Vec<(usize, u8)> {
        match width {
            #[cfg(target_arch = "x86_64")]
            "sse2" => structurals::<Sse2>(b),
            // SAFETY: `widths` names these only when the CPU has their features.
            #[cfg(target_arch = "x86_64")]
            "avx2" => unsafe { structurals_avx2(b) },
            #[cfg(target_arch = "x86_64")]
            "avx512" => unsafe { structurals_avx512(b) },
            _ => structurals::<Bytes>(b),
        }
    }

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
    fn this_machine_runs_the_vector_widths() {
        // CI runs on an x86-64 machine with AVX-512BW: were the detection to fail there, the
        // vector widths would go untested and unused without a word.
        #[cfg(target_arch = "x86_64")]
        if std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" avx512bw")) {
            assert_eq!(widths(), ["bytes", "sse2", "avx2", "avx512"]);
        }
    }

    #[test]
    fn escapes_and_strings_across_blocks() {
        for doc in [
            r#"{"a":"x\"y","b":[1,{"c":"}"}]}"#.to_string(),
            format!(r#"{{"a":"{}","b":1}}"#, "\\\\".repeat(40)),
            format!(r#"{{"a":"{}\"{}","b":1}}"#, "\\\\".repeat(31), "x".repeat(70)),
            format!(r#"{{"{}":{{}}}}"#, "q".repeat(63)),
            String::new(),
        ] {
            for w in widths() {
                assert_eq!(structurals_by(w, doc.as_bytes()), reference(doc.as_bytes()), "{w}: {doc}");
            }
        }
    }

    proptest! {
        /// Any bytes (weighted towards quotes, backslashes and structure, across block
        /// boundaries) give exactly the byte-by-byte answer, at every width.
        #[test]
        fn structure_matches_the_byte_by_byte_reading(
            bytes in proptest::collection::vec(prop_oneof![
                Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b':'), Just(b','),
                Just(b'a'), Just(b' '), Just(b'{' | 0x80), Just(b']' ^ 0x20), Just(b'{' ^ 0x20 ^ 0x80), any::<u8>()], 0..400)
        ) {
            let want = reference(&bytes);
            for w in widths() {
                prop_assert_eq!(structurals_by(w, &bytes), want.clone(), "{}", w);
            }
        }
    }
}
