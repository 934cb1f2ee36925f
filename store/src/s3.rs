//! Objects in an S3-compatible object store, through `object_store`'s
//! `AmazonS3`. Keys mirror the local layout under the repository's prefix
//! (FORMAT.md "Repository layout"): `PREFIX/config`, `PREFIX/packs/ab/ID`,
//! `PREFIX/snapshots/ID`, `PREFIX/deleted/ID`, `PREFIX/index/NAME`.
//!
//! The engine is synchronous; this backend owns a small tokio runtime and
//! blocks on each request. Writes are create-only (`If-None-Match: *`)
//! where the server honours it; correctness never depends on it, because
//! every object but the config is content-addressed or uniquely named.
//! `object_store` retries transient failures with backoff.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};

use crate::backend::{Backend, ObjectKind, ObjectWriter};
use crate::{Error, Result};

/// A repository location `s3://BUCKET/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl S3Url {
    /// Parses `s3://BUCKET[/PREFIX]`; `None` when the text is not an S3 URL.
    ///
    /// # Errors
    /// An `s3://` URL without a bucket.
    pub fn parse(text: &str) -> Result<Option<S3Url>> {
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(None);
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Remote {
                action: "parsing",
                object: text.to_owned(),
                message: "an S3 repository is s3://BUCKET/PREFIX".into(),
            });
        }
        Ok(Some(S3Url {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        }))
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Where the gateway is and how to reach it. The store reads no
/// environment: the command line fills these in (`--s3-endpoint`, else
/// `AWS_ENDPOINT_URL`; `--s3-region`, else `AWS_REGION`).
#[derive(Clone, Default)]
pub struct S3Options {
    /// The endpoint URL; none is AWS itself.
    pub endpoint: Option<String>,
    /// The region; none is `us-east-1`.
    pub region: Option<String>,
    /// Settings of the client crate by their `AWS_*` names (credentials,
    /// session token, virtual-hosted style, …), applied before the fields
    /// above, which win.
    pub settings: Vec<(String, String)>,
    /// Allow plain `http://` endpoints (loopback test servers).
    pub allow_http: bool,
    /// How long one request may take, answer included, before it is
    /// abandoned (and retried when that is safe); default [`TIMEOUT`].
    pub timeout: Option<std::time::Duration>,
    /// Retries of a request that failed transiently (5xx, a dropped
    /// connection, a body cut short, a timeout of a read); default
    /// [`RETRIES`].
    pub retries: Option<usize>,
}

/// The default limit on one request: a stuck gateway or connection must
/// not hang a run forever.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The default number of retries of one request.
pub const RETRIES: usize = 10;

/// The key of an object: the local layout's path below the prefix.
fn object_key(url: &S3Url, kind: ObjectKind, name: &str) -> Key {
    let rel = match kind {
        ObjectKind::Config => "config".to_owned(),
        ObjectKind::Pack => match name.get(..2) {
            Some(shard) if name.len() > 2 => format!("packs/{shard}/{name}"),
            _ => format!("packs/{name}"),
        },
        _ => format!("{}/{name}", kind.dir_name()),
    };
    under(url, &rel)
}

fn under(url: &S3Url, rel: &str) -> Key {
    if url.prefix.is_empty() {
        Key::from(rel)
    } else {
        Key::from(format!("{}/{rel}", url.prefix))
    }
}

/// A store error naming the object: missing, already there, or what the
/// server said.
fn remote_error(url: &S3Url, action: &'static str, kind: ObjectKind, name: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound {
            kind: kind.noun(),
            name: name.to_owned(),
        },
        object_store::Error::AlreadyExists { .. } => Error::AlreadyExists {
            kind: kind.noun(),
            name: name.to_owned(),
        },
        other => Error::Remote {
            action,
            object: format!("{} {name} in {url}", kind.noun()),
            message: other.to_string(),
        },
    }
}

/// Attempts at a listing whose transfer fails (see `S3Backend::list_dir`).
const LIST_ATTEMPTS: u32 = 3;

/// Whether the failure is the connection's or the transfer's (an HTTP
/// transport error somewhere in its causes) rather than an answer of the
/// server, which the client crate has already retried when that made sense.
fn transport_failure(e: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<object_store::client::HttpError>().is_some() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Packs larger than this upload as multipart, in parts of this size.
const PART: usize = 8 << 20;

/// The S3 backend.
pub struct S3Backend {
    url: S3Url,
    store: Arc<AmazonS3>,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Backend({})", self.url)
    }
}

