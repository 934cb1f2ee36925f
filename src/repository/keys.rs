//! A repository's keys as the engine sees them: which format a new
//! repository gets, creating its store (with the first key file when it is
//! encrypted), unlocking an encrypted one with the password source of the
//! options, and refusing a downgrade: a config that says "unencrypted"
//! where this host has seen the repository encrypted, or beside key files.

use std::sync::Arc;

use robovault_index::Index;
use robovault_store::crypto::KeyLabel;
use robovault_store::{Backend, Config, Encryption, ObjectKind, Store};

use crate::repository::local::hostname;
use crate::repository::options::{PasswordPurpose, RepositoryOptions};
use crate::{Error, Result};

/// The index-cache meta key that remembers a repository was encrypted.
pub(crate) const ENCRYPTED_META: &str = "encrypted";

/// What a new repository is made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NewRepository {
    /// Format version 1: unencrypted, the index inside a local repository.
    #[default]
    Version1,
    /// Format version 2, encrypted.
    Encrypted,
    /// Format version 2 without encryption, on purpose (`--encryption none`).
    Unencrypted,
}

fn password(opts: &RepositoryOptions, purpose: PasswordPurpose) -> robovault_store::Result<zeroize::Zeroizing<String>> {
    opts.password
        .password(purpose)
        .map_err(robovault_store::Error::Password)
}

