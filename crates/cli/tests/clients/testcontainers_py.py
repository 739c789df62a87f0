"""testcontainers-python against `strata system service` (DOCKER_HOST, with Ryuk disabled
by TESTCONTAINERS_RYUK_DISABLED=true): starts a container from the locally built image
`clients/api` (no pull), waits for its log line, reads its logs and execs in it; the
container is stopped and removed when the block ends. Prints `testcontainers: ok`."""

import os

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

assert os.environ.get("TESTCONTAINERS_RYUK_DISABLED") == "true"

ready = LogMessageWaitStrategy("api ready").with_startup_timeout(60)
with DockerContainer("clients/api").waiting_for(ready) as container:
    stdout, _ = container.get_logs()
    assert stdout == b"api ready\n", stdout
    code, output = container.exec(["cat", "/www/index.html"])
    assert code == 0 and output == b"hello from api\n", (code, output)
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    assert wrapped.status == "running", wrapped.status
    assert wrapped.labels.get("org.testcontainers") == "true", wrapped.labels
print("testcontainers: ok")
