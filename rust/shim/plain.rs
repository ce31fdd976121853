// SPDX-License-Identifier: GPL-2.0

//! The uapi structs and the memory slots as plain data: copied from and to userspace, or
//! created zeroed.

// SAFETY: all-zero bytes are an empty set of slots (documented on the type): every slot's size is
// 0 and none is indexed.
unsafe impl pin_init::Zeroable for crate::pure::memslots::Memslots {}

/// Marks the uapi structs as plain data that can be copied from and to userspace.
macro_rules! plain_data {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: a `repr(C)` struct of integers and integer arrays without padding (the sizes
        // are checked in uapi.rs): every bit pattern is valid and every byte is initialised.
        unsafe impl kernel::transmute::FromBytes for $t {}
        // SAFETY: as above.
        unsafe impl kernel::transmute::AsBytes for $t {}
    )*};
}

plain_data!(
    crate::pure::uapi::KvmEnableCap,
    crate::pure::uapi::KvmCreateSpaprTce64,
    crate::pure::uapi::KvmUserspaceMemoryRegion,
    crate::pure::uapi::KtrPutTce,
    crate::pure::uapi::KtrPutTceIndirect,
    crate::pure::uapi::KtrStuffTce,
    crate::pure::uapi::KtrGetTce,
    crate::pure::uapi::KtrPopulated,
    crate::pure::uapi::KtrTableStats,
    crate::pure::uapi::KtrAttach,
    crate::pure::uapi::KtrMemStats,
);

#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
plain_data!(
    crate::pure::uapi_test::KtrMockGroup,
    crate::pure::uapi_test::KtrMockRead,
    crate::pure::uapi_test::KtrMockStats,
);
