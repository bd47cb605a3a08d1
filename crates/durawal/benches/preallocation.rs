//! Why segments are zero-filled: the latency of a 4 KiB write + fdatasync into
//! (a) zero-filled space, (b) fallocate'd space (unwritten extents), (c) space
//! past the end of the file (extending it), measured in one run on the same
//! filesystem. Run: `cargo bench -p durawal --bench preallocation [-- DIR]`
//! (DIR defaults to the system temp dir). Linux only; prints p50/p99 and the
//! ratio of each case to zero-filled.

#[cfg(target_os = "linux")]
fn main() {
    linux::run();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the preallocation benchmark uses fallocate(2) and runs on Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::{File, OpenOptions};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// Creates the file in one of the three states being compared.
    type Prepare = fn(&Path) -> File;

    const FILE_SIZE: u64 = 64 << 20;
    const WRITE_SIZE: usize = 4096;
    const WRITES: usize = 2000;

    fn open(path: &Path) -> File {
        let _ = std::fs::remove_file(path);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .expect("open")
    }

    fn zero_filled(path: &Path) -> File {
        let file = open(path);
        let zeros = vec![0u8; 1 << 20];
        for offset in (0..FILE_SIZE).step_by(zeros.len()) {
            file.write_all_at(&zeros, offset).expect("zero-fill");
        }
        file.sync_all().expect("sync");
        file
    }

    fn fallocated(path: &Path) -> File {
        let file = open(path);
        // SAFETY: plain syscall on a descriptor we own.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, FILE_SIZE as libc::off_t) };
        assert_eq!(rc, 0, "fallocate: {}", std::io::Error::last_os_error());
        file.sync_all().expect("sync");
        file
    }

    fn extending(path: &Path) -> File {
        let file = open(path);
        file.sync_all().expect("sync");
        file
    }

    fn measure(file: &File) -> Vec<Duration> {
        let block = vec![0xA5u8; WRITE_SIZE];
        (0..WRITES)
            .map(|index| {
                let start = Instant::now();
                file.write_all_at(&block, (index * WRITE_SIZE) as u64)
                    .expect("write");
                file.sync_data().expect("fdatasync");
                start.elapsed()
            })
            .collect()
    }

    fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
        sorted[((sorted.len() - 1) as f64 * fraction) as usize]
    }

    pub fn run() {
        let dir = std::env::args()
            .skip(1)
            .find(|arg| !arg.starts_with("--"))
            .map(Into::into)
            .unwrap_or_else(std::env::temp_dir);
        let path = dir.join("durawal-preallocation-bench.tmp");
        println!(
            "4 KiB write + fdatasync, {WRITES} writes per case, in {}",
            dir.display()
        );
        println!(
            "{:<14} {:>10} {:>10} {:>14}",
            "space", "p50 µs", "p99 µs", "p50 vs zero"
        );
        let mut baseline = None;
        let cases: [(&str, Prepare); 3] = [
            ("zero-filled", zero_filled),
            ("fallocate", fallocated),
            ("extending", extending),
        ];
        for (name, prepare) in cases {
            let file = prepare(&path);
            let mut latencies = measure(&file);
            latencies.sort();
            let p50 = percentile(&latencies, 0.5);
            let p99 = percentile(&latencies, 0.99);
            let base = *baseline.get_or_insert(p50);
            println!(
                "{name:<14} {:>10.1} {:>10.1} {:>13.2}x",
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6,
                p50.as_secs_f64() / base.as_secs_f64()
            );
        }
        let _ = std::fs::remove_file(&path);
    }
}
