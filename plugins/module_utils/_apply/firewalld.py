# PRIVATE: the firewall module's firewalld backend (stdlib only, no Ansible import).
#
# distsec owns the files policies/distsec-*.xml and ipsets/distsec-*.xml in firewalld's
# configuration directory (the permanent configuration) and nothing else:
#   validate  copies the configuration directory, puts our files in the copy and runs
#             `firewall-offline-cmd --system-config COPY --check-config`, then lists the copy's
#             policies to make sure firewalld kept every rich rule (it drops some bad ones with
#             only a warning);
#   apply     validates, writes our files atomically (one by one), deletes our stale files and,
#             when the daemon runs, `firewall-cmd --reload`. A failed reload puts the old files
#             back and reloads again. Without a running daemon the files are what is applied.
# Reload and atomicity (firewalld 1.3, nftables backend): `--reload` first checks the on-disk
# configuration and refuses a bad one without touching the runtime; then it installs its
# temporary drop table (new connections are dropped, established ones pass), rebuilds its
# `inet firewalld` table in a few nft transactions and removes the drop table. Packets never see
# a half-built firewall, but new connections arriving during the reload are dropped.
from __future__ import annotations

import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import (
    Artefacts,
    Backend,
    BackendError,
    Runner,
    atomic_write,
)
from ansible_collections.distsec.framework.plugins.module_utils._render.firewalld import render

__all__ = ["FirewalldBackend", "parse_listing", "rich_rules_of"]

_DIRS = ("policies", "ipsets")
_OURS = re.compile(r"^(policies|ipsets)/distsec-[A-Za-z0-9_.:\-]{1,40}\.xml$")
_COMMENT_ID = re.compile(r"^\s*rule: (\S+)\s*$")
_PRIORITY = re.compile(r'^rule priority="(-?[0-9]+)"')
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"")
_LIMIT_UNITS = {"second": "s", "minute": "m", "hour": "h", "day": "d"}


# ---- rich rules, as firewalld prints them ------------------------------------------------------
def _limit(elem: Optional[ET.Element]) -> str:
    if elem is None:
        return ""
    value = elem.get("value", "")
    rate, _sep, unit = value.partition("/")
    return f' limit value="{rate}/{_LIMIT_UNITS.get(unit, unit)}"'


def _rich_text(rule: ET.Element) -> str:
    """A <rule> element as firewalld's `--list-rich-rules` prints it (firewalld 1.3 Rich_Rule.__str__)."""
    words = "rule"
    priority = rule.get("priority")
    if priority and priority.lstrip("-").isdigit() and int(priority) != 0:
        words += f' priority="{int(priority)}"'
    if rule.get("family"):
        words += f' family="{rule.get("family")}"'
    for name in ("source", "destination"):
        end = rule.find(name)
        if end is not None:
            invert = " NOT" if end.get("invert", "").lower() in ("true", "yes") else ""
            for key in ("address", "mac", "ipset"):
                if end.get(key) is not None:
                    words += f' {name}{invert} {key}="{end.get(key)}"'
                    break
    for child in rule:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in ("service", "icmp-block", "icmp-type"):
            words += f' {tag} name="{child.get("name")}"'
        elif tag in ("port", "source-port"):
            words += f' {tag} port="{child.get("port")}" protocol="{child.get("protocol")}"'
        elif tag == "protocol":
            words += f' protocol value="{child.get("value")}"'
        elif tag in ("masquerade", "tcp-mss-clamp", "forward-port"):
            words += " " + tag + "".join(f' {k}="{v}"' for k, v in sorted(child.attrib.items()))
    for child in rule:
        if child.tag in ("log", "nflog"):
            words += f" {child.tag}"
            for key in ("group", "prefix", "level", "queue-size"):
                if child.get(key):
                    words += f' {key}="{child.get(key)}"'
            words += _limit(child.find("limit"))
    audit = rule.find("audit")
    if audit is not None:
        words += " audit" + _limit(audit.find("limit"))
    for action in ("accept", "reject", "drop", "mark"):
        elem = rule.find(action)
        if elem is not None:
            words += f" {action}"
            if action == "reject" and elem.get("type"):
                words += f' type="{elem.get("type")}"'
            if action == "mark":
                words += f" set={elem.get('set')}"
            words += _limit(elem.find("limit"))
    return words


