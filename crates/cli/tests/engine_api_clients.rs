//! `strata system service` driven by the Engine API's other clients, unchanged: Debian's
//! docker-compose 1.29 builds, brings up and down a two-service project (an API on busybox
//! httpd and a client that calls it by service name over the project's network, a project
//! volume; then two networks with an alias); docker-py (PyPI's `docker`) builds an image,
//! makes a network and a volume, runs a container on them, streams its logs, execs in it and
//! reads `/system/df`; testcontainers-python (Ryuk disabled) starts a container from a
//! locally built image and waits for its log line; the docker CLI's network, volume and
//! `system df` commands. Networks and volumes are also checked over plain HTTP against
//! Docker 20.10's answers (recorded here).
//!
//! The Python clients live in a virtual environment made once under `target/py-clients`
//! (`pip install` from PyPI, what `scripts/test` does too); a client that cannot be had fails
//! the test under `CI`.

mod common;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn must(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `filters` as the clients send it, URL-encoded.
fn filters(json: &str) -> String {
    form_urlencoded::byte_serialize(json.as_bytes()).collect()
}

/// A store with busybox and an image built FROM it: httpd serving a page, announcing itself
/// on standard output.
fn store_with_api_image() -> Strata {
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\n\
         RUN mkdir /www && echo 'hello from api' > /www/index.html\n\
         EXPOSE 8080\n\
         CMD [\"sh\", \"-c\", \"echo api ready; exec httpd -f -p 8080 -h /www\"]\n",
    )
    .unwrap();
    s.ok(&[
        "build",
        "-q",
        "-t",
        "clients/api",
        ctx.path().to_str().unwrap(),
    ]);
    s
}

/// Whether Debian's docker-compose can run (else [`cannot_run`]: fails under CI).
fn require_compose() -> bool {
    let ok = Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        cannot_run(
            "needs docker-compose: apt-get install docker-compose (scripts/test installs it)",
        );
    }
    ok
}

