// SPDX-License-Identifier: GPL-2.0

//! Test-only (cargo feature `mock`): the module's mock IOMMU groups, each with its own
//! hardware-table geometry, that a [`TceTable`] attaches like a VFIO group.

use crate::raw::{ioctl_arg, new_fd, Pod};
use crate::uapi_test::*;
use crate::{Errno, Result, TceReplay, TceTable};
use rustix::fd::OwnedFd;

/// The levels of a mock hardware table of `it_size` entries, each level one kernel page of u64
/// slots (as many as the module requires, 1 at least).
///
/// ```
/// let slots_bits = rustix::param::page_size().trailing_zeros() - 3;
/// assert_eq!(kvm_tce_replay::mock_levels(1), 1);
/// assert_eq!(kvm_tce_replay::mock_levels(1 << slots_bits), 1);
/// assert_eq!(kvm_tce_replay::mock_levels((1 << slots_bits) + 1), 2);
/// ```
pub fn mock_levels(it_size: u64) -> u32 {
    let bits = rustix::param::page_size().trailing_zeros() - 3;
    (64 - it_size.saturating_sub(1).leading_zeros())
        .div_ceil(bits)
        .max(1)
}

impl KtrMockGroup {
    /// The geometry of a hardware table that covers `table`'s window exactly with pages of
    /// `1 << it_page_shift` bytes (at most the window's page size), with `flags`
    /// ([`KTR_MOCK_KEEP_LEVELS`] or 0).
    ///
    /// ```no_run
    /// use kvm_tce_replay::{uapi_test::KtrMockGroup, TceReplay, TceTableArgs};
    ///
    /// let ktr = TceReplay::new()?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 1, 1 << 20))?;
    /// let hw = KtrMockGroup::covering(&table, 12, 0);
    /// assert_eq!((hw.it_offset, hw.it_size), (16, 16 << 20));
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn covering(table: &TceTable, it_page_shift: u32, flags: u64) -> Self {
        let shift = table.page_shift() - it_page_shift;
        let it_size = table.size() << shift;
        Self {
            it_page_shift,
            levels: mock_levels(it_size),
            it_offset: table.offset() << shift,
            it_size,
            flags,
        }
    }
}

/// Whether the module's mock backend can be used, as [`TceReplay::mock_backend`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MockBackend {
    /// Built (`CONFIG_KVM_TCE_REPLAY_MOCK`) and enabled (module parameter `mock=1`).
    Available,
    /// Built, but the module was loaded without `mock=1`.
    Disabled,
    /// Not built: the production configuration.
    Absent,
}

impl TceReplay {
    /// Whether the mock backend answers: it asks for a mock group of an impossible geometry
    /// (0 levels), which a module with the backend refuses with `EINVAL` before it creates
    /// anything.
    ///
    /// ```no_run
    /// use kvm_tce_replay::{MockBackend, TceReplay};
    ///
    /// let ktr = TceReplay::new()?;
    /// if ktr.mock_backend() != MockBackend::Available {
    ///     println!("load the module with mock=1 to run the mock cases");
    /// }
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn mock_backend(&self) -> MockBackend {
        let impossible = KtrMockGroup {
            it_page_shift: 12,
            levels: 0,
            it_offset: 0,
            it_size: 1,
            flags: 0,
        };
        match self.create_mock_group(&impossible).map_err(|e| e.errno()) {
            Err(Errno::INVAL) | Ok(_) => MockBackend::Available,
            Err(Errno::PERM) => MockBackend::Disabled,
            Err(_) => MockBackend::Absent,
        }
    }