def _parse(text: str, what: str) -> ET.Element:
    """Parse firewalld XML (root-owned files or our own output), comments kept; no DTD at all."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise BackendError(f"{what} has a DTD or entities; firewalld files never need them")
    try:
        parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))  # noqa: S314 - see above
        return ET.fromstring(text, parser=parser)  # noqa: S314 - no DTD, so no entity expansion
    except ET.ParseError as exc:
        raise BackendError(f"{what} is not valid XML", detail=str(exc)) from None


def _sort_key(text: str) -> int:
    match = _PRIORITY.match(text)
    return int(match.group(1)) if match else 0


def rich_rules_of(text: str) -> Tuple[str, List[Tuple[Optional[str], str]]]:
    """(target, [(rule id or None, rich rule text)] in effective order) of one policy file."""
    root = _parse(text, "a firewalld policy file")
    rules: List[Tuple[Optional[str], str]] = []
    rule_id: Optional[str] = None
    for child in root:
        if child.tag is ET.Comment:
            match = _COMMENT_ID.match(child.text or "")
            rule_id = match.group(1).replace("+", "") if match else None
        elif child.tag == "rule":
            rules.append((rule_id, _rich_text(child)))
            rule_id = None
    rules.sort(key=lambda item: _sort_key(item[1]))
    return root.get("target", "CONTINUE"), rules


def parse_listing(text: str) -> Dict[str, Tuple[str, List[str]]]:
    """{policy: (target, [rich rule text])} from `firewall-cmd --list-all-policies`."""
    policies: Dict[str, Tuple[str, List[str]]] = {}
    name = None
    target = "CONTINUE"
    in_rich = False
    for raw in text.splitlines():
        if raw and not raw[0].isspace():
            name = raw.split()[0]
            target, in_rich = "CONTINUE", False
            policies[name] = (target, [])
            continue
        line = raw.strip()
        if name is None or not line:
            in_rich = False
            continue
        if line.startswith("target:"):
            target = line.split(":", 1)[1].strip()
            policies[name] = (target, policies[name][1])
        elif line.startswith("rich rules:"):
            in_rich = True
        elif in_rich and line.startswith("rule"):
            policies[name][1].append(line)
        else:
            in_rich = False
    return {n: (t, sorted(r, key=_sort_key)) for n, (t, r) in policies.items()}


def _policy_name(path: str) -> str:
    return os.path.basename(path)[: -len(".xml")]


def _normalise(files: Dict[str, str]) -> str:
    out = []
    for path, text in sorted(files.items()):
        out.append(f"# FILE: {path}")
        out.extend(line.rstrip() for line in text.splitlines())
    return "\n".join(out) + "\n" if out else ""


class FirewalldBackend(Backend):
    """Our firewalld policies and ipsets through the Backend contract (see backend.py)."""

    name = "firewalld"

    def __init__(
        self,
        run: Runner,
        state_dir: str,
        *,
        config_dir: str = "/etc/firewalld",
        argv_prefix: Sequence[str] = (),
        default_dir: str = "/usr/lib/firewalld",
    ) -> None:
        super().__init__(run, state_dir)
        self.config_dir = config_dir
        self.default_dir = default_dir
        self.argv_prefix = list(argv_prefix)

    # ---- helpers --------------------------------------------------------------------------
    def _call(self, argv: Sequence[str]) -> Tuple[int, str, str]:
        try:
            return self.run([*self.argv_prefix, *argv], None)
        except OSError as exc:
            return 127, "", f"{argv[0]}: {exc}"

    def running(self) -> bool:
        """Whether the firewalld daemon runs (`firewall-cmd --state` answers 0)."""
        rc, _out, _err = self._call(["firewall-cmd", "--state"])
        return rc == 0

    def _reload(self) -> None:
        rc, out, err = self._call(["firewall-cmd", "--reload"])
        if rc != 0:
            raise BackendError("firewall-cmd --reload failed", detail=(err or out))

    def _our_paths(self, base: str) -> List[str]:
        paths = []
        for sub in _DIRS:
            directory = os.path.join(base, sub)
            if not os.path.isdir(directory):
                continue
            for entry in sorted(os.listdir(directory)):
                rel = f"{sub}/{entry}"
                if entry.startswith("distsec-") and entry.endswith(".xml"):
                    paths.append(rel)
        return paths

    def _read_ours(self, base: str) -> Dict[str, str]:
        files = {}
        for rel in self._our_paths(base):
            try:
                with open(os.path.join(base, rel), encoding="utf-8") as handle:
                    files[rel] = handle.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise BackendError(f"cannot read {os.path.join(base, rel)}", detail=str(exc)) from None
        return files

    @staticmethod
    def _check_names(files: Dict[str, Any]) -> None:
        for path, text in files.items():
            if not isinstance(path, str) or not _OURS.match(path) or not isinstance(text, str):
                raise BackendError(
                    f"{path!r} is not a file distsec may write: only policies/distsec-*.xml and ipsets/distsec-*.xml"
                )

    def _put(self, base: str, files: Dict[str, str]) -> None:
        """Make our files under `base` exactly `files`: ipsets before the policies that use them."""
        for path in sorted(files, key=lambda p: (not p.startswith("ipsets/"), p)):
            atomic_write(os.path.join(base, path), files[path], mode=0o644)
        for path in sorted(self._our_paths(base), key=lambda p: (p.startswith("ipsets/"), p)):
            if path not in files:
                os.unlink(os.path.join(base, path))

    @staticmethod
    def _rule_of(message: str, artefacts: Artefacts) -> Optional[str]:
        """The rule id a firewalld message points at: its rich rule, or a quoted value of one."""
        values = [a or b for a, b in _QUOTED.findall(message)]
        candidates = []
        for path, text in sorted(artefacts.items()):
            if path.startswith("policies/"):
                try:
                    candidates.extend((_policy_name(path), r) for r in rich_rules_of(text)[1])
                except BackendError:
                    continue
        for _policy, (rule_id, rich) in candidates:
            if rule_id and rich in message:
                return rule_id
        for policy, (rule_id, rich) in candidates:
            if rule_id and policy in message and any(f'"{v}"' in rich for v in values):
                return rule_id
        return None

    # ---- primitives ---------------------------------------------------------------------------
    def render(self, compiled: Dict[str, Any], profile: str, rules: List[Dict[str, Any]]) -> Artefacts:
        return render(compiled, profile, rules)

    def validate(self, artefacts: Artefacts) -> None:
        self._check_names(artefacts)
        intended = {}
        for path, text in artefacts.items():
            if path.startswith("policies/"):
                intended[_policy_name(path)] = rich_rules_of(text)
            else:
                _parse(text, path)
        tmp = tempfile.mkdtemp(prefix="distsec-firewalld-")
        try:
            copy = os.path.join(tmp, "etc")
            if os.path.isdir(self.config_dir):
                shutil.copytree(self.config_dir, copy, symlinks=True)
            else:
                os.makedirs(copy)
            self._put(copy, artefacts)
            rc, out, err = self._call(["firewall-offline-cmd", "--system-config", copy, "--check-config"])
            text = "\n".join(t.strip() for t in (out, err) if t.strip())
            complaints = [
                line for line in text.splitlines() if re.match(r"^(WARNING|ERROR|Configuration error)\b", line)
            ]
            if rc == 127:
                raise BackendError("firewall-offline-cmd is not installed (Debian/RHEL package firewalld)", detail=text)
            if rc != 0 or complaints:
                detail = "\n".join(complaints) or text or f"exit code {rc}"
                raise BackendError(
                    "firewalld refused the configuration; nothing was changed",
                    detail=detail,
                    rule=self._rule_of(detail, artefacts),
                )
            rc, out, err = self._call(["firewall-offline-cmd", "--system-config", copy, "--list-all-policies"])
            if rc != 0:
                raise BackendError("firewall-offline-cmd --list-all-policies failed", detail=err or out)
            loaded = parse_listing(out)
            for policy, (target, rules) in sorted(intended.items()):
                got_target, got = loaded.get(policy, ("", []))
                if got_target != target:
                    raise BackendError(f"firewalld did not load policy {policy} (target {target})", detail=out)
                for rule_id, rich in rules:
                    if rich not in got:
                        raise BackendError(
                            f"firewalld left out a rich rule of policy {policy}; nothing was changed",
                            detail=rich,
                            rule=rule_id,
                        )
        except OSError as exc:
            raise BackendError("cannot prepare a copy of the firewalld configuration", detail=str(exc)) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def snapshot(self) -> Dict[str, Any]:
        return {"backend": self.name, "config_dir": self.config_dir, "files": self._read_ours(self.config_dir)}

    def apply(self, artefacts: Artefacts) -> None:
        self.validate(artefacts)
        before = self._read_ours(self.config_dir)
        try:
            self._put(self.config_dir, artefacts)
            if self.running():
                self._reload()
        except (BackendError, OSError) as exc:
            try:
                self._put(self.config_dir, before)
                if self.running():
                    self._reload()
            except (BackendError, OSError) as again:
                raise BackendError(
                    "firewalld: applying failed and so did putting the previous files back",
                    detail=f"{exc}; then: {again}",
                ) from None
            if isinstance(exc, BackendError):
                raise BackendError(f"{exc.message}; the previous files were put back", detail=exc.detail) from None
            raise BackendError(
                "cannot write the firewalld files; the previous ones were put back", detail=str(exc)
            ) from None

    def restore(self, snapshot: Dict[str, Any]) -> None:
        files = snapshot.get("files") if isinstance(snapshot, dict) else None
        if not isinstance(files, dict):
            raise BackendError("not a firewalld snapshot")
        self._check_names(files)
        try:
            self._put(self.config_dir, files)
        except OSError as exc:
            raise BackendError("cannot restore the firewalld files", detail=str(exc)) from None
        if self.running():
            self._reload()

    @staticmethod
    def _summary(policies: Dict[str, Tuple[str, List[str]]]) -> str:
        lines = []
        for name, (target, rules) in sorted(policies.items()):
            lines.append(f"{name}: target {target}")
            lines.extend(f"{name}: {rich}" for rich in rules)
        return "# RUNTIME (firewall-cmd --list-all-policies)\n" + "\n".join(lines) + "\n" if lines else ""

    def _runtime(self) -> Dict[str, Tuple[str, List[str]]]:
        rc, out, err = self._call(["firewall-cmd", "--list-all-policies"])
        if rc != 0:
            raise BackendError("firewall-cmd --list-all-policies failed", detail=err or out)
        return {n: v for n, v in parse_listing(out).items() if n.startswith("distsec-")}

    def current(self) -> str:
        """Our files and, when the daemon runs, our policies as the daemon has them (runtime drift)."""
        text = _normalise(self._read_ours(self.config_dir))
        if self.running():
            text += self._summary(self._runtime())
        return text

    def expected(self, artefacts: Artefacts) -> Optional[str]:
        text = _normalise(dict(artefacts))
        if self.running():
            policies = self._from_files(dict(artefacts))
            text += self._summary({n: (t, [rich for _i, rich in rules]) for n, (t, rules) in policies.items()})
        return text

    @staticmethod
    def _ids(policies: Dict[str, Tuple[str, List[Tuple[Optional[str], str]]]]) -> Dict[str, List[str]]:
        return {
            name: [f"target {target}"] + [rule_id or f"?: {rich}" for rule_id, rich in rules]
            for name, (target, rules) in sorted(policies.items())
        }

    @staticmethod
    def _from_files(files: Dict[str, str]) -> Dict[str, Tuple[str, List[Tuple[Optional[str], str]]]]:
        out = {}
        for path, text in files.items():
            if path.startswith("policies/"):
                try:
                    out[_policy_name(path)] = rich_rules_of(text)
                except BackendError as exc:
                    out[_policy_name(path)] = ("?", [(None, f"not valid XML ({exc.detail})")])
        return out

    def in_effect(self) -> Dict[str, List[str]]:
        on_disk = self._from_files(self._read_ours(self.config_dir))
        if not self.running():
            return self._ids(on_disk)
        known = {(name, rich): rule_id for name, (_t, rules) in on_disk.items() for rule_id, rich in rules}
        runtime = {
            name: (target, [(known.get((name, rich)), rich) for rich in rules])
            for name, (target, rules) in self._runtime().items()
        }
        return self._ids(runtime)

    def intended(self, artefacts: Artefacts) -> Dict[str, List[str]]:
        return self._ids(self._from_files(dict(artefacts)))

    def others(self) -> List[str]:
        names = set()
        if self.running():
            for kind in ("zone", "policy"):
                option = "--get-zones" if kind == "zone" else "--get-policies"
                rc, out, err = self._call(["firewall-cmd", option])
                if rc != 0:
                    raise BackendError(f"firewall-cmd {option} failed", detail=err or out)
                names.update((kind, n) for n in out.split())
        else:
            for base in (self.default_dir, self.config_dir):
                for kind, sub in (("zone", "zones"), ("policy", "policies")):
                    directory = os.path.join(base, sub)
                    if os.path.isdir(directory):
                        names.update((kind, f[:-4]) for f in os.listdir(directory) if f.endswith(".xml"))
        return [f"{kind} {n}" for kind, n in sorted(names) if not n.startswith("distsec-")]
