"""What `meson install` puts where, and the systemd units.

- `meson install --destdir` into a temporary directory installs the
  binaries, both man pages, the bash completion, both units and the
  sysusers.d entry at the paths README and meshcad(8) give, and the
  installed units name the installed binaries;
- `systemd-analyze verify` accepts both units, and `systemd-analyze
  security --offline` rates meshcad.service at most 2.0 (README records
  the score).  Without systemd-analyze these skip, saying so.
"""

import json
import re
import shutil
from pathlib import Path

import pytest

from sysutil import BUILD, MESHCA, MESHCAD, REPO, describe, run

UNITS = ("meshcad.service", "meshca-agent@.service")
EXPOSURE_MAX = 2.0


def build_options():
    res = run(["meson", "introspect", "--buildoptions", BUILD])
    assert res.returncode == 0, describe(res)
    return {o["name"]: o["value"] for o in json.loads(res.stdout)}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(destdir, {name: path inside destdir}) after `meson install --destdir`."""
    if shutil.which("meson") is None:
        pytest.fail("meson missing (deploy/install-deps.sh installs it)", pytrace=False)
    dest = tmp_path_factory.mktemp("destdir")
    res = run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", dest],
              timeout=300)
    assert res.returncode == 0, describe(res)
    o = build_options()
    prefix = o["prefix"]
    unitdir = o.get("systemdunitdir") or f"{prefix}/lib/systemd/system"

    def at(*parts):
        p = Path(*parts)
        if not p.is_absolute():
            p = Path(prefix) / p
        return dest / p.relative_to("/")

    paths = {
        "meshca": at(o["bindir"], "meshca"),
        "meshcad": at(o["sbindir"], "meshcad"),
        "meshca.1": at(o["mandir"], "man1", "meshca.1"),
        "meshcad.8": at(o["mandir"], "man8", "meshcad.8"),
        "completion": at(o["datadir"], "bash-completion", "completions", "meshca"),
        "sysusers": at(prefix, "lib", "sysusers.d", "meshca.conf"),
        "meshcad.service": at(unitdir, "meshcad.service"),
        "meshca-agent@.service": at(unitdir, "meshca-agent@.service"),
        "_prefix_bin": Path(prefix) / o["bindir"] / "meshca",
        "_prefix_sbin": Path(prefix) / o["sbindir"] / "meshcad",
    }
    return dest, paths


def test_meson_install_puts_every_file_in_place(installed):
    dest, paths = installed
    missing = [f"{k}: {p}" for k, p in paths.items() if not k.startswith("_") and not p.is_file()]
    assert not missing, "not installed:\n" + "\n".join(missing) + "\nfound:\n" + "\n".join(
        str(p) for p in sorted(dest.rglob("*")))
    for k in ("meshca.1", "meshcad.8"):
        assert paths[k].read_bytes() == (REPO / "deploy" / "man" / k).read_bytes()
    assert "complete -F _meshca meshca" in paths["completion"].read_text()
    res = run([paths["meshca"], "--version"])
    assert res.returncode == 0 and res.stdout.startswith("meshca "), describe(res)
    res = run([paths["meshcad"], "--version"])
    assert res.returncode == 0 and res.stdout.startswith("meshcad "), describe(res)


def test_installed_units_name_installed_binaries(installed):
    _, paths = installed
    d = paths["meshcad.service"].read_text()
    assert re.search(rf"^ExecStart={re.escape(str(paths['_prefix_sbin']))} ", d, re.M), d
    a = paths["meshca-agent@.service"].read_text()
    assert f"exec {paths['_prefix_bin']} agent" in a, a


def systemd_analyze():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (package systemd): units not verified")


def unit_for_verify(tmp_path, name, text):
    """The unit with its binaries pointed at this build: verify checks that
    ExecStart= names an executable, and the prefix is not installed here."""
    text = re.sub(r"/\S*/sbin/meshcad\b", str(MESHCAD), text)
    text = re.sub(r"/\S*/bin/meshca\b", str(MESHCA), text)
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("unit", UNITS)
def test_units_verify(installed, tmp_path, unit):
    systemd_analyze()
    _, paths = installed
    p = unit_for_verify(tmp_path, unit, paths[unit].read_text())
    # --man=no: Documentation=man:meshcad(8) is not installed on this host.
    res = run(["systemd-analyze", "verify", "--man=no", p], timeout=120)
    assert res.returncode == 0 and p.name not in res.stderr, describe(res)


def test_meshcad_unit_security_score(installed, tmp_path):
    systemd_analyze()
    _, paths = installed
    p = unit_for_verify(tmp_path, "meshcad.service", paths["meshcad.service"].read_text())
    res = run(["systemd-analyze", "security", "--offline=true", "--no-pager", p], timeout=120)
    m = re.search(r"Overall exposure level for meshcad\.service: ([0-9.]+) (\w+)", res.stdout)
    assert m, describe(res)
    score = float(m.group(1))
    assert score <= EXPOSURE_MAX, f"exposure {score} {m.group(2)} > {EXPOSURE_MAX}\n{res.stdout}"
    readme = (REPO / "README.md").read_text()
    assert f"exposure level {m.group(1)}" in readme, \
        f"README does not record the current score ({m.group(1)} {m.group(2)})"
