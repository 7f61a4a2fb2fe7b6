"""deploy/container/: what can be checked without a container engine.

- the Containerfile: every COPY source exists in the repository, stages are
  named before use, the binaries copied out of the build stage are where
  `meson install` puts them, the run stage installs a package for every
  shared library meshcad and meshca need (readelf NEEDED + dpkg -S), it runs
  as a non-root user with the state directory as a VOLUME and a HEALTHCHECK;
- compose.yaml parses (python3-yaml) and its references hold: volumes,
  secrets, depends_on, token and certificate paths between services, the
  name the agents dial is in meshcad's certificate;
- the entrypoint passes shellcheck and, run as a plain shell script with a
  temporary state directory and the built binaries, refuses without a
  passphrase or over foreign files, creates the CA on first start, execs
  meshcad (same PID) which answers the HEALTHCHECK command, and does not
  initialise again on the second start.

About 3 s.
"""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509

import sysutil
from sysutil import MESHCA, MESHCAD, REPO, base_env, stop_process, track

CONTAINER = REPO / "deploy" / "container"
CONTAINERFILE = CONTAINER / "Containerfile"
COMPOSE = CONTAINER / "compose.yaml"
ENTRYPOINT = CONTAINER / "entrypoint.sh"


def instructions():
    """(KEYWORD, argument text) of the Containerfile, continuations joined."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            kw, _, rest = line.partition(" ")
            out.append((kw.upper(), rest.strip()))
    return out


def stages():
    """[(name, [instructions])] in order."""
    out = []
    for kw, rest in instructions():
        if kw == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            assert m, rest
            out.append((m.group(2), []))
        else:
            assert out, f"{kw} before FROM"
            out[-1][1].append((kw, rest))
    return out


def test_containerfile_copies_exist_and_stages_are_known():
    st = stages()
    assert len(st) >= 2, "multi-stage: a build stage and a run stage"
    assert all(re.search(r"debian:12", rest) for kw, rest in instructions() if kw == "FROM")
    names = set()
    for name, body in st:
        for kw, rest in body:
            if kw != "COPY":
                continue
            args = rest.split()
            frm = [a for a in args if a.startswith("--from=")]
            srcs = [a for a in args if not a.startswith("--")][:-1]
            assert srcs, rest
            if frm:
                assert frm[0].split("=", 1)[1] in names, f"COPY from an unknown stage: {rest}"
                continue
            for s in srcs:
                assert (REPO / s).exists(), f"COPY source {s} is not in the repository"
        if name:
            names.add(name)


def test_containerfile_binaries_are_where_meson_installs_them():
    build = [b for n, b in stages() if n == "build"][0]
    setup = " ".join(r for k, r in build if k == "RUN")
    m = re.search(r"--prefix=(\S+)", setup)
    assert m and "DESTDIR=/out meson install" in setup, setup
    prefix = m.group(1)
    res = sysutil.run(["meson", "introspect", "--buildoptions", sysutil.BUILD])
    assert res.returncode == 0, sysutil.describe(res)
    opts = {o["name"]: o["value"] for o in json.loads(res.stdout)}
    want = {f"/out{prefix}/{opts['sbindir']}/meshcad", f"/out{prefix}/{opts['bindir']}/meshca"}
    run = stages()[-1][1]
    copied = {r.split()[1] for k, r in run if k == "COPY" and r.startswith("--from=build")}
    assert want <= copied, (want, copied)
    assert "-Dsystemd=disabled" in setup        # no service manager in a container


def test_run_stage_installs_every_needed_library():
    run = stages()[-1][1]
    apt = " ".join(r for k, r in run if k == "RUN" and "apt-get install" in r)
    pkgs = set(re.findall(r"\b(lib[a-z0-9.+-]+)\b", apt))
    needed = set()
    for binary in (MESHCAD, MESHCA):
        res = sysutil.run(["readelf", "-d", binary])
        assert res.returncode == 0, sysutil.describe(res)
        needed |= set(re.findall(r"Shared library: \[([^\]]+)\]", res.stdout))
    missing = []
    for lib in sorted(needed):
        if lib.startswith(("libc.so", "ld-linux", "libm.so", "libpthread", "libdl.so")):
            continue                            # libc6, in every Debian image
        if lib.startswith("libsystemd"):
            continue                            # the image builds with -Dsystemd=disabled
        if lib.startswith(("libasan", "libubsan", "libgcc_s")):
            continue                            # a sanitizer build of the tests (run-all.sh)
        res = sysutil.run(["dpkg", "-S", f"*/{lib}"])
        assert res.returncode == 0, sysutil.describe(res)
        owners = {l.split(":")[0] for l in res.stdout.splitlines()}
        if not owners & pkgs:
            missing.append(f"{lib} ({', '.join(sorted(owners))})")
    assert not missing, "run stage lacks packages for: " + "; ".join(missing)


def test_run_stage_is_non_root_with_volume_and_healthcheck():
    run = stages()[-1][1]
    kws = {k: r for k, r in run}
    user = kws.get("USER", "")
    assert user and not re.match(r"(root|0)(:|$)", user), user
    assert "/var/lib/meshca" in kws.get("VOLUME", "")
    assert "/v1/health" in kws.get("HEALTHCHECK", "")
    assert "meshca-entrypoint" in kws.get("ENTRYPOINT", "")
    # The user exists and owns the state directory, made in the same stage.
    created = " ".join(r for k, r in run if k == "RUN")
    name = user.split(":")[0]
    assert re.search(rf"useradd .*\b{name}\b", created), created
    assert re.search(rf"install -d -o {name} .*/var/lib/meshca\b", created), created


def test_compose_references_hold():
    d = yaml.safe_load(COMPOSE.read_text())
    services, volumes, secrets = d["services"], d.get("volumes", {}), d.get("secrets", {})
    assert "meshcad" in services and len(services) >= 5
    for name, s in services.items():
        assert s.get("image") or s.get("build"), name
        b = s.get("build")
        if b:
            assert (COMPOSE.parent / b["context"]).resolve() == REPO
            assert (REPO / b["dockerfile"]).resolve() == CONTAINERFILE
        for v in s.get("volumes", []):
            src = v.split(":")[0]
            assert src in volumes, f"{name}: volume {src} not declared"
        for sec in s.get("secrets", []):
            assert (sec if isinstance(sec, str) else sec["source"]) in secrets, f"{name}: {sec}"
        for dep, cond in (s.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert cond["condition"] in ("service_started", "service_healthy",
                                         "service_completed_successfully"), cond
            if cond["condition"] == "service_healthy":
                hc = services[dep].get("healthcheck")
                assert dep == "meshcad" or (hc and not hc.get("disable")), \
                    f"{name} waits for {dep} to be healthy; it has no health check"
    for sec in secrets.values():
        assert "file" in sec or "external" in sec
    # The secret meshcad gets is the one the entrypoint reads by default.
    assert "meshca-root-passphrase" in services["meshcad"]["secrets"]
    assert "/run/secrets/meshca-root-passphrase" in ENTRYPOINT.read_text()

    # Agents: the tokens the bootstrap writes, and meshcad's name in its certificate.
    boot = "\n".join(services["bootstrap"]["command"])
    server_names = services["meshcad"]["environment"]["MESHCA_SERVER_NAMES"].split()
    agents = {n: s for n, s in services.items() if s.get("command", [None])[:2] == ["meshca", "agent"]}
    assert len(agents) == 2, list(services)
    for name, s in agents.items():
        argv = s["command"]
        url = argv[argv.index("--url") + 1]
        assert re.match(r"https://([^:/]+)", url).group(1) in server_names, url
        token = argv[argv.index("--token-file") + 1]
        svc = Path(token).stem
        assert re.search(rf"for svc in [^;\n]*\b{svc}\b", boot), (svc, boot)
        out = argv[argv.index("--out") + 1]
        vol = [v for v in s["volumes"] if v.split(":")[1] == out]
        assert vol, f"{name}: --out {out} is not a volume"
        # The workload beside it mounts the same volume where it reads its files.
        users = [n for n, o in services.items() if n != name and
                 any(v.split(":")[0] == vol[0].split(":")[0] for v in o.get("volumes", []))]
        assert users, f"nobody uses {name}'s certificates"
    web = "\n".join(services["web"]["command"])
    client = "\n".join(services["client"]["command"])
    assert "s_server" in web and "-verify_return_error" in web and "-accept 8443" in web
    assert "https://web:8443/" in client and "--cert" in client


def test_entrypoint_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (deploy/install-deps.sh --test)")
    res = sysutil.run(["shellcheck", "-s", "sh", ENTRYPOINT])
    assert res.returncode == 0, sysutil.describe(res)
    assert os.access(ENTRYPOINT, os.X_OK)


def entry_env(state, **extra):
    env = base_env()
    env.update(MESHCA_STATE_DIR=str(state), MESHCA_MESHCA=str(MESHCA),
               MESHCA_MESHCAD=str(MESHCAD), MESHCA_LISTEN=f"127.0.0.1:{sysutil.free_port()}",
               MESHCA_SERVER_NAMES="meshcad ca.example")
    env.update(extra)
    return env


def start_entrypoint(env, workdir, n):
    port_file = workdir / f"port{n}"
    err = workdir / f"stderr{n}"
    with open(err, "wb") as e:
        proc = track(subprocess.Popen(["/bin/sh", str(ENTRYPOINT), "meshcad", "--port-file",
                                       str(port_file)], env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=e))
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip().isdigit()):
        assert proc.poll() is None, err.read_text()
        assert time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)
    return proc, int(port_file.read_text()), err


def healthcheck_argv(state, port):
    """The Containerfile's HEALTHCHECK command, for this state dir and port."""
    hc = dict(stages()[-1][1])["HEALTHCHECK"]
    argv = json.loads(hc.split("CMD", 1)[1].strip())     # exec form: a JSON array
    return [a.replace("/var/lib/meshca", str(state)).replace(":8443", f":{port}") for a in argv]


