//! `robovault schedule`: saved jobs run on a timetable. A schedule is a
//! definition file (the robovault arguments of one run) plus a systemd
//! service and timer that run `robovault schedule run NAME`, or a crontab
//! line that does the same. The definition's format is in FORMAT.md.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The format version of a schedule definition.
pub const SCHEDULE_VERSION: u32 = 1;

/// A saved schedule: what `schedule run NAME` runs, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Format version ([`SCHEDULE_VERSION`]).
    pub version: u32,
    /// The schedule's name.
    pub name: String,
    /// `HH:MM`, local time.
    pub time: String,
    /// Weekdays (`Mon` … `Sun`); empty means every day.
    pub days: Vec<String>,
    /// The robovault arguments of the run (`backup SOURCE REPO …`).
    pub args: Vec<String>,
    /// The directory the run starts in (relative paths in `args` resolve
    /// against it, as when the schedule was added).
    pub dir: String,
}

/// Where definitions and units live.
#[derive(Debug, Clone)]
pub struct Places {
    /// The definitions directory.
    pub definitions: PathBuf,
    /// The systemd unit directory.
    pub units: PathBuf,
    /// System scope (systemctl without `--user`).
    pub system: bool,
}

impl Places {
    /// The places of a scope; `unit_dir` overrides the unit directory.
    ///
    /// # Errors
    /// No home directory for the user scope.
    pub fn new(system: bool, unit_dir: Option<&Path>) -> Result<Places> {
        let (definitions, units) = if system {
            (
                PathBuf::from("/etc/robovault/schedules"),
                PathBuf::from("/etc/systemd/system"),
            )
        } else {
            let config =
                crate::env::config_dir().context("no home directory: set HOME or XDG_CONFIG_HOME, or use --system")?;
            (config.join("robovault/schedules"), config.join("systemd/user"))
        };
        Ok(Places {
            definitions,
            units: unit_dir.map(Path::to_path_buf).unwrap_or(units),
            system,
        })
    }

    fn definition(&self, name: &str) -> PathBuf {
        self.definitions.join(format!("{name}.json"))
    }

    fn unit(&self, name: &str, ext: &str) -> PathBuf {
        self.units.join(format!("robovault-{name}.{ext}"))
    }
}

/// A schedule name: letters, digits, `-`, `_` and `.`, as unit names allow.
///
/// # Errors
/// Any other name.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!("invalid schedule name \"{name}\": use letters, digits, -, _ and . (at most 64)");
    }
    Ok(())
}

/// Parses `HH:MM`.
///
/// # Errors
/// Anything else.
pub fn parse_time(t: &str) -> Result<(u32, u32)> {
    let bad = || anyhow::anyhow!("invalid time \"{t}\": use HH:MM (00:00 to 23:59)");
    let (h, m) = t.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 || t.len() != 5 {
        return Err(bad());
    }
    Ok((h, m))
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Parses `MON,THU` into systemd's day names, in week order.
///
/// # Errors
/// An unknown day.
pub fn parse_days(list: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for d in list.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let day = DAYS
            .iter()
            .find(|x| x.eq_ignore_ascii_case(d) || (d.len() > 3 && x.eq_ignore_ascii_case(&d[..3])))
            .with_context(|| format!("invalid weekday \"{d}\": use Mon, Tue, Wed, Thu, Fri, Sat, Sun"))?;
        if !out.iter().any(|o: &String| o == day) {
            out.push((*day).to_owned());
        }
    }
    out.sort_by_key(|d| DAYS.iter().position(|x| x == d));
    if out.is_empty() {
        bail!("--weekly needs at least one day: MON,THU");
    }
    Ok(out)
}

/// systemd's `OnCalendar=` for a definition.
pub fn on_calendar(d: &Definition) -> String {
    let days = if d.days.is_empty() {
        String::new()
    } else {
        format!("{} ", d.days.join(","))
    };
    format!("{days}*-*-* {}:00", d.time)
}

