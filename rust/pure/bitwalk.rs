// SPDX-License-Identifier: GPL-2.0

//! Walks over bitmaps of u64 words: the set bits of a TCE page's population map and of the
//! condensed map of allocated TCE pages. Core-only: shared with the userspace model.

/// Iterator over the indices of the set bits of a sequence of u64 words, lowest bit first; it
/// skips clear bits a word at a time instead of testing them one by one. (The replay resumes
/// inside a page, so it walks the population words itself, the same way.)
#[allow(dead_code, reason = "used by the userspace harness")]
pub(crate) struct SetBits<I> {
    words: I,
    base: u64,
    word: u64,
}

#[allow(dead_code, reason = "used by the userspace harness")]
impl<I: Iterator<Item = u64>> SetBits<I> {
    /// The set bits of `words`; bit `i` of word `w` has index `64 * w + i`.
    pub(crate) fn new(words: I) -> Self {
        Self {
            words,
            base: 0u64.wrapping_sub(64),
            word: 0,
        }
    }
}

impl<I: Iterator<Item = u64>> Iterator for SetBits<I> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        while self.word == 0 {
            self.word = self.words.next()?;
            self.base = self.base.wrapping_add(64);
        }
        let bit = self.word.trailing_zeros();
        self.word &= self.word - 1;
        Some(self.base + u64::from(bit))
    }
}

/// How many consecutive set bits of `words` start at bit `bit` (bit `i` of word `w` has index
/// `64 * w + i`), counting at most `max`: a word at a time, not bit by bit.
pub(crate) fn ones_from(words: impl IntoIterator<Item = u64>, bit: u64, max: u64) -> u64 {
    let (first, mask) = word_and_mask(bit);
    let shift = mask.trailing_zeros();
    let mut len = 0u64;
    for (i, word) in words.into_iter().skip(first).enumerate() {
        // The first word from `bit` on, shifted down; the others whole.
        let (bits, width) = if i == 0 {
            (word >> shift, 64 - shift)
        } else {
            (word, 64)
        };
        let ones = bits.trailing_ones().min(width);
        len += u64::from(ones);
        if ones < width || len >= max {
            break;
        }
    }
    len.min(max)
}

/// Words needed for a bitmap of `bits` bits.
pub(crate) const fn words_for(bits: u64) -> u64 {
    bits.div_ceil(64)
}

/// The word index and mask of bit `bit`.
pub(crate) const fn word_and_mask(bit: u64) -> (usize, u64) {
    // CAST: a word index of a page's bitmap.
    ((bit / 64) as usize, 1 << (bit % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_only_set_bits() {
        let words = [0u64, 1 << 63 | 1, 0, 0b1010];
        let bits: Vec<u64> = SetBits::new(words.iter().copied()).collect();
        assert_eq!(bits, [64, 127, 193, 195]);
        assert_eq!(SetBits::new([0u64; 4].into_iter()).count(), 0);
        assert_eq!(SetBits::new([u64::MAX].into_iter()).count(), 64);
        assert_eq!(words_for(0), 0);
        assert_eq!(words_for(65), 2);
        assert_eq!(word_and_mask(130), (2, 4));
    }

    #[test]
    fn counts_the_ones_from_a_bit() {
        // Bits 3..=5 and 60..=130 set (71 bits across three words), then clear.
        let mut words = [0u64; 4];
        for b in (3..=5).chain(60..=130) {
            words[b / 64] |= 1 << (b % 64);
        }
        let ones = |bit, max| ones_from(words, bit, max);
        assert_eq!(ones(3, 512), 3);
        assert_eq!(ones(4, 512), 2);
        assert_eq!(ones(6, 512), 0);
        assert_eq!(ones(60, 512), 71);
        assert_eq!(ones(64, 512), 67);
        assert_eq!(ones(60, 10), 10);
        assert_eq!(ones(130, 512), 1);
        assert_eq!(ones(200, 512), 0);
        // Past the last word: nothing.
        assert_eq!(ones(256, 512), 0);
        assert_eq!(ones_from([u64::MAX; 2], 0, 512), 128);
        assert_eq!(ones_from([u64::MAX; 2], 127, 512), 1);
    }
}
