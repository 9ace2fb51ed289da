//! Snapshot retention: keep the newest N snapshots per session and/or at most B bytes of
//! snapshots on disk; applied by `snapshot prune` and, when configured
//! (`Options::snapshot_keep`, `Options::snapshot_max_bytes`), after each snapshot. Removing a
//! snapshot removes its two files; the chunks no remaining snapshot references are collected
//! after.

use std::collections::{HashMap, HashSet};

use crate::chunk::{self, ChunkId};
use crate::error::Result;
use crate::file;
use crate::record::{SessionId, valid_id};
use crate::seal::{self, Kind};
use crate::snapshot::{SnapshotMeta, decode_manifest};
use crate::store::Store;

/// A retention rule. `None` fields do not limit anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest this many snapshots of each session.
    pub keep: Option<usize>,
    /// Keep the snapshots' total size on disk (metadata, manifests or old bundles, chunks) at
    /// most this many bytes, removing the oldest first. The newest snapshot of the store is
    /// never removed for it, so a single snapshot larger than the bound stays.
    pub max_bytes: Option<u64>,
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// The snapshots removed, oldest first.
    pub removed: Vec<SnapshotMeta>,
    /// Chunks no snapshot referenced any more, removed.
    pub chunks_removed: u64,
    /// Bytes freed on disk (snapshot files and chunks).
    pub bytes_freed: u64,
    /// Bytes the snapshots take on disk afterwards.
    pub bytes_total: u64,
}

/// One snapshot's files as they stand on disk.
struct OnDisk {
    /// Sizes of its `.json` and `.blob`.
    own: u64,
    chunks: Vec<ChunkId>,
}

impl Store {
    /// Applies `rule` to one session's snapshots or every session's (`session` = `None`);
    /// `max_bytes` bounds the whole store's snapshot bytes, removing the oldest of the
    /// snapshots in scope. Neither `spare` (the snapshot just taken) nor the store's newest
    /// snapshot is removed.
    pub fn prune_snapshots(
        &self,
        session: Option<&SessionId>,
        rule: Retention,
        spare: Option<&str>,
    ) -> Result<Pruned> {
        let all = self.list_snapshots(None)?;
        let newest = all.iter().max_by_key(|m| (m.created_ms, m.id.clone()));
        let spare: HashSet<String> = spare
            .into_iter()
            .map(str::to_owned)
            .chain(newest.map(|m| m.id.clone()))
            .collect();
        let mut doomed: Vec<SnapshotMeta> = Vec::new();
        if let Some(keep) = rule.keep {
            let mut per_session: HashMap<&SessionId, Vec<&SnapshotMeta>> = HashMap::new();
            for m in all
                .iter()
                .filter(|m| session.is_none_or(|s| *s == m.session))
            {
                per_session.entry(&m.session).or_default().push(m);
            }
            for list in per_session.values() {
                let excess = list.len().saturating_sub(keep);
                doomed.extend(list[..excess].iter().map(|m| (*m).clone()));
            }
        }
        let (files, chunk_sizes) = {
            let _chunks = self.chunk_lock();
            (self.snapshots_on_disk()?, self.chunk_sizes()?)
        };
        let mut refs: HashMap<ChunkId, usize> = HashMap::new();
        for f in files.values() {
            for id in dedup(&f.chunks) {
                *refs.entry(id).or_default() += 1;
            }
        }
        let total_before: u64 =
            files.values().map(|f| f.own).sum::<u64>() + chunk_sizes.values().sum::<u64>();
        let mut total = total_before;
        let release = |id: &str, refs: &mut HashMap<ChunkId, usize>| {
            let Some(f) = files.get(id) else { return 0 };
            let mut freed = f.own;
            for c in dedup(&f.chunks) {
                if let Some(n) = refs.get_mut(&c) {
                    *n -= 1;
                    if *n == 0 {
                        freed += chunk_sizes.get(&c).copied().unwrap_or(0);
                    }
                }
            }
            freed
        };
        doomed.retain(|m| !spare.contains(&m.id));
        for m in &doomed {
            total -= release(&m.id, &mut refs).min(total);
        }
        if let Some(max) = rule.max_bytes {
            // Oldest first, of the session given or of every session; the bound is the store's
            // total.
            for m in all
                .iter()
                .filter(|m| session.is_none_or(|s| *s == m.session))
            {
                if total <= max {
                    break;
                }
                if spare.contains(&m.id) || doomed.iter().any(|d| d.id == m.id) {
                    continue;
                }
                total -= release(&m.id, &mut refs).min(total);
                doomed.push(m.clone());
            }
        }
        doomed.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        for m in &doomed {
            self.remove_snapshot_files(&m.id, &m.session)?;
        }
        let collected = {
            let _chunks = self.chunk_lock();
            self.collect_chunks()?
        };
        let bytes_total = self.snapshot_bytes()?;
        Ok(Pruned {
            removed: doomed,
            chunks_removed: collected.chunks,
            bytes_freed: total_before.saturating_sub(bytes_total),
            bytes_total,
        })
    }

