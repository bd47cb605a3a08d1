//! Recovery reports, as JavaScript sees them.

use durawal::{IoMode, RecoveryReport};
use napi_derive::napi;

/// What open found (or, for a reader, would find), as the TypeScript layer
/// exposes it in `recovery`.
#[napi(object)]
pub struct NativeRecovery {
    /// Segment files after recovery.
    pub segments: u32,
    /// Logical records after recovery.
    pub records: f64,
    /// Bytes cut from the tail.
    pub truncated_bytes: f64,
    /// Why, with file and offset.
    pub truncated_reason: Option<String>,
    /// Damaged regions skipped (skip-corrupted mode).
    pub skipped_regions: f64,
    /// LSNs lost in skipped regions.
    pub skipped_records: f64,
    /// Files deleted by recovery.
    pub removed_files: Vec<String>,
    /// Unrelated files left alone.
    pub stray_files: Vec<String>,
    /// `direct` or `buffered`; absent for a reader.
    pub io_mode: Option<String>,
}

/// `report` for JavaScript; `io_mode` is the writer's (none for a reader).
pub fn recovery_to_js(report: &RecoveryReport, io_mode: Option<IoMode>) -> NativeRecovery {
    NativeRecovery {
        segments: report.segments as u32,
        records: report.records as f64,
        truncated_bytes: report.truncated_bytes as f64,
        truncated_reason: report.truncated_reason.clone(),
        skipped_regions: report.skipped_regions as f64,
        skipped_records: report.skipped_records as f64,
        removed_files: report.removed_files.clone(),
        stray_files: report.stray_files.clone(),
        io_mode: io_mode.map(|mode| {
            match mode {
                IoMode::Direct => "direct",
                IoMode::Buffered => "buffered",
            }
            .into()
        }),
    }
}
