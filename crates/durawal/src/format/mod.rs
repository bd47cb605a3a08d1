//! The on-disk format, version 2 (described for humans in `docs/FORMAT.md`).
//!
//! All integers are little-endian with explicit widths. A segment file is one
//! header block followed by records packed on 8-byte boundaries; an all-zero
//! record header marks the end of the written part.

mod checksum;
mod control_record;
mod record;
mod segment_header;
mod segment_name;

pub use checksum::{chain_digest, masked_crc};
pub use control_record::{ControlKind, ControlRecord, CONTROL_RECORD_SIZE};
pub use record::{
    encode_batch_payload, record_size, BatchEntries, HeaderCheck, RecordHeader, RecordKind,
    SealPayload, RECORD_ALIGNMENT, RECORD_HEADER_SIZE, SEAL_RECORD_SIZE,
};
pub use segment_header::{
    SegmentHeader, CHECKPOINT_VERSION, FORMAT_VERSION, OLDEST_READABLE_VERSION,
    SEGMENT_HEADER_SIZE, SYNCED_BEFORE_VERSION,
};
pub use segment_name::{parse_segment_name, segment_file_name, PREPARED_SEGMENT_NAME};
