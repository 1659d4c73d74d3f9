//! `kindling users`: the users file of `--auth basic`. A password is read from the terminal
//! without echo, or as one line of standard input (`--password-stdin`), never from the command
//! line, where `ps` would show it. A running node re-reads the file by itself.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use kindling_auth::{hash_password, UserEntry, UsersFile, MIN_PASSWORD_LEN};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum UsersCmd {
    /// Adds a user, or sets the password and groups of an existing one.
    Add(AddArgs),
    /// Removes a user; running nodes refuse them within a second.
    Remove(FileArgs),
    /// Lists the users and their groups (never their password hashes).
    List(ListArgs),
}

#[derive(Args)]
pub struct FileArgs {
    /// The user's name.
    pub name: String,
    /// The users file.
    #[arg(long, env = "KINDLING_USERS_FILE")]
    pub users_file: PathBuf,
}

#[derive(Args)]
pub struct ListArgs {
    /// The users file.
    #[arg(long, env = "KINDLING_USERS_FILE")]
    pub users_file: PathBuf,
}

#[derive(Args)]
pub struct AddArgs {
    /// The user's name (letters, digits, `.`, `_`, `-`, `@`).
    pub name: String,
    /// The users file (created readable by its owner only if missing).
    #[arg(long, env = "KINDLING_USERS_FILE")]
    pub users_file: PathBuf,
    /// The user's groups, e.g. `admins` or `viewers` (see --admin-groups of serve).
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Read the password as one line of standard input instead of from the terminal.
    #[arg(long)]
    pub password_stdin: bool,
}

pub fn run(cmd: UsersCmd) -> Result<()> {
    match cmd {
        UsersCmd::Add(args) => add(args),
        UsersCmd::Remove(args) => {
            if !UsersFile::remove(&args.users_file, &args.name).map_err(anyhow::Error::msg)? {
                bail!("no user {:?} in {}", args.name, args.users_file.display());
            }
            eprintln!("kindling: user {} removed", args.name);
            Ok(())
        }
        UsersCmd::List(args) => {
            for (name, groups) in UsersFile::list(&args.users_file).map_err(anyhow::Error::msg)? {
                println!("{name}\t{}", groups.join(","));
            }
            Ok(())
        }
    }
}

fn add(args: AddArgs) -> Result<()> {
    if !kindling_auth::UsersFile::valid_name(&args.name) {
        bail!(
            "user name {:?}: letters, digits and . _ - @ only, 1 to 128 of them",
            args.name
        );
    }
    let groups: Vec<String> = args
        .groups
        .iter()
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .collect();
    if let Some(g) = groups.iter().find(|g| !UsersFile::valid_name(g)) {
        bail!("group {g:?}: letters, digits and . _ - @ only");
    }
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password(format!("password for {}: ", args.name))?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    };
    if password.chars().count() < MIN_PASSWORD_LEN {
        bail!("the password must have at least {MIN_PASSWORD_LEN} characters");
    }
    let entry = UserEntry {
        name: args.name.clone(),
        hash: hash_password(&password),
        groups,
    };
    UsersFile::put(&args.users_file, entry).map_err(anyhow::Error::msg)?;
    eprintln!(
        "kindling: user {} written to {}",
        args.name,
        args.users_file.display()
    );
    Ok(())
}
