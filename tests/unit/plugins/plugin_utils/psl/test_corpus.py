"""The PSL conformance corpus: corpus/valid and corpus/invalid, run through load_policy and the CLI.

A case is one file (corpus/KIND/NAME.yml) or a folder (corpus/KIND/NAME/main.yml plus the files
it includes). Expected problems are written in the leading comment block of a file:

    # expect: LINE:COL: error: SUBSTRING
    # expect: OTHER.yml:LINE:COL: warning: SUBSTRING

LINE:COL are 1-based and refer to the file holding the comment unless a file name is given. An
invalid case must raise PslError whose problems include every expectation (file basename, line,
column, severity and substring). A valid case must load without errors, have exactly the
expected warnings, compile, and pass its own `tests:`.

Some cases cannot be committed as text (binary files, non-UTF-8, files over the size cap); they
are written into tmp_path at test time, below.
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from ansible_collections.distsec.framework.plugins.plugin_utils import _cli
from ansible_collections.distsec.framework.plugins.plugin_utils._psl import loader
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.problems import Problem, PslError
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.testing import StatusError, load_status, run_tests

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECT = re.compile(
    r"^# expect: (?:(?P<file>[^\s:]+\.ya?ml):)?(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning): (?P<text>\S.*)$"
)
CLI_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning): (?P<text>.+)$")
MIN_VALID, MIN_INVALID = 25, 40


@dataclass(frozen=True)
class Expect:
    file: str  # basename
    line: int
    col: int
    severity: str
    text: str

    def matches(self, problem: Problem) -> bool:
        return (
            problem.loc is not None
            and os.path.basename(problem.loc.file) == self.file
            and (problem.loc.line, problem.loc.col) == (self.line, self.col)
            and problem.severity == self.severity
            and self.text in problem.message
        )

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.text}"


@dataclass(frozen=True)
class Case:
    name: str
    main: Path
    files: Tuple[Path, ...]

    @property
    def expectations(self) -> List[Expect]:
        out: List[Expect] = []
        for path in self.files:
            out.extend(_expectations(path))
        return out


def _expectations(path: Path) -> List[Expect]:
    """The `# expect:` lines of a file's leading comment block (a stray one elsewhere is an error)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    leading = 0
    while leading < len(lines) and lines[leading].startswith("#"):
        leading += 1
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith("# expect"):
            continue
        found = EXPECT.match(line)
        if not found or number > leading:
            raise AssertionError(f"{path}:{number}: malformed or misplaced expectation: {line!r}")
        out.append(
            Expect(
                found["file"] or path.name,
                int(found["line"]),
                int(found["col"]),
                found["severity"],
                found["text"],
            )
        )
    return out


def _cases(kind: str) -> List[Case]:
    root = CORPUS / kind
    out = []
    for entry in sorted(root.iterdir()):
        if entry.is_file() and entry.suffix == ".yml":
            out.append(Case(entry.stem, entry, (entry,)))
        elif entry.is_dir():
            main = entry / "main.yml"
            assert main.is_file(), f"{entry}: a multi-file case needs a main.yml"
            out.append(Case(entry.name, main, tuple(sorted(entry.rglob("*.yml")))))
    return out


VALID = _cases("valid")
INVALID = _cases("invalid")


def _ids(cases: List[Case]) -> List[str]:
    return [c.name for c in cases]


def _render(problems: List[Problem]) -> str:
    return "\n".join(f"    {p}" for p in problems) or "    (none)"


# ---- the corpus itself --------------------------------------------------------------------------


def test_the_corpus_is_big_enough_and_well_formed():
    assert len(VALID) >= MIN_VALID, f"only {len(VALID)} valid cases"
    assert len(INVALID) >= MIN_INVALID, f"only {len(INVALID)} invalid cases"
    for cases in (VALID, INVALID):  # NAME.yml and a folder NAME/ would give two cases the same id
        names = _ids(cases)
        assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for case in INVALID:
        assert any(e.severity == "error" for e in case.expectations), f"{case.main}: no '# expect: ... error:' line"
        for expect in case.expectations:
            assert any(f.name == expect.file for f in case.files), f"{case.main}: {expect} names no file of the case"
    for case in VALID:
        assert all(e.severity == "warning" for e in case.expectations), f"{case.main}: a valid case expects errors"


def test_expectation_lines_are_parsed(tmp_path):
    policy = tmp_path / "x.yml"
    policy.write_text("# expect: 3:5: error: unknown key 'a b'\n# expect: y.yml:1:1: warning: w\npsl: 1\n")
    assert _expectations(policy) == [
        Expect("x.yml", 3, 5, "error", "unknown key 'a b'"),
        Expect("y.yml", 1, 1, "warning", "w"),
    ]
    policy.write_text("psl: 1\n# expect: 3:5: error: too late\n")
    with pytest.raises(AssertionError, match="misplaced"):
        _expectations(policy)


