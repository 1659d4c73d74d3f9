//! The users file of basic authentication: one user per line, `name:hash:group,group`, the
//! hash an argon2id PHC string; `#` starts a comment. The node re-reads it when it changes
//! (checked at most once a second, on use), so adding a user or changing a password needs
//! no restart; a file that no longer parses leaves the users as they were, and says so in
//! the log by line number, never by content.

use crate::password;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a change of the file is looked for.
const RECHECK: Duration = Duration::from_secs(1);

/// One user of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    /// The argon2id PHC string.
    pub hash: String,
    pub groups: Vec<String>,
}

/// What identifies a version of the file: a change to any part means it was rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified_ns: i128,
}

struct Loaded {
    users: Arc<HashMap<String, UserEntry>>,
    stamp: Option<Stamp>,
    /// Counts the versions read, so that what was verified against an older one is not
    /// trusted after a change.
    generation: u64,
}

/// The users file, re-read when it changes.
pub struct UsersFile {
    path: PathBuf,
    loaded: RwLock<Loaded>,
    checked: Mutex<Instant>,
    recheck: Duration,
}

impl UsersFile {
    /// Reads the file at `path`, which must exist and parse.
    pub fn open(path: &Path) -> Result<UsersFile, String> {
        let stamp = stamp(path).map_err(|e| format!("users file {}: {e}", path.display()))?;
        let users = read(path)?;
        Ok(UsersFile {
            path: path.to_path_buf(),
            loaded: RwLock::new(Loaded {
                users: Arc::new(users),
                stamp: Some(stamp),
                generation: 0,
            }),
            checked: Mutex::new(Instant::now()),
            recheck: RECHECK,
        })
    }

    /// Looks for a change at most every `every` (a second unless told).
    pub fn recheck_every(mut self, every: Duration) -> UsersFile {
        self.recheck = every;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The users as the file holds them now, and the version they come from.
    pub fn current(&self) -> (Arc<HashMap<String, UserEntry>>, u64) {
        self.reload_if_changed();
        let loaded = self.loaded.read();
        (loaded.users.clone(), loaded.generation)
    }

    fn reload_if_changed(&self) {
        {
            let mut checked = self.checked.lock();
            if checked.elapsed() < self.recheck {
                return;
            }
            *checked = Instant::now();
        }
        let now = stamp(&self.path).ok();
        if now == self.loaded.read().stamp {
            return;
        }
        match read(&self.path) {
            Ok(users) => {
                let mut loaded = self.loaded.write();
                loaded.users = Arc::new(users);
                loaded.stamp = now;
                loaded.generation += 1;
                tracing::info!(path = %self.path.display(), users = loaded.users.len(), "users file re-read");
            }
            Err(e) => {
                // Keep serving the users as they were; look again at the next change.
                self.loaded.write().stamp = now;
                tracing::warn!(error = %e, "users file not re-read; the users stay as they were");
            }
        }
    }

    /// Adds `user` to the file at `path` or replaces the user of that name, creating the file
    /// (readable by its owner only) if it does not exist. The file is replaced whole, by a
    /// rename, so a node never reads half of it.
    pub fn put(path: &Path, user: UserEntry) -> Result<(), String> {
        let mut users = if path.exists() {
            read(path)?
        } else {
            HashMap::new()
        };
        users.insert(user.name.clone(), user);
        write(path, &users)
    }

    /// Removes user `name` from the file at `path`; whether it was there.
    pub fn remove(path: &Path, name: &str) -> Result<bool, String> {
        let mut users = read(path)?;
        let removed = users.remove(name).is_some();
        if removed {
            write(path, &users)?;
        }
        Ok(removed)
    }

    /// The users of the file at `path` (never their hashes), by name.
    pub fn list(path: &Path) -> Result<Vec<(String, Vec<String>)>, String> {
        let mut users: Vec<_> = read(path)?
            .into_values()
            .map(|u| (u.name, u.groups))
            .collect();
        users.sort();
        Ok(users)
    }
}

/// Writes `users` to `path` whole: a new file readable by its owner only, renamed over it.
fn write(path: &Path, users: &HashMap<String, UserEntry>) -> Result<(), String> {
    let mut names: Vec<&String> = users.keys().collect();
    names.sort();
    let mut text = String::from("# kindling users: name:argon2id-hash:group,group\n");
    for name in names {
        let u = &users[name];
        text.push_str(&format!("{}:{}:{}\n", u.name, u.hash, u.groups.join(",")));
    }
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| format!("users file {}: {e}", path.display()))
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        inode: m.ino(),
        len: m.len(),
        modified_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
    })
}

