//! `key list|add|remove|passwd|export`: the key files of an encrypted
//! repository. Each opens the repository with the password sources every
//! command has; `add` and `passwd` take the new password from
//! `--new-password-file`, else from a prompt on the terminal.

use std::path::Path;

use anyhow::{Context, Result};
use zeroize::Zeroizing;

use super::init::kdf_params;
use super::write_line;
use crate::args::KeyCmd;
use crate::env;

pub(super) fn key(edge: &env::Edge, what: &KeyCmd) -> Result<u32> {
    match what {
        KeyCmd::List { repo, json } => list(edge, repo, *json),
        KeyCmd::Add {
            repo,
            new_password_file,
            kdf,
        } => {
            let (opts, password) = with_new_password(edge, repo, new_password_file.as_deref(), kdf)?;
            let k =
                robovault::key_add(&opts, &password).with_context(|| format!("adding a key to {}", repo.display()))?;
            write_line(&format!("added key {}", k.id))?;
            Ok(0)
        }
        KeyCmd::Remove { repo, id } => {
            let opts = edge.repository(repo)?;
            let removed = robovault::key_remove(&opts, id)
                .with_context(|| format!("removing key {id} from {}", repo.display()))?;
            write_line(&format!("removed key {removed}"))?;
            Ok(0)
        }
        KeyCmd::Passwd {
            repo,
            new_password_file,
            kdf,
        } => {
            let (opts, password) = with_new_password(edge, repo, new_password_file.as_deref(), kdf)?;
            let (new, old) = robovault::key_passwd(&opts, &password)
                .with_context(|| format!("changing the password of {}", repo.display()))?;
            write_line(&format!("key {old} replaced by key {} with the new password", new.id))?;
            Ok(0)
        }
        KeyCmd::Export { file, repo } => {
            let opts = edge.repository(repo)?;
            let id = robovault::key_export(&opts, file)
                .with_context(|| format!("exporting the key of {}", repo.display()))?;
            write_line(&format!(
                "exported key {id} to {}: keep it apart from the repository; \
                 copied into REPO/keys/{id}, it opens the repository with its password",
                file.display()
            ))?;
            Ok(0)
        }
    }
}

fn list(edge: &env::Edge, repo: &Path, json: bool) -> Result<u32> {
    let keys = robovault::key_list(&edge.repository(repo)?)
        .with_context(|| format!("listing the keys of {}", repo.display()))?;
    if json {
        write_line(&serde_json::to_string_pretty(&keys)?)?;
        return Ok(0);
    }
    write_line(&format!(
        "{:<2}{:<18}{:<20}{:<14}{}",
        "", "ID", "CREATED", "USER", "HOST"
    ))?;
    for k in &keys {
        write_line(&format!(
            "{:<2}{:<18}{:<20}{:<14}{}",
            if k.current { "*" } else { "" },
            &k.id[..16.min(k.id.len())],
            k.created.replace('T', " ").trim_end_matches('Z'),
            k.user,
            k.host
        ))?;
    }
    Ok(0)
}

/// The repository of `key add` and `key passwd` with the KDF costs of the
/// new key file, and its new password.
fn with_new_password(
    edge: &env::Edge,
    repo: &Path,
    file: Option<&Path>,
    kdf: &crate::args::KdfArgs,
) -> Result<(robovault::RepositoryOptions, Zeroizing<String>)> {
    let mut opts = edge.repository(repo)?;
    opts.kdf = kdf_params(kdf)?;
    Ok((opts, new_password(file)?))
}

/// The new password of `key add` and `key passwd`: the first line of
/// `--new-password-file`, else asked twice on the terminal.
fn new_password(file: Option<&Path>) -> Result<Zeroizing<String>> {
    use crate::password::{on_a_terminal, Choice, CliPassword};
    use robovault::{PasswordPurpose, PasswordSource};
    match file {
        Some(f) => crate::password::from_file(f),
        None if on_a_terminal() => CliPassword(Choice::Prompt)
            .password(PasswordPurpose::New)
            .map_err(anyhow::Error::msg),
        None => Err(crate::job::usage(
            "no terminal to ask for the new password on: give it with --new-password-file F",
        )),
    }
}