# ---- valid cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_valid_case(case: Case):
    try:
        policy = load_policy([str(case.main)])
    except PslError as exc:
        pytest.fail(f"{case.main} must be valid, but:\n{_render(exc.problems.sorted())}")
    warnings = policy.problems.warnings
    assert not policy.problems.errors
    expected = case.expectations
    missing = [e for e in expected if not any(e.matches(w) for w in warnings)]
    unexpected = [w for w in warnings if not any(e.matches(w) for e in expected)]
    assert not missing, "expected warnings not reported:\n" + "\n".join(f"    {e}" for e in missing)
    assert not unexpected, "warnings not declared with '# expect:':\n" + _render(unexpected)

    compiled = compile_policy(policy)
    assert isinstance(compiled, dict)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", compiled["hash"])
    assert compile_policy(policy)["hash"] == compiled["hash"], "compiling twice must give the same hash"
    again = load_policy([str(case.main)])
    assert compile_policy(again)["hash"] == compiled["hash"], "loading twice must give the same hash"

    results = run_tests(policy)
    assert len(results) == len(policy.tests)
    failed = [f"  {r.name} ({r.origin}):\n    " + "\n    ".join(r.failures) for r in results if not r.passed]
    assert not failed, "policy tests failed:\n" + "\n".join(failed)


def test_valid_cases_exercise_tests_sections():
    with_tests = [c for c in VALID if load_policy([str(c.main)]).tests]
    assert len(with_tests) >= 20


# ---- invalid cases -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", INVALID, ids=_ids(INVALID))
def test_invalid_case(case: Case):
    with pytest.raises(PslError) as caught:
        load_policy([str(case.main)])
    problems = caught.value.problems.sorted()
    assert caught.value.problems.errors, "a PslError must carry at least one error"
    assert str(caught.value) == str(caught.value.problems.errors[0])
    missing = [e for e in case.expectations if not any(e.matches(p) for p in problems)]
    assert not missing, (
        "expected problems not reported:\n"
        + "\n".join(f"    {e}" for e in missing)
        + "\n  reported:\n"
        + _render(problems)
    )


# ---- cases generated at test time ----------------------------------------------------------------


def _only_problem(path: Path, *, contains: str, at: Optional[Tuple[int, int]] = (1, 1)) -> Problem:
    with pytest.raises(PslError) as caught:
        load_policy([str(path)])
    problems = caught.value.problems.sorted()
    matching = [p for p in problems if contains in p.message and p.severity == "error"]
    assert matching, f"no error containing {contains!r}:\n{_render(problems)}"
    problem = matching[0]
    assert problem.loc is not None
    if at is not None:
        assert (problem.loc.line, problem.loc.col) == at, str(problem)
    return problem


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 4,
        b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64,
        b"psl: 1\ndomain: example.org\x00\n",
        "psl: 1\ndomain: example.org\n".encode("utf-16"),
    ],
    ids=["all-bytes", "elf-header", "nul-in-text", "utf-16"],
)
def test_binary_garbage(tmp_path, data):
    path = tmp_path / "garbage.yml"
    path.write_bytes(data)
    _only_problem(path, contains="binary file")


@pytest.mark.parametrize(
    ("data", "at", "byte"),
    [
        (b"# expect nothing\npsl: 1\ndomain: caf\xe9.example.org\n", (3, 12), "0xe9"),
        (b"psl: 1\ndomain: example.org\n# Latin-1 in a comment: \xa9 2026\n", (3, 25), "0xa9"),
        (b"\xff\xfepsl: 1\n", (1, 1), "0xff"),
        (b"psl: 1\ndomain: \xe2\x82", (2, 9), "0xe2"),  # truncated multi-byte sequence at the end
    ],
    ids=["latin1-value", "latin1-comment", "bad-first-byte", "truncated-sequence"],
)
def test_not_utf8(tmp_path, data, at, byte):
    path = tmp_path / "latin1.yml"
    path.write_bytes(data)
    problem = _only_problem(path, contains="not UTF-8 text", at=at)
    assert byte in problem.message


@pytest.mark.parametrize(
    "data", [b"", b"\n", b"   \n\t\n", b"\r\n\r\n"], ids=["zero-bytes", "newline", "blanks", "crlf"]
)
def test_empty_file(tmp_path, data):
    path = tmp_path / "empty.yml"
    path.write_bytes(data)
    _only_problem(path, contains="empty")