/// The Python clients' virtual environment (`target/py-clients`), made once under a lock:
/// Debian's python3 with PyPI's `docker` and `testcontainers`. None (after [`cannot_run`])
/// when it cannot be made.
fn python_clients() -> Option<PathBuf> {
    std::fs::create_dir_all(workspace_root().join("target")).unwrap();
    let venv = workspace_root().join("target/py-clients");
    let python = venv.join("bin/python");
    let lock: File = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(workspace_root().join("target/py-clients.lock"))
        .unwrap();
    lock.lock().unwrap();
    let ready = |p: &Path| {
        Command::new(p)
            .args(["-c", "import docker, testcontainers"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ready(&python) {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "docker>=7,<8", "testcontainers>=4,<5"])
                .status()
                .is_ok_and(|s| s.success());
        if !made || !ready(&python) {
            cannot_run(
                "needs python3-venv and PyPI's docker and testcontainers (scripts/test installs them in target/py-clients)",
            );
            return None;
        }
    }
    Some(python)
}

fn clients_script(name: &str) -> PathBuf {
    workspace_root().join("crates/cli/tests/clients").join(name)
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn networks_and_volumes_answer_as_docker_does() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let api = Service::start(s.root.path());

    // Networks: the predefined ones, then one as Compose creates it.
    let nets = api.expect("GET", "/v1.41/networks", None, 200);
    let names: Vec<&str> = nets
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap())
        .collect();
    for n in ["bridge", "host", "none"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let created = api.expect(
        "POST",
        "/v1.41/networks/create",
        Some(r#"{"Name":"proj_default","CheckDuplicate":true,"Driver":"bridge","Internal":false,"Attachable":true,"Labels":{"com.docker.compose.project":"proj","com.docker.compose.network":"default"}}"#),
        201,
    );
    let id = created["Id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(created["Warning"], "");
    // Docker 20.10's answers (recorded): a name taken, a predefined name, an unknown driver.
    let (st, body) = api.http(
        "POST",
        "/v1.41/networks/create",
        Some(r#"{"Name":"proj_default","CheckDuplicate":true}"#),
    );
    assert_eq!(
        (st, body.as_str()),
        (
            409,
            r#"{"message":"network with name proj_default already exists"}"#
        )
    );
    let (st, body) = api.http("POST", "/v1.41/networks/create", Some(r#"{"Name":"host"}"#));
    assert_eq!(
        (st, body.as_str()),
        (
            403,
            r#"{"message":"operation is not permitted on predefined host network "}"#
        )
    );
    let (st, body) = api.http(
        "POST",
        "/v1.41/networks/create",
        Some(r#"{"Name":"x1","Driver":"nosuchdrv"}"#),
    );
    assert_eq!(
        (st, body.as_str()),
        (404, r#"{"message":"plugin \"nosuchdrv\" not found"}"#)
    );
    let n = api.expect("GET", "/v1.41/networks/proj_default", None, 200);
    assert_eq!(n["Id"], id.as_str());
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Attachable"], true);
    assert_eq!(n["Labels"]["com.docker.compose.project"], "proj");
    let subnet = n["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
    assert!(subnet.contains('/'), "{n}");
    let by_prefix = api.expect("GET", &format!("/v1.41/networks/{}", &id[..12]), None, 200);
    assert_eq!(by_prefix["Name"], "proj_default");
    let q = filters(r#"{"label":{"com.docker.compose.project=proj":true}}"#);
    let listed = api.expect("GET", &format!("/v1.41/networks?filters={q}"), None, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["Name"], "proj_default");
    let q = filters(r#"{"type":{"custom":true}}"#);
    let listed = api.expect("GET", &format!("/v1.41/networks?filters={q}"), None, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let (st, body) = api.http(
        "GET",
        &format!("/v1.41/networks?filters={}", filters(r#"{"foo":["x"]}"#)),
        None,
    );
    assert_eq!(
        (st, body.as_str()),
        (400, r#"{"message":"Invalid filter 'foo'"}"#)
    );
    let (st, body) = api.http("GET", "/v1.41/networks/nosuch", None);
    assert_eq!(
        (st, body.as_str()),
        (404, r#"{"message":"network nosuch not found"}"#)
    );
    let (st, body) = api.http("DELETE", "/v1.41/networks/host", None);
    assert_eq!(
        (st, body.as_str()),
        (
            403,
            r#"{"message":"host is a pre-defined network and cannot be removed"}"#
        )
    );
    let (st, body) = api.http(
        "POST",
        "/v1.41/networks/proj_default/connect",
        Some(r#"{"Container":"nosuch"}"#),
    );
    assert_eq!(
        (st, body.as_str()),
        (404, r#"{"message":"No such container: nosuch"}"#)
    );

    // connect and disconnect with an alias: the container's inspect shows it.
    s.ok(&["create", "--name", "member", "busybox", "true"]);
    api.expect(
        "POST",
        "/v1.41/networks/proj_default/connect",
        Some(r#"{"Container":"member","EndpointConfig":{"Aliases":["web"]}}"#),
        200,
    );
    let c = api.expect("GET", "/v1.41/containers/member/json", None, 200);
    let aliases = &c["NetworkSettings"]["Networks"]["proj_default"]["Aliases"];
    assert!(
        aliases.as_array().unwrap().iter().any(|a| a == "web"),
        "{aliases}"
    );
    api.expect(
        "POST",
        "/v1.41/networks/proj_default/disconnect",
        Some(r#"{"Container":"member"}"#),
        200,
    );
    let c = api.expect("GET", "/v1.41/containers/member/json", None, 200);
    assert!(
        c["NetworkSettings"]["Networks"]
            .get("proj_default")
            .is_none(),
        "{c}"
    );

    // A network with a running container on it: 403, Docker's words; prune keeps it.
    let running = s.ok(&[
        "run",
        "-d",
        "--network",
        "proj_default",
        "busybox",
        "sleep",
        "60",
    ]);
    let (st, body) = api.http("DELETE", "/v1.41/networks/proj_default", None);
    assert_eq!(st, 403, "{body}");
    assert_eq!(
        body,
        format!(
            r#"{{"message":"error while removing network: network proj_default id {id} has active endpoints"}}"#
        )
    );
    let q = filters(r#"{"dangling":["false"],"type":["custom"]}"#);
    let listed = api.expect("GET", &format!("/v1.41/networks?filters={q}"), None, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let pruned = api.expect("POST", "/v1.41/networks/prune", None, 200);
    assert_eq!(pruned, serde_json::json!({"NetworksDeleted": null}));
    s.ok(&["rm", "-f", running.trim()]);

    // Prune removes the unused network (by name, as Docker); none left: null.
    let pruned = api.expect("POST", "/v1.41/networks/prune", None, 200);
    assert_eq!(
        pruned,
        serde_json::json!({"NetworksDeleted": ["proj_default"]})
    );
    let pruned = api.expect("POST", "/v1.41/networks/prune", None, 200);
    assert_eq!(pruned, serde_json::json!({"NetworksDeleted": null}));
    api.expect(
        "POST",
        "/v1.41/networks/create",
        Some(r#"{"Name":"gone"}"#),
        201,
    );
    api.expect("DELETE", "/v1.41/networks/gone", None, 204);
    assert!(!s.ok(&["network", "ls"]).contains("gone"));

    // Volumes: create (twice: the first one's labels stay), inspect, list with filters,
    // errors as Docker 20.10 words them, remove and prune.
    let v = api.expect(
        "POST",
        "/v1.41/volumes/create",
        Some(r#"{"Name":"data","Labels":{"a":"b"}}"#),
        201,
    );
    assert_eq!(v["Name"], "data");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Options"], serde_json::Value::Null);
    let again = api.expect(
        "POST",
        "/v1.41/volumes/create",
        Some(r#"{"Name":"data","Labels":{"a":"c"}}"#),
        201,
    );
    assert_eq!(again["Labels"]["a"], "b");
    assert_eq!(s.ok(&["volume", "ls", "-q"]).trim(), "data");
    let (st, body) = api.http(
        "POST",
        "/v1.41/volumes/create",
        Some(r#"{"Name":"vx","DriverOpts":{"foo":"x"}}"#),
    );
    assert_eq!(
        (st, body.as_str()),
        (400, r#"{"message":"create vx: invalid option: \"foo\""}"#)
    );
    let (st, body) = api.http(
        "POST",
        "/v1.41/volumes/create",
        Some(r#"{"Name":"vx","Driver":"nope"}"#),
    );
    assert_eq!(
        (st, body.as_str()),
        (
            404,
            r#"{"message":"create vx: error looking up volume plugin nope: plugin \"nope\" not found"}"#
        )
    );
    let got = api.expect("GET", "/v1.41/volumes/data", None, 200);
    assert_eq!(got, v);
    let (st, body) = api.http("GET", "/v1.41/volumes/nosuch", None);
    assert_eq!(
        (st, body.as_str()),
        (404, r#"{"message":"get nosuch: no such volume"}"#)
    );
    let (st, _) = api.http("DELETE", "/v1.41/volumes/nosuch?force=1", None);
    assert_eq!(st, 204);
    let q = filters(r#"{"label":{"a=b":true}}"#);
    let listed = api.expect("GET", &format!("/v1.41/volumes?filters={q}"), None, 200);
    assert_eq!(listed["Volumes"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["Warnings"], serde_json::Value::Null);
    let q = filters(r#"{"label":{"a=z":true}}"#);
    let listed = api.expect("GET", &format!("/v1.41/volumes?filters={q}"), None, 200);
    assert_eq!(listed["Volumes"], serde_json::json!([]));
    let (st, body) = api.http(
        "GET",
        &format!(
            "/v1.41/volumes?filters={}",
            filters(r#"{"dangling":["x"]}"#)
        ),
        None,
    );
    assert_eq!(
        (st, body.as_str()),
        (400, r#"{"message":"Invalid filter 'dangling=[x]'"}"#)
    );
    // In use: a container mounts it; removal is refused with 409, prune keeps it.
    s.ok(&[
        "create",
        "--name",
        "user",
        "-v",
        "data:/data",
        "busybox",
        "true",
    ]);
    let (st, _) = api.http("DELETE", "/v1.41/volumes/data", None);
    assert_eq!(st, 409);
    let q = filters(r#"{"dangling":["true"]}"#);
    let listed = api.expect("GET", &format!("/v1.41/volumes?filters={q}"), None, 200);
    assert_eq!(listed["Volumes"], serde_json::json!([]));
    let pruned = api.expect("POST", "/v1.41/volumes/prune", None, 200);
    assert_eq!(
        pruned,
        serde_json::json!({"VolumesDeleted": [], "SpaceReclaimed": 0})
    );
    let (st, body) = api.http(
        "POST",
        &format!(
            "/v1.41/volumes/prune?filters={}",
            filters(r#"{"name":["x"]}"#)
        ),
        None,
    );
    assert_eq!(
        (st, body.as_str()),
        (400, r#"{"message":"Invalid filter 'name'"}"#)
    );
    s.ok(&["rm", "user"]);
    let df = api.expect("GET", "/v1.41/system/df", None, 200);
    assert_eq!(df["Volumes"][0]["Name"], "data");
    assert_eq!(df["Volumes"][0]["UsageData"]["RefCount"], 0);
    let pruned = api.expect("POST", "/v1.41/volumes/prune", None, 200);
    assert_eq!(pruned["VolumesDeleted"], serde_json::json!(["data"]));
    assert_eq!(s.ok(&["volume", "ls", "-q"]).trim(), "");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn system_df_reports_images_containers_and_volumes() {
    if !require_root() {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    s.ok(&["create", "--name", "one", "busybox", "true"]);
    s.ok(&["volume", "create", "vol"]);
    let api = Service::start(s.root.path());
    let df = api.expect("GET", "/v1.41/system/df", None, 200);
    let image_id = s.ok(&["images", "-q", "--no-trunc", "busybox"]);
    assert!(df["LayersSize"].as_u64().unwrap() > 0, "{df}");
    let images = df["Images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{df}");
    assert_eq!(images[0]["Id"], image_id.trim());
    assert_eq!(images[0]["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(images[0]["Containers"], 1);
    assert!(images[0]["SharedSize"].as_i64().unwrap() >= 0);
    let containers = df["Containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["Names"], serde_json::json!(["/one"]));
    assert_eq!(containers[0]["State"], "created");
    assert!(containers[0]["SizeRootFs"].as_u64().unwrap() > 0);
    assert_eq!(df["Volumes"][0]["Name"], "vol");
    assert_eq!(
        df["Volumes"][0]["UsageData"],
        serde_json::json!({"Size": 0, "RefCount": 0})
    );
    assert_eq!(df["BuildCache"], serde_json::Value::Null);
    assert_eq!(df["BuilderSize"], 0);
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn docker_compose_brings_a_two_service_project_up_and_down() {
    if !require_root() || !require_compose() || !require_tool("docker") {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let api = Service::start(s.root.path());
    let project = tempfile::tempdir().unwrap();
    // The API's image is built by Compose (through `/build`) FROM the store's busybox; the
    // client calls the API by its service name on the project's network, retrying while
    // httpd starts (depends_on orders the starts, not readiness).
    std::fs::create_dir(project.path().join("api")).unwrap();
    std::fs::write(
        project.path().join("api/Dockerfile"),
        "FROM busybox\n\
         RUN mkdir /www && echo 'hello from api' > /www/index.html\n\
         EXPOSE 8080\n\
         CMD [\"sh\", \"-c\", \"echo api ready; exec httpd -f -p 8080 -h /www\"]\n",
    )
    .unwrap();
    std::fs::write(
        project.path().join("docker-compose.yml"),
        r#"version: "3.7"
services:
  api:
    build: ./api
    image: demo/api
    init: true
    volumes:
      - data:/data
  client:
    image: busybox
    depends_on: [api]
    volumes:
      - type: volume
        source: data
        target: /shared
    command: ["sh", "-c", "for i in $$(seq 1 200); do if wget -q -O - http://api:8080/; then echo noted > /shared/note; exit 0; fi; sleep 0.1; done; exit 1"]
volumes:
  data:
    labels:
      purpose: test
"#,
    )
    .unwrap();
    let compose = |args: &[&str]| {
        Command::new("docker-compose")
            .current_dir(project.path())
            .env("DOCKER_HOST", api.host())
            .env_remove("DOCKER_API_VERSION")
            // `run` and `exec` go through the docker CLI (`docker start --attach`, `docker
            // exec`), Compose's default: its in-process way (dockerpty) attaches only after
            // the start, and loses the output of a container that ends first, on Docker too.
            .env_remove("COMPOSE_INTERACTIVE_NO_CLI")
            .env("DOCKER_CONFIG", project.path().join(".docker"))
            // Compose's own builder (docker-py's `/build`), not the docker CLI's BuildKit.
            .env("COMPOSE_DOCKER_CLI_BUILD", "0")
            .args(["--no-ansi", "-p", "demo"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = must(
        compose(&["up", "--exit-code-from", "client"]),
        "docker-compose up",
    );
    assert!(
        out.contains("Attaching to demo_api_1, demo_client_1"),
        "{out}"
    );
    assert!(out.contains("hello from api"), "{out}");
    assert!(out.contains("demo_client_1 exited with code 0"), "{out}");

    // What compose made, seen by the CLI: the project network with Compose's labels, both
    // containers on it under their service names.
    let nets = s.ok(&["network", "ls", "--format", "{{.Name}} {{.Labels}}"]);
    let line = nets
        .lines()
        .find(|l| l.starts_with("demo_default "))
        .unwrap_or_else(|| panic!("no project network: {nets}"));
    assert!(line.contains("com.docker.compose.project=demo"), "{line}");
    let aliases = s.ok(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks.demo_default.Aliases}}",
        "demo_api_1",
    ]);
    assert!(aliases.contains("\"api\""), "{aliases}");
    let ps = s.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains("demo_client_1 Exited (0)"), "{ps}");

    // The project's volume (`/volumes/create` with Compose's labels), mounted by a bind in
    // one service and a volume mount in the other: the client's note is in it.
    let vol = s.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Labels.purpose}} {{index .Labels \"com.docker.compose.project\"}} {{.Mountpoint}}",
        "demo_data",
    ]);
    let mut parts = vol.split_whitespace();
    assert_eq!(parts.next(), Some("test"), "{vol}");
    assert_eq!(parts.next(), Some("demo"), "{vol}");
    let note = std::fs::read_to_string(Path::new(parts.next().unwrap()).join("note")).unwrap();
    assert_eq!(note, "noted\n");

    // Up again, detached: the same containers are started, not recreated.
    let out = compose(&["up", "-d"]);
    let err = text(&out.stderr);
    must(out, "docker-compose up -d");
    assert!(err.contains("Starting demo_api_1"), "{err}");
    let listed = must(compose(&["ps"]), "docker-compose ps");
    let api_line = listed
        .lines()
        .find(|l| l.starts_with("demo_api_1"))
        .unwrap_or_default();
    assert!(api_line.contains(" Up "), "{listed}");
    assert_eq!(s.ok(&["wait", "demo_client_1"]).trim(), "0");
    let logs = must(
        compose(&["logs", "--no-color", "client"]),
        "docker-compose logs",
    );
    assert_eq!(logs.matches("hello from api").count(), 2, "{logs}");

    // exec in a service's container, and a one-off run of the client (removed after).
    let out = must(
        compose(&["exec", "-T", "api", "cat", "/data/note"]),
        "docker-compose exec",
    );
    assert_eq!(out, "noted\n");
    let out = must(
        compose(&[
            "run",
            "--rm",
            "-T",
            "client",
            "wget",
            "-q",
            "-O",
            "-",
            "http://api:8080/",
        ]),
        "docker-compose run",
    );
    assert_eq!(out, "hello from api\n");

    // `down -v`: containers, the network and the volume gone.
    must(compose(&["down", "-v"]), "docker-compose down");
    assert_eq!(s.ok(&["ps", "-aq"]).trim(), "");
    assert!(!s.ok(&["network", "ls"]).contains("demo_default"));
    assert_eq!(s.ok(&["volume", "ls", "-q"]).trim(), "");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn docker_py_runs_streams_logs_execs_and_reads_df() {
    if !require_root() {
        return;
    }
    let Some(python) = python_clients() else {
        return;
    };
    let s = store_with_api_image();
    let api = Service::start(s.root.path());
    let out = Command::new(&python)
        .arg(clients_script("docker_py.py"))
        .env("DOCKER_HOST", api.host())
        .env_remove("DOCKER_API_VERSION")
        .output()
        .unwrap();
    let stdout = must(out, "docker_py.py");
    assert!(stdout.contains("docker-py: ok"), "{stdout}");
    // The script's container is gone; the image it used stays.
    assert_eq!(s.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn testcontainers_starts_a_locally_built_image_without_ryuk() {
    if !require_root() {
        return;
    }
    let Some(python) = python_clients() else {
        return;
    };
    let s = store_with_api_image();
    let api = Service::start(s.root.path());
    let out = Command::new(&python)
        .arg(clients_script("testcontainers_py.py"))
        .env("DOCKER_HOST", api.host())
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        .env_remove("DOCKER_API_VERSION")
        .output()
        .unwrap();
    let stdout = must(out, "testcontainers_py.py");
    assert!(stdout.contains("testcontainers: ok"), "{stdout}");
    assert_eq!(s.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn the_docker_cli_manages_networks_and_volumes() {
    if !require_root() || !require_tool("docker") {
        return;
    }
    let s = Strata::new();
    s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    let api = Service::start(s.root.path());
    let config = tempfile::tempdir().unwrap();
    let docker = |args: &[&str]| {
        let out = Command::new("docker")
            .env("DOCKER_HOST", api.host())
            .env("DOCKER_CONFIG", config.path())
            .env_remove("DOCKER_API_VERSION")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        must(out, &format!("docker {args:?}"))
    };
    let id = docker(&["network", "create", "--label", "team=a", "front"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    assert_eq!(
        docker(&[
            "network",
            "ls",
            "--filter",
            "label=team=a",
            "--format",
            "{{.Name}} {{.Driver}}"
        ]),
        "front bridge\n"
    );
    assert_eq!(
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{.Id}} {{.Labels.team}}",
            "front"
        ]),
        format!("{} a\n", id.trim())
    );
    docker(&["volume", "create", "--label", "team=a", "store"]);
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", "label=team=a"]),
        "store\n"
    );
    docker(&[
        "run",
        "--rm",
        "--network",
        "front",
        "-v",
        "store:/s",
        "busybox",
        "sh",
        "-c",
        "echo x > /s/f",
    ]);
    // `docker system df` reads `/system/df`: one image, no containers left, one volume.
    let df = docker(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert_eq!(
        df, "Images 1 0\nContainers 0 0\nLocal Volumes 1 0\nBuild Cache 0 0\n",
        "{df}"
    );
    assert_eq!(docker(&["network", "rm", "front"]), "front\n");
    assert_eq!(docker(&["volume", "rm", "store"]), "store\n");
    assert_eq!(s.ok(&["volume", "ls", "-q"]), "");
}

#[test]
#[cfg_attr(strata_no_root, ignore = "needs root")]
fn docker_compose_connects_a_service_to_two_networks_with_aliases() {
    if !require_root() || !require_compose() {
        return;
    }
    let s = store_with_api_image();
    let api = Service::start(s.root.path());
    let project = tempfile::tempdir().unwrap();
    // The API is on an internal network under an alias and on a second network, which Compose
    // joins with `/networks/{id}/connect` before the start; the client reaches the alias.
    std::fs::write(
        project.path().join("docker-compose.yml"),
        r#"version: "3.7"
services:
  api:
    image: clients/api
    init: true
    networks:
      back:
        aliases: [backend]
      front: {}
  client:
    image: busybox
    networks: [back]
    depends_on: [api]
    command: ["sh", "-c", "for i in $$(seq 1 200); do if wget -q -O - http://backend:8080/; then exit 0; fi; sleep 0.1; done; exit 1"]
networks:
  back:
    internal: true
  front: {}
"#,
    )
    .unwrap();
    let compose = |args: &[&str]| {
        Command::new("docker-compose")
            .current_dir(project.path())
            .env("DOCKER_HOST", api.host())
            .env_remove("DOCKER_API_VERSION")
            .args(["--no-ansi", "-p", "two"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = must(
        compose(&["up", "--exit-code-from", "client"]),
        "docker-compose up",
    );
    assert!(out.contains("hello from api"), "{out}");
    let nets = s.ok(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{json $v.Aliases}} {{end}}",
        "two_api_1",
    ]);
    let id = s.ok(&["inspect", "-f", "{{.Id}}", "two_api_1"]);
    let short = &id[..12];
    // Aliases in any order (Compose sends them from a set); the short ID once, as Docker.
    let aliases = |net: &str| -> Vec<String> {
        let start = nets
            .find(&format!("{net}="))
            .unwrap_or_else(|| panic!("{nets}"))
            + net.len()
            + 1;
        let end = nets[start..].find(' ').unwrap() + start;
        let mut v: Vec<String> = serde_json::from_str(&nets[start..end]).unwrap();
        v.sort();
        v
    };
    let mut want = vec!["api".to_string(), "backend".to_string(), short.to_string()];
    want.sort();
    assert_eq!(aliases("two_back"), want, "{nets}");
    let mut want = vec!["api".to_string(), short.to_string()];
    want.sort();
    assert_eq!(aliases("two_front"), want, "{nets}");
    let internal = s.ok(&["network", "inspect", "-f", "{{.Internal}}", "two_back"]);
    assert_eq!(internal.trim(), "true");
    must(compose(&["down"]), "docker-compose down");
    assert_eq!(s.ok(&["ps", "-aq"]).trim(), "");
    let left = s.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(left, "bridge\nhost\nnone\n");
}