/// The crontab line for a definition.
pub fn cron_line(d: &Definition, exe: &Path) -> Result<String> {
    let (h, m) = parse_time(&d.time)?;
    let dow = if d.days.is_empty() {
        "*".to_owned()
    } else {
        d.days
            .iter()
            .map(|day| (DAYS.iter().position(|x| x == day).unwrap_or(0) + 1) % 7)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(format!(
        "{m} {h} * * {dow} {} schedule run {}",
        shell_quote(&exe.display().to_string()),
        d.name
    ))
}

/// Quotes a word for `sh` and for systemd's `ExecStart=` when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The name of the credential a service reads its password file as.
pub const PASSWORD_CREDENTIAL: &str = "robovault-password";

/// The password options robovault's global options take, each followed by
/// its value.
const PASSWORD_OPTIONS: [&str; 2] = ["--password-file", "--password-command"];

/// `args` without `--password-file F` and `--password-command CMD` (either
/// spelling) before a `--`: the source a run gets instead is decided apart.
pub fn without_password_options(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a.clone());
            out.extend(it.cloned());
            break;
        }
        if PASSWORD_OPTIONS.contains(&a.as_str()) {
            it.next();
        } else if !PASSWORD_OPTIONS
            .iter()
            .any(|o| a.strip_prefix(o).is_some_and(|r| r.starts_with('=')))
        {
            out.push(a.clone());
        }
    }
    out
}

/// The password file a definition's run reads, as `schedule add` saved it
/// (`--password-file F` in front of the command).
pub fn password_file(d: &Definition) -> Option<&str> {
    match d.args.as_slice() {
        [opt, file, ..] if opt == "--password-file" => Some(file),
        _ => None,
    }
}

/// The arguments `schedule run` starts robovault with: the definition's,
/// where `given` (password options of `schedule run` itself, as the unit
/// passes its credential) replaces the password source it saved.
pub fn run_args(d: &Definition, given: Vec<String>) -> Vec<String> {
    if given.is_empty() {
        return d.args.clone();
    }
    given.into_iter().chain(without_password_options(&d.args)).collect()
}

/// The service and timer units of a definition. A password file is handed
/// to the service as a credential (`LoadCredential=`): systemd reads it
/// when the run starts and gives the service its own read-only copy.
pub fn units(d: &Definition, exe: &Path, places: &Places) -> (String, String) {
    let scope = if places.system { "" } else { " --user" };
    let (credential, password) = match password_file(d) {
        Some(f) => (
            format!(
                "# The password file, read by systemd when the run starts.\n\
                 LoadCredential={PASSWORD_CREDENTIAL}:{}\n",
                f.replace('%', "%%")
            ),
            format!(" --password-file ${{CREDENTIALS_DIRECTORY}}/{PASSWORD_CREDENTIAL}"),
        ),
        None => (String::new(), String::new()),
    };
    // Root's services have no HOME: remote repositories keep their caches
    // in /var/cache/robovault.
    let cache = if places.system {
        "CacheDirectory=robovault\nEnvironment=ROBOVAULT_CACHE_DIR=%C/robovault\n"
    } else {
        ""
    };
    let service = format!(
        "# Written by robovault schedule add {name}; remove with robovault schedule remove {name}.\n\
         [Unit]\n\
         Description=robovault job {name}\n\
         Documentation=man:robovault(1)\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         {credential}\
         {cache}\
         ExecStart={exe}{password} schedule run {name}{sys}\n\
         Nice=10\n\
         IOSchedulingClass=idle\n\
         # 0-7 are successes (robocopy's bitmask); 8 and more are failures.\n\
         SuccessExitStatus=1 2 3 4 5 6 7\n",
        name = d.name,
        exe = shell_quote(&exe.display().to_string()),
        sys = if places.system { " --system" } else { "" },
    );
    let timer = format!(
        "# Written by robovault schedule add {name}.\n\
         # Enable: systemctl{scope} daemon-reload && systemctl{scope} enable --now robovault-{name}.timer\n\
         [Unit]\n\
         Description=Run robovault job {name} on schedule\n\
         \n\
         [Timer]\n\
         OnCalendar={cal}\n\
         # A run missed while the machine was off starts at the next boot.\n\
         Persistent=true\n\
         Unit=robovault-{name}.service\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        name = d.name,
        cal = on_calendar(d),
    );
    (service, timer)
}

