// SPDX-License-Identifier: GPL-2.0

//! The error of every call: the errno the module (or the C library) returned.

use rustix::io::Errno;
use std::fmt;

/// An ioctl, `open` or `mmap` of the device failed with an errno.
///
/// Documentation/api.rst lists what each errno means for each ioctl (for instance `EINVAL` for
/// an argument the module refuses, `EBUSY` for a LIOBN already in use, `EIO` for a call from a
/// process other than the one that opened the device).
///
/// ```
/// use kvm_tce_replay::{Errno, Error};
///
/// let e = Error::new(Errno::INVAL);
/// assert_eq!(e.errno(), Errno::INVAL);
/// assert_eq!(e.raw_os_error(), 22);
/// assert!(e.to_string().contains("kvm-tce-replay"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Error(Errno);

impl Error {
    /// The error for `errno`.
    ///
    /// ```
    /// # use kvm_tce_replay::{Errno, Error};
    /// assert_eq!(Error::new(Errno::BUSY), Error::from(Errno::BUSY));
    /// ```
    pub const fn new(errno: Errno) -> Self {
        Self(errno)
    }

    /// The errno.
    ///
    /// ```
    /// # use kvm_tce_replay::{Errno, Error};
    /// assert_eq!(Error::new(Errno::NOENT).errno(), Errno::NOENT);
    /// ```
    pub const fn errno(&self) -> Errno {
        self.0
    }

    /// The errno as the C library's number (`EINVAL` is 22).
    ///
    /// ```
    /// # use kvm_tce_replay::{Errno, Error};
    /// assert_eq!(Error::new(Errno::NOTTY).raw_os_error(), 25);
    /// ```
    pub const fn raw_os_error(&self) -> i32 {
        self.0.raw_os_error()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kvm-tce-replay: {}", std::io::Error::from(self.0))
    }
}

impl std::error::Error for Error {}

impl From<Errno> for Error {
    fn from(errno: Errno) -> Self {
        Self(errno)
    }
}

impl From<Error> for Errno {
    fn from(e: Error) -> Self {
        e.0
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        e.0.into()
    }
}

impl PartialEq<Errno> for Error {
    fn eq(&self, other: &Errno) -> bool {
        self.0 == *other
    }
}

/// The result of every call.
pub type Result<T> = std::result::Result<T, Error>;
