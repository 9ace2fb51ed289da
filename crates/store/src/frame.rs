//! Length- and checksum-framed items for append-only files (`history.log`) and export files.
//!
//! ```text
//! 0   len   u32 LE   body length
//! 4   tag   u32 LE   what the body is (history: number of records in it; export: section)
//! 8   crc32 u32 LE   CRC-32 of tag ++ body
//! 12  body
//! ```
//!
//! A frame is written with one `write` call, so a killed writer leaves at most one partial
//! frame, at the end. A scan stops at the first frame that is short or fails its checksum:
//! when that frame reaches the end of the file it is a torn tail (ignored, and cut off before
//! the next append); when good data follows, the file is corrupted in the middle.

use std::path::Path;

use crate::error::{Error, Result};

pub(crate) const FRAME_HEADER_LEN: usize = 12;

pub(crate) fn encode(tag: u32, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&header(tag, body));
    out.extend_from_slice(body);
}

/// The header of the frame holding `body`, for a writer that sends the body on its own.
pub(crate) fn header(tag: u32, body: &[u8]) -> [u8; FRAME_HEADER_LEN] {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&tag.to_le_bytes());
    crc.update(body);
    let mut head = [0u8; FRAME_HEADER_LEN];
    head[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
    head[4..8].copy_from_slice(&tag.to_le_bytes());
    head[8..].copy_from_slice(&crc.finalize().to_le_bytes());
    head
}

/// One good frame found by `scan`.
pub(crate) struct Frame<'a> {
    pub tag: u32,
    pub body: &'a [u8],
}

/// The frames of `bytes` (which starts at file offset `base`).
pub(crate) struct Scan<'a> {
    pub frames: Vec<Frame<'a>>,
    /// Length of the good prefix of `bytes`.
    pub good_len: usize,
    /// Bytes after the good prefix: a torn tail.
    pub torn: usize,
}

pub(crate) fn scan<'a>(bytes: &'a [u8], base: usize, path: &Path) -> Result<Scan<'a>> {
    let mut frames = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        match frame_at(bytes, pos) {
            Some((frame, next)) => {
                frames.push(frame);
                pos = next;
            }
            None => {
                if is_tail(bytes, pos) {
                    break;
                }
                return Err(Error::corrupt(
                    path,
                    format!("bad frame at offset {} with good data after it", base + pos),
                ));
            }
        }
    }
    Ok(Scan {
        frames,
        good_len: pos,
        torn: bytes.len() - pos,
    })
}

fn frame_at(bytes: &[u8], pos: usize) -> Option<(Frame<'_>, usize)> {
    let head = bytes.get(pos..pos + FRAME_HEADER_LEN)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let tag = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    let start = pos + FRAME_HEADER_LEN;
    let body = bytes.get(start..start.checked_add(len)?)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&head[4..8]);
    h.update(body);
    (h.finalize() == crc).then_some((Frame { tag, body }, start + len))
}

/// Is the bad frame at `pos` the last thing in the file? It is when its declared length
/// reaches (or passes) the end, or when nothing after it parses as a frame: a crash tears
/// only the last write, and zero-filled blocks after a power loss do not parse either.
fn is_tail(bytes: &[u8], pos: usize) -> bool {
    let Some(head) = bytes.get(pos..pos + FRAME_HEADER_LEN) else {
        return true;
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let end = pos.saturating_add(FRAME_HEADER_LEN).saturating_add(len);
    if end >= bytes.len() {
        return true;
    }
    // The declared end is inside the file: good frames from there on mean the damage is in
    // the middle; anything else (zeros, garbage) is a tail.
    frame_at(bytes, end).is_none()
}