/// Writes a definition and, unless `cron`, its units; returns the lines to
/// print.
///
/// # Errors
/// A file that cannot be written, an existing schedule of that name.
pub fn add(d: &Definition, places: &Places, exe: &Path, cron: bool) -> Result<Vec<String>> {
    let def_path = places.definition(&d.name);
    if def_path.exists() {
        bail!(
            "schedule \"{}\" exists ({}); remove it first with robovault schedule remove {}",
            d.name,
            def_path.display(),
            d.name
        );
    }
    std::fs::create_dir_all(&places.definitions)
        .with_context(|| format!("creating {}", places.definitions.display()))?;
    let text = serde_json::to_string_pretty(d)? + "\n";
    std::fs::write(&def_path, text).with_context(|| format!("writing {}", def_path.display()))?;
    let mut out = vec![format!("wrote {}", def_path.display())];
    if cron {
        out.push("add this line to the crontab (crontab -e):".into());
        out.push(cron_line(d, exe)?);
        return Ok(out);
    }
    let (service, timer) = units(d, exe, places);
    std::fs::create_dir_all(&places.units).with_context(|| format!("creating {}", places.units.display()))?;
    for (ext, body) in [("service", service), ("timer", timer)] {
        let p = places.unit(&d.name, ext);
        std::fs::write(&p, body).with_context(|| format!("writing {}", p.display()))?;
        out.push(format!("wrote {}", p.display()));
    }
    let scope = if places.system { "" } else { " --user" };
    out.push(format!(
        "enable it:  systemctl{scope} daemon-reload && systemctl{scope} enable --now robovault-{}.timer",
        d.name
    ));
    out.push(format!(
        "check it:   systemctl{scope} list-timers robovault-{}.timer",
        d.name
    ));
    out.push(format!(
        "run it now: robovault schedule run {}{}",
        d.name,
        if places.system { " --system" } else { "" }
    ));
    Ok(out)
}

/// Reads a definition, checking its version.
///
/// # Errors
/// A missing, unreadable or malformed definition.
pub fn load(name: &str, places: &Places) -> Result<Definition> {
    check_name(name)?;
    let p = places.definition(name);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "no schedule named \"{name}\" ({} does not exist); see robovault schedule list",
                p.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
    };
    decode(&bytes, name, &p)
}

/// Decodes the bytes of definition `name` read from `p`, checking its
/// version and name.
///
/// # Errors
/// A malformed definition, one of another version or of another name.
pub fn decode(bytes: &[u8], name: &str, p: &Path) -> Result<Definition> {
    let d: Definition = serde_json::from_slice(bytes).with_context(|| format!("reading {}", p.display()))?;
    if d.version != SCHEDULE_VERSION {
        bail!(
            "{} has format version {}; this robovault reads version {SCHEDULE_VERSION}",
            p.display(),
            d.version
        );
    }
    if d.name != name {
        bail!("{} names schedule \"{}\", not \"{name}\"", p.display(), d.name);
    }
    Ok(d)
}

