//! A real OpenLDAP `slapd` on a free loopback port, with a directory of the test's own:
//! its entries are loaded with `slapadd` before the server starts (Debian's `slapd` and
//! `ldap-utils`, which `ops/dev/install-ldap` installs).

use crate::services::{free_port, Service};
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory's suffix.
pub const BASE: &str = "dc=kindling,dc=test";

/// A running `slapd` and where it serves.
pub struct Directory {
    pub service: Service,
    /// `ldap://127.0.0.1:PORT` (with TLS, StartTLS is offered there too).
    pub url: String,
    /// `ldaps://127.0.0.1:PORT`, when started with a certificate.
    pub ldaps_url: Option<String>,
}

/// A certificate and key (PEM files) for `slapd` to serve TLS with.
pub struct Tls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

fn slapd_dir() -> PathBuf {
    std::env::var_os("KINDLING_SLAPD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/sbin".into())
}

/// Starts `slapd` on `dir/ldap` with the suffix [`BASE`], its root `cn=admin,BASE` with
/// password `admin-secret`, and `entries` (LDIF, the suffix's own entry included) loaded.
pub fn start(dir: &Path, entries: &str) -> Result<Directory> {
    start_with(dir, entries, None)
}

/// [`start`], also serving LDAPS (and StartTLS) with `tls`.
pub fn start_with(dir: &Path, entries: &str, tls: Option<Tls>) -> Result<Directory> {
    let slapd = slapd_dir().join("slapd");
    let slapadd = slapd_dir().join("slapadd");
    if !slapd.exists() {
        bail!("{} is missing: run ops/dev/install-ldap", slapd.display());
    }
    let home = dir.join("ldap");
    let db = home.join("db");
    std::fs::create_dir_all(&db)?;
    let conf = home.join("slapd.conf");
    std::fs::write(
        &conf,
        format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             pidfile {pid}\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{BASE}\"\n\
             rootdn \"cn=admin,{BASE}\"\n\
             rootpw admin-secret\n\
             directory {db}\n{tls}",
            pid = home.join("slapd.pid").display(),
            db = db.display(),
            tls = match &tls {
                Some(t) => format!(
                    "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                    t.cert.display(),
                    t.key.display()
                ),
                None => String::new(),
            },
        ),
    )?;
    let ldif = home.join("entries.ldif");
    std::fs::write(&ldif, entries)?;
    let out = Command::new(&slapadd)
        .arg("-f")
        .arg(&conf)
        .arg("-l")
        .arg(&ldif)
        .output()
        .with_context(|| format!("cannot run {}", slapadd.display()))?;
    if !out.status.success() {
        bail!("slapadd failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let url = format!("ldap://{addr}");
    let ldaps_url = match tls {
        Some(_) => Some(format!("ldaps://127.0.0.1:{}", free_port()?)),
        None => None,
    };
    let listeners = match &ldaps_url {
        Some(s) => format!("{url}/ {s}/"),
        None => format!("{url}/"),
    };
    let cmd = vec![
        slapd.display().to_string(),
        "-f".into(),
        conf.display().to_string(),
        "-h".into(),
        listeners,
        // In the foreground, logging nothing but what it must.
        "-d".into(),
        "0".into(),
    ];
    let mut service = Service::new("slapd", addr, cmd, home.join("slapd.log"));
    service.start()?;
    Ok(Directory {
        service,
        url,
        ldaps_url,
    })
}
