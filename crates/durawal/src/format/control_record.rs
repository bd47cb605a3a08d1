//! Control files: small records beside the segments that say where the log
//! begins (`HEAD`, left by `truncateBefore`), where an interrupted
//! `truncateAfter` must end it (`TRUNCATE`), and how far it is durable
//! (`DURABLE`, for readers in other processes). `HEAD` and `TRUNCATE` are
//! written under a temporary name, synced and renamed into place, so each is
//! either absent or whole; `DURABLE` is overwritten in place after every
//! flush and never synced: it is a hint that can only lag.
//!
//! ```text
//! 0..8   magic    "DWHEAD\0\0", "DWCUT\0\0\0" or "DWDURBL\0"
//! 8..24  log_id   the id every segment header of the log carries
//! 24..32 lsn      HEAD: first LSN of the log's first segment;
//!                 TRUNCATE: last LSN the log keeps;
//!                 DURABLE: the writer's durable LSN
//! 32..36 crc      masked CRC32C (seed 0) of bytes 0..32
//! ```

use super::checksum::masked_crc;

/// Size of a control record in bytes.
pub const CONTROL_RECORD_SIZE: usize = 36;

/// Which control file a record belongs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlKind {
    /// `HEAD`: the log begins at the segment starting at `lsn`; segments
    /// before it are leftovers of an interrupted truncation.
    Head,
    /// `TRUNCATE`: a cut of everything after `lsn` was started and must be finished.
    Cut,
    /// `DURABLE`: the writer's durable LSN, for readers in other processes.
    Durable,
}

impl ControlKind {
    /// The file's name in the log directory.
    pub fn file_name(self) -> &'static str {
        match self {
            ControlKind::Head => "HEAD",
            ControlKind::Cut => "TRUNCATE",
            ControlKind::Durable => "DURABLE",
        }
    }

    /// The name it is written under before the rename makes it real.
    pub fn temporary_name(self) -> &'static str {
        match self {
            ControlKind::Head => "HEAD.tmp",
            ControlKind::Cut => "TRUNCATE.tmp",
            ControlKind::Durable => "DURABLE.tmp",
        }
    }

    fn magic(self) -> &'static [u8; 8] {
        match self {
            ControlKind::Head => b"DWHEAD\0\0",
            ControlKind::Cut => b"DWCUT\0\0\0",
            ControlKind::Durable => b"DWDURBL\0",
        }
    }
}

/// The content of a control file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlRecord {
    /// Which file it is.
    pub kind: ControlKind,
    /// The log it belongs to.
    pub log_id: [u8; 16],
    /// See [`ControlKind`].
    pub lsn: u64,
}

impl ControlRecord {
    /// The file's bytes.
    pub fn encode(&self) -> [u8; CONTROL_RECORD_SIZE] {
        let mut bytes = [0u8; CONTROL_RECORD_SIZE];
        bytes[0..8].copy_from_slice(self.kind.magic());
        bytes[8..24].copy_from_slice(&self.log_id);
        bytes[24..32].copy_from_slice(&self.lsn.to_le_bytes());
        let crc = masked_crc(0, &bytes[0..32], &[]);
        bytes[32..36].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Decodes the content of the `kind` file; the reason in words when it
    /// is not a whole, undamaged record of that kind.
    pub fn decode(kind: ControlKind, bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() != CONTROL_RECORD_SIZE {
            return Err("control file has the wrong size");
        }
        if &bytes[0..8] != kind.magic() {
            return Err("control file has the wrong magic");
        }
        let stored = u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes"));
        if stored != masked_crc(0, &bytes[0..32], &[]) {
            return Err("control file fails its CRC");
        }
        Ok(Self {
            kind,
            log_id: bytes[8..24].try_into().expect("16 bytes"),
            lsn: u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage_and_the_other_kind() {
        let record = ControlRecord {
            kind: ControlKind::Head,
            log_id: [7; 16],
            lsn: 1234,
        };
        let bytes = record.encode();
        assert_eq!(ControlRecord::decode(ControlKind::Head, &bytes), Ok(record));
        assert!(ControlRecord::decode(ControlKind::Cut, &bytes).is_err());
        assert!(ControlRecord::decode(ControlKind::Head, &bytes[..35]).is_err());
        for bit in 0..CONTROL_RECORD_SIZE * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                ControlRecord::decode(ControlKind::Head, &damaged).is_err(),
                "bit {bit}"
            );
        }
    }
}