/// Every definition, by name.
///
/// # Errors
/// An unreadable directory or definition.
pub fn list(places: &Places) -> Result<Vec<Definition>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&places.definitions) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("listing {}", places.definitions.display())),
    };
    for e in entries {
        let e = e.with_context(|| format!("listing {}", places.definitions.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".json") {
            out.push(load(stem, places)?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes a definition and its units; returns what it removed.
///
/// # Errors
/// No such schedule, or a file that cannot be removed.
pub fn remove(name: &str, places: &Places) -> Result<Vec<String>> {
    load(name, places)?;
    let mut out = Vec::new();
    for p in [
        places.unit(name, "timer"),
        places.unit(name, "service"),
        places.definition(name),
    ] {
        match std::fs::remove_file(&p) {
            Ok(()) => out.push(format!("removed {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }
    if places.units.exists() {
        let scope = if places.system { "" } else { " --user" };
        out.push(format!(
            "then: systemctl{scope} disable --now robovault-{name}.timer; systemctl{scope} daemon-reload"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(days: &[&str]) -> Definition {
        Definition {
            version: SCHEDULE_VERSION,
            name: "nightly".into(),
            time: "02:00".into(),
            days: days.iter().map(|d| d.to_string()).collect(),
            args: vec!["backup".into(), "/srv".into(), "/repo".into()],
            dir: "/".into(),
        }
    }

    #[test]
    fn calendars_and_cron_lines() {
        assert_eq!(on_calendar(&def(&[])), "*-*-* 02:00:00");
        assert_eq!(on_calendar(&def(&["Mon", "Thu"])), "Mon,Thu *-*-* 02:00:00");
        let exe = Path::new("/usr/bin/robovault");
        assert_eq!(
            cron_line(&def(&[]), exe).unwrap(),
            "0 2 * * * /usr/bin/robovault schedule run nightly"
        );
        assert_eq!(
            cron_line(&def(&["Mon", "Sun"]), exe).unwrap(),
            "0 2 * * 1,0 /usr/bin/robovault schedule run nightly"
        );
    }

    #[test]
    fn password_options_are_dropped_before_the_end_of_options_only() {
        let args: Vec<String> = [
            "backup",
            "src",
            "--password-file",
            "f",
            "repo",
            "--password-command=pass show x",
            "--series",
            "s",
            "--",
            "--password-file",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            without_password_options(&args),
            ["backup", "src", "repo", "--series", "s", "--", "--password-file"]
        );
    }

    #[test]
    fn a_password_file_becomes_a_credential_and_schedule_run_passes_it_on() {
        let mut d = def(&[]);
        let exe = Path::new("/usr/bin/robovault");
        let user = Places {
            definitions: "/d".into(),
            units: "/u".into(),
            system: false,
        };
        let (plain, _) = units(&d, exe, &user);
        assert!(!plain.contains("LoadCredential"), "{plain}");
        assert!(!plain.contains("CacheDirectory"), "{plain}");
        d.args
            .splice(0..0, ["--password-file".to_owned(), "/etc/rv/100%.pw".to_owned()]);
        assert_eq!(password_file(&d), Some("/etc/rv/100%.pw"));
        let (service, _) = units(&d, exe, &user);
        assert!(
            service.contains("\nLoadCredential=robovault-password:/etc/rv/100%%.pw\n"),
            "{service}"
        );
        assert!(
            service.contains(
                "\nExecStart=/usr/bin/robovault --password-file ${CREDENTIALS_DIRECTORY}/robovault-password schedule run nightly\n"
            ),
            "{service}"
        );
        let system = Places { system: true, ..user };
        let (service, _) = units(&d, exe, &system);
        assert!(service.contains("\nCacheDirectory=robovault\n"), "{service}");
        assert!(
            service.contains("\nEnvironment=ROBOVAULT_CACHE_DIR=%C/robovault\n"),
            "{service}"
        );
        assert_eq!(run_args(&d, Vec::new()), d.args);
        let given = vec![
            "--password-file".to_owned(),
            "/run/credentials/x/robovault-password".to_owned(),
        ];
        assert_eq!(
            run_args(&d, given),
            [
                "--password-file",
                "/run/credentials/x/robovault-password",
                "backup",
                "/srv",
                "/repo"
            ]
        );
        let given = vec!["--password-command".to_owned(), "pass show rv".to_owned()];
        assert_eq!(
            run_args(&d, given)[..3],
            ["--password-command", "pass show rv", "backup"]
        );
    }

    #[test]
    fn names_times_and_days() {
        assert!(check_name("nightly-home_1.x").is_ok());
        for bad in ["", ".x", "a/b", "a b", "ä"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_time("02:30").unwrap(), (2, 30));
        for bad in ["2:30", "24:00", "12:60", "noon"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_days("THU,mon,monday").unwrap(), ["Mon", "Thu"]);
        assert!(parse_days("Funday").is_err());
    }
}
