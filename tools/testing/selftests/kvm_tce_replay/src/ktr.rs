// SPDX-License-Identifier: GPL-2.0

//! The names bench.rs was written against, kept on the client crate so that it builds unchanged:
//! every case and the fuzzer use the crate (and `fixture`) directly. Delete this module
//! once bench.rs uses them too.

use crate::fixture::DeviceExt;
use kvm_tce_replay::{Result, TceMap, TceReplay};
use std::ops::Deref;

pub use crate::fixture::mem_free;
pub use kvm_tce_replay::{MockGroup as Group, TceTable as Table};

/// A context with the test guest's memory registered ([`crate::fixture::open`]).
pub struct Device(TceReplay);

impl Device {
    /// [`crate::fixture::open`].
    pub fn open() -> Result<Self> {
        crate::fixture::open().map(Self)
    }

    /// [`DeviceExt::create_table`].
    pub fn create_table(&self, liobn: u64, page_shift: u32, size: u64) -> Result<Table> {
        self.0.create_table(liobn, page_shift, size)
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

/// A mapping of a table from its first TCE page on ([`Table::map`]).
pub struct Mapping(TceMap);

impl Mapping {
    /// `table.map(0, pages)`.
    pub fn new(table: &Table, pages: usize) -> Result<Self> {
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
