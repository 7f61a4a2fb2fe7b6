"""The manuals and the bash completion keep up with the binaries.

- deploy/man/meshca.1 and meshcad.8 are lint-clean for mandoc (-Tlint at
  level warning) and render under groff -ww without a warning (what `man -l`
  runs);
- every command and subcommand `meshca --help` lists, and every option its
  `meshca COMMAND --help` lists, appears in meshca.1 and in the completion;
- every option of `meshcad --help` and every configuration key meshcad reads
  appears in meshcad.8;
- the sh blocks of README's Deploy section parse, name files that exist and
  give `meshca init` only options it has.
"""

import re
import shutil
import subprocess

import pytest

import sysutil
from sysutil import MESHCA, MESHCAD, REPO, base_env, describe, run

MAN1 = REPO / "deploy" / "man" / "meshca.1"
MAN8 = REPO / "deploy" / "man" / "meshcad.8"
COMPLETION = REPO / "deploy" / "completion" / "meshca.bash"
PAGES = (MAN1, MAN8)

# Keys of ca/common/config.c that only the CLI reads (meshca.1 names them).
CLI_ONLY_KEYS = {"url", "admin_cert", "admin_key", "output"}


def need(tool, package):
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} missing: deploy/install-deps.sh --test installs {package}",
                    pytrace=False)


def commands():
    """[(group, name or None)] as `meshca --help` lists them."""
    res = run([MESHCA, "--help"], env=base_env())
    assert res.returncode == 0, describe(res)
    body = res.stdout.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    out = []
    for line in body.splitlines():
        # "  service add      register a service"; "audit checkpoint" runs into its text.
        m = re.match(r"^  ([a-z]+)(?: ([a-z]+))?(?: |$)", line)
        assert m, f"unexpected line in meshca --help: {line!r}"
        out.append((m.group(1), m.group(2)))
    assert len(out) >= 20, out
    return out


def long_options(text):
    """Long options a --help text names, the global section left out."""
    text = text.split("Global options", 1)[0]
    return set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]+)", text))


