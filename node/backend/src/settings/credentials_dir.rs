//! Where the files of a cluster's credentials may be: inside the node's credentials
//! directory, once every symlink is resolved. The node reads those files and sends their
//! content to the cluster's API server, so a registration that could name any file could
//! send any secret the node can read (its own service account token, say) to an address of
//! the caller's choosing; the directory is where the operator puts what clusters may use.

use kindling_events::Credentials;
use std::path::{Component, Path};

/// Checks that every file `credentials` name lies in `dir`. A file not there yet is judged
/// by its path alone (whether it exists is [`super::present`]'s question); one that exists
/// by where it resolves to, so a symlink out of the directory does not count.
pub fn in_credentials_dir(dir: &Path, credentials: &Credentials) -> Result<(), String> {
    let root = dir.canonicalize().ok();
    for (field, file) in credentials.files() {
        let path = Path::new(file);
        let inside = match (path.canonicalize(), &root) {
            (Ok(resolved), Some(root)) => resolved.starts_with(root),
            (Ok(_), None) => false,
            (Err(_), _) => {
                path.starts_with(dir)
                    && !path.components().any(|c| matches!(c, Component::ParentDir))
            }
        };
        if !inside {
            return Err(format!(
                "credentials.{field}: {file} is not in the credentials directory {}; put the \
                 file there (a symlink out of it does not count), or start the node with \
                 another --credentials-dir",
                dir.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(path: &Path) -> Credentials {
        Credentials::TokenFile {
            path: path.display().to_string(),
        }
    }

    #[test]
    fn only_files_that_resolve_inside_the_directory_are_taken() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("credentials");
        std::fs::create_dir_all(dir.join("k8s")).unwrap();
        std::fs::write(dir.join("k8s/token"), "t").unwrap();
        std::fs::write(base.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(base.path().join("secret"), dir.join("escape")).unwrap();
        std::os::unix::fs::symlink(dir.join("k8s/token"), dir.join("alias")).unwrap();

        for ok in ["k8s/token", "alias", "not-yet-there"] {
            assert_eq!(
                in_credentials_dir(&dir, &token(&dir.join(ok))),
                Ok(()),
                "{ok}"
            );
        }
        let cases = [
            base.path().join("secret"),
            dir.join("escape"),
            dir.join("../secret"),
            dir.join("../nowhere"),
            "/etc/hostname".into(),
        ];
        for bad in cases {
            let e = in_credentials_dir(&dir, &token(&bad)).unwrap_err();
            assert!(e.starts_with("credentials.path: "), "{e}");
            assert!(e.contains(&dir.display().to_string()), "{e}");
        }
        let pair = Credentials::ClientCertificate {
            cert: dir.join("k8s/token").display().to_string(),
            key: "/etc/hostname".into(),
        };
        assert!(in_credentials_dir(&dir, &pair)
            .unwrap_err()
            .starts_with("credentials.key: "));
        // No directory: no file is in it.
        let missing = base.path().join("none");
        assert!(in_credentials_dir(&missing, &token(&dir.join("k8s/token"))).is_err());
        assert_eq!(in_credentials_dir(&missing, &Credentials::None), Ok(()));
    }
}
