//! Build records: what explains a cache miss and what `builder history` shows.
//!
//! * `step_inputs`: for every step built from a context and Dockerfile (the *source*, see
//!   [`source_key`]), by stage index and step position, the inputs of its last build: the
//!   instruction, the build args in scope, the parent image, the stage's base, and for COPY
//!   and ADD the listing of the files their cache key was computed from. A listing is stored
//!   once per sources hash (`input_files`), shared by every step with the same sources, and
//!   goes when no step names it any more. A row is written when a step is built and when a
//!   cache hit finds none (or an outdated one); an unchanged rebuild writes none.
//! * `builds`: one row per build (its steps as JSON), the last [`KEEP_BUILDS`] builds of the
//!   last [`KEEP_DAYS`] days.
//!
//! Nothing here refers to images by key: removing images never breaks a record (a record
//! naming a removed image only explains the next miss as a changed parent).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::db::Cached;
use crate::error::Result;
use crate::Store;

/// How many build records are kept.
pub const KEEP_BUILDS: usize = 100;
/// How old a build record may get, in days.
pub const KEEP_DAYS: i64 = 30;

/// The key of a build's source: its context directory and Dockerfile path, both made
/// absolute and resolved (as far as they exist), joined by a NUL.
pub fn source_key(context: &Path, dockerfile: &Path) -> String {
    format!(
        "{}\0{}",
        absolute(context).display(),
        absolute(dockerfile).display()
    )
}

fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    match std::env::current_dir() {
        Ok(cwd) if p.is_relative() => cwd.join(p),
        _ => p.to_path_buf(),
    }
}

/// One file (or directory, or link) a COPY or ADD read: its context path, the first 16
/// bytes of the hash the cache key was computed from (Docker's tarsum of the entry: its
/// header and content), and its mode with the file type bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub hash: [u8; 16],
    pub mode: u32,
}

impl FileEntry {
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }
}

/// The inputs of a step's last build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepInputs {
    /// The instruction as the build output shows it (`RUN pip install -r req.txt`).
    pub instruction: String,
    /// The build args in scope (`NAME=value`, in declaration order).
    pub args: Vec<String>,
    /// The image the step was built on (`sha256:…`; empty for scratch).
    pub parent: String,
    /// The stage's base as named (`python:3.11`, a stage name, `scratch`) and its image ID:
    /// `NAME@sha256:…`.
    pub base: String,
    /// The sources hash of a COPY/ADD, which names its listing.
    pub files: Option<String>,
}

/// A step of a build record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StepRecord {
    /// `Step N/M`'s N.
    pub number: usize,
    /// The stage's index and the step's position in it (0 is FROM).
    pub stage: usize,
    pub position: i64,
    /// The instruction's line in the Dockerfile (0 for steps the build adds).
    pub line: usize,
    pub instruction: String,
    pub duration_us: u64,
    pub cached: bool,
    /// Why the step missed the cache (None for hits, FROM, and steps that have no cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The size of the layer the step added (0 for none).
    pub bytes: u64,
    /// The step failed with this error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StepRecord {
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.duration_us)
    }
}

/// One build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildRecord {
    /// 25 lowercase letters and digits, as BuildKit's build refs.
    pub id: String,
    pub source: String,
    pub context: String,
    pub dockerfile: String,
    /// What `history ls` names it by (the context directory's name, the target).
    pub name: String,
    /// Unix time in milliseconds.
    pub started_ms: i64,
    pub duration_ms: u64,
    pub target: String,
    pub tags: Vec<String>,
    /// `Completed`, `Error` or `Canceled` (BuildKit's words).
    pub status: String,
    pub error: String,
    /// The image built (`sha256:…`), empty when the build failed.
    pub image: String,
    pub steps: Vec<StepRecord>,
}

/// What the records say about one step of a Dockerfile (see [`Store::step_stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepStat {
    /// The instruction's line in the Dockerfile (1-based).
    pub line: usize,
    pub instruction: String,
    /// How long the step took the last time it ran (missed the cache); zero when no kept
    /// record saw it run.
    pub duration: Duration,
    /// How many kept builds (of this context and Dockerfile) had this step.
    pub builds: u32,
    /// How many of them ran it (missed the cache).
    pub misses: u32,
    /// How many of those misses were the step's own inputs changing (not `--no-cache`, not an
    /// earlier step's miss, not its first build).
    pub changed: u32,
}

