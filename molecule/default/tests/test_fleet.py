"""The fleet after the whole chain (site.yml) and the demo's story: every host a member, enforcing
its own signed policy in the home profile, compliant, without drift, with real connections behaving
as the policy says; the default-restrictive baseline takes over at boot; the report is complete."""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import testinfra

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
DEMO = Path(os.environ.get("DISTSEC_DEMO_DIR") or PROJECT / ".cache" / "demo")
HOSTS = {
    "distsec-mirror": ("198.51.100.10", "fd42:d15e:0:1::10"),
    "distsec-mail": ("198.51.100.11", "fd42:d15e:0:1::11"),
    "distsec-web": ("198.51.100.12", "fd42:d15e:0:1::12"),
    "distsec-ws1": ("198.51.100.21", "fd42:d15e:0:1::21"),
    "distsec-ws2": ("198.51.100.22", "fd42:d15e:0:1::22"),
}


def _host(name):
    """The host over SSH with the fleet's key (the inventory's variables are templates testinfra cannot read)."""
    return testinfra.get_host(
        f"ssh://root@{HOSTS[name][0]}",
        ssh_identity_file=str(DEMO / "id_ed25519"),
        ssh_extra_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
    )


@pytest.fixture(scope="module", params=sorted(HOSTS))
def member(request):
    return request.param, _host(request.param)


def _status(host):
    return json.loads(host.check_output("cat /var/lib/distsec/status.json"))


def _connects(host, address, port):
    """One bounded TCP connection attempt from `host` (nc -z, 2 s)."""
    return host.run(f"nc -z -w 2 {address} {port}").rc == 0


def test_member_of_the_domain_with_a_valid_certificate(member):
    name, host = member
    domain = _status(host)["domain"]
    assert domain["enrolled"] is True and domain["state"] == "member" and domain["host"] == name
    assert domain["certificate"]["valid"] is True and domain["certificate"]["revoked"] is False


def test_enforces_its_own_signed_policy_at_home_and_compliant(member):
    name, host = member
    policy = _status(host)["policy"]
    assert policy["domain"] == "demo.distsec.test" and policy["profile"] == "home"
    assert policy["compliant"] is True and all(check["passed"] for check in policy["checks"])
    run = policy["last_run"]
    assert run["host"] == name and run["result"] == "ok" and run["policy"]["source"] in ("stored", "pushed")
    assert run["drift"]["found"] is False or run["drift"]["fixed"] is True
    bundle = json.loads(host.check_output("cat /var/lib/distsec/trust/bundle.json"))
    assert bundle["signed"]["targets"] == {"hosts": [name], "groups": []}, "each host gets a bundle for it"


def test_the_ruleset_in_the_kernel_is_ours_with_the_baseline_first(member):
    _name, host = member
    listing = host.check_output("nft list table inet distsec")
    assert "policy drop" in listing
    for rule in ("baseline-loopback-in", "baseline-established-in", "baseline-icmpv6-in", "baseline-management-in"):
        assert f'comment "{rule}"' in listing


def test_the_default_restrictive_baseline_is_installed_for_boot(member):
    _name, host = member
    assert host.file("/etc/distsec/default-restrictive.nft").is_file
    assert host.run("systemctl is-enabled distsec-default-restrictive.service").stdout.strip() == "enabled"
    assert host.run("nft -c -f /etc/distsec/default-restrictive.nft").rc == 0


def test_other_owners_tables_are_untouched():
    web = _host("distsec-web")
    assert 'comment "owned by someone else"' in web.check_output("nft list table ip docker_like")


def test_real_traffic_follows_the_policy():
    ws1, ws2, web = _host("distsec-ws1"), _host("distsec-ws2"), _host("distsec-web")
    assert _connects(ws1, "198.51.100.12", 80) and _connects(ws1, "fd42:d15e:0:1::12", 443)
    assert not _connects(ws1, "198.51.100.12", 8080), "the web server's admin console is not in the policy"
    assert _connects(ws1, "198.51.100.11", 587), "ws1's mail client was upgraded: mail flows"
    assert _connects(ws2, "fd42:d15e:0:1::11", 143), "ws2 was patched: it is home again"
    assert not _connects(web, "198.51.100.21", 22), "workstations accept SSH from admins only"
    assert _connects(ws1, "198.51.100.10", 80), "the patch mirror serves the site"


def test_the_services_listen_behind_the_firewall():
    web = _host("distsec-web")
    assert _connects(web, "127.0.0.1", 8080), "the console runs; only the firewall keeps ws1 out"


def test_the_story_ran_every_step():
    story = (EPHEMERAL / "story.txt").read_text()
    for step in range(2, 8):
        assert f"== {step}. " in story
    assert "EXPECTED" not in story
    assert "refused: hash-mismatch" in story
    assert "drift.yml exited 2" in story and "drift.yml exited 0" in story


def test_the_report_covers_the_fleet():
    report = json.loads((DEMO / "reports" / "report.json").read_text())
    assert sorted(h["host"] for h in report["hosts"]) == sorted(HOSTS)
    assert report["totals"]["hosts"] == 5
    assert (DEMO / "reports" / "report.html").read_text().count("distsec-ws2") >= 2
    junit = (DEMO / "reports" / "report.junit.xml").read_text()
    assert 'classname="distsec-ws1"' in junit