def man_options(page):
    return set(re.findall(r"Fl \\-([a-z][a-z0-9-]+)", page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_man_mandoc_lint(page):
    need("mandoc", "mandoc")
    res = run(["mandoc", "-Tlint", "-Wwarning", page])
    assert res.returncode == 0 and res.stdout == "" and res.stderr == "", describe(res)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_man_groff_renders_without_warnings(page):
    need("groff", "groff-base")
    res = run(["groff", "-ww", "-mandoc", "-Tutf8", "-z", page])
    assert res.returncode == 0 and res.stderr == "", describe(res)
    need("mandoc", "mandoc")
    text = re.sub(".\b", "", run(["mandoc", "-Tutf8", page]).stdout)  # no overstrike
    for section in ("SYNOPSIS", "DESCRIPTION", "FILES", "EXIT STATUS", "STANDARDS"):
        assert re.search(rf"^{section}$", text, re.M), f"{page.name}: no {section} section"


def test_meshca_1_lists_every_command_and_option():
    page = MAN1.read_text()
    documented = man_options(MAN1)
    missing = []
    for group, name in commands():
        words = group + (" " + name if name else "")
        if not re.search(rf"^\.(?:It )?Cm {re.escape(words)}(?:\s|$)", page, re.M):
            missing.append(f"command '{words}'")
        res = run([MESHCA, *words.split(), "--help"], env=base_env())
        assert res.returncode == 0, describe(res)
        for opt in sorted(long_options(res.stdout) - documented):
            missing.append(f"option --{opt} of '{words}'")
    res = run([MESHCA, "agent", "status", "--help"], env=base_env())
    for opt in sorted(long_options(res.stdout) - documented):
        missing.append(f"option --{opt} of 'agent status'")
    globals_ = long_options(run([MESHCA, "--help"], env=base_env()).stdout.replace(
        "Global options", "Globals"))
    for opt in sorted(globals_ - documented):
        missing.append(f"global option --{opt}")
    assert not missing, "meshca.1 lacks: " + ", ".join(missing)


def test_completion_knows_every_command_and_option():
    script = COMPLETION.read_text()
    words = set(re.findall(r"[a-z][a-z0-9-]*", script))
    missing = []
    for group, name in commands():
        for w in (group, name):
            if w and w not in words:
                missing.append(w)
        res = run([MESHCA, group, *([name] if name else []), "--help"], env=base_env())
        for opt in long_options(res.stdout):
            if "--" + opt not in script:
                missing.append("--" + opt)
    assert not missing, "deploy/completion/meshca.bash lacks: " + ", ".join(sorted(set(missing)))


def test_completion_completes():
    """bash itself runs the script: subcommands of a group and options of a command."""
    need("bash", "bash")
    prog = f"""
source {COMPLETION}
t() {{ COMP_WORDS=("$@"); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _meshca; echo "${{COMPREPLY[*]}}"; }}
t meshca service ""
t meshca --json certs list --sta
t meshca revoke 00ff --reason key
"""
    res = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True,
                         text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines == ["add list show update disable enable", "--status", "keyCompromise"], lines


def test_meshcad_8_lists_every_option_and_key():
    res = run([MESHCAD, "--help"], env=base_env())
    assert res.returncode == 0, describe(res)
    documented = man_options(MAN8)
    missing = [f"--{o}" for o in sorted(long_options(res.stdout) - documented)]
    page = MAN8.read_text()
    src = (REPO / "ca" / "common" / "config.c").read_text()
    table = src.split("known_keys[] = {", 1)[1].split("};", 1)[0]
    keys = re.findall(r'^\s*"([a-z_]+)",', table, re.M)
    assert len(keys) > 10, table
    for key in keys:
        if key not in CLI_ONLY_KEYS and not re.search(rf"Ic (?:[a-z_]+ , )*{key}\b", page):
            missing.append(f"key {key}")
    assert not missing, "meshcad.8 lacks: " + ", ".join(missing)


def readme_deploy_blocks():
    """The sh code blocks of README.md's Deploy section."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_readme_deploy_commands_are_sound():
    """Each sh block of README's Deploy section parses (bash -n); every repo
    path it names exists; every option it gives meshca, meshcad or the
    entrypoint is one they accept."""
    blocks = readme_deploy_blocks()
    assert len(blocks) >= 4, "the systemd, credential, Prometheus and container steps"
    help_text = {}
    for prog, argv in (("meshcad", [MESHCAD, "--help"]), ("meshca init", [MESHCA, "init", "--help"])):
        res = run(argv, env=base_env())
        assert res.returncode == 0, describe(res)
        help_text[prog] = long_options(res.stdout) | {"help", "version"}
    for block in blocks:
        res = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, f"bash -n: {res.stderr}\n{block}"
        written = set(re.findall(r">\s*(deploy/[\w./@-]+)", block))
        for path in set(re.findall(r"(?<![\w/.-])(deploy/[\w./@-]+)", block)) - written:
            assert (REPO / path.rstrip(".")).exists(), f"README names {path}, not in the repository"
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            m = re.search(r"\bmeshca init\b(.*)", line)
            if m:
                used = set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]+)", m.group(1).split("#")[0]))
                assert used <= help_text["meshca init"], (used - help_text["meshca init"], line)
    # The files `install` copies to /etc/prometheus are the ones the test validates.
    prom = [b for b in blocks if "/etc/prometheus" in b][0]
    assert "deploy/monitoring/meshca.rules.yml" in prom and "deploy/monitoring/prometheus.yml" in prom
    conf = (REPO / "deploy/monitoring/prometheus.yml").read_text()
    first = blocks[0]
    port = re.search(r"metrics_listen = 127\.0\.0\.1:(\d+)", first).group(1)
    assert f'"127.0.0.1:{port}"' in conf, "README's metrics_listen and prometheus.yml agree"
