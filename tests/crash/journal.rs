//! The journal's files as a crash leaves them, and the damage the tests do to them.
//!
//! Only as much of the format as damaging it needs (docs/STORAGE.md has all of it): segment
//! files `<data_dir>/journal/{seq:020}.journal`; every record is `length u32 | crc32c u32 |
//! kind u8 | fields`, little-endian; each write of the broker starts with a Batch record
//! (kind 12, one u64 field: the octets of the records that follow in that write).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const HEADER_LEN: usize = 8;
/// The highest record kind (Metadata, src/store/codec.rs): a broker writes it at its first
/// start (the SNS signing key), so every segment has one.
const KIND_MAX: u8 = 14;
const KIND_BATCH: u8 = 12;
const BATCH_RECORD_LEN: usize = HEADER_LEN + 1 + 8;

/// The segment files, oldest first.
pub fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(data_dir.join("journal"))
        .expect("journal directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "journal"))
        .collect();
    found.sort();
    found
}

pub fn last_segment(data_dir: &Path) -> PathBuf {
    segments(data_dir).pop().expect("at least one segment")
}

/// A record's offset, total length and kind.
#[derive(Debug, Clone, Copy)]
struct Frame {
    offset: usize,
    len: usize,
    kind: u8,
}

/// The records that fit in `data`, from the start until one does not (a crash may leave a
/// partial write at the end).
fn frames(data: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut offset = 0;
    while let Some(header) = data.get(offset..offset + HEADER_LEN + 1) {
        let body = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let kind = header[HEADER_LEN];
        let len = HEADER_LEN + body;
        if body == 0 || kind == 0 || kind > KIND_MAX || offset + len > data.len() {
            break;
        }
        frames.push(Frame { offset, len, kind });
        offset += len;
    }
    frames
}

/// The end of the last write whose records are all in `data`, and that write's octets.
fn last_complete_write(data: &[u8]) -> (usize, &[u8]) {
    let frames = frames(data);
    let fitted = frames.last().map_or(0, |f| f.offset + f.len);
    let writes = frames
        .iter()
        .filter(|f| f.kind == KIND_BATCH && f.len == BATCH_RECORD_LEN);
    let complete = writes
        .map(|f| {
            let field = &data[f.offset + HEADER_LEN + 1..f.offset + BATCH_RECORD_LEN];
            let records = u64::from_le_bytes(field.try_into().expect("8 bytes")) as usize;
            (f.offset, f.offset + BATCH_RECORD_LEN + records)
        })
        .rfind(|&(_, end)| end <= fitted)
        .expect("at least one complete write");
    (complete.1, &data[complete.0..complete.1])
}

/// How the last write is torn.
#[derive(Debug, Clone, Copy)]
pub enum Tear {
    /// A write cut short: the first half of a copy of the last complete write.
    HalfWrite,
    /// Octets that are no record at all.
    Garbage,
    /// The file grew but the data never reached the disk: zeros.
    Zeros,
}

impl Tear {
    pub const ALL: [Tear; 3] = [Tear::HalfWrite, Tear::Garbage, Tear::Zeros];

    /// Cuts `segment` back to its last complete write (what follows was never confirmed:
    /// the broker confirms only synced writes), then appends the tear; returns its length.
    pub fn apply(self, segment: &Path) -> usize {
        let data = fs::read(segment).expect("read segment");
        let (end, last) = last_complete_write(&data);
        let tail = match self {
            Tear::HalfWrite => last[..last.len() / 2].to_vec(),
            Tear::Garbage => (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            Tear::Zeros => vec![0; 4096],
        };
        let file = OpenOptions::new().write(true).open(segment).expect("open");
        file.set_len(end as u64).expect("truncate");
        let mut file = OpenOptions::new().append(true).open(segment).expect("open");
        file.write_all(&tail).expect("append");
        file.sync_all().expect("sync");
        tail.len()
    }
}

/// Flips one octet in the middle of `segment`; returns the offset of the record it hit.
pub fn flip_byte_in_middle(segment: &Path) -> usize {
    let mut data = fs::read(segment).expect("read segment");
    let middle = data.len() / 2;
    let record = frames(&data)
        .into_iter()
        .find(|f| f.offset <= middle && middle < f.offset + f.len)
        .expect("a record spans the middle");
    data[middle] ^= 0x40;
    fs::write(segment, &data).expect("write segment");
    record.offset
}