impl std::fmt::Debug for S3Options {
    // The settings hold the secret key: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("settings", &self.settings.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("allow_http", &self.allow_http)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

impl S3Backend {
    /// Connects to `url` with the credentials among `opts.settings`
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    ///
    /// # Errors
    /// [`Error::Remote`] for a bad configuration.
    pub fn new(url: S3Url, opts: &S3Options) -> Result<S3Backend> {
        let remote = |message: String| Error::Remote {
            action: "connecting to",
            object: url.to_string(),
            message,
        };
        let mut b = AmazonS3Builder::new();
        for (name, value) in &opts.settings {
            // Names the client crate does not know are not its settings
            // (`AWS_PROFILE` and the like): skipped, as the crate does.
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                b = b.with_config(key, value);
            }
        }
        b = b
            .with_bucket_name(&url.bucket)
            .with_region(opts.region.clone().unwrap_or_else(|| "us-east-1".into()));
        if let Some(endpoint) = opts.endpoint.clone() {
            if endpoint.starts_with("http://") && !opts.allow_http {
                return Err(remote(format!(
                    "the endpoint {endpoint} is plain http; pass --s3-allow-http if that is intended (loopback)"
                )));
            }
            b = b.with_endpoint(endpoint).with_allow_http(opts.allow_http);
        }
        // Set here rather than left to the client crate's defaults, so that
        // they are the documented ones and tests can shorten them.
        // (Through with_config: client options set wholesale would drop
        // those the AWS_* environment gave.)
        let timeout = opts.timeout.unwrap_or(TIMEOUT);
        b = b
            .with_config(
                AmazonS3ConfigKey::Client(object_store::ClientConfigKey::Timeout),
                format!("{}ms", timeout.as_millis().max(1)),
            )
            .with_retry(object_store::RetryConfig {
                max_retries: opts.retries.unwrap_or(RETRIES),
                ..object_store::RetryConfig::default()
            });
        let store = b.build().map_err(|e| remote(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| remote(format!("cannot start the I/O runtime: {e}")))?;
        Ok(S3Backend {
            url,
            store: Arc::new(store),
            rt,
        })
    }

    fn key(&self, kind: ObjectKind, name: &str) -> Key {
        object_key(&self.url, kind, name)
    }

    fn under(&self, rel: &str) -> Key {
        under(&self.url, rel)
    }

    fn err(&self, action: &'static str, kind: ObjectKind, name: &str, e: object_store::Error) -> Error {
        remote_error(&self.url, action, kind, name, e)
    }

    /// Every object below `dir`. A listing whose transfer broke (a
    /// connection dropped, a body cut short) is asked again: the client
    /// crate retries failed requests but not a listing body that fails
    /// while being read, and such a hiccup must not fail a whole run.
    fn list_dir(&self, kind: ObjectKind, dir: &str) -> Result<Vec<object_store::ObjectMeta>> {
        let prefix = self.under(dir);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let listed: object_store::Result<Vec<object_store::ObjectMeta>> = self.rt.block_on(
                self.store
                    .list(Some(&prefix))
                    .collect::<Vec<_>>()
                    .map(|v| v.into_iter().collect()),
            );
            match listed {
                Ok(metas) => return Ok(metas),
                Err(e) if attempt < LIST_ATTEMPTS && transport_failure(&e) => {
                    std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
                }
                Err(e) => return Err(self.err("listing", kind, dir, e)),
            }
        }
    }

