//! Items larger than one record of the node's store. DynamoDB allows items
//! of 400 KB; a record holds [`ITEM_RECORD_BYTES_MAX`] bytes (one value of
//! the node's protocol, which replication and transfers carry in one
//! datagram). An item whose record would be larger is kept as a head and
//! chunks:
//!
//! - each **chunk** is a record of its own, written once and never
//!   changed: `content id | index u16 | a slice of the item's binary form`,
//!   at a key in the item's bucket (so the item's replicas hold it and a
//!   resize moves it with the item) under the table's chunk id, which no
//!   read of the table's buckets reaches;
//! - the **head**, at the item's record key, is what every write SWAPs and
//!   every read reads first: the item's order, then `MANIFEST_TAG | content
//!   id | chunks u16 | bytes u32 | blake3 of the bytes | partition hash u64
//!   | the item's key attributes`.
//!
//! A write stores its chunks (each in a round of the item's replicas, so a
//! round reads it back) under a content id no other write uses, then SWAPs
//! the head: that SWAP is the write's one moment, as for any item. Once it
//! holds, the chunks the old head named are removed; a SWAP that does not
//! hold removes the write's own. A reader that finds a head's chunks gone
//! (a later write removed them) reads the head again. The chunks of a write
//! whose outcome is unknown (its node died between the steps, or the
//! SWAP's answer never came) stay: garbage, never a wrong answer.

use super::cluster_client::{Answer, Call, ClusterClient, Unavailable, unavailable};
use super::items::swap_call;
use super::records::ITEM_RECORD_BYTES_MAX;
use crate::protocol::wire::{Command, ErrorCode, SWAP_ANY, SwapTo};
use crate::storage::item_key::{self, ITEM_KEY_BYTES};
use dynakv_dynamo::codec;
use dynakv_dynamo::error::ApiError;
use dynakv_dynamo::key::Key;
use dynakv_dynamo::ops::{partition_hash, scan_order_bytes};
use dynakv_dynamo::value::Item;

/// What a head's payload starts with; an item's binary form starts with
/// its format version ([`codec::FORMAT_VERSION`]), never this.
const MANIFEST_TAG: u8 = 0xC5;
/// A write's own id for its chunks: no two writes share one.
pub type ContentId = [u8; 16];
/// A chunk's bytes before its slice: an empty order (2), the content id,
/// the index.
const CHUNK_HEADER_BYTES: usize = 2 + 16 + 2;
/// Bytes of the item's binary form a chunk carries.
pub const CHUNK_DATA_BYTES_MAX: usize = ITEM_RECORD_BYTES_MAX - CHUNK_HEADER_BYTES;
/// Chunks an item may take: 1.27 MB, room for the binary form of any item
/// of 400 KB as DynamoDB counts it (the form takes at most a few bytes more
/// per value than DynamoDB counts).
pub const CHUNKS_MAX: usize = 128;

/// What a head names.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub content: ContentId,
    pub chunks: u16,
    pub bytes: u32,
    pub hash: [u8; 32],
    pub partition_hash: u64,
    /// The item's key attributes (what a bucket read needs to name it).
    pub key: Item,
}

const MANIFEST_FIXED_BYTES: usize = 1 + 16 + 2 + 4 + 32 + 8;

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MANIFEST_FIXED_BYTES + 64);
        out.push(MANIFEST_TAG);
        out.extend_from_slice(&self.content);
        out.extend_from_slice(&self.chunks.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
        out.extend_from_slice(&self.hash);
        out.extend_from_slice(&self.partition_hash.to_le_bytes());
        codec::encode_into(&self.key, &mut out);
        out
    }

    /// The manifest a record value holds; `None` for any other value.
    pub fn of_record(record: &[u8]) -> Option<Manifest> {
        let (_, payload) = item_key::split_record_value(record)?;
        let (fixed, key) = payload.split_at_checked(MANIFEST_FIXED_BYTES)?;
        let (&tag, rest) = fixed.split_first()?;
        let (content, rest) = rest.split_first_chunk::<16>()?;
        let (chunks, rest) = rest.split_first_chunk::<2>()?;
        let (bytes, rest) = rest.split_first_chunk::<4>()?;
        let (hash, rest) = rest.split_first_chunk::<32>()?;
        let partition_hash = u64::from_le_bytes(*rest.first_chunk::<8>()?);
        let chunks = u16::from_le_bytes(*chunks);
        let bytes = u32::from_le_bytes(*bytes);
        let fits = usize::from(chunks) <= CHUNKS_MAX
            && (bytes as usize).div_ceil(CHUNK_DATA_BYTES_MAX) == usize::from(chunks)
            && chunks > 0;
        (tag == MANIFEST_TAG && fits).then_some(())?;
        Some(Manifest {
            content: *content,
            chunks,
            bytes,
            hash: *hash,
            partition_hash,
            key: codec::decode(key).ok()?,
        })
    }

    /// The key of chunk `index` of this head's item in `table`: the item's
    /// bucket and partition, the table's chunk id.
    fn chunk_key(&self, table: u64, index: u16) -> Vec<u8> {
        let mut suffix = blake3::Hasher::new();
        suffix.update(&self.content);
        suffix.update(&index.to_le_bytes());
        let mut key = item_key::item_key(table, self.partition_hash, suffix.finalize().as_bytes());
        key[3..11].copy_from_slice(&chunk_table(table).to_be_bytes());
        debug_assert_eq!(key.len(), ITEM_KEY_BYTES);
        key.to_vec()
    }

    fn chunk_keys(&self, table: u64) -> impl Iterator<Item = Vec<u8>> + '_ {
        (0..self.chunks).map(move |index| self.chunk_key(table, index))
    }

    /// Chunk `index`'s slice in `value`, if `value` is that chunk of this
    /// head's write.
    fn slice_of<'v>(&self, index: u16, value: &'v [u8]) -> Option<&'v [u8]> {
        let (order, payload) = item_key::split_record_value(value)?;
        let (content, rest) = payload.split_first_chunk::<16>()?;
        let (at, slice) = rest.split_first_chunk::<2>()?;
        let whole = order.is_empty() && *content == self.content && u16::from_le_bytes(*at) == index;
        whole.then_some(slice)
    }
}

