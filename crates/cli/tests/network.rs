//! The private network every container and build step gets by default (pasta): what a
//! container sees of the host, published ports (`-p`, `port`, `ps`, `inspect`), `/etc/hosts`
//! and `/etc/resolv.conf`, a build step reaching a package registry, and pasta ending with
//! its container. Real containers, as root. Traffic goes only to 127.0.0.1 and to Debian's
//! registry (deb.debian.org).

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{busybox_tar, require_root, require_tool, Strata};

/// Whether these tests can run here: root, and pasta installed; otherwise see
/// [`common::cannot_run`].
fn can_run() -> bool {
    require_root() && require_tool("pasta")
}

fn store() -> Strata {
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    s
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The network namespace inode of a process (`net:[N]`).
fn netns_of(pid: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// PIDs of pasta processes holding network namespace `ns` (`net:[N]`), leaving out the
/// short-lived helpers a pasta clones to look into the namespace (their parent is a pasta).
fn pastas_of(ns: &str) -> Vec<String> {
    let all = pasta_processes_of(ns);
    all.iter()
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let ppid = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .map(|p| p.trim().to_string())
                .unwrap_or_default();
            !all.contains(&ppid)
        })
        .cloned()
        .collect()
}

/// Every pasta process (helpers included) holding network namespace `ns`.
fn pasta_processes_of(ns: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !comm.starts_with("passt") && !comm.starts_with("pasta") {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|f| std::fs::read_link(f.path()).is_ok_and(|l| l.display().to_string() == ns))
        {
            out.push(pid);
        }
    }
    out
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Interface names in /proc/net/dev text.
fn interfaces(dev: &str) -> BTreeSet<String> {
    dev.lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn default_container_sees_only_its_own_interfaces_and_not_the_host_loopback() {
    if !can_run() {
        return;
    }
    let s = store();
    let host = interfaces(&std::fs::read_to_string("/proc/net/dev").unwrap());
    let inside = interfaces(&s.ok(&["run", "--rm", "busybox", "cat", "/proc/net/dev"]));
    assert_eq!(
        inside,
        ["eth0", "lo"].iter().map(|s| s.to_string()).collect(),
        "a default container has lo and its pasta interface"
    );
    // The host's other interfaces (here ifb0, ifb1...) are not there.
    for name in host.iter().filter(|n| *n != "lo" && *n != "eth0") {
        assert!(!inside.contains(name), "host interface {name} visible");
    }
    // Its eth0 is not the host's: Docker's 02:42 MAC, set by strata.
    let mac = s.ok(&[
        "run",
        "--rm",
        "busybox",
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert!(mac.starts_with("02:42:"), "{mac}");
    if let Ok(host_mac) = std::fs::read_to_string("/sys/class/net/eth0/address") {
        assert_ne!(mac.trim(), host_mac.trim());
    }

    // A server on the host's loopback: out of reach by default, reachable with the host's
    // network.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    server.set_nonblocking(true).unwrap();
    let t = std::thread::spawn(move || {
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok((mut c, _)) = server.accept() {
                let _ = c.write_all(b"host-secret\n");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let probe = format!("nc -w 3 127.0.0.1 {port} </dev/null; echo rc=$?");
    let out = s.ok(&["run", "--rm", "busybox", "sh", "-c", &probe]);
    assert!(!out.contains("host-secret"), "host loopback reached: {out}");
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "busybox",
        "sh",
        "-c",
        &probe,
    ]);
    assert!(!out.contains("host-secret"), "host loopback reached: {out}");
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "sh",
        "-c",
        &probe,
    ]);
    assert!(out.contains("host-secret"), "--network host: {out}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    t.join().unwrap();

    // The gateway is not mapped to the host's loopback and nothing of the host's loopback
    // is forwarded in: checked on pasta's command line, as connecting to the gateway would
    // send traffic to a real address of the host's network.
    let id = s.ok(&["run", "-d", "busybox", "sleep", "30"]);
    let id = id.trim();
    let pid = s.ok(&["inspect", "-f", "{{.State.Pid}}", id]);
    let pastas = pastas_of(&netns_of(pid.trim()));
    assert_eq!(pastas.len(), 1, "one pasta per container");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pastas[0])).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let joined = args.join(" ");
    for want in [
        "--no-map-gw",
        "--tcp-ns none",
        "--udp-ns none",
        "--tcp-ports none",
        "--udp-ports none",
    ] {
        assert!(joined.contains(want), "pasta {joined} lacks {want}");
    }
    s.ok(&["rm", "-f", id]);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn published_ports_reach_the_container_and_show_in_port_ps_and_inspect() {
    if !can_run() {
        return;
    }
    let s = store();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    // Created, then started: the record keeps the ports.
    let id = s.ok(&[
        "create",
        "--name",
        "web",
        "-p",
        &publish,
        "-p",
        "9000/udp",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello-from-container >/www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    let id = id.trim().to_string();
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "web"])).unwrap();
    assert_eq!(v[0]["HostConfig"]["NetworkMode"], "default");
    assert_eq!(
        v[0]["HostConfig"]["PortBindings"],
        serde_json::json!({
            "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}],
            "9000/udp": [{"HostIp": "", "HostPort": ""}],
        })
    );
    assert_eq!(v[0]["NetworkSettings"]["Ports"], serde_json::json!({}));
    assert_eq!(s.ok(&["port", "web"]), "");

    for round in 0..2 {
        s.ok(&["start", "web"]);
        let get = || -> Option<String> {
            let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
            c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            c.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
            let mut body = String::new();
            c.read_to_string(&mut body).ok()?;
            Some(body)
        };
        let mut body = None;
        wait_until("the published port", || {
            body = get().filter(|b| b.contains("hello-from-container"));
            body.is_some()
        });

        let lines = s.ok(&["port", "web"]);
        assert!(
            lines.contains(&format!("8080/tcp -> 127.0.0.1:{port}\n")),
            "round {round}: {lines}"
        );
        assert!(lines.contains("9000/udp -> 0.0.0.0:"), "{lines}");
        assert_eq!(
            s.ok(&["port", "web", "8080"]),
            format!("127.0.0.1:{port}\n")
        );
        assert_eq!(
            s.ok(&["port", "web", "8080/tcp"]),
            format!("127.0.0.1:{port}\n")
        );
        let (code, err) = s.fails(&["port", "web", "81"]);
        assert_eq!(code, 1);
        assert!(
            err.contains("No public port '81/tcp' published for web"),
            "{err}"
        );
        let ps = s.ok(&["ps", "--format", "{{.Ports}}|{{.Networks}}"]);
        assert!(
            ps.contains(&format!("127.0.0.1:{port}->8080/tcp")) && ps.contains("|bridge"),
            "{ps}"
        );
        let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "web"])).unwrap();
        let ns = &v[0]["NetworkSettings"];
        assert_eq!(
            ns["Ports"]["8080/tcp"],
            serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": port.to_string()}])
        );
        assert!(!ns["IPAddress"].as_str().unwrap().is_empty(), "{ns}");
        assert_eq!(ns["Networks"]["bridge"]["IPAddress"], ns["IPAddress"]);

        // pasta holds none of strata's descriptors (the store's lock files, the database).
        let pid = v[0]["State"]["Pid"].as_i64().unwrap().to_string();
        let ns_inode = netns_of(&pid);
        let pastas = pastas_of(&ns_inode);
        assert_eq!(pastas.len(), 1);
        let root = s.root.path().canonicalize().unwrap();
        for f in std::fs::read_dir(format!("/proc/{}/fd", pastas[0]))
            .unwrap()
            .flatten()
        {
            let target = std::fs::read_link(f.path()).unwrap_or_default();
            assert!(
                !target.starts_with(&root),
                "pasta holds {}",
                target.display()
            );
        }
        if round == 0 {
            s.ok(&["stop", "-t", "1", "web"]);
        } else {
            s.ok(&["kill", "web"]);
            s.ok(&["wait", "web"]);
        }
        wait_until("pasta to end with its container", || {
            pastas_of(&ns_inode).is_empty()
        });
        wait_until("the host port to be free", || {
            TcpListener::bind(("127.0.0.1", port)).is_ok()
        });
        assert_eq!(s.ok(&["port", "web"]), "");
    }
    s.ok(&["rm", &id]);

    // -P publishes the exposed ports on random host ports.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox\nEXPOSE 8080\nCMD [\"sleep\", \"30\"]\n",
    )
    .unwrap();
    s.ok(&["build", "-q", "-t", "exposed", dir.path().to_str().unwrap()]);
    let id = s.ok(&["run", "-d", "-P", "exposed"]);
    let line = s.ok(&["port", id.trim(), "8080"]);
    assert!(line.starts_with("0.0.0.0:"), "{line}");
    s.ok(&["rm", "-f", id.trim()]);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn run_rm_leaves_no_pasta_behind() {
    if !can_run() {
        return;
    }
    let s = store();
    let ns = s.ok(&["run", "--rm", "busybox", "readlink", "/proc/self/ns/net"]);
    let ns = ns.trim();
    assert!(ns.starts_with("net:["), "{ns}");
    assert_ne!(
        ns,
        netns_of("self"),
        "the container has a namespace of its own"
    );
    // pasta is killed as the container ends; the kernel takes a moment to tear it down.
    wait_until("pasta to end with run --rm", || pastas_of(ns).is_empty());
    // `--network none` needs no pasta at all.
    let out = s
        .cmd()
        .env("STRATA_PASTA", "/nonexistent/pasta")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "cat",
            "/proc/net/dev",
        ])
        .output()
        .unwrap();
    common::assert_success(&out);
    let names = interfaces(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(names, ["lo".to_string()].into_iter().collect());
    // Without pasta, the default network says what is missing.
    let out = s
        .cmd()
        .env("STRATA_PASTA", "/nonexistent/pasta")
        .args(["run", "--rm", "busybox", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs pasta"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `run` starts pasta before the container exists; a run that fails before its
    // container starts (the image cannot be pulled) ends that pasta too.
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let wrapper = dir.path().join("pasta");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho $$ >> {}\nexec /usr/bin/pasta \"$@\"\n",
            pids.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = s
        .cmd()
        .env("STRATA_PASTA", &wrapper)
        .args(["run", "--rm", "127.0.0.1:9/missing:1", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let started = std::fs::read_to_string(&pids).unwrap_or_default();
    assert!(!started.trim().is_empty(), "pasta was not started early");
    for pid in started.split_whitespace() {
        wait_until("the early pasta of a failed run to end", || {
            !Path::new(&format!("/proc/{pid}")).exists()
        });
    }
}

#[test]
fn bad_publish_specs_fail_as_docker() {
    // Checked before anything runs: no root needed.
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    for (spec, msg) in [
        ("abc", "Invalid containerPort: abc"),
        ("x:80", "Invalid hostPort: x"),
        ("80/xyz", "Invalid proto: xyz"),
        ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
        (
            "1-3:4-5",
            "Invalid ranges specified for container and host Ports: 4-5 and 1-3",
        ),
    ] {
        let (code, err) = s.fails(&["run", "--pull", "never", "-p", spec, "busybox", "true"]);
        assert_eq!(code, 125, "{spec}");
        assert!(err.contains(msg), "{spec}: {err}");
    }
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn etc_hosts_and_resolv_conf_as_docker_writes_them() {
    if !can_run() {
        return;
    }
    let s = store();
    let out = s.ok(&[
        "run",
        "--rm",
        "-h",
        "box",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; nslookup deb.debian.org",
    ]);
    let parts: Vec<&str> = out.split("---\n").collect();
    let (hosts, resolv, lookup) = (parts[0], parts[1], parts[2]);
    let standard = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";
    assert!(hosts.starts_with(standard), "{hosts}");
    let last = hosts[standard.len()..].trim_end();
    let (ip, name) = last.split_once('\t').expect(last);
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{last}");
    assert_eq!(name, "box");
    assert_eq!(hosts.lines().count(), 7);
    // pasta's DNS forwarder is the only name server; the host's other lines stay.
    let ns: Vec<&str> = resolv
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(ns, vec!["nameserver 169.254.1.1"], "{resolv}");
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    for l in host
        .lines()
        .filter(|l| l.starts_with("search") || l.starts_with("options"))
    {
        assert!(resolv.contains(l), "{l} missing from {resolv}");
    }
    assert!(lookup.contains("Address"), "DNS: {lookup}");
    // With the host's network, the host's files.
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf",
    ]);
    assert_eq!(out, host);
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert_eq!(out, standard);
    // `--add-host`: after the standard entries and before the container's own, as Docker
    // 20.10 writes them (its output for `--network none --add-host a:1.2.3.4 --add-host
    // b:::1`); kept when a network rewrites the file; in inspect; bad ones refused.
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--add-host",
        "a:1.2.3.4",
        "--add-host",
        "b:::1",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert_eq!(out, format!("{standard}1.2.3.4\ta\n::1\tb\n"));
    let out = s.ok(&[
        "run",
        "--rm",
        "--add-host",
        "a:1.2.3.4",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[lines.len() - 2], "1.2.3.4\ta", "{out}");
    s.ok(&["network", "create", "hostsnet"]);
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "hostsnet",
        "--add-host",
        "zz:9.9.9.9",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(out.contains("9.9.9.9\tzz\n"), "{out}");
    s.ok(&["network", "rm", "hostsnet"]);
    let id = s.ok(&["create", "--add-host", "a:1.2.3.4", "busybox", "true"]);
    assert_eq!(
        s.ok(&[
            "inspect",
            "-f",
            "{{json .HostConfig.ExtraHosts}}",
            id.trim()
        ])
        .trim(),
        r#"["a:1.2.3.4"]"#
    );
    // `--dns*`: Docker 20.10's resolv.conf for the same flags (`search`, `nameserver`,
    // `options` lines only); what is not given comes from the default file.
    let out = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--dns",
        "1.2.3.4",
        "--dns-search",
        "ex.com",
        "--dns-option",
        "ndots:2",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(out, "search ex.com\nnameserver 1.2.3.4\noptions ndots:2\n");
    let out = s.ok(&[
        "run",
        "--rm",
        "--dns-search",
        "ex.com",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(
        out.starts_with("search ex.com\nnameserver 169.254.1.1\n"),
        "{out}"
    );
    // `--shm-size` (Docker's 64 MiB without it), in inspect as bytes.
    let df = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "df", "-k", "/dev/shm"]);
        s.ok(&args)
    };
    assert!(df(&[]).contains(" 65536 "), "{}", df(&[]));
    assert!(df(&["--shm-size", "128m"]).contains(" 131072 "));
    let id = s.ok(&["create", "--shm-size", "1g", "busybox", "true"]);
    assert_eq!(
        s.ok(&["inspect", "-f", "{{.HostConfig.ShmSize}}", id.trim()])
            .trim(),
        "1073741824"
    );
    let (code, err) = s.fails(&["run", "--rm", "--dns", "bad", "busybox", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("bad is not an ip address"), "{err}");
    let (code, err) = s.fails(&["run", "--rm", "--add-host", "a:bad", "busybox", "true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains(r#"invalid argument "a:bad" for "--add-host" flag: invalid IP address in add-host: "bad""#),
        "{err}"
    );
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn a_missing_network_fails_the_start_not_the_create() {
    if !can_run() {
        return;
    }
    let s = store();
    // As Docker, the network is looked up when the container starts, not when it is made:
    // `create` succeeds, `start` fails (exit 1), and the container stays `created`, with
    // the error and Docker's 128.
    let id = s.ok(&[
        "create",
        "--pull",
        "never",
        "--network",
        "nat",
        "busybox",
        "true",
    ]);
    let id = id.trim();
    let (code, err) = s.fails(&["start", id]);
    assert_eq!(code, 1);
    assert!(err.contains("network nat not found"), "{err}");
    assert_eq!(
        s.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}",
            id
        ])
        .trim(),
        "created 128 network nat not found"
    );
    // Not connected yet: no network ID and no aliases, as Docker shows it.
    assert_eq!(
        s.ok(&[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.nat.NetworkID}} {{json .NetworkSettings.Networks.nat.Aliases}}",
            id
        ])
        .trim(),
        "\"\" null"
    );
    // Made after the container, the network is the one it starts on.
    s.ok(&["network", "create", "nat"]);
    s.ok(&["start", "-a", id]);
    s.ok(&["rm", id]);
    s.ok(&["network", "rm", "nat"]);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn build_run_steps_reach_the_package_registry() {
    if !can_run() {
        return;
    }
    let s = store();
    let dir = tempfile::tempdir().unwrap();
    // Plain HTTP to Debian's registry; busybox nc closes on end of input, so the request
    // stays open a few seconds.
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox\n\
         RUN nslookup deb.debian.org && \
         (printf 'GET /debian/dists/bookworm/Release HTTP/1.1\\r\\nHost: deb.debian.org\\r\\nUser-Agent: strata-test\\r\\nConnection: close\\r\\n\\r\\n'; sleep 5) \
         | nc -w 20 deb.debian.org 80 > /release && grep -q '^Codename: bookworm' /release \
         && cat /proc/net/dev > /interfaces\n",
    )
    .unwrap();
    s.ok(&[
        "build",
        "--no-cache",
        "-t",
        "fetched",
        dir.path().to_str().unwrap(),
    ]);
    let names = interfaces(&s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "fetched",
        "cat",
        "/interfaces",
    ]));
    assert_eq!(
        names,
        ["eth0", "lo"].iter().map(|s| s.to_string()).collect()
    );
    // --network none: no way out.
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox\nRUN cat /proc/net/dev > /interfaces\n",
    )
    .unwrap();
    s.ok(&[
        "build",
        "--no-cache",
        "--network",
        "none",
        "-t",
        "offline",
        dir.path().to_str().unwrap(),
    ]);
    let names = interfaces(&s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "offline",
        "cat",
        "/interfaces",
    ]));
    assert_eq!(names, ["lo".to_string()].into_iter().collect());
}