    /// Bytes the snapshots take on disk: every snapshot directory's files and the chunks.
    pub fn snapshot_bytes(&self) -> Result<u64> {
        let root = self.root.join("snapshots");
        let mut total = self.chunk_bytes()?;
        for session in file::list_names(&root)? {
            let dir = root.join(session);
            if file::is_real_dir(&dir) {
                total += chunk::dir_bytes(&dir)?;
            }
        }
        Ok(total)
    }

    /// Every chunk some snapshot's manifest references. Call with the chunk lock held.
    pub(crate) fn referenced_chunks(&self) -> Result<HashSet<ChunkId>> {
        Ok(self
            .snapshots_on_disk()?
            .into_values()
            .flat_map(|f| f.chunks)
            .collect())
    }

    /// Each snapshot on disk (by id): the size of its files and the chunks its manifest
    /// references. A manifest that does not decode is an error: collecting chunks without
    /// knowing what it references could remove its data.
    fn snapshots_on_disk(&self) -> Result<HashMap<String, OnDisk>> {
        let root = self.root.join("snapshots");
        let mut out = HashMap::new();
        for session in file::list_names(&root)? {
            let dir = root.join(&session);
            if !file::is_real_dir(&dir) {
                continue;
            }
            for name in file::list_names(&dir)? {
                let Some(stem) = name.strip_suffix(".blob").filter(|s| valid_id(s)) else {
                    continue;
                };
                let path = dir.join(&name);
                let Some(bytes) = file::read_bounded(&path, self.max_unpacked)? else {
                    continue;
                };
                let json_len = std::fs::symlink_metadata(dir.join(format!("{stem}.json")))
                    .map_or(0, |m| m.len());
                let mut chunks = Vec::new();
                if seal::is_blob(&bytes) {
                    let raw = seal::decode_blob(
                        &mut self.unpacker(),
                        Kind::SnapshotManifest,
                        &bytes,
                        self.cipher.as_ref(),
                        &path,
                    )?;
                    for (_, _, refs) in decode_manifest(&raw, &path)? {
                        chunks.extend(refs.into_iter().map(|r| r.id));
                    }
                }
                out.insert(
                    stem.to_owned(),
                    OnDisk {
                        own: bytes.len() as u64 + json_len,
                        chunks,
                    },
                );
            }
        }
        Ok(out)
    }

    fn chunk_sizes(&self) -> Result<HashMap<ChunkId, u64>> {
        let dir = self.chunks_dir();
        let mut out = HashMap::new();
        for name in file::list_names(&dir)? {
            let Some(id) = crate::crypt::unhex(&name).and_then(|v| ChunkId::try_from(v).ok())
            else {
                continue;
            };
            if let Ok(m) = std::fs::symlink_metadata(dir.join(&name)) {
                out.insert(id, m.len());
            }
        }
        Ok(out)
    }
}

fn dedup(ids: &[ChunkId]) -> HashSet<ChunkId> {
    ids.iter().copied().collect()
}
