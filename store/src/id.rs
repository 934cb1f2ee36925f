//! Content ids: 32-byte BLAKE3 digests, one newtype per kind of object, printed as
//! lowercase hex.

use std::fmt;

use crate::{Error, Result};

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The BLAKE3 digest of `data`.
            pub fn of(data: &[u8]) -> Self {
                Self(*blake3::hash(data).as_bytes())
            }

            /// Parses 64 hex digits.
            ///
            /// # Errors
            /// [`Error::BadId`] when `text` is not 64 hex digits.
            pub fn from_hex(text: &str) -> Result<Self> {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(text, &mut bytes).map_err(|_| Error::BadId(text.to_owned()))?;
                Ok(Self(bytes))
            }

            /// Builds an id from a 32-byte slice.
            ///
            /// # Errors
            /// [`Error::BadId`] when the slice is not 32 bytes long.
            pub fn from_slice(bytes: &[u8]) -> Result<Self> {
                let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::BadId(hex::encode(bytes)))?;
                Ok(Self(arr))
            }

            /// The id in lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The raw digest.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..12])
            }
        }
    };
}

define_id!(
    /// The id of a blob (a file chunk or a tree): BLAKE3 of its uncompressed bytes.
    BlobId
);
define_id!(
    /// The id of a pack file: BLAKE3 of the whole file.
    PackId
);
define_id!(
    /// The id of a snapshot: BLAKE3 of its snapshot object's bytes.
    SnapshotId
);

/// A tree blob's id; trees are blobs, so this is a [`BlobId`].
pub type TreeId = BlobId;
