//! Reading the blobs of a snapshot's files, one repository (the source and
//! each submodule) at a time: in process with gix, else with one
//! `git cat-file --batch` run per repository.

use crate::git::Git;
use crate::objects::Objects;
use crate::snapshot::{Entry, SnapshotError};

/// Blob contents of the entries, in entry order, in one buffer.
pub(crate) struct Blobs {
    data: Vec<u8>,
    ranges: Vec<std::ops::Range<usize>>,
}

impl Blobs {
    /// Each blob's contents, in entry order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.ranges.iter().map(|r| &self.data[r.clone()])
    }
}

/// Reads the blobs of `entries` (grouped by repository) in entry order.
pub(crate) fn read_blobs(
    repos: &[Objects<'_>],
    commit: &str,
    entries: &[Entry],
) -> Result<Blobs, SnapshotError> {
    let mut all = Blobs {
        data: Vec::new(),
        ranges: Vec::with_capacity(entries.len()),
    };
    let mut rest = entries;
    while let Some(first) = rest.first() {
        let count = rest.iter().take_while(|e| e.source == first.source).count();
        let (group, tail) = rest.split_at(count);
        let part = read_blobs_from(&repos[first.source], commit, group)?;
        let offset = all.data.len();
        all.data.extend_from_slice(&part.data);
        all.ranges.extend(
            part.ranges
                .into_iter()
                .map(|r| r.start + offset..r.end + offset),
        );
        rest = tail;
    }
    Ok(all)
}

fn read_blobs_from(
    objects: &Objects<'_>,
    commit: &str,
    entries: &[Entry],
) -> Result<Blobs, SnapshotError> {
    let ids: Vec<&str> = entries.iter().map(|e| e.blob.as_str()).collect();
    if let Some((data, ranges)) = objects.blobs(&ids) {
        return Ok(Blobs { data, ranges });
    }
    objects.served_by_git();
    read_blobs_with_git(objects.git(), commit, entries)
}

fn read_blobs_with_git(git: &Git, commit: &str, entries: &[Entry]) -> Result<Blobs, SnapshotError> {
    let input: String = entries.iter().map(|e| format!("{}\n", e.blob)).collect();
    let data = git
        .run_bytes(&["cat-file", "--batch"], Some(input.as_bytes()))
        .map_err(|source| SnapshotError::Git {
            commit: commit.to_string(),
            source,
        })?;
    let stream = || SnapshotError::Stream {
        commit: commit.to_string(),
    };
    let mut ranges = Vec::with_capacity(entries.len());
    let mut at = 0;
    for e in entries {
        let rest = &data[at..];
        let newline = rest.iter().position(|b| *b == b'\n').ok_or_else(stream)?;
        let header = String::from_utf8_lossy(&rest[..newline]);
        let mut parts = header.split(' ');
        let (Some(id), Some("blob"), Some(size)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(stream());
        };
        let size: usize = size.parse().map_err(|_| stream())?;
        if id != e.blob || rest.len() < newline + 1 + size + 1 {
            return Err(stream());
        }
        let start = at + newline + 1;
        ranges.push(start..start + size);
        at = start + size + 1;
    }
    Ok(Blobs { data, ranges })
}
