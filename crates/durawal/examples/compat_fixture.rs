//! Writes the compatibility fixture of the current format version (see
//! `tests/compat_writer/mod.rs`) into the directory given as the only
//! argument. Run once per format version:
//!
//! ```text
//! cargo run -p durawal --example compat_fixture -- crates/durawal/tests/compat/v<N>
//! ```

#[path = "../tests/compat_writer/mod.rs"]
mod compat_writer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: std::path::PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: compat_fixture <empty or new directory>")?
        .into();
    compat_writer::write_fixture(&dir)?;
    Ok(())
}
