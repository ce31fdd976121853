// SPDX-License-Identifier: GPL-2.0

//! The misc device /dev/kvm-tce-replay: each open() is one context, like a KVM VM fd. It answers
//! KVM's `KVM_CHECK_EXTENSION`, `KVM_ENABLE_CAP` and `KVM_CREATE_SPAPR_TCE_64`, creates mock
//! IOMMU groups, and attaches groups to tables.

#[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
use crate::iommu::spapr::SpaprGroup;
use crate::{
    accounting,
    attach::{attach, detach},
    guest::GuestMemory,
    iommu::IommuBackend,
    pure::memslots::MEMSLOTS,
    replay::Walk,
    shim,
    table::Table,
    pure::uapi::*,
    user,
    pure::window::Window,
};
#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
use crate::{iommu::mock::MockGroup, pure::uapi_test::*};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
};

/// One open of the device: the equivalent of a KVM VM.
#[pin_data]
pub(crate) struct Context {
    /// `KVM_CAP_SPAPR_TCE_REPLAY` was enabled: attach replays.
    replay: AtomicBool,
    /// The liobns of the context's live tables.
    #[pin]
    liobns: Mutex<KVec<u64>>,
    /// The opener's address space and the guest memory valid TCEs must point into (the real
    /// IOMMU backend maps them through it).
    #[pin]
    guest: GuestMemory,
}

/// A liobn taken in a context, given back when dropped (with its table).
pub(crate) struct LiobnClaim {
    ctx: Arc<Context>,
    liobn: u64,
}

impl LiobnClaim {
    /// Takes `liobn` in `ctx`: EBUSY if a live table of the context has it already.
    pub(crate) fn new(ctx: Arc<Context>, liobn: u64) -> Result<Self> {
        {
            let mut liobns = ctx.liobns.lock();
            if liobns.contains(&liobn) {
                return Err(EBUSY);
            }
            liobns.push(liobn, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Self { ctx, liobn })
    }

    /// The liobn.
    pub(crate) fn liobn(&self) -> u64 {
        self.liobn
    }

    /// The context the table belongs to.
    pub(crate) fn context(&self) -> &Context {
        &self.ctx
    }
}

impl Drop for LiobnClaim {
    fn drop(&mut self) {
        let liobn = self.liobn;
        self.ctx.liobns.lock().retain(|l| *l != liobn);
    }
}

impl Context {
    /// A new context of the calling process, replay not enabled.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Self::with_guest(GuestMemory::of_current()?)
    }

    /// A context for the KUnit tests, which run in a kernel thread: the kernel's own address
    /// space (never freed, and a kernel thread has CAP_IPC_LOCK) and one slot of 16 MiB of guest
    /// memory from 0.
    #[cfg(CONFIG_KVM_TCE_REPLAY_KUNIT_TEST)]
    pub(crate) fn for_kunit() -> Result<Arc<Self>> {
        let ctx = Self::with_guest(GuestMemory::of_mm(shim::init_mm())?)?;
        ctx.guest
            .set_region(&KvmUserspaceMemoryRegion::new(0, 0, 16 << 20, 16 << 20))?;
        Ok(ctx)
    }

