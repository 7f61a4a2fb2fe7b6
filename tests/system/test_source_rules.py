"""Source rules of STYLE.md that a machine can check (curl's checksrc, in small):
no strcpy, strcat, sprintf, vsprintf, atoi, atol, gets or strtok in any C file of
the project.  Each has a bounded or checked replacement (snprintf, mca_buf,
strtoll with an end pointer, strtok_r)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
C_DIRS = ("ca", "api", "db", "cli", "tests")
BANNED = re.compile(r"\b(strcpy|strcat|sprintf|vsprintf|atoi|atol|atoll|gets|strtok)\s*\(")
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\\n])*"')


def offenders(root):
    """(path, line, function) for every banned call in C files under root."""
    found = []
    for d in C_DIRS:
        for path in sorted((root / d).rglob("*.[ch]")):
            if any(part.startswith("build") for part in path.relative_to(root).parts):
                continue
            text = path.read_text(errors="replace")
            # Comments and string literals may name them; code may not.
            code = STRING.sub('""', COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text))
            for no, line in enumerate(code.splitlines(), 1):
                for m in BANNED.finditer(line):
                    found.append((str(path.relative_to(root)), no, m.group(1)))
    return found


def test_no_banned_functions():
    bad = offenders(REPO)
    assert not bad, "banned functions (STYLE.md, Memory and secrets): " + ", ".join(
        f"{p}:{n} {f}()" for p, n, f in bad)


def test_the_check_finds_them(tmp_path):
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "x.c").write_text(
        '/* strcpy( in a comment is fine */\n'
        'static const char *s = "atoi(";\n'
        'int f(char *d, const char *s2) { snprintf(d, 4, "%s", s2); return atoi(s2); }\n'
        'void g(char *d) { strcpy (d, "x"); }\n')
    assert offenders(tmp_path) == [("api/x.c", 3, "atoi"), ("api/x.c", 4, "strcpy")]
