//! A durable queue of JSON lines on disk: records are appended and fsynced before the change
//! they describe goes on, and stay until a shipper confirms delivery. The delivered position
//! lives in `PATH.offset`; once everything is delivered the file is emptied, so a spool only
//! grows while its endpoint is down.
//!
//! Two locks: `PATH.lock` serialises appends and compaction across processes (a Terraform run
//! may start several provider processes); `PATH.ship` lets one process at a time ship, so no
//! two shippers acknowledge overlapping ranges of one file.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    local: Mutex<()>,
}

/// Lines read past the delivered position; `end` is where they stop.
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    pub lines: Vec<String>,
    pub end: u64,
}

/// Held while one process ships this spool.
pub struct ShipLock(#[allow(dead_code)] File);

impl Spool {
    pub fn new(path: impl Into<PathBuf>) -> Spool {
        Spool {
            path: path.into(),
            local: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn beside(&self, suffix: &str) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(suffix);
        PathBuf::from(p)
    }

    fn lock(&self) -> std::io::Result<File> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.beside(".lock"))?;
        f.lock()?;
        Ok(f)
    }

    /// Appends one line (without its newline) and fsyncs it. An error means it is not queued.
    pub fn append(&self, line: &str) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let _local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let _lock = self.lock()?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        f.write_all(&buf)?;
        f.sync_data()
    }

    /// Takes the right to ship, or None while another process ships.
    pub fn try_ship(&self) -> std::io::Result<Option<ShipLock>> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.beside(".ship"))?;
        match f.try_lock() {
            Ok(()) => Ok(Some(ShipLock(f))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn offset(&self) -> u64 {
        std::fs::read_to_string(self.beside(".offset"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn set_offset(&self, at: u64) -> std::io::Result<()> {
        let tmp = self.beside(".offset.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(at.to_string().as_bytes())?;
        f.sync_data()?;
        std::fs::rename(tmp, self.beside(".offset"))
    }

    /// Up to `max` complete lines after the delivered position (a line still being written,
    /// without its newline, waits for the next call).
    pub fn peek(&self, max: usize) -> std::io::Result<Batch> {
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Batch::default()),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let mut at = self.offset();
        if at > len {
            // The file was emptied or replaced behind the offset: start over.
            at = 0;
        }
        f.seek(SeekFrom::Start(at))?;
        let mut r = BufReader::new(f.take(len - at));
        let mut batch = Batch {
            lines: vec![],
            end: at,
        };
        let mut buf = String::new();
        while batch.lines.len() < max {
            buf.clear();
            let n = r.read_line(&mut buf)?;
            if n == 0 || !buf.ends_with('\n') {
                break;
            }
            batch.end += n as u64;
            let line = buf.trim_end();
            if !line.is_empty() {
                batch.lines.push(line.to_string());
            }
        }
        Ok(batch)
    }

    /// Records that everything before `end` was delivered; empties the file when nothing
    /// else is queued.
    pub fn ack(&self, end: u64) -> std::io::Result<()> {
        let _local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let _lock = self.lock()?;
        let len = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if end >= len {
            OpenOptions::new()
                .write(true)
                .open(&self.path)?
                .set_len(0)?;
            self.set_offset(0)
        } else {
            self.set_offset(end)
        }
    }

    /// Lines queued and not yet delivered.
    pub fn backlog(&self) -> std::io::Result<usize> {
        Ok(self.peek(usize::MAX)?.lines.len())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh directory under the system's temp dir (removed by the OS, not the test).
    pub fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("paved-spool-{}", crate::audit::request_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn lines_stay_until_acknowledged_and_the_file_empties_when_all_are_delivered() {
        let s = Spool::new(tempdir().join("q/audit.spool"));
        assert_eq!(s.peek(10).unwrap(), Batch::default());
        for i in 0..5 {
            s.append(&format!("{{\"n\":{i}}}")).unwrap();
        }
        let b = s.peek(2).unwrap();
        assert_eq!(b.lines, ["{\"n\":0}", "{\"n\":1}"]);
        // Not acknowledged: the same lines again (at least once).
        assert_eq!(s.peek(2).unwrap(), b);
        s.ack(b.end).unwrap();
        assert_eq!(s.peek(10).unwrap().lines.len(), 3);
        // A new process sees the same position.
        let again = Spool::new(s.path());
        let rest = again.peek(10).unwrap();
        assert_eq!(rest.lines[0], "{\"n\":2}");
        again.ack(rest.end).unwrap();
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), 0);
        s.append("{\"n\":5}").unwrap();
        assert_eq!(s.peek(10).unwrap().lines, ["{\"n\":5}"]);
    }

    #[test]
    fn a_torn_last_line_waits_and_only_one_process_ships() {
        let s = Spool::new(tempdir().join("a.spool"));
        s.append("{\"n\":1}").unwrap();
        let mut f = OpenOptions::new().append(true).open(s.path()).unwrap();
        f.write_all(b"{\"n\":").unwrap();
        assert_eq!(s.peek(10).unwrap().lines, ["{\"n\":1}"]);
        let held = s.try_ship().unwrap();
        assert!(held.is_some());
        assert!(Spool::new(s.path()).try_ship().unwrap().is_none());
        drop(held);
        assert!(Spool::new(s.path()).try_ship().unwrap().is_some());
    }
}
