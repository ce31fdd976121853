// SPDX-License-Identifier: GPL-2.0

//! The misc device /dev/kvm-tce-replay: each open() is one context, like a KVM VM fd. It answers
//! KVM's `KVM_CHECK_EXTENSION`, `KVM_ENABLE_CAP` and `KVM_CREATE_SPAPR_TCE_64`, creates mock
//! IOMMU groups, and attaches groups to tables.

use crate::{
    accounting,
    attach::{attach, detach, Caller},
    guest::GuestMemory,
    pure::memslots::MEMSLOTS,
    pure::uapi::*,
    pure::window::Window,
    shim,
    table::{
        liobn::{LiobnClaim, Liobns},
        Table,
    },
    user,
};
#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
use crate::{iommu::mock::MockGroup, pure::uapi_test::*};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// One open of the device: the equivalent of a KVM VM.
pub(crate) struct Context {
    /// `KVM_CAP_SPAPR_TCE_REPLAY` was enabled: attach replays.
    replay: AtomicBool,
    /// The liobns of the context's live tables.
    liobns: Arc<Liobns>,
    /// The opener's address space and the guest memory valid TCEs must point into (the real
    /// IOMMU backend maps them through it); it also tells the context's tables from others'.
    guest: Arc<GuestMemory>,
}

impl Context {
    /// A new context of the calling process, replay not enabled.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                replay: AtomicBool::new(false),
                liobns: Liobns::new()?,
                guest: GuestMemory::new_current()?,
            },
            GFP_KERNEL_ACCOUNT,
        )?)
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
        let claim = LiobnClaim::new(this.liobns.clone(), req.liobn)?;
        shim::install_fd(Table::new(claim, this.guest.clone(), window)?)
    }

    #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
    fn create_mock_group(arg: usize) -> Result<isize> {
        if !Self::test_config() {
            return Err(EPERM);
        }
        let req: KtrMockGroup = user::read(arg)?;
        shim::install_fd(MockGroup::create(&req)?)
    }

    fn set_memory_region(&self, arg: usize) -> Result<isize> {
        self.guest.set_region(&user::read(arg)?)?;
        Ok(0)
    }

    /// Whether the module runs in the test configuration: the mock backend built and enabled.
    fn test_config() -> bool {
        #[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
        if crate::module_parameters::mock.value() {
            return true;
        }
        false
    }

    fn attach_or_detach(&self, arg: usize, is_attach: bool) -> Result<isize> {
        let req: KtrAttach = user::read(arg)?;
        let caller = Caller {
            guest: &self.guest,
            replay: self.replay_enabled(),
            test_config: Self::test_config(),
        };
        if is_attach {
            attach(&caller, &req)?;
        } else {
            detach(&caller, &req)?;
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
            KTR_ATTACH => me.attach_or_detach(arg, true),
            KTR_DETACH => me.attach_or_detach(arg, false),
            KTR_MEM_STATS => Self::mem_stats(arg),
            _ => Err(ENOTTY),
        }
    }
}