/// Listing encoding: entries sorted by path, each `u16` bytes shared with the previous
/// path, `u16` length of the rest, the rest, 16 hash bytes, `u32` mode (little endian).
fn encode(files: &[FileEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(files.len() * 40);
    let mut prev: &[u8] = &[];
    for f in files {
        let p = f.path.as_bytes();
        let shared = p
            .iter()
            .zip(prev)
            .take_while(|(a, b)| a == b)
            .count()
            .min(u16::MAX as usize);
        let rest = &p[shared..];
        let rest = &rest[..rest.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(shared as u16).to_le_bytes());
        out.extend_from_slice(&(rest.len() as u16).to_le_bytes());
        out.extend_from_slice(rest);
        out.extend_from_slice(&f.hash);
        out.extend_from_slice(&f.mode.to_le_bytes());
        prev = p;
    }
    out
}

fn decode(mut data: &[u8]) -> Vec<FileEntry> {
    let mut out: Vec<FileEntry> = Vec::new();
    let mut prev: Vec<u8> = Vec::new();
    while data.len() >= 4 {
        let shared = u16::from_le_bytes([data[0], data[1]]) as usize;
        let len = u16::from_le_bytes([data[2], data[3]]) as usize;
        data = &data[4..];
        if data.len() < len + 20 || shared > prev.len() {
            break;
        }
        let mut path = prev[..shared].to_vec();
        path.extend_from_slice(&data[..len]);
        let mut hash = [0u8; 16];
        hash.copy_from_slice(&data[len..len + 16]);
        let mode = u32::from_le_bytes([
            data[len + 16],
            data[len + 17],
            data[len + 18],
            data[len + 19],
        ]);
        data = &data[len + 20..];
        out.push(FileEntry {
            path: String::from_utf8_lossy(&path).into_owned(),
            hash,
            mode,
        });
        prev = path;
    }
    out
}

/// The build args as a JSON array (a value may hold a newline).
fn encode_args(args: &[String]) -> String {
    serde_json::to_string(args).unwrap_or_else(|_| "[]".into())
}

/// [`encode_args`]'s array, or the newline-joined list the first version of the table
/// stored (a `NAME=value` never starts with `[`).
fn decode_args(text: &str) -> Vec<String> {
    if text.starts_with('[') {
        return serde_json::from_str(text).unwrap_or_default();
    }
    text.split('\n')
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Store {
    /// The inputs recorded for a step's last build.
    pub fn step_inputs(
        &self,
        source: &str,
        stage: usize,
        position: i64,
    ) -> Result<Option<StepInputs>> {
        let r = self
            .db
            .conn
            .row(
                "SELECT instruction, args, parent, base, files FROM step_inputs
                 WHERE source = ?1 AND stage = ?2 AND position = ?3",
                params![source, stage as i64, position],
                |r| {
                    let args: String = r.get(1)?;
                    Ok(StepInputs {
                        instruction: r.get(0)?,
                        args: decode_args(&args),
                        parent: r.get(2)?,
                        base: r.get(3)?,
                        files: r.get(4)?,
                    })
                },
            )
            .optional()?;
        Ok(r)
    }

    /// The listing recorded under a sources hash, sorted by path (empty when there is none).
    pub fn input_files(&self, id: &str) -> Result<Vec<FileEntry>> {
        let data: Option<Vec<u8>> = self
            .db
            .conn
            .row("SELECT data FROM input_files WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(data.map(|d| decode(&d)).unwrap_or_default())
    }

    /// Records a step's inputs (replacing those of its earlier build); `files` is the listing
    /// of `inputs.files`, sorted by path, stored unless one is already. A short transaction
    /// of its own; no file changes, so no store lock.
    pub fn record_step_inputs(
        &mut self,
        source: &str,
        stage: usize,
        position: i64,
        inputs: &StepInputs,
        files: Option<&[FileEntry]>,
    ) -> Result<()> {
        let tx = self
            .db
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let old: Option<Option<String>> = tx
            .row(
                "SELECT files FROM step_inputs WHERE source = ?1 AND stage = ?2 AND position = ?3",
                params![source, stage as i64, position],
                |r| r.get(0),
            )
            .optional()?;
        if let (Some(id), Some(files)) = (&inputs.files, files) {
            let have: Option<i64> = tx
                .row("SELECT 1 FROM input_files WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            if have.is_none() {
                tx.exec(
                    "INSERT INTO input_files (id, data) VALUES (?1, ?2)",
                    params![id, encode(files)],
                )?;
            }
        }
        tx.exec(
            "INSERT OR REPLACE INTO step_inputs
             (source, stage, position, instruction, args, parent, base, files, built)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                source,
                stage as i64,
                position,
                inputs.instruction,
                encode_args(&inputs.args),
                inputs.parent,
                inputs.base,
                inputs.files,
                now_ms() / 1000,
            ],
        )?;
        if let Some(Some(old)) = old.filter(|o| *o != inputs.files) {
            tx.exec(
                "DELETE FROM input_files WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM step_inputs WHERE files = ?1)",
                [old],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a build, and forgets builds beyond the last [`KEEP_BUILDS`] and older than
    /// [`KEEP_DAYS`] days, and the step inputs (and listings) of a context and Dockerfile
    /// none of the kept builds was of.
    pub fn add_build_record(&mut self, b: &BuildRecord) -> Result<()> {
        let tx = self
            .db
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let steps = serde_json::to_string(&b.steps).unwrap_or_else(|_| "[]".into());
        let tags = serde_json::to_string(&b.tags).unwrap_or_else(|_| "[]".into());
        tx.exec(
            "INSERT OR REPLACE INTO builds (id, source, context, dockerfile, name, started,
             duration_ms, target, tags, status, error, image, steps)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                b.id,
                b.source,
                b.context,
                b.dockerfile,
                b.name,
                b.started_ms,
                b.duration_ms as i64,
                b.target,
                tags,
                b.status,
                b.error,
                b.image,
                steps,
            ],
        )?;
        let cutoff = now_ms() - KEEP_DAYS * 24 * 3600 * 1000;
        let forgotten = tx.exec(
            "DELETE FROM builds WHERE started < ?1 OR id IN
             (SELECT id FROM builds ORDER BY started DESC LIMIT -1 OFFSET ?2)",
            params![cutoff, KEEP_BUILDS as i64],
        )?;
        if forgotten > 0 {
            // Step inputs are kept as long as a build of their context and Dockerfile is,
            // and listings as long as a step names them.
            tx.exec(
                "DELETE FROM step_inputs WHERE source NOT IN (SELECT source FROM builds)",
                [],
            )?;
            tx.exec(
                "DELETE FROM input_files WHERE id NOT IN
                 (SELECT files FROM step_inputs WHERE files IS NOT NULL)",
                [],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The kept build records, newest first.
    pub fn build_records(&self) -> Result<Vec<BuildRecord>> {
        self.builds_where("1", [])
    }

    /// The build record whose ID is or starts with `id`.
    pub fn build_record(&self, id: &str) -> Result<Option<BuildRecord>> {
        let pattern = format!("{}%", id.replace(['%', '_'], ""));
        Ok(self
            .builds_where("id LIKE ?1", [pattern])?
            .into_iter()
            .next())
    }

    fn builds_where<P: rusqlite::Params>(&self, cond: &str, p: P) -> Result<Vec<BuildRecord>> {
        let sql = format!(
            "SELECT id, source, context, dockerfile, name, started, duration_ms, target, tags,
             status, error, image, steps FROM builds WHERE {cond} ORDER BY started DESC, rowid DESC"
        );
        let mut st = self.db.conn.prepare_cached(&sql)?;
        let rows = st.query_map(p, |r| {
            let tags: String = r.get(8)?;
            let steps: String = r.get(12)?;
            Ok(BuildRecord {
                id: r.get(0)?,
                source: r.get(1)?,
                context: r.get(2)?,
                dockerfile: r.get(3)?,
                name: r.get(4)?,
                started_ms: r.get(5)?,
                duration_ms: r.get::<_, i64>(6)? as u64,
                target: r.get(7)?,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                status: r.get(9)?,
                error: r.get(10)?,
                image: r.get(11)?,
                steps: serde_json::from_str(&steps).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Forgets one build record; whether there was one.
    pub fn remove_build_record(&mut self, id: &str) -> Result<bool> {
        Ok(self
            .db
            .conn
            .exec("DELETE FROM builds WHERE id = ?1", [id])?
            > 0)
    }

    /// Forgets every build record and step input (`builder prune`); how many bytes of records
    /// that freed (roughly: the rows' text and listings).
    pub fn clear_build_records(&mut self) -> Result<u64> {
        let tx = self
            .db
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let size: i64 = tx.row(
            "SELECT (SELECT IFNULL(SUM(LENGTH(data)), 0) FROM input_files)
                  + (SELECT IFNULL(SUM(LENGTH(steps) + LENGTH(source)), 0) FROM builds)
                  + (SELECT IFNULL(SUM(LENGTH(source) + LENGTH(instruction) + LENGTH(args)
                     + LENGTH(parent) + LENGTH(base)), 0) FROM step_inputs)",
            [],
            |r| r.get(0),
        )?;
        tx.exec("DELETE FROM builds", [])?;
        tx.exec("DELETE FROM step_inputs", [])?;
        tx.exec("DELETE FROM input_files", [])?;
        tx.commit()?;
        Ok(size.max(0) as u64)
    }

    /// The steps of the latest kept build of the Dockerfile `dockerfile` with the context
    /// `context` (both as given to `build`; see [`source_key`]), in build order, each with
    /// its line (1-based; steps the build adds, such as `--label`'s, are left out), its
    /// instruction and how long it took the last time it ran (see [`StepStat::duration`]).
    /// Empty when no build of it is kept.
    pub fn step_durations(
        &self,
        context: &Path,
        dockerfile: &Path,
    ) -> Result<Vec<(usize, String, Duration)>> {
        Ok(self
            .step_stats(context, dockerfile)?
            .into_iter()
            .map(|s| (s.line, s.instruction, s.duration))
            .collect())
    }

    /// [`Store::step_durations`] with counts: over every kept build of the same source, how
    /// often each step of the latest build (matched by line and instruction) was there,
    /// missed the cache, and missed because its own inputs changed.
    pub fn step_stats(&self, context: &Path, dockerfile: &Path) -> Result<Vec<StepStat>> {
        let source = source_key(context, dockerfile);
        let builds = self.builds_where("source = ?1", [source])?;
        let Some(latest) = builds.first() else {
            return Ok(Vec::new());
        };
        let mut out: Vec<StepStat> = latest
            .steps
            .iter()
            .filter(|s| s.line > 0)
            .map(|s| StepStat {
                line: s.line,
                instruction: s.instruction.clone(),
                duration: Duration::ZERO,
                builds: 0,
                misses: 0,
                changed: 0,
            })
            .collect();
        // Newest first: the first run seen is the latest.
        let mut timed = vec![false; out.len()];
        for b in &builds {
            for s in &b.steps {
                let Some(i) = out
                    .iter()
                    .position(|o| o.line == s.line && o.instruction == s.instruction)
                else {
                    continue;
                };
                let o = &mut out[i];
                o.builds += 1;
                if !s.cached && s.error.is_none() && s.position > 0 {
                    o.misses += 1;
                    if s.reason.as_deref().is_some_and(own_change) {
                        o.changed += 1;
                    }
                    if !timed[i] {
                        timed[i] = true;
                        o.duration = s.duration();
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Whether a miss reason is the step's own inputs changing.
fn own_change(reason: &str) -> bool {
    !(reason == "--no-cache"
        || reason.starts_with("an earlier step missed")
        || reason.starts_with("first build"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_round_trip() {
        let files = vec![
            FileEntry {
                path: "app".into(),
                hash: [1; 16],
                mode: 0o040755,
            },
            FileEntry {
                path: "app/api.py".into(),
                hash: [2; 16],
                mode: 0o100644,
            },
            FileEntry {
                path: "app/apz.py".into(),
                hash: [3; 16],
                mode: 0o100600,
            },
        ];
        let data = encode(&files);
        assert_eq!(decode(&data), files);
    }

    #[test]
    fn args_keep_their_newlines() {
        let args = vec!["KEY=line 1\nline 2".to_string(), "B=".to_string()];
        assert_eq!(decode_args(&encode_args(&args)), args);
        // Rows of the first version: one arg a line.
        assert_eq!(decode_args("A=1\nB=2"), ["A=1", "B=2"]);
        assert!(decode_args("").is_empty());
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let inputs = StepInputs {
            instruction: "RUN x".into(),
            args,
            ..Default::default()
        };
        s.record_step_inputs("src", 0, 1, &inputs, None).unwrap();
        assert_eq!(s.step_inputs("src", 0, 1).unwrap(), Some(inputs));
    }

    #[test]
    fn records_are_kept_replaced_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let files = vec![FileEntry {
            path: "a".into(),
            hash: [7; 16],
            mode: 0o100644,
        }];
        let mut inputs = StepInputs {
            instruction: "COPY a /".into(),
            files: Some("file:1".into()),
            ..Default::default()
        };
        s.record_step_inputs("src", 0, 1, &inputs, Some(&files))
            .unwrap();
        assert_eq!(s.step_inputs("src", 0, 1).unwrap(), Some(inputs.clone()));
        assert_eq!(s.input_files("file:1").unwrap(), files);
        inputs.files = Some("file:2".into());
        s.record_step_inputs("src", 0, 1, &inputs, Some(&files))
            .unwrap();
        assert!(s.input_files("file:1").unwrap().is_empty());
        // The age bound: a record older than KEEP_DAYS days goes as records are added, a
        // younger one stays.
        let aged = |id: &str, days: i64| BuildRecord {
            id: id.into(),
            source: "src".into(),
            started_ms: now_ms() - days * 24 * 3600 * 1000,
            ..Default::default()
        };
        s.add_build_record(&aged("young", KEEP_DAYS - 1)).unwrap();
        // Another context's step inputs go with its last build record.
        let other = StepInputs {
            files: Some("file:9".into()),
            ..inputs.clone()
        };
        s.record_step_inputs("other", 0, 1, &other, Some(&files))
            .unwrap();
        s.add_build_record(&BuildRecord {
            source: "other".into(),
            ..aged("old", KEEP_DAYS + 1)
        })
        .unwrap();
        let ids: Vec<String> = s
            .build_records()
            .unwrap()
            .into_iter()
            .map(|b| b.id)
            .collect();
        assert_eq!(ids, ["young"]);
        assert_eq!(s.step_inputs("other", 0, 1).unwrap(), None);
        assert!(s.input_files("file:9").unwrap().is_empty());
        assert_eq!(s.step_inputs("src", 0, 1).unwrap(), Some(inputs.clone()));
        assert_eq!(s.input_files("file:2").unwrap(), files);
        for i in 0..(KEEP_BUILDS + 5) {
            s.add_build_record(&BuildRecord {
                id: format!("b{i:03}"),
                source: "src".into(),
                started_ms: now_ms() - 1000 + i as i64,
                steps: vec![StepRecord {
                    line: 2,
                    position: 1,
                    instruction: "RUN x".into(),
                    duration_us: 1000 + i as u64,
                    reason: Some("first build of this step".into()),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .unwrap();
        }
        let all = s.build_records().unwrap();
        assert_eq!(all.len(), KEEP_BUILDS);
        assert_eq!(all[0].id, format!("b{:03}", KEEP_BUILDS + 4));
        assert!(s.build_record("b004").unwrap().is_none());
        assert!(s.build_record("b005").unwrap().is_some());
        let stats = s
            .step_stats(Path::new("/nonexistent"), Path::new("x"))
            .unwrap();
        assert!(stats.is_empty());
        assert!(s.clear_build_records().unwrap() > 0);
        assert!(s.build_records().unwrap().is_empty());
        assert_eq!(s.step_inputs("src", 0, 1).unwrap(), None);
    }
}
