//! `strata network create|ls|inspect|rm|connect|disconnect|prune`: Docker's user-defined
//! networks, as the container crate keeps them.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{
    NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkInspectArgs,
    NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs,
};
use crate::Failure;

use super::container_failure as fail;

use super::key_values;

pub fn create(root: &Path, a: NetworkCreateArgs) -> Result<()> {
    if a.subnet.len() > 1 || a.gateway.len() > 1 {
        return Err(Failure::new(1, "strata networks have one IPv4 subnet").into());
    }
    if !a.gateway.is_empty() && a.subnet.is_empty() {
        return Err(Failure::bare(
            1,
            "every ip-range or gateway must have a corresponding subnet",
        )
        .into());
    }
    let mut c = super::open_containers(root)?;
    let id = c
        .create_network(&container::CreateNetwork {
            name: a.name.clone(),
            driver: Some(a.driver.clone()),
            subnet: a.subnet.first().cloned(),
            gateway: a.gateway.first().cloned(),
            labels: key_values(&a.labels),
            options: key_values(&a.options),
            internal: a.internal,
            attachable: a.attachable,
        })
        .map_err(super::daemon_failure)?;
    println!("{id}");
    Ok(())
}

/// Docker's `Labels` column: `k=v,k2=v2`.
fn labels(l: &BTreeMap<String, String>) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn matches(
    c: &container::Containers,
    n: &container::Network,
    key: &str,
    value: &str,
) -> Result<bool> {
    Ok(match key {
        "dangling" => {
            let dangling = match value {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => {
                    return Err(Failure::daemon(
                        1,
                        "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")",
                    )
                    .into())
                }
            };
            c.network_in_use(n).map_err(fail)? != dangling
        }
        "name" => n.name().contains(value),
        "id" => n.id().starts_with(value),
        "driver" => n.config.driver == value,
        "scope" => value == "local",
        "label" => match value.split_once('=') {
            Some((k, v)) => n.config.labels.get(k).is_some_and(|x| x == v),
            None => n.config.labels.contains_key(value),
        },
        "type" => match value {
            "custom" => !n.config.builtin,
            "builtin" => n.config.builtin,
            other => {
                return Err(Failure::new(1, format!("invalid filter: 'type'='{other}'")).into())
            }
        },
        other => return Err(Failure::new(1, format!("Invalid filter '{other}'")).into()),
    })
}

pub fn ls(root: &Path, a: NetworkLsArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    let mut nets = c.networks().map_err(fail)?;
    // Filters of one key match any of their values; different keys must all match.
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &a.filters {
        let (k, v) = super::split_filter(f, "network ls")?;
        by_key.entry(k.to_string()).or_default().push(v.to_string());
    }
    for (k, vals) in &by_key {
        if k == "dangling" && vals.len() > 1 {
            return Err(
                Failure::daemon(1, "got more than one value for filter key \"dangling\"").into(),
            );
        }
        let mut keep = Vec::new();
        for n in nets {
            let mut any = false;
            for v in vals {
                any |= matches(&c, &n, k, v)?;
            }
            if any {
                keep.push(n);
            }
        }
        nets = keep;
    }
    let values: Vec<Value> = nets
        .iter()
        .map(|n| {
            let created = super::history::parse_time(&n.record.created)
                .map(|d| d.format("%Y-%m-%d %H:%M:%S%.f +0000 UTC").to_string())
                .unwrap_or_default();
            json!({
                "CreatedAt": created,
                "Driver": n.config.driver,
                "ID": if a.no_trunc { n.id().to_string() } else { n.id()[..12].to_string() },
                "IPv4": "false",
                "IPv6": "false",
                "Internal": n.config.internal.to_string(),
                "Labels": labels(&n.config.labels),
                "Name": n.name(),
                "Scope": "local",
            })
        })
        .collect();
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else if let Some(f) = &a.format {
        f.clone()
    } else {
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".into()
    };
    let header = json!({
        "CreatedAt": "CREATED AT", "Driver": "DRIVER", "ID": "NETWORK ID", "IPv4": "IPV4",
        "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "Name": "NAME",
        "Scope": "SCOPE",
    });
    let lf = format::ListFormat::parse(&fmt).map_err(|e| Failure::new(1, e.to_string()))?;
    print!(
        "{}",
        lf.render(&header, &values)
            .map_err(|e| Failure::new(1, e.to_string()))?
    );
    Ok(())
}

pub fn inspect(root: &Path, a: NetworkInspectArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    let template = match &a.format {
        Some(f) => Some(format::Template::parse(f).map_err(|e| Failure::bare(1, e.to_string()))?),
        None => None,
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.networks {
        match c.find_network(name) {
            Ok(n) => found.push(c.inspect_network(&n).map_err(fail)?),
            Err(e) => errors.push(super::lookup_error(name, e)),
        }
    }
    match &template {
        Some(t) => {
            for v in &found {
                let out = t.render(v).map_err(|e| Failure::bare(1, e.to_string()))?;
                println!("{out}");
            }
        }
        None => println!("{}", oci::GoJson::INSPECT.to_string(&found)?),
    }
    if !errors.is_empty() {
        return Err(Failure::bare(1, errors.join("\n")).into());
    }
    Ok(())
}

pub fn rm(root: &Path, a: NetworkRmArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    let mut failed = false;
    for n in &a.networks {
        match c.remove_network(n) {
            Ok(_) => println!("{n}"),
            Err(e) => {
                eprintln!("{}", super::lookup_error(n, e));
                failed = true;
            }
        }
    }
    if failed {
        return Err(Failure::bare(1, "").into());
    }
    Ok(())
}

pub fn connect(root: &Path, a: NetworkConnectArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    c.connect_network(&a.network, &a.container, &a.aliases, a.ip.as_deref())
        .map_err(super::daemon_failure)
}

pub fn disconnect(root: &Path, a: NetworkDisconnectArgs) -> Result<()> {
    let mut c = super::open_containers(root)?;
    c.disconnect_network(&a.network, &a.container, a.force)
        .map_err(super::daemon_failure)
}

pub fn prune(root: &Path, a: NetworkPruneArgs) -> Result<()> {
    let filters = super::PruneFilters::parse(&a.filters, "network prune")?;
    if !a.force {
        print!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        io::stdout().flush()?;
        let mut line = String::new();
        io::stdin().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let mut c = super::open_containers(root)?;
    let removed = c
        .prune_networks(|n| !filters.matches(&n.record.created, &n.config.labels))
        .map_err(fail)?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in &removed {
            println!("{n}");
        }
        println!();
    }
    Ok(())
}
