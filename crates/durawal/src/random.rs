//! Randomness for log ids and segment salts, from the OS.

use crate::error::{Error, Result};

fn fill(bytes: &mut [u8]) -> Result<()> {
    getrandom::fill(bytes)
        .map_err(|e| Error::io("getrandom", "", std::io::Error::other(e.to_string())))
}

/// Random 32 bits for a segment salt.
pub fn random_u32() -> Result<u32> {
    let mut bytes = [0u8; 4];
    fill(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

/// A random id shared by every segment of one log.
pub fn random_log_id() -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    fill(&mut id)?;
    Ok(id)
}