def test_file_over_the_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 64)
    small = tmp_path / "small.yml"
    small.write_text("psl: 1\ndomain: example.org\n")
    assert load_policy([str(small)]).domain == "example.org"
    big = tmp_path / "big.yml"
    big.write_text("psl: 1\ndomain: example.org\ndescription: " + "x" * 200 + "\n")
    problem = _only_problem(big, contains="PSL files are limited to 64 bytes")
    assert f"the file is {big.stat().st_size} bytes" in problem.message


def test_included_file_over_the_size_cap_is_located_in_it(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 64)
    (tmp_path / "main.yml").write_text("psl: 1\ndomain: example.org\ninclude: big.yml\n")
    (tmp_path / "big.yml").write_text("psl: 1\ndescription: " + "x" * 100 + "\n")
    problem = _only_problem(tmp_path / "main.yml", contains="limited to 64 bytes")
    assert os.path.basename(problem.loc.file) == "big.yml"


def test_policy_over_the_total_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_TOTAL_BYTES", 100)
    names = [f"part{i}.yml" for i in range(4)]
    (tmp_path / "main.yml").write_text(f"psl: 1\ndomain: example.org\ninclude: [{', '.join(names)}]\n")
    for name in names:
        (tmp_path / name).write_text("psl: 1\ndescription: twenty-five bytes\n")
    _only_problem(tmp_path / "main.yml", contains="larger than 100 bytes in all")


def test_include_depth_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_INCLUDE_DEPTH", 3)
    (tmp_path / "f0.yml").write_text("psl: 1\ndomain: example.org\ninclude: f1.yml\n")
    for i in range(1, 6):
        (tmp_path / f"f{i}.yml").write_text(f"psl: 1\ninclude: f{i + 1}.yml\n" if i < 5 else "psl: 1\n")
    problem = _only_problem(tmp_path / "f0.yml", contains="includes nested deeper than 3 files", at=(2, 10))
    assert os.path.basename(problem.loc.file) == "f2.yml"


def test_file_count_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_FILES", 3)
    names = [f"part{i}.yml" for i in range(5)]
    (tmp_path / "main.yml").write_text(f"psl: 1\ndomain: example.org\ninclude: [{', '.join(names)}]\n")
    for name in names:
        (tmp_path / name).write_text("psl: 1\n")
    _only_problem(tmp_path / "main.yml", contains="at most 3 files", at=None)


def test_a_directory_and_a_missing_path(tmp_path):
    _only_problem(tmp_path, contains="this is a directory")
    _only_problem(tmp_path / "nope.yml", contains="no such file")


def test_byte_order_mark_and_crlf_are_accepted(tmp_path):
    bom = tmp_path / "bom.yml"
    bom.write_bytes(b"\xef\xbb\xbfpsl: 1\r\ndomain: example.org\r\n")
    assert load_policy([str(bom)]).domain == "example.org"
    crlf = tmp_path / "crlf.yml"
    crlf.write_bytes(b"psl: 1\r\ndomain: example.org\r\nrulez: []\r\n")
    _only_problem(crlf, contains="unknown key 'rulez'", at=(3, 1))


