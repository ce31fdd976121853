// SPDX-License-Identifier: GPL-2.0

//! The uapi structs and the memory slots as plain data: copied from and to userspace, or
//! created zeroed.

// SAFETY: all-zero bytes are an empty set of slots (documented on the type): every slot's size is
// 0 and none is indexed.
unsafe impl pin_init::Zeroable for crate::pure::memslots::Memslots {}

/// Marks the uapi structs as plain data that can be copied from and to userspace.
macro_rules! plain_data {
    ($($t:ty = $c:literal ($n:literal)),* $(,)?) => {$(
        // SAFETY: a `repr(C)` struct of integers and integer arrays without padding (the sizes
        // are checked in uapi.rs): every bit pattern is valid and every byte is initialised.
        unsafe impl kernel::transmute::FromBytes for $t {}
        // SAFETY: as above.
        unsafe impl kernel::transmute::AsBytes for $t {}
    )*};
}

crate::ktr_uapi_structs!(plain_data! crate::pure::uapi);

#[cfg(CONFIG_KVM_TCE_REPLAY_MOCK)]
crate::ktr_uapi_test_structs!(plain_data! crate::pure::uapi_test);
