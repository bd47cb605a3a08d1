//! Core errors to JavaScript errors.
//!
//! The message of every error thrown by the binding is a JSON object with a
//! stable `code` and the context a caller can act on (path, offset, the OS
//! error). The TypeScript layer turns it into a `WalError`; nothing else is
//! meant to read it.

use durawal::Error;
use napi::Status;
use serde_json::{json, Map, Value};

/// Converts a core error to the error thrown into JavaScript.
pub fn to_js(error: Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, describe(&error).to_string())
}

fn describe(error: &Error) -> Value {
    let mut detail = Map::new();
    detail.insert("code".into(), json!(error.code()));
    detail.insert("message".into(), json!(error.to_string()));
    match error {
        Error::Locked { dir } => {
            detail.insert("path".into(), json!(dir.display().to_string()));
        }
        Error::Corrupt { file, offset, .. } => {
            detail.insert("path".into(), json!(file.display().to_string()));
            detail.insert("offset".into(), json!(offset));
        }
        Error::Io {
            operation,
            path,
            source,
        } => {
            detail.insert("path".into(), json!(path.display().to_string()));
            detail.insert("syscall".into(), json!(operation));
            detail.insert("errno".into(), json!(source.raw_os_error()));
            detail.insert("osMessage".into(), json!(source.to_string()));
        }
        Error::Poisoned(cause) => {
            detail.insert("cause".into(), describe(cause));
        }
        Error::Backpressure {
            buffered,
            size,
            limit,
        } => {
            detail.insert("buffered".into(), json!(buffered));
            detail.insert("size".into(), json!(size));
            detail.insert("limit".into(), json!(limit));
        }
        Error::TooLarge { size, limit, .. } => {
            detail.insert("size".into(), json!(size));
            detail.insert("limit".into(), json!(limit));
        }
        Error::Truncated { lsn, path } => {
            detail.insert("path".into(), json!(path.display().to_string()));
            detail.insert("lsn".into(), json!(lsn));
        }
        Error::Closed
        | Error::Busy(_)
        | Error::InvalidArgument(_)
        | Error::LsnExhausted { .. }
        | Error::Internal(_) => {}
    }
    Value::Object(detail)
}