/// The id under which a table's chunks are kept: no table's own (a table's
/// is random; this is its complement), so no read of a table's buckets,
/// which reads by table id, meets them.
fn chunk_table(table: u64) -> u64 {
    !table
}

/// How an item is stored.
#[derive(Debug)]
pub enum Stored {
    /// In one record.
    Whole(Vec<u8>),
    /// A head and the chunk records it names, to be written first.
    Chunked {
        head: Vec<u8>,
        manifest: Manifest,
        chunks: Vec<Vec<u8>>,
    },
}

impl Stored {
    /// The record at the item's key.
    pub fn head(&self) -> &[u8] {
        match self {
            Stored::Whole(record) | Stored::Chunked { head: record, .. } => record,
        }
    }
}

fn too_large() -> ApiError {
    ApiError::validation("Item size has exceeded the maximum allowed size")
}

/// How `item` (at `key`, whose attributes `key_item` holds) is stored by a
/// write whose id is `content`; too large an item is refused as DynamoDB
/// refuses one past 400 KB.
pub fn stored_form(key: &Key, key_item: &Item, item: &Item, content: ContentId) -> Result<Stored, ApiError> {
    let order = scan_order_bytes(key);
    let data = codec::encode(item);
    let whole = item_key::record_value(&order, &data).ok_or_else(too_large)?;
    if whole.len() <= ITEM_RECORD_BYTES_MAX {
        return Ok(Stored::Whole(whole));
    }
    let slices = data.chunks(CHUNK_DATA_BYTES_MAX);
    if slices.len() > CHUNKS_MAX {
        return Err(too_large());
    }
    let manifest = Manifest {
        content,
        chunks: slices.len() as u16,
        bytes: data.len() as u32,
        hash: *blake3::hash(&data).as_bytes(),
        partition_hash: partition_hash(&key.partition),
        key: key_item.clone(),
    };
    let chunks = (slices.enumerate())
        .map(|(index, slice)| {
            let mut payload = Vec::with_capacity(CHUNK_HEADER_BYTES + slice.len());
            payload.extend_from_slice(&content);
            payload.extend_from_slice(&(index as u16).to_le_bytes());
            payload.extend_from_slice(slice);
            item_key::record_value(&[], &payload).unwrap_or_default()
        })
        .collect();
    let head = item_key::record_value(&order, &manifest.encode()).ok_or_else(too_large)?;
    if head.len() > ITEM_RECORD_BYTES_MAX {
        return Err(too_large());
    }
    Ok(Stored::Chunked { head, manifest, chunks })
}

/// The whole record of a head and its chunks' values (in order, `None` for
/// one not read): the head's order, then the bytes the chunks carry, if
/// every chunk is this head's and the bytes are the ones it names.
fn joined(head: &[u8], manifest: &Manifest, chunks: &[Option<Vec<u8>>]) -> Option<Vec<u8>> {
    let (order, _) = item_key::split_record_value(head)?;
    let mut data = Vec::with_capacity(manifest.bytes as usize);
    for (index, value) in chunks.iter().enumerate() {
        data.extend_from_slice(manifest.slice_of(index as u16, value.as_deref()?)?);
    }
    let intact = data.len() == manifest.bytes as usize && blake3::hash(&data).as_bytes() == &manifest.hash;
    intact.then(|| item_key::record_value(order, &data)).flatten()
}

