"""distsec.framework.bundle_sign (action) run by real ansible-playbook: signing, idempotence, check mode."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from play_helpers import run_play

from ansible_collections.distsec.framework.plugins.plugin_utils._cli import main as cli

BIN = Path(sys.executable).parent
TOP = Path(__file__).resolve().parents[4]
MAIL = TOP / "docs" / "examples" / "mail-client" / "policy.yml"  # domain example.org


def distsec(*argv):
    try:
        return cli([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def keys(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISTSEC_KEY_PASSPHRASE", raising=False)
    path = tmp_path / "keys"
    assert distsec("keys", "init", "--dir", path, "--domain", "example.org") == 0
    capsys.readouterr()
    return path


def _sign(keys, dest, src=MAIL, **extra):
    args = {"keys": str(keys), "src": str(src), "expires": "7d", "dest": str(dest), **extra}
    return {"distsec.framework.bundle_sign": args, "ignore_errors": True}


def _verify(bundle, keys, state):
    return distsec("bundle", "verify", bundle, "--trust", keys / "root.json", "--state", state, "--host", "ws1")


def test_sign_then_idempotent_and_hosts_accept_it(tmp_path, keys, capsys):
    dest = tmp_path / "out" / "policy.bundle.json"
    first, second = run_play(tmp_path, [_sign(keys, dest), _sign(keys, dest)])
    assert first["changed"] is True and first["serial"] == 1 and first["reason"] == "signed serial 1"
    assert first["domain"] == "example.org" and first["targets"] == {"hosts": [], "groups": []}
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert (keys / "serial").read_text().strip() == "1"
    assert second["changed"] is False and second["serial"] == 1 and "holds this bundle already" in second["reason"]
    assert second["manifest_sha256"] == first["manifest_sha256"]
    assert _verify(dest, keys, tmp_path / "state") == 0
    assert capsys.readouterr().out.strip() == "1"


def test_check_mode_writes_nothing(tmp_path, keys):
    dest = tmp_path / "policy.bundle.json"
    (checked,) = run_play(tmp_path, [_sign(keys, dest)], check=True)
    assert checked["changed"] is True and checked["serial"] == 1
    assert not dest.exists() and not (keys / "serial").exists()


def test_a_changed_policy_or_a_renewal_signs_the_next_serial(tmp_path, keys):
    dest = tmp_path / "policy.bundle.json"
    other = tmp_path / "policy.yml"
    other.write_text(MAIL.read_text().replace("description:", "description: changed -", 1))
    results = run_play(
        tmp_path,
        [
            _sign(keys, dest),
            _sign(keys, dest, src=other),
            _sign(keys, dest, src=other, renew_before="8d"),  # less than 8 days left of 7: renew
            _sign(keys, dest, src=other, targets=["group:workstations"]),
        ],
    )
    assert [r["serial"] for r in results] == [1, 2, 3, 4]
    assert all(r["changed"] for r in results)
    assert "replacing serial 3" in results[3]["reason"]
    assert results[3]["targets"] == {"hosts": [], "groups": ["workstations"]}


def test_an_explicit_serial_is_kept_and_never_reused_for_other_content(tmp_path, keys):
    dest = tmp_path / "policy.bundle.json"
    other = tmp_path / "policy.yml"
    other.write_text(MAIL.read_text().replace("description:", "description: changed -", 1))
    first, again, reused = run_play(
        tmp_path,
        [_sign(keys, dest, serial=5), _sign(keys, dest, serial=5), _sign(keys, dest, src=other, serial=5)],
    )
    assert first["changed"] is True and first["serial"] == 5
    assert again["changed"] is False and again["serial"] == 5
    assert reused["failed"] and "serial-reuse" in reused["msg"]
    assert json.loads(dest.read_text())["signed"]["serial"] == 5


def test_bad_arguments_are_clear_errors(tmp_path, keys):
    dest = tmp_path / "policy.bundle.json"
    bad = tmp_path / "bad.yml"
    bad.write_text("psl: 1\ndomain: example.org\nrules: 3\n")
    results = run_play(
        tmp_path,
        [
            _sign(keys, dest, expires="soon"),
            _sign(keys, dest, colour="blue"),
            _sign(tmp_path / "nokeys", dest),
            _sign(keys, dest, src=bad),
            _sign(keys, dest, targets=["rack:7"]),
        ],
    )
    assert all(r["failed"] for r in results)
    assert "is not a duration" in results[0]["msg"]
    assert "Invalid options" in results[1]["msg"] and "colour" in results[1]["msg"]
    assert "distsec keys init" in results[2]["msg"]
    assert results[3]["msg"].startswith("invalid PSL policy") and results[3]["problems"]
    assert "--target" in results[4]["msg"] or "rack:7" in results[4]["msg"]
    assert not dest.exists()


def test_per_host_bundles_stay_idempotent_until_a_wider_bundle_is_signed(tmp_path, keys):
    """publish.yml signs one bundle per host: host b's signing must not make host a's bundle stale."""
    a, b = tmp_path / "a.bundle.json", tmp_path / "b.bundle.json"
    first = run_play(
        tmp_path,
        [
            _sign(keys, a, host="ws-a", groups=["workstations"]),
            _sign(keys, b, host="ws-b", groups=["workstations"]),
            _sign(keys, a, host="ws-a", groups=["workstations"]),
            _sign(keys, b, host="ws-b", groups=["workstations"]),
        ],
    )
    assert [r["serial"] for r in first] == [1, 2, 1, 2]
    assert [r["changed"] for r in first] == [True, True, False, False]
    assert first[0]["targets"] == {"hosts": ["ws-a"], "groups": []}
    records = json.loads((keys / "signed-targets.json").read_text())
    assert records == {"host:ws-a": 1, "host:ws-b": 2}

    # a bundle for a group may have reached ws-a with a higher serial: ws-a's own must be re-signed above it
    group = run_play(tmp_path, [_sign(keys, tmp_path / "g.json", targets=["group:workstations"])])[0]
    assert group["serial"] == 3
    again = run_play(tmp_path, [_sign(keys, a, host="ws-a", groups=["workstations"])])[0]
    assert again["changed"] is True and again["serial"] == 4
    assert json.loads((keys / "signed-targets.json").read_text())["host:ws-a"] == 4


def test_parallel_forks_sign_distinct_serials_under_the_lock(tmp_path, keys):
    import subprocess

    script = (
        "import sys; from ansible_collections.distsec.framework.plugins.plugin_utils._cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )

    def sign(i):
        argv = ["bundle", "sign", "--keys", str(keys), "--expires", "7d", "--host", f"ws{i}"]
        argv += ["--out", str(tmp_path / f"ws{i}.json"), str(MAIL)]
        return subprocess.Popen([sys.executable, "-c", script, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = [sign(i) for i in range(6)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    serials = sorted(json.loads((tmp_path / f"ws{i}.json").read_text())["signed"]["serial"] for i in range(6))
    assert serials == [1, 2, 3, 4, 5, 6]
    assert (keys / "serial").read_text().strip() == "6"
    assert json.loads((keys / "signed-targets.json").read_text()) == {
        f"host:ws{i}": json.loads((tmp_path / f"ws{i}.json").read_text())["signed"]["serial"] for i in range(6)
    }
