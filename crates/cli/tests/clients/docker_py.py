"""docker-py (PyPI's `docker`) against `strata system service` (DOCKER_HOST): builds an image
from a context, makes a network and a volume, runs a container from the image on them, streams
its logs as they come, execs in it, reads /system/df, then stops and removes what it made.
Prints `docker-py: ok` at the end; any failure raises."""

import io
import tarfile

import docker


def context():
    """A build context as a tar: a Dockerfile FROM the store's busybox and a file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {
            "Dockerfile": b"FROM busybox\nCOPY greeting /greeting\nLABEL made.by=docker-py\n"
            b'CMD ["sh", "-c", "cat /greeting; for i in 1 2 3; do echo line $i; done; '
            b'exec sleep 300"]\n',
            "greeting": b"hello from docker-py\n",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


client = docker.from_env()
assert client.ping()
version = client.version()
assert version["ApiVersion"] == "1.41", version

# Build: the JSON stream ends with the image's ID (`aux`), and the image is tagged.
image, log = client.images.build(fileobj=context(), custom_context=True, tag="pybuilt:1", rm=True)
steps = [entry["stream"] for entry in log if "stream" in entry]
assert any("Step 1/4 : FROM busybox" in s for s in steps), steps
assert "pybuilt:1" in image.tags, image.tags
assert image.labels.get("made.by") == "docker-py", image.labels

# A network and a volume of its own, found again by their labels.
net = client.networks.create("pynet", labels={"made.by": "docker-py"}, check_duplicate=True)
vol = client.volumes.create("pyvol", labels={"made.by": "docker-py"})
assert [n.id for n in client.networks.list(filters={"label": "made.by=docker-py"})] == [net.id]
assert [v.name for v in client.volumes.list(filters={"label": "made.by=docker-py"})] == ["pyvol"]
try:
    client.networks.create("pynet", check_duplicate=True)
    raise AssertionError("a second network of the same name")
except docker.errors.APIError as e:
    assert e.status_code == 409, e

# Run detached on them; stream its logs as they are written until the last line.
container = client.containers.run("pybuilt:1", detach=True, name="pyrun", network="pynet",
                                  volumes={"pyvol": {"bind": "/vol", "mode": "rw"}})
seen = b""
for chunk in container.logs(stream=True, follow=True):
    seen += chunk
    if b"line 3\n" in seen:
        break
assert seen == b"hello from docker-py\nline 1\nline 2\nline 3\n", seen
container.reload()
assert container.status == "running", container.status

# Exec: output, exit code, the environment and working directory asked for.
# (stdout and stderr apart: their relative order is not kept across two pipes.)
result = container.exec_run(["sh", "-c", "echo out; echo err >&2; pwd; echo $WHO; exit 3"],
                            environment={"WHO": "exec"}, workdir="/tmp", demux=True)
assert result.exit_code == 3, result
assert result.output == (b"out\n/tmp\nexec\n", b"err\n"), result.output
result = container.exec_run(["cat", "/greeting"])
assert result.exit_code == 0 and result.output == b"hello from docker-py\n", result

# The network shows its running member; the volume is in use and kept by prune.
net.reload()
assert [c.name for c in net.containers] == ["pyrun"], net.attrs["Containers"]
assert container.exec_run(["sh", "-c", "echo kept > /vol/f"]).exit_code == 0
assert client.volumes.prune(filters={"label": "made.by=docker-py"})["VolumesDeleted"] == []

# /system/df: the built image used by one container, the container itself.
df = client.df()
images = {i["Id"]: i for i in df["Images"]}
assert image.id in images, df["Images"]
assert images[image.id]["Containers"] == 1, images[image.id]
mine = [c for c in df["Containers"] if c["Names"] == ["/pyrun"]]
assert len(mine) == 1 and mine[0]["State"] == "running", df["Containers"]
assert mine[0]["SizeRootFs"] > 0, mine
assert df["LayersSize"] > 0, df

vols = {v["Name"]: v for v in df["Volumes"]}
assert vols["pyvol"]["UsageData"] == {"Size": 5, "RefCount": 1}, vols["pyvol"]

container.stop(timeout=1)
container.wait()
container.remove()
net.remove()
assert client.volumes.prune(filters={"label": "made.by=docker-py"})["VolumesDeleted"] == ["pyvol"]
try:
    client.volumes.get("pyvol")
    raise AssertionError("the volume is still there")
except docker.errors.NotFound:
    pass
client.images.remove("pybuilt:1")
print("docker-py: ok")
