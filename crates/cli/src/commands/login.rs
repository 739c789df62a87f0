//! `strata login [-u USER] [-p PASS | --password-stdin] [SERVER]` and `strata logout [SERVER]`:
//! credentials in Docker's `config.json`, checked against the registry before they are saved.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Result};

use crate::cli::{LoginArgs, LogoutArgs};

/// `docker.io` for no server or Docker Hub's aliases, else the host (a URL's scheme and path
/// dropped).
fn registry_of(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io");
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

fn prompt(label: &str) -> Result<String> {
    print!("{label}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(a: LoginArgs) -> Result<()> {
    let reg = registry_of(a.server.as_deref());
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let password = if a.password_stdin {
        if a.username.is_none() {
            bail!("Must provide --username with --password-stdin");
        }
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s)?;
        Some(s.trim_end_matches(['\n', '\r']).to_string())
    } else {
        a.password.clone()
    };
    let (username, password) = match (a.username.clone(), password) {
        (Some(u), Some(p)) => (u, p),
        (u, p) => {
            if !std::io::stdin().is_terminal() {
                bail!("Error: Cannot perform an interactive login from a non TTY device");
            }
            let u = match u {
                Some(u) => u,
                None => prompt("Username: ")?,
            };
            let p = match p {
                Some(p) => p,
                None => prompt("Password: ")?,
            };
            (u, p)
        }
    };
    if username.is_empty() {
        bail!("Error: Non-null Username Required");
    }
    let creds = registry::Credentials { username, password };
    let hosts = &crate::settings::get().hosts;
    let client = registry::Client::new(&reg, Some(creds.clone()), hosts);
    if let Err(e) = client.login() {
        return Err(crate::Failure::daemon(1, e).into());
    }
    let path = registry::store_credentials(&hosts.config_file, &reg, &creds)?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted in {}.",
        path.display()
    );
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(a: LogoutArgs) -> Result<()> {
    let reg = registry_of(a.server.as_deref());
    let key = registry::server_key(&reg);
    if registry::erase_credentials(&crate::settings::get().hosts.config_file, &reg)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(())
}