    fn with_guest(guest: impl PinInit<GuestMemory, Error>) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                replay: AtomicBool::new(false),
                liobns <- new_mutex!(KVec::new(), "kvm_tce_replay::Context::liobns"),
                guest <- guest,
            }? Error),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Whether attaches replay.
    pub(crate) fn replay_enabled(&self) -> bool {
        self.replay.load(Ordering::Acquire)
    }

    fn check_extension(cap: usize) -> isize {
        match u32::try_from(cap) {
            Ok(KVM_CAP_SPAPR_TCE_64 | KVM_CAP_SPAPR_TCE_REPLAY) => 1,
            // CAST: 512 fits.
            Ok(KVM_CAP_NR_MEMSLOTS) => MEMSLOTS as isize,
            _ => 0,
        }
    }

    fn enable_cap(&self, arg: usize) -> Result<isize> {
        let req: KvmEnableCap = user::read(arg)?;
        if req.cap != KVM_CAP_SPAPR_TCE_REPLAY
            || req.flags != 0
            || req.args != [0; 4]
            || req.pad != [0; 64]
        {
            return Err(EINVAL);
        }
        self.replay.store(true, Ordering::Release);
        Ok(0)
    }

    fn create_table(this: ArcBorrow<'_, Self>, arg: usize) -> Result<isize> {
        let req: KvmCreateSpaprTce64 = user::read(arg)?;
        if req.flags != 0 {
            return Err(EINVAL);
        }
        let window = Window::new(req.page_shift, req.offset, req.size)?;
        let claim = LiobnClaim::new(this.into(), req.liobn)?;
        shim::install_fd(Table::new(claim, window)?)
    }

    #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
    fn create_mock_group(arg: usize) -> Result<isize> {
        if !crate::module_parameters::mock.value() {
            return Err(EPERM);
        }
        let req: KtrMockGroup = user::read(arg)?;
        shim::install_fd(MockGroup::create(&req)?)
    }

    /// The guest memory of the context.
    pub(crate) fn guest(&self) -> &GuestMemory {
        &self.guest
    }

    fn set_memory_region(&self, arg: usize) -> Result<isize> {
        self.guest.set_region(&user::read(arg)?)?;
        Ok(0)
    }

    /// The hardware table of the mock group behind `fd` for `table` (`None` if `fd` is another
    /// file): for an attach, the first that can hold the window (EINVAL if none can); for a
    /// detach, the one attached to `table` (else the first, which detach finds not attached).
    #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
    fn mock_group(
        fd: i32,
        table: &Table,
        is_attach: bool,
    ) -> Result<Option<Arc<dyn IommuBackend>>> {
        let group = match shim::from_fd::<MockGroup>(fd) {
            Ok(group) => group,
            Err(e) if e == EINVAL => return Ok(None),
            Err(e) => return Err(e),
        };
        if is_attach {
            let hw: Arc<dyn IommuBackend> = group.table_for(table.window())?;
            return Ok(Some(hw));
        }
        let tables = group.tables()?;
        let hw: Arc<dyn IommuBackend> = tables
            .iter()
            .find(|t| table.attached(t.id()).is_some())
            .or(tables.first())
            .cloned()
            .ok_or(EINVAL)?;
        Ok(Some(hw))
    }

    #[cfg(not(CONFIG_KVM_TCE_REPLAY_MOCK))]
    fn mock_group(
        _fd: i32,
        _table: &Table,
        _is_attach: bool,
    ) -> Result<Option<Arc<dyn IommuBackend>>> {
        Ok(None)
    }

    /// The hardware table of the VFIO group behind `fd` that can hold `table`'s window.
    #[cfg(CONFIG_KVM_TCE_REPLAY_SPAPR)]
    fn vfio_group(
        this: ArcBorrow<'_, Self>,
        fd: i32,
        table: &Table,
    ) -> Result<Option<Arc<dyn IommuBackend>>> {
        Ok(Some(SpaprGroup::of_vfio_group(
            this.into(),
            fd,
            table.window(),
        )?))
    }

    /// Without the real backend, an open fd that is no mock group is no group.
    #[cfg(not(CONFIG_KVM_TCE_REPLAY_SPAPR))]
    fn vfio_group(
        _this: ArcBorrow<'_, Self>,
        fd: i32,
        _table: &Table,
    ) -> Result<Option<Arc<dyn IommuBackend>>> {
        match shim::from_fd::<Table>(fd) {
            Err(e) if e == EBADF => Err(e),
            _ => Ok(None),
        }
    }

    /// The IOMMU group behind `fd` for `table`: a mock group or a VFIO group. EBADF if `fd` is
    /// not open, EINVAL if it is no group (or, for a VFIO group, has no table for the window).
    fn group(
        this: ArcBorrow<'_, Self>,
        fd: i32,
        table: &Table,
        is_attach: bool,
    ) -> Result<Arc<dyn IommuBackend>> {
        match Self::mock_group(fd, table, is_attach)? {
            Some(group) => Ok(group),
            None => Self::vfio_group(this, fd, table)?.ok_or(EINVAL),
        }
    }

    fn attach_or_detach(this: ArcBorrow<'_, Self>, arg: usize, is_attach: bool) -> Result<isize> {
        let req: KtrAttach = user::read(arg)?;
        if req.pad != 0 || (!is_attach && req.flags != 0) {
            return Err(EINVAL);
        }
        let walk = Walk::from_flags(req.flags)?;
        let table = shim::from_fd::<Table>(req.tablefd)?;
        let group = Self::group(this, req.groupfd, &table, is_attach)?;
        if is_attach {
            attach(&this, &table, group, walk)?;
        } else {
            detach(&this, &table, group)?;
        }
        Ok(0)
    }

    fn mem_stats(arg: usize) -> Result<isize> {
        let stats = KtrMemStats {
            table_bytes: accounting::TABLES.get(),
            mock_bytes: accounting::MOCK.get(),
        };
        user::write(arg, &stats)?;
        Ok(0)
    }
}

#[vtable]
impl MiscDevice for Context {
    type Ptr = Arc<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Self>> {
        Self::new()
    }

    fn ioctl(me: ArcBorrow<'_, Self>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        // A context answers only the process that opened it, like a KVM VM.
        me.guest.check_caller()?;
        match cmd {
            KVM_CHECK_EXTENSION => Ok(Self::check_extension(arg)),
            KVM_ENABLE_CAP => me.enable_cap(arg),
            KVM_CREATE_SPAPR_TCE_64 => Self::create_table(me, arg),
            #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
            KTR_CREATE_MOCK_GROUP => Self::create_mock_group(arg),
            KVM_SET_USER_MEMORY_REGION => me.set_memory_region(arg),
            KTR_ATTACH => Self::attach_or_detach(me, arg, true),
            KTR_DETACH => Self::attach_or_detach(me, arg, false),
            KTR_MEM_STATS => Self::mem_stats(arg),
            _ => Err(ENOTTY),
        }
    }
}