/// The item's key attributes a record value names: the item of a whole
/// record, a head's key.
pub fn key_item_of_record(record: &[u8]) -> Option<Item> {
    super::records::item_of_record(record).or_else(|| Some(Manifest::of_record(record)?.key))
}

/// A record read at an item's key, made whole.
#[derive(Debug, PartialEq, Eq)]
pub enum Whole {
    Absent,
    Record(Vec<u8>),
    /// A head whose chunks are gone: a later write replaced it.
    ChunksGone,
}

/// The whole record of `record` (read at an item's key in `table`): a head's
/// chunks read from one copy each, those a copy lacked in a round of their
/// replicas.
pub fn whole(client: &mut ClusterClient, table: u64, record: Option<&[u8]>) -> Result<Whole, ApiError> {
    let Some(record) = record else {
        return Ok(Whole::Absent);
    };
    let Some(manifest) = Manifest::of_record(record) else {
        return Ok(Whole::Record(record.to_vec()));
    };
    let keys: Vec<Vec<u8>> = manifest.chunk_keys(table).collect();
    let gets = keys.iter().map(|key| Call {
        command: Command::Get,
        key: key.clone(),
        value: Vec::new(),
    });
    let mut values: Vec<Option<Vec<u8>>> = (in_windows(client, gets.collect()).map_err(unavailable)?.into_iter())
        .enumerate()
        .map(|(index, answer)| {
            let ours = answer.code == ErrorCode::Success && manifest.slice_of(index as u16, &answer.value).is_some();
            ours.then_some(answer.value)
        })
        .collect();
    let missing: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_none()).collect();
    if !missing.is_empty() {
        let rounds = missing
            .iter()
            .map(|&i| swap_call(keys[i].clone(), SWAP_ANY, SwapTo::Unchanged));
        let answers = in_windows(client, rounds.collect()).map_err(unavailable)?;
        for (&index, answer) in missing.iter().zip(answers) {
            values[index] = (answer.code == ErrorCode::Success).then_some(answer.value);
        }
    }
    Ok(joined(record, &manifest, &values).map_or(Whole::ChunksGone, Whole::Record))
}

/// Chunk requests in flight at once. Each carries or fetches up to 10 KB,
/// and a burst of more overflows sockets' receive buffers on the way (a
/// datagram dropped waits out a resend).
const CHUNK_WINDOW: usize = 8;

fn in_windows(client: &mut ClusterClient, calls: Vec<Call>) -> Result<Vec<Answer>, Unavailable> {
    let mut answers = Vec::with_capacity(calls.len());
    for window in calls.chunks(CHUNK_WINDOW) {
        answers.extend(client.call_many(window.to_vec())?);
    }
    Ok(answers)
}

/// Stores a write's chunks, each in a round of its replicas.
pub fn write_chunks(
    client: &mut ClusterClient,
    table: u64,
    manifest: &Manifest,
    chunks: &[Vec<u8>],
) -> Result<(), ApiError> {
    let calls = (manifest.chunk_keys(table).zip(chunks))
        .map(|(key, value)| swap_call(key, SWAP_ANY, SwapTo::Value(value)))
        .collect();
    let answers = in_windows(client, calls).map_err(unavailable)?;
    match answers.iter().all(|answer| answer.code == ErrorCode::Success) {
        true => Ok(()),
        false => Err(ApiError::new(
            dynakv_dynamo::error::ErrorKind::InternalServerError,
            "The cluster could not store the item's parts; retry",
        )),
    }
}