/// Parses the file; an error names the line and what is wrong with it, not its content.
fn read(path: &Path) -> Result<HashMap<String, UserEntry>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("users file {}: {e}", path.display()))?;
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |what: &str| format!("users file {} line {}: {what}", path.display(), i + 1);
        let mut fields = line.splitn(3, ':');
        let (Some(name), Some(hash)) = (fields.next(), fields.next()) else {
            return Err(at("expected name:hash:groups"));
        };
        if !UsersFile::valid_name(name) {
            return Err(at(
                "a user name is letters, digits and . _ - @ (1 to 128 of them)",
            ));
        }
        if !password::is_hash(hash) {
            return Err(at("the hash is not an argon2id PHC string"));
        }
        let groups = fields
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect();
        let entry = UserEntry {
            name: name.to_string(),
            hash: hash.to_string(),
            groups,
        };
        if users.insert(name.to_string(), entry).is_some() {
            return Err(at("the user is listed twice"));
        }
    }
    Ok(users)
}

impl UsersFile {
    /// Whether `name` may be a user (or group) name: what LDAP uids, e-mail addresses and
    /// Unix user names have in common, and nothing that could change a line of the file or
    /// a command line.
    pub fn valid_name(name: &str) -> bool {
        (1..=128).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, groups: &[&str]) -> UserEntry {
        UserEntry {
            name: name.into(),
            hash: password::hash_password("a long password"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn put_then_open_reads_back_every_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        UsersFile::put(&path, entry("alice", &["admins"])).unwrap();
        UsersFile::put(&path, entry("bob", &[])).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let file = UsersFile::open(&path).unwrap();
        let (users, generation) = file.current();
        assert_eq!(generation, 0);
        assert_eq!(users["alice"].groups, vec!["admins".to_string()]);
        assert!(users["bob"].groups.is_empty());
        assert!(password::verify("a long password", &users["bob"].hash));
    }

    #[test]
    fn a_change_is_read_and_a_broken_change_keeps_the_users() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        UsersFile::put(&path, entry("alice", &[])).unwrap();
        let file = UsersFile::open(&path)
            .unwrap()
            .recheck_every(Duration::ZERO);
        UsersFile::put(&path, entry("bob", &["viewers"])).unwrap();
        let (users, generation) = file.current();
        assert_eq!(generation, 1);
        assert!(users.contains_key("alice") && users.contains_key("bob"));
        std::fs::write(&path, "garbage without colons\n").unwrap();
        let (users, generation) = file.current();
        assert_eq!((users.len(), generation), (2, 1));
    }

    #[test]
    fn a_broken_line_is_named_by_number_not_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "# c\n\nalice:secret-looking-text:g\n").unwrap();
        let e = UsersFile::open(&path).err().unwrap();
        assert!(e.contains("line 3") && e.contains("argon2id"), "{e}");
        assert!(!e.contains("secret-looking-text"), "{e}");
        std::fs::write(&path, "al ice:x\n").unwrap();
        assert!(UsersFile::open(&path).err().unwrap().contains("user name"));
    }

    #[test]
    fn a_user_is_removed_and_the_list_shows_no_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        UsersFile::put(&path, entry("ann", &["admins"])).unwrap();
        UsersFile::put(&path, entry("bob", &[])).unwrap();
        assert_eq!(UsersFile::remove(&path, "ann"), Ok(true));
        assert_eq!(UsersFile::remove(&path, "ann"), Ok(false));
        assert_eq!(
            UsersFile::list(&path).unwrap(),
            vec![("bob".to_string(), vec![])]
        );
    }
}