/// The label of a key this host makes now.
pub(crate) fn new_label(opts: &RepositoryOptions) -> KeyLabel {
    KeyLabel {
        host: hostname(),
        user: uzers::get_current_username()
            .map(|u| u.to_string_lossy().into_owned())
            .unwrap_or_default(),
        created: opts.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// Creates the store of a new repository in `backend` as `opts.create` says.
///
/// # Errors
/// [`robovault_store::Error::Password`] when no new password can be had;
/// store errors.
pub(crate) fn create_store(backend: Arc<dyn Backend>, opts: &RepositoryOptions) -> Result<Store> {
    Ok(match opts.create {
        NewRepository::Version1 => Store::create(backend, Config::new())?,
        NewRepository::Unencrypted => Store::create(backend, Config::new_v2(Encryption::None))?,
        NewRepository::Encrypted => {
            let password = password(opts, PasswordPurpose::New)?;
            let config = Config::new_v2(Encryption::XChaCha20Poly1305);
            Store::create_sealed(backend, config, password.as_bytes(), opts.kdf, &new_label(opts))?.0
        }
    })
}

/// Opens the store in `backend`, unlocking it when encrypted, and refuses an
/// unencrypted config beside key files (a config replaced to read the
/// repository's new objects in the clear, or to make it write them so).
///
/// # Errors
/// [`robovault_store::Error::NotFound`] without a config; the password's,
/// the key files' and the config's errors; [`Error::Refused`] for a downgrade.
pub(crate) fn open_store(backend: Arc<dyn Backend>, opts: &RepositoryOptions) -> Result<Store> {
    let store = Store::open_with(backend, &|| password(opts, PasswordPurpose::Unlock))?;
    if !store.config().encrypted() && !store.backend().list(ObjectKind::Key)?.is_empty() {
        return Err(downgrade(store.config()));
    }
    Ok(store)
}

fn downgrade(config: &Config) -> Error {
    Error::Refused(format!(
        "repository {} is encrypted, but its config now says it is not: refusing to open it \
         (the config was replaced or damaged; restore it from a copy)",
        config.id
    ))
}

/// Remembers in the index cache that the repository is encrypted, or
/// refuses it when the cache remembers it was and the config says not.
///
/// # Errors
/// [`Error::Refused`]; index errors.
pub(crate) fn check_cache(index: &Index, config: &Config) -> Result<()> {
    let seen = index.meta(ENCRYPTED_META)?.is_some_and(|v| v == "1");
    match (seen, config.encrypted()) {
        (true, false) => Err(downgrade(config)),
        (false, true) => {
            let mut w = index.writer()?;
            w.set_meta(ENCRYPTED_META, "1")?;
            w.commit()?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Refuses an unencrypted repository that this host's cache remembers as
/// encrypted, where the index lives elsewhere (a version-1 config put in
/// place of a version-2 one), without creating a cache for it.
///
/// # Errors
/// [`Error::Refused`]; index errors of an existing cache.
pub(crate) fn check_remembered(opts: &RepositoryOptions, config: &Config) -> Result<()> {
    let Some(base) = &opts.cache_dir else {
        return Ok(());
    };
    let cached = base.join(&config.id).join(crate::paths::INDEX_FILE);
    if config.encrypted() || !cached.is_file() {
        return Ok(());
    }
    let index = Index::open_as(&cached, robovault_index::Access::ReadOnly)?;
    if index.meta(ENCRYPTED_META)?.is_some_and(|v| v == "1") {
        return Err(downgrade(config));
    }
    Ok(())
}

/// A key file as `key list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// The key id (its file name under `keys/`).
    pub id: String,
    /// Who made it, from its sealed label.
    pub host: String,
    /// The user who made it.
    pub user: String,
    /// When, RFC 3339.
    pub created: String,
    /// Whether this command unlocked the repository with it.
    pub current: bool,
    /// Argon2id memory in KiB.
    pub kdf_memory_kib: u32,
    /// Argon2id passes.
    pub kdf_iterations: u32,
}

fn info(store: &Store, file: &robovault_store::crypto::KeyFile, label: KeyLabel) -> KeyInfo {
    KeyInfo {
        id: file.id(),
        host: label.host,
        user: label.user,
        created: label.created,
        current: store.key_id() == Some(file.id().as_str()),
        kdf_memory_kib: file.kdf().memory_kib,
        kdf_iterations: file.kdf().iterations,
    }
}

/// Opens the store alone (no index) for a key command, unlocked.
fn key_store(opts: &RepositoryOptions) -> Result<Store> {
    let backend = match &opts.location {
        crate::Location::Local(path) => {
            if !path.join("config").exists() {
                return Err(Error::NotARepository {
                    path: path.clone(),
                    reason: "it holds no config".into(),
                });
            }
            crate::repository::local::local_backend(path)
        }
        crate::Location::S3(url) => crate::repository::remote::connect(url, &opts.s3)?,
    };
    open_store(backend, opts)
}

/// The repository's keys.
///
/// # Errors
/// Opening errors (a wrong password); a key file that does not decode.
pub fn key_list(opts: &RepositoryOptions) -> Result<Vec<KeyInfo>> {
    let store = key_store(opts)?;
    Ok(store
        .keys_listed()?
        .into_iter()
        .map(|(file, label)| info(&store, &file, label))
        .collect())
}

/// Adds a key file wrapping the repository's keys under `new_password`.
///
/// # Errors
/// Opening errors; store errors writing the key file.
pub fn key_add(opts: &RepositoryOptions, new_password: &str) -> Result<KeyInfo> {
    let store = key_store(opts)?;
    let label = new_label(opts);
    let file = store.add_key(new_password.as_bytes(), opts.kdf, &label)?;
    Ok(info(&store, &file, label))
}

/// The full id of the key file `given` names: an id or a unique prefix of
/// at least 8 hex digits.
fn resolve(store: &Store, given: &str) -> Result<String> {
    let ids: Vec<String> = Store::key_files(store.backend().as_ref())?
        .iter()
        .map(|f| f.id())
        .filter(|id| given.len() >= 8 && id.starts_with(&given.to_ascii_lowercase()))
        .collect();
    match ids.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::Usage(format!(
            "no key {given}: give a key id, or 8 or more of its first hex digits (robovault key list)"
        ))),
        _ => Err(Error::Usage(format!(
            "key {given} is ambiguous: give more of its hex digits"
        ))),
    }
}

/// Removes key file `id` (or a unique prefix). The key in use and the last
/// key are refused.
///
/// # Errors
/// Opening errors; [`robovault_store::Error::Refused`].
pub fn key_remove(opts: &RepositoryOptions, id: &str) -> Result<String> {
    let store = key_store(opts)?;
    let id = resolve(&store, id)?;
    store.remove_key(&id)?;
    Ok(id)
}

/// Changes the password of the key in use: a new key file under
/// `new_password` is written first, then the old one removed, so a crash
/// in between leaves both usable. Returns the new key and the removed id.
///
/// # Errors
/// Opening errors; store errors.
pub fn key_passwd(opts: &RepositoryOptions, new_password: &str) -> Result<(KeyInfo, String)> {
    let store = key_store(opts)?;
    let old = store.key_id().unwrap_or_default().to_owned();
    let label = new_label(opts);
    let file = store.add_key(new_password.as_bytes(), opts.kdf, &label)?;
    let reopened = Store::open_with(store.backend().clone(), &|| {
        Ok(zeroize::Zeroizing::new(new_password.to_owned()))
    })?;
    reopened.remove_key(&old)?;
    Ok((info(&reopened, &file, label), old))
}

/// Writes the key file in use to `file` (mode 0600, never over an existing
/// file): with its password it opens the repository should `keys/` be
/// lost. Returns its id.
///
/// # Errors
/// Opening errors; the file exists or cannot be written.
pub fn key_export(opts: &RepositoryOptions, file: &std::path::Path) -> Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let store = key_store(opts)?;
    let id = store
        .key_id()
        .ok_or_else(|| Error::Usage("the repository is not encrypted and has no keys".into()))?
        .to_owned();
    let bytes = store.backend().read(ObjectKind::Key, &id)?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| Error::io("creating", file, e))?;
    out.write_all(&bytes)
        .and_then(|()| out.sync_all())
        .map_err(|e| Error::io("writing", file, e))?;
    Ok(id)
}
