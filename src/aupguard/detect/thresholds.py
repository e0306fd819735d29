"""Thresholds per rule: built-in default < [detect.thresholds] < client < host group."""

from __future__ import annotations

import numpy as np

from aupguard import netaddr
from aupguard.detect.config import DetectSettings
from aupguard.detect.prepare import PrefixSet
from aupguard.detect.rules import Rule
from aupguard.errors import ConfigError


def _check(rules: dict[str, Rule], where: str, overrides: dict[str, dict[str, float]]) -> None:
    for rule_name, values in overrides.items():
        rule = rules.get(rule_name)
        if rule is None:
            raise ConfigError(f"{where}: unknown rule {rule_name!r}; rules are "
                              f"{', '.join(sorted(rules))} (`aupguard detect rules` lists them)")
        for name in values:
            if name not in rule.defaults:
                raise ConfigError(f"{where}.{rule_name}: unknown threshold {name!r}; "
                                  f"{rule_name} has {', '.join(sorted(rule.defaults))}")


class Thresholds:
    """Resolves the thresholds that apply to one candidate (client, host address)."""

    def __init__(self, settings: DetectSettings, rules: dict[str, Rule]):
        self.rules = rules
        _check(rules, "[detect.thresholds]", settings.thresholds)
        for client, overrides in settings.clients.items():
            _check(rules, f"[detect.clients.{client}]", overrides)
        group_prefixes: list[str] = []
        self._group_of_entry: list[str] = []
        for name, group in settings.host_groups.items():
            _check(rules, f"[detect.host_groups.{name}.thresholds]", group.thresholds)
            for prefix in group.prefixes:
                try:
                    group_prefixes.append(prefix)
                    PrefixSet([prefix])
                except ValueError:
                    raise ConfigError(f"[detect.host_groups.{name}]: {prefix!r} is not a prefix "
                                      "(e.g. 192.0.2.0/24)") from None
        # Most specific prefix wins across groups; entry order == order given.
        self._groups = PrefixSet(group_prefixes)
        owner: dict[str, str] = {}
        for name, group in settings.host_groups.items():
            for prefix in group.prefixes:
                owner.setdefault(self._norm(prefix), name)
        self._group_of_entry = [owner[p] for p in self._groups.prefixes]
        self.settings = settings

    @staticmethod
    def _norm(prefix: str) -> str:
        import ipaddress

        return str(ipaddress.ip_network(prefix.strip(), strict=False))

    def base(self, rule: Rule) -> dict[str, float]:
        return {**rule.defaults, **self.settings.thresholds.get(rule.name, {})}

    def has_overrides(self, rule: Rule) -> bool:
        return any(rule.name in c for c in self.settings.clients.values()) or any(
            rule.name in g.thresholds for g in self.settings.host_groups.values())

    def loosest(self, rule: Rule) -> dict[str, float]:
        """The lowest value any scope uses (every condition is `metric >= threshold`)."""
        out = self.base(rule)
        scopes = [c.get(rule.name, {}) for c in self.settings.clients.values()] + [
            g.thresholds.get(rule.name, {}) for g in self.settings.host_groups.values()]
        for scope in scopes:
            for name, value in scope.items():
                out[name] = min(out[name], value)
        return out

    def groups_of(self, addresses: list[bytes | None]) -> list[str | None]:
        """The host group of each address (None: in no group)."""
        if not len(self._groups) or not addresses:
            return [None] * len(addresses)
        raw = np.frombuffer(b"".join(a if a else bytes(16) for a in addresses), dtype=np.uint8)
        hi, lo = netaddr.bytes16_to_hilo(raw)
        entries = self._groups.lookup(hi, lo)
        return [self._group_of_entry[e] if e >= 0 and a else None
                for e, a in zip(entries.tolist(), addresses)]

    def resolve(self, rule: Rule, client: str | None, group: str | None) -> dict[str, float]:
        out = self.base(rule)
        if client and client in self.settings.clients:
            out.update(self.settings.clients[client].get(rule.name, {}))
        if group:
            out.update(self.settings.host_groups[group].thresholds.get(rule.name, {}))
        return out
