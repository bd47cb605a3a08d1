//! A growable byte buffer whose storage starts on a 4096-byte boundary.
//!
//! O_DIRECT writes need the memory address, the file offset and the length to
//! be multiples of the device's logical block size; 4096 covers every device
//! we target. The buffer is a `Vec` of 4096-byte aligned blocks, so growing it
//! keeps the alignment without hand-rolled allocation.

/// The alignment of buffers and of every direct write, in bytes.
pub const BLOCK_SIZE: usize = 4096;

#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Block([u8; BLOCK_SIZE]);

const ZERO_BLOCK: Block = Block([0; BLOCK_SIZE]);

/// Bytes destined for one contiguous range of a segment file.
#[derive(Default)]
pub struct AlignedBuffer {
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of memory held.
    pub fn capacity(&self) -> usize {
        self.blocks.len() * BLOCK_SIZE
    }

    /// Forgets the content but keeps the memory for reuse.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The meaningful bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.all_bytes()[..self.len]
    }

    /// The meaningful bytes, writable (for reading a block from a file into).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.all_bytes_mut()[..len]
    }

    /// Appends `bytes`, growing by whole blocks.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let (start, end) = (self.len, self.len + bytes.len());
        self.reserve_to(end);
        self.all_bytes_mut()[start..end].copy_from_slice(bytes);
        self.len = end;
    }

    /// Appends `count` zero bytes.
    pub fn extend_zeroed(&mut self, count: usize) {
        let (start, end) = (self.len, self.len + count);
        self.reserve_to(end);
        self.all_bytes_mut()[start..end].fill(0);
        self.len = end;
    }

    /// The content padded with zeros to a whole number of blocks, ready for a
    /// direct write. The padding is zeroed here because a reused buffer may
    /// still hold old bytes there, and stale bytes past the end of the log must
    /// never reach the disk.
    pub fn padded_to_block(&mut self) -> &[u8] {
        let padded = self.len.div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
        let len = self.len;
        self.all_bytes_mut()[len..padded].fill(0);
        &self.all_bytes()[..padded]
    }

    fn reserve_to(&mut self, len: usize) {
        let blocks = len.div_ceil(BLOCK_SIZE);
        if blocks > self.blocks.len() {
            self.blocks.resize(blocks, ZERO_BLOCK);
        }
    }

    fn all_bytes(&self) -> &[u8] {
        // SAFETY: `Block` is `repr(C)` around a byte array with no padding, so
        // the vector's storage is `blocks.len() * BLOCK_SIZE` initialised bytes.
        unsafe {
            std::slice::from_raw_parts(
                self.blocks.as_ptr().cast::<u8>(),
                self.blocks.len() * BLOCK_SIZE,
            )
        }
    }

    fn all_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `all_bytes`; the exclusive borrow of `self` makes the
        // mutable view unique.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.blocks.as_mut_ptr().cast::<u8>(),
                self.blocks.len() * BLOCK_SIZE,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_block_aligned_after_growth() {
        let mut buffer = AlignedBuffer::new();
        for round in 0..5 {
            buffer.extend_from_slice(&vec![round as u8; 3000]);
            assert_eq!(buffer.as_slice().as_ptr() as usize % BLOCK_SIZE, 0);
        }
        assert_eq!(buffer.as_slice().len(), 15000);
    }

    #[test]
    fn padding_is_zeroed_even_when_memory_is_reused() {
        let mut buffer = AlignedBuffer::new();
        buffer.extend_from_slice(&[0xAB; 5000]);
        buffer.clear();
        buffer.extend_from_slice(&[1, 2, 3]);
        let padded = buffer.padded_to_block();
        assert_eq!(padded.len(), BLOCK_SIZE);
        assert_eq!(&padded[..3], &[1, 2, 3]);
        assert!(padded[3..].iter().all(|&b| b == 0));
    }
}
