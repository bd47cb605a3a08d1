//! CRC32C as the log stores it: salted per segment and masked.
//!
//! The salt (the segment's random seed) makes a record copied from another
//! segment or another log fail its check. Masking, as LevelDB and RocksDB do,
//! keeps a CRC computed over bytes that themselves contain CRCs from being
//! trivially predictable.

const MASK_DELTA: u32 = 0xa282_ead8;

fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// CRC32C of `payload` alone (unseeded), computed before the append lock is
/// taken so the critical section only has to combine it with the header.
pub fn payload_crc(payload: &[u8]) -> u32 {
    crc32c::crc32c(payload)
}

/// The masked CRC of `head` followed by a payload whose unseeded CRC is
/// `payload_crc` and whose length is `payload_len`, seeded with `salt`.
pub fn masked_crc(salt: u32, head: &[u8], payload_crc: u32, payload_len: usize) -> u32 {
    let head_crc = crc32c::crc32c_append(salt, head);
    mask(crc32c::crc32c_combine(head_crc, payload_crc, payload_len))
}

/// Extends a segment digest with one record's stored CRC. The digest chains
/// every record CRC of a segment, so the seal vouches for all of them at once.
pub fn chain_digest(digest: u32, record_crc: u32) -> u32 {
    crc32c::crc32c_append(digest, &record_crc.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_crc_equals_crc_of_concatenation() {
        let head = b"header bytes";
        let payload = b"the payload follows";
        let whole = [head.as_slice(), payload.as_slice()].concat();
        let expected = mask(crc32c::crc32c_append(7, &whole));
        assert_eq!(
            masked_crc(7, head, payload_crc(payload), payload.len()),
            expected
        );
    }

    #[test]
    fn crc32c_matches_the_known_check_value() {
        // The standard CRC-32C check value for the ASCII digits 1..9.
        assert_eq!(payload_crc(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn salt_changes_the_checksum() {
        assert_ne!(
            masked_crc(1, b"x", payload_crc(b"y"), 1),
            masked_crc(2, b"x", payload_crc(b"y"), 1)
        );
    }
}