def test_after_a_reboot_the_baseline_is_in_force_until_the_policy_is_enforced_again(tmp_path):
    """A real restart of the mail server's container: systemd loads the default-restrictive ruleset at
    boot (the kernel forgets the enforced one), then enforce.yml brings the policy back."""
    subprocess.run(["podman", "restart", "-t", "5", "distsec-mail"], check=True, capture_output=True, timeout=120)
    subprocess.run(
        ["podman", "exec", "distsec-mail", "systemctl", "is-system-running", "--wait"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    # podman gives the restarted container a new MAC address (a real reboot keeps it): clear the peers'
    # neighbour caches, or their first packets go to the old address until neighbour discovery notices
    for peer in HOSTS:
        subprocess.run(["podman", "exec", peer, "ip", "neigh", "flush", "all"], capture_output=True, check=False)
    mail, ws1 = _host("distsec-mail"), _host("distsec-ws1")
    for _attempt in range(30):
        if host_up(mail):
            break
        time.sleep(1)
    listing = mail.check_output("nft list table inet distsec")
    assert "baseline-management-in" in listing
    assert "mail-in" not in listing, "at boot only the restrictive baseline is loaded"
    assert not _connects(ws1, "198.51.100.11", 587), "the restrictive baseline admits no mail"

    _enforce("distsec-mail", tmp_path)
    assert _connects(ws1, "198.51.100.11", 587), "enforced again: mail is accepted"


def _enforce(limit, report_dir, *extra):
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", DISTSEC_DEMO_DIR=str(DEMO))
    argv = ["ansible-playbook", "-i", str(PROJECT / "inventories" / "demo" / "hosts.yml")]
    argv += [str(PROJECT / "playbooks" / "enforce.yml"), "-l", limit, "-e", f"distsec_report_dir={report_dir}", *extra]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def test_an_expired_policy_is_kept_for_the_grace_period_then_the_restrictive_policy_takes_over(tmp_path):
    """The mirror's bundle, evaluated as of 12 h and then 2 days after it expires (grace 1d)."""
    mirror, ws1 = _host("distsec-mirror"), _host("distsec-ws1")
    bundle = json.loads(mirror.check_output("cat /var/lib/distsec/trust/bundle.json"))
    expires = calendar.timegm(time.strptime(bundle["signed"]["expires"], "%Y-%m-%dT%H:%M:%SZ"))
    try:
        _enforce("distsec-mirror", tmp_path, "-e", f"enforce_now={_iso(expires + 12 * 3600)}")
        run = _status(mirror)["policy"]["last_run"]
        assert run["policy"]["expired"] is True and run["policy"]["in_grace"] is True
        assert run["profile"]["name"] == "foreign", "within the grace period the policy's expired_profile applies"
        assert run["policy"]["source"] == "stored"

        _enforce("distsec-mirror", tmp_path, "-e", f"enforce_now={_iso(expires + 2 * 86400)}")
        run = _status(mirror)["policy"]["last_run"]
        assert run["policy"]["source"] == "default-restrictive" and run["policy"]["rejected"] is None
        assert run["policy"]["expired"] is True and run["policy"]["in_grace"] is False
        listing = mirror.check_output("nft list table inet distsec")
        assert "mirror-in" not in listing and "baseline-management-in" in listing
        assert not _connects(ws1, "198.51.100.10", 80), "the default-restrictive policy admits no packages"
    finally:
        _enforce("distsec-mirror", tmp_path)  # the host's clock: the signed policy again
    assert _status(mirror)["policy"]["last_run"]["policy"]["source"] == "stored"
    assert _connects(ws1, "198.51.100.10", 80)


def test_the_workstations_audit_themselves_with_a_systemd_timer():
    """The host-local audit under real systemd: clean, then a rule added by hand leaves the service failed
    and the host's Security Status says which rule drifted; the audit itself never changes the firewall."""
    ws1 = _host("distsec-ws1")
    assert ws1.run("systemctl is-enabled distsec-audit.timer").stdout.strip() == "enabled"
    assert ws1.run("systemctl is-active distsec-audit.timer").stdout.strip() == "active"
    assert _host("distsec-web").run("systemctl is-enabled distsec-audit.timer").stdout.strip() != "enabled"

    clean = ws1.run("systemctl start distsec-audit.service")
    assert clean.rc == 0, clean.stderr
    assert _status(ws1)["policy"]["last_run"]["mode"] == "audit"
    ws1.check_output("nft add rule inet distsec input tcp dport 9999 accept")
    try:
        found = ws1.run("systemctl start distsec-audit.service")
        assert found.rc != 0, "drift leaves the service failed"
        assert ws1.run("systemctl is-failed distsec-audit.service").stdout.strip() == "failed"
        run = _status(ws1)["policy"]["last_run"]
        assert run["mode"] == "audit" and run["drift"]["found"] is True
        assert "input: ?: tcp dport 9999 accept" in run["drift"]["rules"]
        journal = ws1.check_output("journalctl -u distsec-audit.service -n 20 --no-pager")
        assert "tcp dport 9999 accept" in journal
        assert "dport 9999" in ws1.check_output("nft list table inet distsec"), "an audit changes nothing"
    finally:
        ws1.run(
            "nft -a list chain inet distsec input | awk '/dport 9999/ {print $NF}' | xargs -r -n1 nft delete rule inet distsec input handle"
        )
        ws1.run("systemctl reset-failed distsec-audit.service")
    assert ws1.run("systemctl start distsec-audit.service").rc == 0


def host_up(host):
    try:
        return host.run("true").rc == 0
    except Exception:  # noqa: BLE001 - the connection is not up yet
        return False
