//! Options as the TypeScript layer passes them (already validated there) to core options.

use std::time::Duration;

use durawal::{DirectIo, Options, RecoveryMode, Retention, SyncPolicy};
use napi_derive::napi;

use crate::guard::guarded;

/// Normalised open options.
#[napi(object)]
pub struct NativeOptions {
    /// `always`, `none`, `interval` or `bytes`.
    pub sync: String,
    /// Interval for `sync: 'interval'`, in milliseconds.
    pub sync_interval_ms: Option<u32>,
    /// Threshold for `sync: 'bytes'`, in bytes.
    pub sync_bytes: Option<f64>,
    /// Segment size in bytes.
    pub segment_size: f64,
    /// `auto`, `on` or `off`.
    pub direct_io: String,
    /// `tolerate-tail`, `absolute`, `point-in-time` or `skip-corrupted`.
    pub recovery: String,
    /// Largest record payload in bytes.
    pub max_record_size: f64,
    /// Most bytes appended and not yet durable before appends are refused.
    pub buffer_limit: Option<f64>,
    /// Retention: total bytes of segment files to keep at most.
    pub retention_bytes: Option<f64>,
    /// Retention: age after sealing at which a segment goes, in milliseconds.
    pub retention_age_ms: Option<f64>,
    /// Retention: never past the latest checkpoint.
    pub retention_keep_from_checkpoint: Option<bool>,
    /// Retention: bytes behind the end past which a reader stops holding it back.
    pub retention_reader_lag_bytes: Option<f64>,
}

impl TryFrom<NativeOptions> for Options {
    type Error = durawal::Error;

    fn try_from(options: NativeOptions) -> Result<Self, Self::Error> {
        let invalid = |what: &str| durawal::Error::InvalidArgument(format!("invalid {what}"));
        Ok(Options {
            sync: match options.sync.as_str() {
                "always" => SyncPolicy::Always,
                "none" => SyncPolicy::Never,
                "interval" => SyncPolicy::Interval(Duration::from_millis(u64::from(
                    options
                        .sync_interval_ms
                        .ok_or_else(|| invalid("sync.intervalMs"))?,
                ))),
                "bytes" => SyncPolicy::Bytes(
                    options.sync_bytes.ok_or_else(|| invalid("sync.bytes"))? as u64,
                ),
                _ => return Err(invalid("sync")),
            },
            segment_size: options.segment_size as u64,
            direct_io: match options.direct_io.as_str() {
                "auto" => DirectIo::Auto,
                "on" => DirectIo::Required,
                "off" => DirectIo::Off,
                _ => return Err(invalid("directIo")),
            },
            recovery: match options.recovery.as_str() {
                "tolerate-tail" => RecoveryMode::TolerateTail,
                "absolute" => RecoveryMode::Absolute,
                "point-in-time" => RecoveryMode::PointInTime,
                "skip-corrupted" => RecoveryMode::SkipCorrupted,
                _ => return Err(invalid("recovery")),
            },
            max_record_size: Some(options.max_record_size as u64),
            buffer_limit: options.buffer_limit.map(|limit| limit as u64),
            retention: Retention {
                bytes: options.retention_bytes.map(|bytes| bytes as u64),
                age: options
                    .retention_age_ms
                    .map(|ms| Duration::from_millis(ms as u64)),
                keep_from_checkpoint: options.retention_keep_from_checkpoint.unwrap_or(false),
                reader_lag_bytes: options.retention_reader_lag_bytes.map(|bytes| bytes as u64),
            },
            first_segment_size: None,
            random_seed: None,
        })
    }
}

/// The limits options are checked against, so the TypeScript layer validates
/// with the core's numbers instead of copies of them.
#[napi(object)]
pub struct Limits {
    /// Smallest segment size in bytes.
    pub min_segment_size: f64,
    /// Largest segment size in bytes.
    pub max_segment_size: f64,
    /// Segment sizes are multiples of this.
    pub segment_size_granule: f64,
    /// Default segment size in bytes.
    pub default_segment_size: f64,
    /// Default record size limit in bytes (lowered for small segments).
    pub default_max_record_size: f64,
    /// Largest LSN the log assigns.
    pub max_lsn: f64,
}

/// The option limits of the core.
#[napi]
pub fn limits() -> napi::Result<Limits> {
    guarded("limits", || {
        Ok(Limits {
            min_segment_size: durawal::MIN_SEGMENT_SIZE as f64,
            max_segment_size: durawal::MAX_SEGMENT_SIZE as f64,
            segment_size_granule: durawal::SEGMENT_SIZE_GRANULE as f64,
            default_segment_size: durawal::DEFAULT_SEGMENT_SIZE as f64,
            default_max_record_size: durawal::DEFAULT_MAX_RECORD_SIZE as f64,
            max_lsn: durawal::MAX_LSN as f64,
        })
    })
}

/// Largest record payload a segment of `segment_size` bytes can hold.
#[napi]
pub fn record_capacity(segment_size: f64) -> napi::Result<f64> {
    guarded("recordCapacity", || {
        Ok(durawal::record_capacity(segment_size as u64) as f64)
    })
}
