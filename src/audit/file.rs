//! The JSON Lines sink: one record per line, appended and fsynced before the call returns, so
//! an intent is on disk before the change it announces starts. The file is never truncated;
//! past `max_bytes` it is renamed to `FILE.1` (older ones shift to `FILE.2` … `FILE.KEEP`, the
//! oldest beyond that removed) and a new file begins. Writers in several processes (one
//! provider per Terraform run) take an exclusive lock on `FILE.lock` around each append and
//! rotation, so lines never interleave and a rotation never loses one.

use super::{AuditError, Outcome, Phase, Record};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Rotated files kept beside the live one.
const KEEP: u32 = 5;

#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    max_bytes: u64,
    /// Serialises this process's writers; the lock file serialises processes.
    local: Mutex<()>,
}

impl AuditLog {
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64) -> AuditLog {
        AuditLog {
            path: path.into(),
            max_bytes: max_bytes.max(1024),
            local: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: std::io::Error) -> AuditError {
        AuditError {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn lock(&self) -> Result<File, AuditError> {
        let mut p = self.path.clone().into_os_string();
        p.push(".lock");
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(PathBuf::from(p))
            .map_err(|e| self.err(e))?;
        f.lock().map_err(|e| self.err(e))?;
        Ok(f)
    }

    /// Appends one record and fsyncs it. An error means the record is not on disk.
    pub fn append(&self, r: &Record) -> Result<(), AuditError> {
        let _local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let _lock = self.lock()?;
        let mut line = serde_json::to_vec(r).map_err(|e| self.err(std::io::Error::other(e)))?;
        line.push(b'\n');
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            self.rotate().map_err(|e| self.err(e))?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.err(e))?;
        f.write_all(&line).map_err(|e| self.err(e))?;
        f.sync_data().map_err(|e| self.err(e))
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&self) -> std::io::Result<()> {
        let _ = std::fs::remove_file(self.numbered(KEEP));
        for n in (1..KEEP).rev() {
            let from = self.numbered(n);
            if from.exists() {
                std::fs::rename(from, self.numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.numbered(1))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Every file of the trail, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = (1..=KEEP)
            .rev()
            .map(|n| self.numbered(n))
            .filter(|p| p.exists())
            .collect();
        if self.path.exists() {
            v.push(self.path.clone());
        }
        v
    }

    /// Every record, oldest first; lines that are not records (a torn last line after a power
    /// loss) are skipped.
    pub fn read_all(&self) -> Result<Vec<Record>, AuditError> {
        let mut out = vec![];
        for p in self.files() {
            let f = File::open(&p).map_err(|e| self.err(e))?;
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| self.err(e))?;
                if let Ok(r) = serde_json::from_str::<Record>(&line) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Closes the intents whose writer ended before their result: those of this host whose
    /// process is gone (an intent of a live process is a change in flight). Writes a result
    /// `interrupted` for each and returns them.
    pub fn close_interrupted(&self) -> Result<Vec<Record>, AuditError> {
        if !self.path.exists() {
            return Ok(vec![]);
        }
        let mut open: BTreeMap<String, Record> = BTreeMap::new();
        for r in self.read_all()? {
            match r.phase {
                Phase::Intent => {
                    open.insert(r.request_id.clone(), r);
                }
                Phase::Result => {
                    open.remove(&r.request_id);
                }
            }
        }
        let host = super::host();
        let me = std::process::id();
        let mut closed = vec![];
        for (_, i) in open {
            if i.host != host || i.pid == me || process_alive(i.pid) {
                continue;
            }
            let r = i.result(
                Outcome::Interrupted,
                Some(format!(
                    "the process that started this change (pid {}) ended before it finished; \
                     the next refresh or reconcile reads what exists",
                    i.pid
                )),
                None,
                Duration::ZERO,
            );
            self.append(&r)?;
            closed.push(r);
        }
        Ok(closed)
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Subject, SCHEMA};
    use crate::cty::Value;
    use crate::schema::Block;

    /// A fresh directory under the system's temp dir (removed by the OS, not the test).
    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("paved-audit-{}", crate::audit::request_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn intent(pid: u32) -> Record {
        let mut r = Subject {
            front_end: "terraform",
            actor: Default::default(),
            requester: None,
            resource_type: "paved_vector_db".into(),
            action: "create",
            prior: Value::Null,
            planned: Value::object([("name", Value::string("docs"))]),
        }
        .intent(&Block::new(""), &crate::audit::request_id());
        r.pid = pid;
        r
    }

    #[test]
    fn records_are_appended_rotated_by_size_and_never_lost() {
        let d = tempdir();
        let log = AuditLog::new(d.join("audit.jsonl"), 2048);
        let n = 30;
        for _ in 0..n {
            log.append(&intent(std::process::id())).unwrap();
        }
        let files = log.files();
        assert!(files.len() > 1, "{files:?}");
        assert!(files
            .iter()
            .all(|f| std::fs::metadata(f).unwrap().len() <= 2048));
        let all = log.read_all().unwrap();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|r| r.schema == SCHEMA));
    }

    #[test]
    fn an_intent_of_a_dead_process_is_closed_once_and_a_live_ones_is_not() {
        let d = tempdir();
        let log = AuditLog::new(d.join("audit.jsonl"), DEFAULT_MAX_BYTES);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let gone = intent(dead);
        let live = intent(std::process::id());
        log.append(&gone).unwrap();
        log.append(&live).unwrap();
        let closed = log.close_interrupted().unwrap();
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (closed[0].request_id.as_str(), closed[0].result),
            (gone.request_id.as_str(), Some(Outcome::Interrupted))
        );
        assert!(log.close_interrupted().unwrap().is_empty());
        assert_eq!(log.read_all().unwrap().len(), 3);
    }

    #[test]
    fn an_unwritable_trail_is_an_error() {
        let d = tempdir();
        let not_a_dir = d.join("file");
        std::fs::write(&not_a_dir, "x").unwrap();
        let log = AuditLog::new(not_a_dir.join("audit.jsonl"), DEFAULT_MAX_BYTES);
        let e = log.append(&intent(1)).unwrap_err();
        assert!(e.to_string().contains("audit.jsonl"), "{e}");
    }
}