def test_alias_bomb_is_refused_quickly(tmp_path):
    """Nine levels of ten aliases would be 10**9 nodes if expanded."""
    lines = ["psl: 1", "domain: example.org", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yml"
    path.write_text("\n".join(lines) + "\n")
    _only_problem(path, contains="and aliases are not allowed in PSL", at=(3, 5))


def test_loading_again_and_again_does_not_grow_memory(tmp_path):
    """A controller loads policies for every run; nothing of a loaded policy may stay alive."""
    path = tmp_path / "big.yml"
    objects = "".join(f"    net{i}: [2001:db8:{i:x}::/48, 10.{i // 256}.{i % 256}.0/24]\n" for i in range(1500))
    path.write_text(f"psl: 1\ndomain: example.org\nobjects:\n  addresses:\n{objects}")
    load_policy([str(path)])
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _load in range(3):
            assert load_policy([str(path)]).domain == "example.org"
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 512 * 1024, (
        f"{grown // 1024} KiB still allocated after 3 loads of a {path.stat().st_size // 1024} KiB policy"
    )


def test_deeply_nested_condition_is_a_problem_not_a_crash(tmp_path):
    path = tmp_path / "deep.yml"
    depth = 1000  # an expression of 2,004 characters, under the 4,096 limit
    path.write_text(
        f"psl: 1\ndomain: example.org\nselect:\n  - {{profile: foreign, when: '{'[' * depth}{']' * depth} == 1'}}\n"
    )
    _only_problem(path, contains="nested deeper than", at=(4, 30))


@pytest.mark.parametrize(
    "content",
    [b"[" * 5000 + b"]" * 5000, b'{"a": ' * 5000 + b"1" + b"}" * 5000, b"\xff\xfe{}", b"[1, 2]", b"{", b""],
    ids=["deep-list", "deep-object", "not-utf8", "not-an-object", "truncated", "empty"],
)
def test_bad_status_files_are_reported_not_raised(tmp_path, content, capsys):
    """A broken status_file fails that policy test (or the CLI command) with a message; nothing crashes."""
    (tmp_path / "status.json").write_bytes(content)
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "psl: 1\ndomain: example.org\ntests:\n  - {name: t, status_file: status.json, expect: {profile: home}}\n"
    )
    with pytest.raises(StatusError):
        load_status(str(tmp_path / "status.json"))
    (result,) = run_tests(load_policy([str(policy)]))
    assert not result.passed and "status.json" in result.failures[0]
    code = _cli_main(["psl", "compile", str(policy), "--status", str(tmp_path / "status.json")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "internal error" not in err and "status.json" in err


# ---- the command line ----------------------------------------------------------------------------


def _cli_main(argv: List[str]) -> int:
    try:
        return _cli.main(argv)
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code or 0)


@pytest.mark.parametrize("case", INVALID, ids=_ids(INVALID))
def test_cli_validate_reports_invalid_case(case: Case, capsys):
    code = _cli_main(["psl", "validate", str(case.main)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    assert code == 1, err
    assert out == ""
    lines = err.splitlines()
    assert lines[-1].startswith("distsec: error: ") and lines[-1].endswith("the policy is not valid")
    reported = []
    for line in lines[:-1]:
        found = CLI_LINE.match(line)
        assert found or line.startswith("<policy>: "), f"not PATH:LINE:COL: SEVERITY: MESSAGE: {line!r}"
        if found:
            reported.append(found)
    for expect in case.expectations:
        assert any(
            os.path.basename(r["path"]) == expect.file
            and (int(r["line"]), int(r["col"])) == (expect.line, expect.col)
            and r["severity"] == expect.severity
            and expect.text in r["text"]
            for r in reported
        ), f"{expect} not on stderr:\n{err}"
    if case.main.parent == CORPUS / "invalid":
        assert any(r["path"] == str(case.main) for r in reported), "problems name the file as it was given"


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_cli_validate_accepts_valid_case(case: Case, capsys):
    code = _cli_main(["psl", "validate", str(case.main)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{case.main}: valid PSL for domain example.org" in out
    assert "error:" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["psl", "validate"],
        ["psl", "validate", "--no-such-flag", "x.yml"],
        ["psl", "nosuch", "x.yml"],
        ["psl", "explain", "x.yml"],  # --flow is required
        ["psl"],
    ],
    ids=["no-path", "bad-flag", "bad-command", "missing-required-option", "no-command"],
)
def test_cli_usage_errors_exit_2(argv, capsys):
    assert _cli_main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_bad_now_is_a_usage_error(capsys):
    policy = str(CORPUS / "valid" / "minimal.yml")
    code = _cli_main(["psl", "explain", policy, "--flow", "tcp 192.0.2.1 -> 192.0.2.2:443 out", "--now", "yesterday"])
    assert code == 2
    assert "--now" in capsys.readouterr().err


def _distsec() -> Path:
    exe = Path(sys.executable).parent / "distsec"
    if not exe.exists():
        pytest.skip("distsec is installed by tools/venv.sh; run the tests from .venv")
    return exe


@pytest.mark.parametrize(
    "name", ["unknown_key_top", "prefix_v6_129", "yaml_alias_bomb", "check_schema_error"], ids=lambda n: n
)
def test_installed_cli_exit_1_with_located_problems(name):
    case = next(c for c in INVALID if c.name == name)
    proc = subprocess.run(
        [str(_distsec()), "psl", "validate", str(case.main)], capture_output=True, text=True, check=False, timeout=60
    )
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1, proc.stderr
    for expect in case.expectations:
        prefix = f"{case.main}:{expect.line}:{expect.col}: {expect.severity}: "
        assert any(line.startswith(prefix) and expect.text in line for line in proc.stderr.splitlines()), proc.stderr


def test_installed_cli_valid_and_usage():
    exe = str(_distsec())
    valid = str(CORPUS / "valid" / "includes" / "main.yml")
    proc = subprocess.run([exe, "psl", "validate", valid], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "valid PSL for domain example.org (3 file(s)" in proc.stdout
    proc = subprocess.run([exe, "psl", "test", valid], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 0 failed" in proc.stdout
    proc = subprocess.run([exe, "psl", "validate"], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