    /// `KTR_CREATE_MOCK_GROUP`: a mock IOMMU group with one hardware table of the given
    /// geometry (`ENOTTY` without the mock backend, `EPERM` if the module was loaded without
    /// `mock=1`).
    ///
    /// ```no_run
    /// use kvm_tce_replay::{uapi_test::KtrMockGroup, Errno, TceReplay};
    ///
    /// let ktr = TceReplay::new()?;
    /// let bad = KtrMockGroup { it_page_shift: 12, levels: 9, it_offset: 0, it_size: 1, flags: 0 };
    /// assert_eq!(ktr.create_mock_group(&bad).unwrap_err().errno(), Errno::INVAL);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn create_mock_group(&self, geometry: &KtrMockGroup) -> Result<MockGroup> {
        let mut req = *geometry;
        Ok(MockGroup(new_fd(ioctl_arg(
            self,
            KTR_CREATE_MOCK_GROUP,
            &mut req,
        )?)?))
    }

    /// A mock group whose hardware table covers `table` exactly with pages of
    /// `1 << it_page_shift` bytes ([`KtrMockGroup::covering`]).
    ///
    /// ```no_run
    /// use kvm_tce_replay::{TceReplay, TceTableArgs};
    ///
    /// let ktr = TceReplay::new()?;
    /// ktr.enable_replay()?;
    /// ktr.set_user_memory_region(0, 0, 1 << 30, 1 << 30)?;
    /// let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// table.put(0, 0x1_0000 | 3)?;
    /// let group = ktr.create_mock_group_for(&table, 12, 0)?;
    /// ktr.attach(&table, &group)?;
    /// // The 64 KiB TCE became 16 hardware entries of 4 KiB.
    /// assert_eq!(group.read(0, 2)?, [0x1_0003, 0x1_1003]);
    /// assert_eq!(group.stats()?.entries_valid, 16);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn create_mock_group_for(
        &self,
        table: &TceTable,
        it_page_shift: u32,
        flags: u64,
    ) -> Result<MockGroup> {
        if it_page_shift > table.page_shift() {
            return Err(Errno::INVAL.into());
        }
        self.create_mock_group(&KtrMockGroup::covering(table, it_page_shift, flags))
    }
}

/// A mock IOMMU group fd: hardware tables the module writes as it would a VFIO group's, which
/// the test reads back. Tied to no context: any process holding it may use it.
#[derive(Debug)]
pub struct MockGroup(OwnedFd);

impl MockGroup {
    fn call<T: Pod>(&self, op: u32, mut arg: T) -> Result<(i32, T)> {
        let r = ioctl_arg(&self.0, op, &mut arg)?;
        Ok((r, arg))
    }