    fn put_new(&self, kind: ObjectKind, name: &str, data: PutPayload) -> Result<()> {
        let key = self.key(kind, name);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.rt.block_on(self.store.put_opts(&key, data, opts)) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.err("writing", kind, name, e)),
        }
    }
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        self.url.to_string()
    }
    fn deletes(&self) -> crate::Deletes {
        crate::Deletes::AfterGrace
    }
    fn reads(&self) -> crate::Reads {
        crate::Reads::Requests
    }

    fn list(&self, kind: ObjectKind) -> Result<Vec<String>> {
        let dir = match kind {
            ObjectKind::Config => {
                return Ok(if self.exists(kind, "config")? {
                    vec!["config".into()]
                } else {
                    vec![]
                })
            }
            _ => kind.dir_name(),
        };
        let mut out = Vec::new();
        for m in self.list_dir(kind, dir)? {
            let Some(name) = m.location.filename() else { continue };
            if crate::backend::is_object_name(kind, name) {
                out.push(name.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    fn list_modified(&self, kind: ObjectKind) -> Result<Vec<(String, Option<std::time::SystemTime>)>> {
        let dir = match kind {
            ObjectKind::Config => return Ok(self.list(kind)?.into_iter().map(|n| (n, None)).collect()),
            _ => kind.dir_name(),
        };
        let mut out = Vec::new();
        for m in self.list_dir(kind, dir)? {
            let Some(name) = m.location.filename() else { continue };
            if crate::backend::is_object_name(kind, name) {
                out.push((name.to_owned(), Some(std::time::SystemTime::from(m.last_modified))));
            }
        }
        out.sort();
        Ok(out)
    }

    fn read(&self, kind: ObjectKind, name: &str) -> Result<Vec<u8>> {
        let key = self.key(kind, name);
        let bytes = self.rt.block_on(async {
            let r = self.store.get(&key).await?;
            r.bytes().await
        });
        bytes
            .map(|b| b.to_vec())
            .map_err(|e| self.err("reading", kind, name, e))
    }

    fn read_range(&self, kind: ObjectKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let key = self.key(kind, name);
        let end = offset.checked_add(len).ok_or_else(|| Error::Corrupt {
            object: format!("{} {name}", kind.noun()),
            reason: "a range past the largest offset".into(),
        })?;
        let bytes = self
            .rt
            .block_on(self.store.get_range(&key, offset..end))
            .map_err(|e| self.err("reading", kind, name, e))?;
        if bytes.len() as u64 != len {
            return Err(Error::Corrupt {
                object: format!("{} {name}", kind.noun()),
                reason: format!("asked for {len} bytes at {offset}, got {}", bytes.len()),
            });
        }
        Ok(bytes.to_vec())
    }

    fn size(&self, kind: ObjectKind, name: &str) -> Result<u64> {
        let key = self.key(kind, name);
        self.rt
            .block_on(self.store.head(&key))
            .map(|m| m.size)
            .map_err(|e| self.err("reading", kind, name, e))
    }

    fn exists(&self, kind: ObjectKind, name: &str) -> Result<bool> {
        match self.size(kind, name) {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn write_new(&self, kind: ObjectKind, name: &str, data: &[u8]) -> Result<()> {
        // Not every server honours If-None-Match (S3-TESTING.md): check first.
        if self.exists(kind, name)? {
            return Err(Error::AlreadyExists {
                kind: kind.noun(),
                name: name.to_owned(),
            });
        }
        self.put_new(kind, name, PutPayload::from(data.to_vec()))
    }

    fn delete(&self, kind: ObjectKind, name: &str) -> Result<()> {
        let key = self.key(kind, name);
        match self.rt.block_on(self.store.delete(&key)) {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("deleting", kind, name, e)),
        }
    }

    fn create(&self, kind: ObjectKind) -> Result<Box<dyn ObjectWriter>> {
        // Spooled to a local temporary file (bounded memory), uploaded when
        // its name is known.
        let file = tempfile::tempfile().map_err(|e| Error::io("creating a temporary file for", "upload", e))?;
        Ok(Box::new(S3Writer {
            backend: S3Ref {
                store: Arc::clone(&self.store),
                url: self.url.clone(),
                handle: self.rt.handle().clone(),
            },
            kind,
            file,
            len: 0,
        }))
    }
}

/// What a writer needs of its backend, without borrowing it.
struct S3Ref {
    store: Arc<AmazonS3>,
    url: S3Url,
    handle: tokio::runtime::Handle,
}

struct S3Writer {
    backend: S3Ref,
    kind: ObjectKind,
    file: std::fs::File,
    len: u64,
}

impl ObjectWriter for S3Writer {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .map_err(|e| Error::io("spooling", "upload", e))?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn commit(mut self: Box<Self>, name: &str) -> Result<()> {
        let b = &self.backend;
        let kind = self.kind;
        let key = object_key(&b.url, kind, name);
        let remote = |action: &'static str, e: object_store::Error| remote_error(&b.url, action, kind, name, e);
        // Content-addressed: an object already there holds these bytes.
        match b.handle.block_on(b.store.head(&key)) {
            Ok(_) => {
                return Err(Error::AlreadyExists {
                    kind: kind.noun(),
                    name: name.to_owned(),
                })
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote("checking", e)),
        }
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("rewinding", "upload", e))?;
        if self.len as usize <= PART {
            let mut buf = Vec::with_capacity(self.len as usize);
            self.file
                .read_to_end(&mut buf)
                .map_err(|e| Error::io("reading back", "upload", e))?;
            let opts = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            return b
                .handle
                .block_on(b.store.put_opts(&key, PutPayload::from(buf), opts))
                .map(|_| ())
                .map_err(|e| remote("uploading", e));
        }
        // Multipart, at most a few parts in flight: memory stays bounded.
        // An interrupted upload leaves no object (the parts are aborted or
        // expire), so a pack is never half there.
        let file = &mut self.file;
        b.handle.block_on(async {
            let upload = b.store.put_multipart(&key).await.map_err(|e| remote("uploading", e))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut buf = vec![0u8; PART];
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(|e| Error::io("reading back", "upload", e))?;
                if n == 0 {
                    break;
                }
                w.wait_for_capacity(4).await.map_err(|e| remote("uploading", e))?;
                w.write(&buf[..n]);
            }
            w.finish().await.map(|_| ()).map_err(|e| remote("uploading", e))
        })
    }
}
