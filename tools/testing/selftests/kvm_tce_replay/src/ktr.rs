// SPDX-License-Identifier: GPL-2.0

//! The names bench.rs was written against (`Device`, `Table`, `Group`, `Mapping`, `mem_free`),
//! kept as thin wrappers of the client crate so that bench.rs builds unchanged: every case and
//! the fuzzer use the crate (and `fixture`) directly. Delete this module once bench.rs does too.

use crate::fixture::DeviceExt;
use kvm_tce_replay::{Result, TceMap, TceReplay, TceTable};
use std::ops::Deref;

pub use crate::fixture::mem_free;
pub use kvm_tce_replay::MockGroup as Group;

/// A context with the test guest's memory registered ([`crate::fixture::open`]).
pub struct Device(TceReplay);

impl Device {
    /// [`crate::fixture::open`].
    pub fn open() -> Result<Self> {
        crate::fixture::open().map(Self)
    }

    /// [`DeviceExt::create_table`].
    pub fn create_table(&self, liobn: u64, page_shift: u32, size: u64) -> Result<Table> {
        self.0.create_table(liobn, page_shift, size).map(Table)
    }

    /// [`DeviceExt::create_group_for`].
    pub fn create_group_for(&self, table: &Table, it_page_shift: u32) -> Result<Group> {
        self.0.create_group_for(table, it_page_shift)
    }

    /// [`DeviceExt::create_group_with`].
    pub fn create_group_with(&self, table: &Table, shift: u32, flags: u64) -> Result<Group> {
        self.0.create_group_with(table, shift, flags)
    }

    /// [`DeviceExt::attach_with`].
    pub fn attach_with(&self, table: &Table, group: &Group, walk: u32) -> Result<()> {
        self.0.attach_with(table, group, walk)
    }
}

impl Deref for Device {
    type Target = TceReplay;

    fn deref(&self) -> &TceReplay {
        &self.0
    }
}

/// A table; [`TceTable`]'s methods, and the population bitmap as a tuple.
pub struct Table(TceTable);

impl Table {
    /// [`TceTable::populated`]: the bitmap words and the entries per TCE page.
    #[allow(
        dead_code,
        reason = "the benchmark being reworked reads the bitmap this way"
    )]
    pub fn populated(&self, first_page: u64, npages: u64) -> Result<(Vec<u64>, u64)> {
        let p = self.0.populated(first_page, npages)?;
        Ok((p.words().to_vec(), p.entries_per_page()))
    }
}

impl Deref for Table {
    type Target = TceTable;

    fn deref(&self) -> &TceTable {
        &self.0
    }
}

/// A mapping of a table from its first TCE page on ([`TceTable::map`]).
pub struct Mapping(TceMap);

impl Mapping {
    /// `table.map(0, pages)`.
    pub fn new(table: &TceTable, pages: usize) -> Result<Self> {
        table.map(0, pages).map(Self)
    }

    /// [`TceMap::len`].
    pub fn entries(&self) -> usize {
        self.0.len()
    }
}

impl Deref for Mapping {
    type Target = TceMap;

    fn deref(&self) -> &TceMap {
        &self.0
    }
}