    /// Entries `first .. first + count` of hardware table `table` (0, or 1 once added), in one
    /// `KTR_MOCK_READ` (`EINVAL` for more than [`KTR_MOCK_READ_MAX`] or past the table).
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 16))?;
    /// let group = ktr.create_mock_group_for(&table, 16, 0)?;
    /// assert_eq!(group.read_table_raw(0, 0, 17).unwrap_err().errno(), Errno::INVAL);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn read_table_raw(&self, table: u64, first: u64, count: u64) -> Result<Vec<u64>> {
        let len = usize::try_from(count).map_err(|_| Errno::INVAL)?;
        let mut out = vec![0u64; len];
        let req = KtrMockRead {
            first,
            count,
            entries: out.as_mut_ptr() as u64,
            table,
        };
        self.call(KTR_MOCK_READ, req)?;
        Ok(out)
    }

    /// Entries `first .. first + count` of the first hardware table, in one `KTR_MOCK_READ`.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 16))?;
    /// let group = ktr.create_mock_group_for(&table, 16, 0)?;
    /// assert_eq!(group.read_raw(0, 16)?, [0; 16]);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn read_raw(&self, first: u64, count: u64) -> Result<Vec<u64>> {
        self.read_table_raw(0, first, count)
    }

    /// Entries `first .. first + count` of hardware table `table`, in as many reads as needed.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 1 << 20))?;
    /// let group = ktr.create_mock_group_for(&table, 16, 0)?;
    /// assert_eq!(group.read_table(0, 0, 1 << 17)?.len(), 1 << 17);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn read_table(&self, table: u64, first: u64, count: u64) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(usize::try_from(count).map_err(|_| Errno::INVAL)?);
        let mut at = first;
        while at < first + count {
            let n = (first + count - at).min(KTR_MOCK_READ_MAX);
            out.extend(self.read_table_raw(table, at, n)?);
            at += n;
        }
        Ok(out)
    }

    /// Entries `first .. first + count` of the first hardware table.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 16))?;
    /// let group = ktr.create_mock_group_for(&table, 16, 0)?;
    /// assert_eq!(group.read(4, 2)?, [0, 0]);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn read(&self, first: u64, count: u64) -> Result<Vec<u64>> {
        self.read_table(0, first, count)
    }

    /// `KTR_MOCK_WRITE`: writes `values` into the entries from `first` on of hardware table
    /// `table`, outside any TCE table, as VFIO's `VFIO_IOMMU_MAP_DMA` writes a container's table
    /// (`EINVAL` for more than [`KTR_MOCK_WRITE_MAX`] or past the table).
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 16))?;
    /// let group = ktr.create_mock_group_for(&table, 16, 0)?;
    /// group.write_table(0, 3, &[0x3_0003])?;
    /// assert_eq!(group.read(3, 1)?, [0x3_0003]);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn write_table(&self, table: u64, first: u64, values: &[u64]) -> Result<()> {
        let req = KtrMockWrite {
            first,
            count: values.len() as u64,
            entries: values.as_ptr() as u64,
            table,
        };
        self.call(KTR_MOCK_WRITE, req).map(drop)
    }

    /// `KTR_MOCK_STATS` of hardware table `table`.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{Errno, TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 16))?;
    /// let group = ktr.create_mock_group_for(&table, 16, 0)?;
    /// assert_eq!(group.stats_table(1).unwrap_err().errno(), Errno::INVAL);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn stats_table(&self, table: u64) -> Result<KtrMockStats> {
        let req = KtrMockStats {
            table,
            ..KtrMockStats::default()
        };
        Ok(self.call(KTR_MOCK_STATS, req)?.1)
    }

    /// `KTR_MOCK_STATS` of the first hardware table.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 16))?;
    /// let group = ktr.create_mock_group_for(&table, 16, 0)?;
    /// assert_eq!(group.stats()?.attached, 0);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn stats(&self) -> Result<KtrMockStats> {
        self.stats_table(0)
    }

    /// `KTR_MOCK_ADD_TABLE`: a second hardware table of the given geometry, as a DDW beside the
    /// default window; returns its index (1). `EBUSY` once the group has two.
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{uapi_test::KtrMockGroup, TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 16))?;
    /// let group = ktr.create_mock_group_for(&table, 16, 0)?;
    /// assert_eq!(group.add_table(&KtrMockGroup::covering(&table, 12, 0))?, 1);
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn add_table(&self, geometry: &KtrMockGroup) -> Result<i32> {
        Ok(self.call(KTR_MOCK_ADD_TABLE, *geometry)?.0)
    }

    /// `KTR_MOCK_FAIL_ALLOC`: the `n`-th next page allocation of the first hardware table fails
    /// with `ENOMEM` (0: none).
    ///
    /// ```no_run
    /// # use kvm_tce_replay::{TceReplay, TceTableArgs};
    /// # let ktr = TceReplay::new()?;
    /// # let table = ktr.create_tce_table(TceTableArgs::new(1, 16, 0, 16))?;
    /// let group = ktr.create_mock_group_for(&table, 16, 0)?;
    /// group.fail_alloc(1)?;
    /// # Ok::<(), kvm_tce_replay::Error>(())
    /// ```
    pub fn fail_alloc(&self, n: u64) -> Result<()> {
        self.call(KTR_MOCK_FAIL_ALLOC, n).map(drop)
    }
}

fd_type!(MockGroup, 0);

impl From<OwnedFd> for MockGroup {
    /// A group from a mock group fd (for instance one passed to a child process).
    fn from(fd: OwnedFd) -> Self {
        Self(fd)
    }
}
