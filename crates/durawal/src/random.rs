//! Randomness for log ids and segment salts: from the OS, or, for tests and
//! format fixtures, from a seed, so that the same writes produce the same
//! bytes on disk.

use crate::error::{Error, Result};

/// Where log ids and salts come from.
pub enum Randomness {
    /// The operating system's generator (what every real log uses).
    Os,
    /// SplitMix64 from a seed (`Options::random_seed`).
    Seeded(u64),
}

impl Randomness {
    /// Seeded when a seed is given, the OS otherwise.
    pub fn new(seed: Option<u64>) -> Self {
        seed.map_or(Randomness::Os, Randomness::Seeded)
    }

    fn fill(&mut self, bytes: &mut [u8]) -> Result<()> {
        match self {
            Randomness::Os => getrandom::fill(bytes)
                .map_err(|e| Error::io("getrandom", "", std::io::Error::other(e.to_string()))),
            Randomness::Seeded(state) => {
                for chunk in bytes.chunks_mut(8) {
                    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = *state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    z ^= z >> 31;
                    chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
                }
                Ok(())
            }
        }
    }

    /// Random 32 bits for a segment salt.
    pub fn salt(&mut self) -> Result<u32> {
        let mut bytes = [0u8; 4];
        self.fill(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    /// A random id shared by every segment of one log.
    pub fn log_id(&mut self) -> Result<[u8; 16]> {
        let mut id = [0u8; 16];
        self.fill(&mut id)?;
        Ok(id)
    }
}