def test_entrypoint_first_and_second_start(binaries, tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    pw = tmp_path / "passphrase"

    # No passphrase: a clear refusal, nothing written.
    res = sysutil.run(["/bin/sh", ENTRYPOINT], env=entry_env(state, MESHCA_ROOT_PASSPHRASE_FILE=str(pw)))
    assert res.returncode == 1 and "passphrase" in res.stderr, sysutil.describe(res)
    assert list(state.iterdir()) == []
    # Foreign files and no meshca.conf: refused, untouched.
    (state / "stray").write_text("x")
    pw.write_text(sysutil.PASSPHRASE + "\n")
    res = sysutil.run(["/bin/sh", ENTRYPOINT], env=entry_env(state, MESHCA_ROOT_PASSPHRASE_FILE=str(pw)))
    assert res.returncode == 1 and "refusing" in res.stderr, sysutil.describe(res)
    assert [p.name for p in state.iterdir()] == ["stray"]
    (state / "stray").unlink()

    # First start: init, then meshcad exec'd in the same process.
    env = entry_env(state, MESHCA_ROOT_PASSPHRASE_FILE=str(pw),
                    MESHCA_METRICS_LISTEN="127.0.0.1:0")
    proc, port, err = start_entrypoint(env, tmp_path, 1)
    try:
        assert "first start, creating the CA" in err.read_text()
        assert (state / "meshca.conf").exists() and (state / "root.crt").exists()
        assert "metrics_listen = 127.0.0.1:0" in (state / "meshca.conf").read_text()
        assert Path(f"/proc/{proc.pid}/exe").resolve() == MESHCAD.resolve(), "not exec'd"
        res = sysutil.run(healthcheck_argv(state, port))
        assert res.returncode == 0 and '"ok"' in res.stdout, sysutil.describe(res)
        leaf = x509.load_pem_x509_certificate(
            sysutil.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                         "-showcerts"], input="").stdout.encode())
        dns = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.DNSName)
        assert {"meshcad", "ca.example", "localhost"} <= set(dns), dns
    finally:
        rc, killed = stop_process(proc)
    assert rc == 0 and not killed, err.read_text()
    fp = sysutil.file_sha256(state / "root.crt")

    # Second start: the existing CA, no passphrase needed, no init.
    pw.unlink()
    proc, port, err = start_entrypoint(entry_env(state, MESHCA_ROOT_PASSPHRASE_FILE=str(pw)),
                                       tmp_path, 2)
    try:
        assert "first start" not in err.read_text()
        assert sysutil.run(healthcheck_argv(state, port)).returncode == 0
    finally:
        rc, killed = stop_process(proc)
    assert rc == 0 and not killed
    assert sysutil.file_sha256(state / "root.crt") == fp

    # Other commands go to the CLI, or are run as given.
    res = sysutil.run(["/bin/sh", ENTRYPOINT, "meshca", "--version"], env=entry_env(state))
    assert res.returncode == 0 and res.stdout.startswith("meshca "), sysutil.describe(res)
    res = sysutil.run(["/bin/sh", ENTRYPOINT, "echo", "hello"], env=entry_env(state))
    assert res.stdout == "hello\n"