/// Removes the chunks a head names (nothing for a whole record), as well
/// as it can: one left behind is garbage, not a wrong answer.
pub fn remove_chunks(client: &mut ClusterClient, table: u64, record: &[u8]) {
    if let Some(manifest) = Manifest::of_record(record) {
        let calls = manifest
            .chunk_keys(table)
            .map(|key| swap_call(key, SWAP_ANY, SwapTo::Nothing));
        let _ = in_windows(client, calls.collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynakv_dynamo::value::Value;

    fn key(partition: &str) -> Key {
        Key {
            partition: Value::S(partition.to_owned()),
            sort: None,
        }
    }

    fn item_of(bytes: usize) -> (Item, Item) {
        let mut key_item = Item::new();
        key_item.insert("pk".to_owned(), Value::S("p".to_owned()));
        let mut item = key_item.clone();
        item.insert("blob".to_owned(), Value::S("x".repeat(bytes)));
        (key_item, item)
    }

    fn chunked(stored: Stored) -> (Vec<u8>, Manifest, Vec<Vec<u8>>) {
        match stored {
            Stored::Chunked { head, manifest, chunks } => (head, manifest, chunks),
            Stored::Whole(_) => panic!("a large item is chunked"),
        }
    }

    #[test]
    fn an_item_that_fits_a_record_is_stored_whole() {
        let (key_item, item) = item_of(100);
        let Ok(Stored::Whole(record)) = stored_form(&key("p"), &key_item, &item, [1; 16]) else {
            panic!("a small item is whole");
        };
        assert_eq!(super::super::records::item_of_record(&record), Some(item.clone()));
        assert_eq!(key_item_of_record(&record), Some(item));
        assert_eq!(Manifest::of_record(&record), None);
    }

    #[test]
    fn a_large_item_splits_into_chunks_that_join_back_into_its_record() {
        let (key_item, item) = item_of(400 * 1000);
        let (head, manifest, chunks) = chunked(stored_form(&key("p"), &key_item, &item, [7; 16]).unwrap());
        assert!(head.len() <= ITEM_RECORD_BYTES_MAX);
        assert!(chunks.iter().all(|chunk| chunk.len() <= ITEM_RECORD_BYTES_MAX));
        assert_eq!(chunks.len(), usize::from(manifest.chunks));
        assert_eq!(Manifest::of_record(&head), Some(manifest.clone()));
        assert_eq!(key_item_of_record(&head), Some(key_item));
        assert_eq!(super::super::records::item_of_record(&head), None, "a head is no item");
        let values: Vec<Option<Vec<u8>>> = chunks.into_iter().map(Some).collect();
        let whole = joined(&head, &manifest, &values).unwrap();
        assert_eq!(super::super::records::item_of_record(&whole), Some(item));
    }

    #[test]
    fn a_missing_foreign_or_damaged_chunk_joins_nothing() {
        let (key_item, item) = item_of(30 * 1000);
        let (head, manifest, chunks) = chunked(stored_form(&key("p"), &key_item, &item, [7; 16]).unwrap());
        let values: Vec<Option<Vec<u8>>> = chunks.iter().cloned().map(Some).collect();
        let mut missing = values.clone();
        missing[1] = None;
        assert_eq!(joined(&head, &manifest, &missing), None);
        let (_, _, others) = chunked(stored_form(&key("p"), &key_item, &item, [8; 16]).unwrap());
        let mut foreign = values.clone();
        foreign[0] = Some(others[0].clone());
        assert_eq!(joined(&head, &manifest, &foreign), None, "another write's chunk");
        let mut swapped = values.clone();
        swapped.swap(0, 1);
        assert_eq!(joined(&head, &manifest, &swapped), None, "chunks out of order");
        let mut damaged = values.clone();
        let chunk = damaged[2].as_mut().unwrap();
        let last = chunk.len() - 1;
        chunk[last] ^= 1;
        assert_eq!(joined(&head, &manifest, &damaged), None, "a flipped bit");
        assert!(joined(&head, &manifest, &values).is_some());
    }

    #[test]
    fn chunks_live_in_the_items_bucket_under_no_tables_id() {
        let (key_item, item) = item_of(30 * 1000);
        let (_, manifest, _) = chunked(stored_form(&key("p"), &key_item, &item, [7; 16]).unwrap());
        let head_key = super::super::records::item_record_key(42, &key("p"));
        let keys: Vec<Vec<u8>> = manifest.chunk_keys(42).collect();
        for chunk_key in &keys {
            let bucket = crate::storage::hash::named_bucket(chunk_key);
            assert_eq!(bucket, crate::storage::hash::named_bucket(&head_key));
            assert_ne!(
                chunk_key[..item_key::TABLE_PREFIX_BYTES],
                head_key[..item_key::TABLE_PREFIX_BYTES]
            );
        }
        assert_ne!(keys[0], keys[1]);
        let (_, other, _) = chunked(stored_form(&key("p"), &key_item, &item, [8; 16]).unwrap());
        assert_ne!(other.chunk_key(42, 0), keys[0], "two writes never share a chunk");
    }

    #[test]
    fn an_item_past_the_chunks_a_head_may_name_is_refused() {
        let (key_item, item) = item_of(CHUNK_DATA_BYTES_MAX * CHUNKS_MAX + 1);
        let error = stored_form(&key("p"), &key_item, &item, [7; 16]).unwrap_err();
        assert_eq!(error.message, "Item size has exceeded the maximum allowed size");
    }

    #[test]
    fn a_manifest_whose_counts_disagree_is_no_manifest() {
        let (key_item, item) = item_of(30 * 1000);
        let (head, _, _) = chunked(stored_form(&key("p"), &key_item, &item, [7; 16]).unwrap());
        let (order_len, _) = head.split_first_chunk::<2>().unwrap();
        let chunks_at = 2 + usize::from(u16::from_le_bytes(*order_len)) + 1 + 16;
        let mut bad = head.clone();
        bad[chunks_at] += 1;
        assert_eq!(Manifest::of_record(&bad), None);
        for cut in 0..head.len() - 1 {
            assert_eq!(Manifest::of_record(&head[..cut]), None, "cut at {cut}");
        }
    }
}
