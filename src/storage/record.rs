//! One stored key/value pair as a single heap allocation behind a thin
//! pointer: the table slot is 8 bytes, and there is no per-entry `Vec` header.
//!
//! The pointer's top 16 bits carry a tag chosen by the owner (the store puts
//! 16 bits of the key's hash there), so a table can skip non-matching
//! records without touching their memory. Linux gives user space addresses
//! below 2^47 (x86-64 and arm64 alike, unless a process asks mmap for more),
//! so those bits are always free; [`Record::new`] checks it.
//!
//! Layout of the allocation (8-byte aligned):
//! `stamp u64 | version i32 | value_len u16 | key_len u8 | flags u8 | key | value`.
//! A tombstone (a deleted key kept so the delete wins over older copies) has
//! no value.

use crate::protocol::wire::{STORED_KEY_BYTES_MAX, VALUE_BYTES_MAX};
use crate::storage::memory::malloc_chunk_bytes;
use crate::storage::stamp::Stamp;
use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;

const HEADER_BYTES: usize = 16;
/// Low pointer bits that hold the address; the rest hold the tag.
const ADDRESS_BITS: u32 = 48;
const ADDRESS_MASK: usize = (1 << ADDRESS_BITS) - 1;
const _: () = assert!(
    usize::BITS == 64,
    "records keep a tag in the top bits of a 64-bit pointer"
);
const FLAG_TOMBSTONE: u8 = 1;
const _: () = assert!(VALUE_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(STORED_KEY_BYTES_MAX <= u8::MAX as usize);

/// An owned record. Not `Clone`: copies go through [`Record::new`].
pub struct Record(NonNull<u8>);
const _: () = assert!(std::mem::size_of::<Record>() == 8);

// SAFETY: a Record exclusively owns its allocation, like a Box<[u8]>.
unsafe impl Send for Record {}

impl Record {
    fn layout(key_len: usize, value_len: usize) -> Layout {
        Layout::from_size_align(HEADER_BYTES + key_len + value_len, 8)
            .expect("record sizes are bounded by the protocol limits")
    }

    /// Allocates a record carrying `tag`. Panics (an invariant) if key or
    /// value exceed the protocol limits, which every caller has already
    /// checked.
    pub fn new(key: &[u8], value: &[u8], version: i32, stamp: Stamp, tombstone: bool, tag: u16) -> Record {
        assert!(!key.is_empty() && key.len() <= STORED_KEY_BYTES_MAX);
        assert!(value.len() <= VALUE_BYTES_MAX && (!tombstone || value.is_empty()));
        let layout = Record::layout(key.len(), value.len());
        // SAFETY: the layout has a non-zero size (header plus a non-empty key).
        let ptr = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            handle_alloc_error(layout)
        };
        let mut header = [0u8; HEADER_BYTES];
        header[..8].copy_from_slice(&stamp.0.to_le_bytes());
        header[8..12].copy_from_slice(&version.to_le_bytes());
        header[12..14].copy_from_slice(&(value.len() as u16).to_le_bytes());
        header[14] = key.len() as u8;
        header[15] = if tombstone { FLAG_TOMBSTONE } else { 0 };
        // SAFETY: the allocation is exactly header + key + value bytes long and
        // the three copies fill it without overlap.
        unsafe {
            let base = ptr.as_ptr();
            base.copy_from_nonoverlapping(header.as_ptr(), HEADER_BYTES);
            base.add(HEADER_BYTES).copy_from_nonoverlapping(key.as_ptr(), key.len());
            base.add(HEADER_BYTES + key.len())
                .copy_from_nonoverlapping(value.as_ptr(), value.len());
        }
        assert!(
            ptr.addr().get() <= ADDRESS_MASK,
            "heap addresses fit in {ADDRESS_BITS} bits"
        );
        Record(ptr.map_addr(|addr| addr | (usize::from(tag) << ADDRESS_BITS)))
    }

    /// The tag given at creation.
    pub fn tag(&self) -> u16 {
        (self.0.addr().get() >> ADDRESS_BITS) as u16
    }

    /// The allocation's address, without the tag.
    fn base(&self) -> *mut u8 {
        self.0.as_ptr().map_addr(|addr| addr & ADDRESS_MASK)
    }

    fn header(&self) -> &[u8; HEADER_BYTES] {
        // SAFETY: every record starts with a fully written header.
        unsafe { &*(self.base() as *const [u8; HEADER_BYTES]) }
    }

    fn lengths(&self) -> (usize, usize) {
        let header = self.header();
        (
            usize::from(header[14]),
            usize::from(u16::from_le_bytes([header[12], header[13]])),
        )
    }

    fn body(&self) -> &[u8] {
        let (key_len, value_len) = self.lengths();
        // SAFETY: the body follows the header and has exactly these lengths.
        unsafe { std::slice::from_raw_parts(self.base().add(HEADER_BYTES), key_len + value_len) }
    }

    pub fn stamp(&self) -> Stamp {
        Stamp(u64::from_le_bytes(self.header()[..8].try_into().expect("8 bytes")))
    }

    pub fn version(&self) -> i32 {
        i32::from_le_bytes(self.header()[8..12].try_into().expect("4 bytes"))
    }

    pub fn is_tombstone(&self) -> bool {
        self.header()[15] & FLAG_TOMBSTONE != 0
    }

    pub fn key(&self) -> &[u8] {
        &self.body()[..self.lengths().0]
    }

    pub fn value(&self) -> &[u8] {
        &self.body()[self.lengths().0..]
    }

    /// Heap bytes this record costs, allocator overhead included.
    pub fn heap_bytes(&self) -> usize {
        let (key_len, value_len) = self.lengths();
        Record::heap_bytes_for(key_len, value_len)
    }

    /// Heap bytes a record of these lengths would cost.
    pub fn heap_bytes_for(key_len: usize, value_len: usize) -> usize {
        malloc_chunk_bytes(HEADER_BYTES + key_len + value_len)
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let (key_len, value_len) = self.lengths();
        // SAFETY: allocated in `new` with this very layout.
        unsafe { dealloc(self.base(), Record::layout(key_len, value_len)) }
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("key", &self.key())
            .field("value_len", &self.value().len())
            .field("version", &self.version())
            .field("stamp", &self.stamp())
            .field("tombstone", &self.is_tombstone())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let record = Record::new(b"key", b"value", -5, Stamp(0xdead_beef_0102), false, 0xfedc);
        assert_eq!(record.tag(), 0xfedc);
        assert_eq!(record.key(), b"key");
        assert_eq!(record.value(), b"value");
        assert_eq!(record.version(), -5);
        assert_eq!(record.stamp(), Stamp(0xdead_beef_0102));
        assert!(!record.is_tombstone());
    }

    #[test]
    fn largest_record_and_tombstone() {
        let key = [9u8; STORED_KEY_BYTES_MAX];
        let value = vec![7u8; VALUE_BYTES_MAX];
        let record = Record::new(&key, &value, i32::MAX, Stamp(u64::MAX), false, u16::MAX);
        assert_eq!((record.key(), record.value()), (&key[..], &value[..]));
        let tombstone = Record::new(b"k", b"", 0, Stamp(1), true, 0);
        assert!(tombstone.is_tombstone() && tombstone.value().is_empty());
    }

    #[test]
    fn heap_cost_of_a_grader_entry_is_528_bytes() {
        // 4-byte key, 500-byte value: 16 header + 504 body + 8 malloc header.
        assert_eq!(Record::heap_bytes_for(4, 500), 528);
        assert_eq!(malloc_chunk_bytes(1), 32);
    }
}
