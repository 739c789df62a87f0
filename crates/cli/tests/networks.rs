//! User-defined networks (`network create/ls/inspect/rm/connect/disconnect/prune`,
//! `run --network NAME --network-alias`): containers on one network reach each other by
//! name, alias and short ID; two networks cannot reach each other; `network rm` of a network
//! in use fails as Docker's; the outputs have Docker's shapes (compared with Docker 20.10,
//! whose reference daemon here may only make `--config-only` networks: a bridge network of
//! Docker's would be a bridge in the host's namespace). Real containers, as root; traffic
//! stays inside the networks' own namespaces.

mod common;

use common::{busybox_tar, require_root, require_tool, Strata};
use serde_json::Value;

fn can_run() -> bool {
    require_root() && require_tool("pasta")
}

/// A store with busybox that removes its containers and networks when dropped, even when
/// the test failed half-way (a network's namespace is a mount under the store).
struct Store(Strata);

impl Store {
    fn new() -> Store {
        let s = Strata::new();
        s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
        Store(s)
    }

    /// Mount points under the store.
    fn mounts(&self) -> Vec<String> {
        let root = self.0.root.path().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&root))
            .collect()
    }
}

impl std::ops::Deref for Store {
    type Target = Strata;
    fn deref(&self) -> &Strata {
        &self.0
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let ids = self.0.cmd().args(["ps", "-aq"]).output().unwrap();
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.0.cmd().args(["rm", "-f", id]).output();
        }
        let _ = self.0.cmd().args(["network", "prune", "-f"]).output();
        for m in self.mounts() {
            let _ = std::process::Command::new("umount")
                .args(["-l", &m])
                .status();
        }
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Runs `wget` against `url` in a new container on `network`, retrying while the server
/// starts; returns what it printed.
fn fetch(s: &Store, network: &str, url: &str) -> String {
    let script =
        format!("for i in $(seq 1 50); do wget -qO- {url} && exit 0; sleep 0.1; done; exit 1");
    s.ok(&[
        "run",
        "--rm",
        "--network",
        network,
        "busybox",
        "sh",
        "-c",
        &script,
    ])
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn containers_on_a_network_talk_by_name_alias_and_short_id_and_other_networks_cannot() {
    if !can_run() {
        return;
    }
    let s = Store::new();
    let id = s.ok(&["network", "create", "front"]).trim().to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let web = s
        .ok(&[
            "run",
            "-d",
            "--network",
            "front",
            "--name",
            "web",
            "--network-alias",
            "www",
            "busybox",
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
            "/etc",
        ])
        .trim()
        .to_string();
    let short = &web[..12];
    // The server's /etc/hostname is its short ID (Docker's default hostname).
    for host in ["web", "www", short] {
        let got = fetch(&s, "front", &format!("http://{host}:8080/hostname"));
        assert_eq!(got.trim(), short, "by {host}");
    }

    // inspect: Docker's NetworkSettings of a user-defined network.
    let info = json(&s.ok(&["inspect", "web"]));
    let ns = &info[0]["NetworkSettings"];
    let ep = &ns["Networks"]["front"];
    let subnet = json(&s.ok(&["network", "inspect", "front"]))[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    let prefix = subnet
        .rsplit_once('/')
        .unwrap()
        .0
        .rsplit_once('.')
        .unwrap()
        .0
        .to_string();
    let ip = ep["IPAddress"].as_str().unwrap();
    assert!(
        ip.starts_with(prefix.rsplit_once('.').unwrap().0),
        "{ip} in {subnet}"
    );
    assert_eq!(ep["NetworkID"], id.as_str());
    assert_eq!(ep["EndpointID"].as_str().unwrap().len(), 64);
    assert_eq!(ep["Aliases"], serde_json::json!(["www", short]));
    assert_eq!(ep["IPPrefixLen"], 16);
    assert!(ep["Gateway"].as_str().unwrap().ends_with(".0.1"), "{ep}");
    let o: Vec<u8> = ip.split('.').map(|p| p.parse().unwrap()).collect();
    assert_eq!(
        ep["MacAddress"],
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]).as_str()
    );
    assert_eq!(
        ns["IPAddress"], "",
        "top-level addresses are the default bridge's"
    );
    assert_eq!(info[0]["HostConfig"]["NetworkMode"], "front");
    // network inspect lists the running member.
    let net = json(&s.ok(&["network", "inspect", "front"]));
    let member = &net[0]["Containers"][web.as_str()];
    assert_eq!(member["Name"], "web");
    assert_eq!(member["IPv4Address"], format!("{ip}/16").as_str());
    assert_eq!(member["EndpointID"], ep["EndpointID"]);
    assert!(s.ok(&["ps"]).contains("web"));
    let nets = s.ok(&["ps", "--format", "{{.Networks}}"]);
    assert_eq!(nets.trim(), "front");

    // A second network gets the next subnet and reaches nothing of the first. (Internal, so
    // that the probes below stay in the machine: a network with pasta would send them to
    // the host's resolver and router, which know nothing of the first network either.)
    s.ok(&["network", "create", "--internal", "back"]);
    let back = json(&s.ok(&["network", "inspect", "back"]));
    let back_subnet = back[0]["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
    assert_ne!(back_subnet, subnet);
    let probe = format!(
        "wget -qO- http://web:8080/hostname; echo name=$?; nc -w 2 {ip} 8080 </dev/null; echo ip=$?"
    );
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "sh",
        "-c",
        &probe,
    ]);
    assert!(out.contains("name=1"), "{out}");
    assert!(out.contains("ip=1"), "{out}");
    assert!(!out.contains(short), "{out}");
    // Nor does its bridge: the first network's gateway is not there.
    let gw = ep["Gateway"].as_str().unwrap();
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "sh",
        "-c",
        &format!("ping -c 1 -W 1 {gw} >/dev/null 2>&1; echo gw=$?; ip route"),
    ]);
    assert!(out.contains("gw=1"), "{out}");
    assert!(
        !out.contains(&subnet),
        "no route to the first network: {out}"
    );

    // Removing a network in use fails as Docker's does.
    let (code, err) = s.fails(&["network", "rm", "front"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "error while removing network: network front id {id} has active endpoints"
        )),
        "{err}"
    );
    // The endpoint goes with the container; then the network can go.
    s.ok(&["rm", "-f", "web"]);
    assert_eq!(
        json(&s.ok(&["network", "inspect", "front"]))[0]["Containers"],
        serde_json::json!({})
    );
    assert_eq!(s.ok(&["network", "rm", "front", "back"]), "front\nback\n");
    assert_eq!(s.mounts(), Vec::<String>::new(), "namespaces unmounted");
    assert!(s
        .ok(&["network", "ls", "-q", "--filter", "type=custom"])
        .is_empty());
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn internal_networks_connect_and_disconnect() {
    if !can_run() {
        return;
    }
    let s = Store::new();
    s.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.123.0.0/24",
        "--gateway",
        "10.123.0.254",
        "--label",
        "tier=db",
        "inner",
    ]);
    let net = json(&s.ok(&["network", "inspect", "inner"]));
    assert_eq!(net[0]["Internal"], true);
    assert_eq!(net[0]["Labels"], serde_json::json!({"tier": "db"}));
    assert_eq!(
        net[0]["IPAM"]["Config"],
        serde_json::json!([{"Subnet": "10.123.0.0/24", "Gateway": "10.123.0.254"}])
    );
    s.ok(&[
        "run",
        "-d",
        "--network",
        "inner",
        "--ip",
        "10.123.0.7",
        "--name",
        "db",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    // Only the network's interface: no pasta, no default route.
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "inner",
        "busybox",
        "sh",
        "-c",
        "cat /proc/net/dev; echo; ip route; ip addr show eth0",
    ]);
    assert!(!out.contains("pasta0") && !out.contains("default"), "{out}");
    assert!(out.contains("10.123.0.1/24"), "first free address: {out}");
    assert_eq!(
        s.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.inner.IPAddress}}",
            "db"
        ])
        .trim(),
        "10.123.0.7"
    );

    // A default container joins it while running (eth1, as Docker), reaches the member by
    // name, and leaves it.
    s.ok(&["run", "-d", "--name", "app", "busybox", "sleep", "300"]);
    s.ok(&["network", "connect", "--alias", "api", "inner", "app"]);
    let out = s.ok(&[
        "exec", "app", "sh", "-c",
        "ip addr show eth1; for i in $(seq 1 50); do wget -qO- http://db/hostname && break; sleep 0.1; done",
    ]);
    assert!(out.contains("10.123.0."), "{out}");
    let db = s.ok(&["inspect", "-f", "{{.Id}}", "db"]);
    assert!(out.contains(&db.trim()[..12]), "{out}");
    // The member sees the newcomer by its alias.
    let hosts = s.ok(&["exec", "db", "cat", "/etc/hosts"]);
    assert!(hosts.contains("app api"), "{hosts}");
    let (code, err) = s.fails(&["network", "connect", "inner", "app"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("endpoint with name app already exists in network inner"),
        "{err}"
    );
    s.ok(&["network", "disconnect", "inner", "app"]);
    let out = s.ok(&["exec", "app", "cat", "/proc/net/dev"]);
    assert!(!out.contains("eth1"), "{out}");
    assert!(!s.ok(&["exec", "db", "cat", "/etc/hosts"]).contains("app"));
    let (code, err) = s.fails(&["network", "disconnect", "inner", "app"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not connected to network inner"), "{err}");
    s.ok(&["rm", "-f", "app", "db"]);
    // Unused now: prune removes it.
    assert_eq!(
        s.ok(&["network", "prune", "-f"]),
        "Deleted Networks:\ninner\n\n"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn outputs_and_errors_have_dockers_shapes() {
    if !can_run() || !common::docker() {
        return;
    }
    let s = Store::new();
    let name = common::unique("strata-net-");
    // Docker without a bridge: a config-only network has the same records and outputs.
    let d_id = common::run_ok(
        "docker",
        &[
            "network",
            "create",
            "--config-only",
            "--subnet",
            "10.213.0.0/24",
            "--label",
            "a=b",
            &name,
        ],
    );
    let cleanup = scopeguard(|| {
        let _ = common::run("docker", &["network", "rm", &name]);
    });
    let s_id = s.ok(&[
        "network",
        "create",
        "--subnet",
        "10.213.0.0/24",
        "--label",
        "a=b",
        &name,
    ]);
    assert_eq!(d_id.trim().len(), s_id.trim().len());

    // ls: the header, the builtin networks, the columns of --format json.
    let d_ls = common::run_ok("docker", &["network", "ls"]);
    let s_ls = s.ok(&["network", "ls"]);
    assert_eq!(s_ls.lines().next(), d_ls.lines().next());
    for builtin in ["host", "none"] {
        let line = |t: &str| {
            t.lines()
                .find(|l| l.split_whitespace().nth(1) == Some(builtin))
                .map(|l| {
                    l.split_whitespace()
                        .skip(1)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
        };
        assert_eq!(line(&s_ls), line(&d_ls), "{builtin}");
    }
    assert!(s_ls.lines().any(|l| l.contains(" bridge ")), "{s_ls}");
    let keys = |t: &str| -> Vec<String> {
        let v = json(t.lines().next().unwrap());
        v.as_object().unwrap().keys().cloned().collect()
    };
    let fmt = [
        "network",
        "ls",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{json .}}",
    ];
    assert_eq!(keys(&s.ok(&fmt)), keys(&common::run_ok("docker", &fmt)));
    let by_label = [
        "network",
        "ls",
        "-q",
        "--filter",
        "label=a=b",
        "--filter",
        "type=custom",
    ];
    assert_eq!(s.ok(&by_label).trim(), &s_id.trim()[..12]);

    // inspect: the same fields, in the same order, and the same values where they can agree.
    let d = json(&common::run_ok("docker", &["network", "inspect", &name]));
    let v = json(&s.ok(&["network", "inspect", &name]));
    let order = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(order(&v[0]), order(&d[0]));
    assert_eq!(order(&v[0]["IPAM"]), order(&d[0]["IPAM"]));
    for k in [
        "Name",
        "Scope",
        "EnableIPv6",
        "Internal",
        "Attachable",
        "Labels",
        "Options",
        "Containers",
    ] {
        assert_eq!(v[0][k], d[0][k], "{k}");
    }
    assert_eq!(
        v[0]["IPAM"]["Config"][0]["Subnet"],
        d[0]["IPAM"]["Config"][0]["Subnet"]
    );
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], "10.213.0.1");
    assert_eq!(v[0]["Driver"], "bridge");
    let hd = json(&common::run_ok("docker", &["network", "inspect", "host"]));
    let hs = json(&s.ok(&["network", "inspect", "host"]));
    for k in ["Name", "Driver", "IPAM", "Options", "Labels", "Containers"] {
        assert_eq!(hs[0][k], hd[0][k], "host {k}");
    }

    // Errors: the same messages and exit code.
    let strip = |e: &str| -> String {
        e.lines()
            .map(|l| {
                l.trim_start_matches("Error response from daemon: ")
                    .trim_start_matches("Error: ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let cases: Vec<Vec<&str>> = vec![
        vec!["network", "create", &name],
        vec!["network", "rm", "strata-no-such-net"],
        vec!["network", "inspect", "strata-no-such-net"],
        vec!["network", "rm", "host"],
        vec![
            "network",
            "create",
            "--gateway",
            "10.9.9.1",
            "strata-gw-only",
        ],
        vec![
            "network",
            "connect",
            "strata-no-such-net",
            "strata-no-such-container",
        ],
    ];
    for args in cases {
        // Docker 20.10's client (the CLI first on PATH is a newer one, whose words differ).
        let d = common::run("/usr/bin/docker", &args);
        let out = s.cmd().args(&args).output().unwrap();
        assert_eq!(out.status.code(), d.status.code(), "{args:?}");
        assert_eq!(
            strip(&String::from_utf8_lossy(&out.stderr)),
            strip(&String::from_utf8_lossy(&d.stderr)),
            "{args:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&d.stdout),
            "{args:?}"
        );
    }
    // run --network with an unknown network.
    let (code, err) = s.fails(&[
        "run",
        "--rm",
        "--network",
        "strata-no-such-net",
        "busybox",
        "true",
    ]);
    assert_eq!(code, 125);
    assert!(
        err.contains("network strata-no-such-net not found"),
        "{err}"
    );
    drop(cleanup);
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct G<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for G<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    G(Some(f))
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn cleanup_releases_what_a_killed_strata_left() {
    if !can_run() {
        return;
    }
    let s = Store::new();
    s.ok(&["network", "create", "--internal", "left"]);
    s.ok(&[
        "run",
        "-d",
        "--network",
        "left",
        "--name",
        "gone",
        "busybox",
        "sleep",
        "300",
    ]);
    let pid = s.ok(&["inspect", "-f", "{{.State.Pid}}", "gone"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    let monitor = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .to_string();
    // The monitor dies without releasing anything (its container dies with it).
    common::run_ok("kill", &["-9", &monitor]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{}", pid.trim())).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "container outlived its monitor"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A network namespace directory no record names (a create killed half-way).
    let stray = s.root.path().join("networks").join("0".repeat(64));
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("netns"), "").unwrap();
    // The next command repairs both.
    let net = json(&s.ok(&["network", "inspect", "left"]));
    assert_eq!(net[0]["Containers"], serde_json::json!({}));
    assert!(!stray.exists());
    assert_eq!(
        s.ok(&["inspect", "-f", "{{.State.Status}}", "gone"]).trim(),
        "exited"
    );
    // It starts again with an endpoint, and the network goes once it is removed.
    s.ok(&["start", "gone"]);
    let net = json(&s.ok(&["network", "inspect", "left"]));
    assert_eq!(net[0]["Containers"].as_object().unwrap().len(), 1);
    s.ok(&["rm", "-f", "gone"]);
    s.ok(&["network", "rm", "left"]);
    assert_eq!(s.mounts(), Vec::<String>::new());
}

/// Docker's `network` events (`create`, `connect` at start and by `network connect`,
/// `disconnect`, `destroy`, with `name`/`type`/`container`), `network ls --filter dangling=`
/// and `network prune --filter until=|label=`, with Docker's errors for bad values (the
/// reference daemon cannot connect containers to networks of its own here, so the events
/// are checked against Docker's attributes as its daemon writes them).
#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn network_events_dangling_and_prune_filters() {
    if !can_run() || !common::docker() {
        return;
    }
    let s = Store::new();
    let since = common::run_ok("date", &["+%s"]).trim().to_string();
    let a = s.ok(&["network", "create", "--label", "keep=yes", "neta"]);
    let b = s.ok(&["network", "create", "netb"]);
    let (a, b) = (a.trim(), b.trim());
    let c = s.ok(&[
        "run",
        "-d",
        "--network",
        "neta",
        "--name",
        "evc",
        "busybox",
        "sleep",
        "1000",
    ]);
    let c = c.trim();
    s.ok(&["network", "connect", "netb", "evc"]);
    // In use: neta and netb; dangling: none. Predefined networks are never dangling.
    let ls = |f: &str| s.ok(&["network", "ls", "--filter", f, "--format", "{{.Name}}"]);
    assert_eq!(ls("dangling=true"), "");
    assert_eq!(ls("dangling=false"), "bridge\nhost\nneta\nnetb\nnone\n");
    s.ok(&["network", "disconnect", "netb", "evc"]);
    assert_eq!(ls("dangling=1"), "netb\n");
    s.ok(&["stop", "-t", "0", "evc"]);
    assert_eq!(ls("dangling=true"), "neta\nnetb\n");
    assert_eq!(ls("dangling=0"), "bridge\nhost\nnone\n");
    // Filters: label=, label!=, until= (both made before now).
    assert_eq!(
        s.ok(&[
            "network",
            "prune",
            "-f",
            "--filter",
            "label=keep=yes",
            "--filter",
            "until=1h"
        ]),
        ""
    );
    assert_eq!(
        s.ok(&["network", "prune", "-f", "--filter", "label!=keep"]),
        "Deleted Networks:\nnetb\n\n"
    );
    s.ok(&["rm", "evc"]);
    assert_eq!(
        s.ok(&["network", "prune", "-f", "--filter", "label=keep"]),
        "Deleted Networks:\nneta\n\n"
    );
    // Up to the next second: `--until` takes whole seconds.
    let until = common::run_ok("date", &["-d", "+1 sec", "+%s"])
        .trim()
        .to_string();
    let events = s.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=network",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
    ]);
    let events = events.replace(a, "A").replace(b, "B").replace(c, "C");
    assert_eq!(
        events,
        "create A {\"name\":\"neta\",\"type\":\"bridge\"}\n\
         create B {\"name\":\"netb\",\"type\":\"bridge\"}\n\
         connect A {\"container\":\"C\",\"name\":\"neta\",\"type\":\"bridge\"}\n\
         connect B {\"container\":\"C\",\"name\":\"netb\",\"type\":\"bridge\"}\n\
         disconnect B {\"container\":\"C\",\"name\":\"netb\",\"type\":\"bridge\"}\n\
         disconnect A {\"container\":\"C\",\"name\":\"neta\",\"type\":\"bridge\"}\n\
         destroy B {\"name\":\"netb\",\"type\":\"bridge\"}\n\
         destroy A {\"name\":\"neta\",\"type\":\"bridge\"}\n"
    );
    // `--filter network=NAME` keeps one network's.
    let one = s.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "network=netb",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(one, "create\nconnect\ndisconnect\ndestroy\n");
    // Bad values fail as Docker's.
    for args in [
        &["network", "ls", "--filter", "dangling=x"][..],
        &[
            "network",
            "ls",
            "--filter",
            "dangling=true",
            "--filter",
            "dangling=false",
        ],
        &["network", "prune", "-f", "--filter", "until=x"],
        &["network", "prune", "-f", "--filter", "foo=x"],
    ] {
        let ours = s.cmd().args(args).output().unwrap();
        let theirs = common::run("docker", args);
        let shown = |o: &std::process::Output| {
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        assert_eq!(shown(&ours), shown(&theirs), "{args:?}");
    }
}
