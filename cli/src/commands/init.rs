//! `init`: creates a repository; and how any command that creates one
//! (a `backup` into a new location too) makes it: encrypted, or not on
//! purpose, or in the older format.

use std::path::Path;

use anyhow::{Context, Result};
use robovault::{KdfParams, NewRepository, Repository, RepositoryOptions};

use super::write_line;
use crate::args::{EncryptionArg, KdfArgs, NewRepoArgs};
use crate::env;
use crate::job::{parse_size, usage};

pub(super) fn init(edge: &env::Edge, repo: &Path, new: &NewRepoArgs) -> Result<u32> {
    let mut opts = edge.repository(repo)?;
    new_repository(new, &mut opts)?;
    let r = Repository::init(&opts).with_context(|| format!("creating repository {}", repo.display()))?;
    let how = match opts.create {
        NewRepository::Encrypted => "encrypted",
        NewRepository::Unencrypted => "NOT encrypted (--encryption none)",
        NewRepository::Version1 => "format version 1, not encrypted",
    };
    write_line(&format!(
        "created repository {} (id {}, {how})",
        r.location().display(),
        r.store().config().id
    ))?;
    if opts.create == NewRepository::Encrypted {
        write_line(
            &"keep its password safe, and export a key (robovault key export FILE REPO): \
             without them its data cannot be read"
                .to_owned(),
        )?;
    }
    Ok(0)
}

/// Sets what a repository the command creates is made as.
///
/// # Errors
/// A usage error for a format version other than 1 or 2, encryption asked
/// of version 1, or a bad KDF size.
pub(super) fn new_repository(a: &NewRepoArgs, opts: &mut RepositoryOptions) -> Result<()> {
    let version = match a.format_version {
        Some(v) => v,
        None => env::format_version()?.unwrap_or(2),
    };
    opts.create = match (version, a.encryption) {
        (1, None) => NewRepository::Version1,
        (1, Some(_)) => {
            return Err(usage(
                "--encryption needs format version 2: version-1 repositories are never encrypted",
            ))
        }
        (2, None | Some(EncryptionArg::XChaCha20Poly1305)) => NewRepository::Encrypted,
        (2, Some(EncryptionArg::None)) => NewRepository::Unencrypted,
        (v, _) => return Err(usage(format!("Invalid format version {v}: give 1 or 2"))),
    };
    opts.kdf = kdf_params(&a.kdf)?;
    Ok(())
}

/// Argon2id's costs from `--kdf-memory` and `--kdf-iterations`, with a
/// warning when they are below the defaults.
///
/// # Errors
/// A usage error for a bad size or costs Argon2 refuses.
pub(super) fn kdf_params(a: &KdfArgs) -> Result<KdfParams> {
    let mut kdf = KdfParams::DEFAULT;
    if let Some(m) = &a.kdf_memory {
        let kib = parse_size(m)? / 1024;
        kdf.memory_kib = u32::try_from(kib).map_err(|_| usage(format!("--kdf-memory {m} is too large")))?;
    }
    if let Some(t) = a.kdf_iterations {
        kdf.iterations = t;
    }
    kdf.check(&|| "--kdf-memory and --kdf-iterations".to_owned())
        .map_err(|e| usage(e.to_string()))?;
    if kdf.below_default() {
        eprintln!(
            "WARNING : Argon2id at {} KiB and {} passes is below the default ({} KiB, {} passes): \
             a stolen key file's password is cheaper to guess",
            kdf.memory_kib,
            kdf.iterations,
            KdfParams::DEFAULT.memory_kib,
            KdfParams::DEFAULT.iterations
        );
    }
    Ok(kdf)
}
