"""Traffic Mirroring calls the emulator lacks, added to moto's own EC2 backend.

moto 5.2.5 (pinned by scripts/setup-python) creates, describes and deletes traffic mirror
sessions and creates and describes targets and filters, but has no DeleteTrafficMirrorTarget,
DeleteTrafficMirrorFilter or CreateTrafficMirrorFilterRule/DeleteTrafficMirrorFilterRule,
and always describes a filter with no rules. garrison creates a filter with its rules and
removes targets and filters on uninstall, so these calls are added here as the EC2 API
reference documents them (request parameters, response elements, and "you cannot delete a
target or filter that is in use by a session"). Loaded by a .pth file in the emulator's
virtualenv; nothing else is changed.
"""

import random

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import traffic_mirrors as models
from moto.ec2.responses.traffic_mirrors import TrafficMirrors

_original_filter_to_dict = models.TrafficMirrorFilter.to_dict


def _rule_id() -> str:
    return "tmfr-" + "".join(random.choice("0123456789abcdef") for _ in range(17))


def _filter_to_dict(self):
    d = _original_filter_to_dict(self)
    d["IngressFilterRules"] = self.ingress_filter_rules
    d["EgressFilterRules"] = self.egress_filter_rules
    return d


def _filter(backend, filter_id):
    f = backend.traffic_mirror_filters.get(filter_id)
    if f is None:
        raise EC2ClientError(
            "InvalidTrafficMirrorFilterId.NotFound", f"The traffic mirror filter '{filter_id}' does not exist."
        )
    return f


def _in_use(backend, attr, ident):
    return [s.id for s in backend.traffic_mirror_sessions.values() if getattr(s, attr) == ident]


def delete_traffic_mirror_target(self) -> ActionResult:
    target_id = self._get_param("TrafficMirrorTargetId")
    backend = self.ec2_backend
    if target_id not in backend.traffic_mirror_targets:
        raise EC2ClientError(
            "InvalidTrafficMirrorTargetId.NotFound", f"The traffic mirror target '{target_id}' does not exist."
        )
    users = _in_use(backend, "traffic_mirror_target_id", target_id)
    if users:
        raise EC2ClientError(
            "TrafficMirrorTargetInUse", f"Traffic mirror target {target_id} is in use by sessions {', '.join(users)}."
        )
    backend.traffic_mirror_targets.pop(target_id)
    return ActionResult({"TrafficMirrorTargetId": target_id})


def delete_traffic_mirror_filter(self) -> ActionResult:
    filter_id = self._get_param("TrafficMirrorFilterId")
    backend = self.ec2_backend
    _filter(backend, filter_id)
    users = _in_use(backend, "traffic_mirror_filter_id", filter_id)
    if users:
        raise EC2ClientError(
            "TrafficMirrorFilterInUse", f"Traffic mirror filter {filter_id} is in use by sessions {', '.join(users)}."
        )
    backend.traffic_mirror_filters.pop(filter_id)
    return ActionResult({"TrafficMirrorFilterId": filter_id})


def create_traffic_mirror_filter_rule(self) -> ActionResult:
    backend = self.ec2_backend
    f = _filter(backend, self._get_param("TrafficMirrorFilterId"))
    direction = self._get_param("TrafficDirection")
    action = self._get_param("RuleAction")
    number = self._get_int_param("RuleNumber")
    if direction not in ("ingress", "egress"):
        raise EC2ClientError("InvalidParameterValue", f"TrafficDirection {direction!r} is not ingress or egress.")
    if action not in ("accept", "reject"):
        raise EC2ClientError("InvalidParameterValue", f"RuleAction {action!r} is not accept or reject.")
    if number is None or not 1 <= number <= 32766:
        raise EC2ClientError("InvalidParameterValue", f"RuleNumber {number!r} is not within 1-32766.")
    rules = f.__dict__.setdefault("garrison_rules", {})
    if any(r["TrafficDirection"] == direction and r["RuleNumber"] == number for r in rules.values()):
        raise EC2ClientError(
            "TrafficMirrorFilterRuleAlreadyExists", f"A {direction} rule numbered {number} already exists."
        )
    rule = {
        "TrafficMirrorFilterRuleId": _rule_id(),
        "TrafficMirrorFilterId": f.id,
        "TrafficDirection": direction,
        "RuleNumber": number,
        "RuleAction": action,
        "DestinationCidrBlock": self._get_param("DestinationCidrBlock"),
        "SourceCidrBlock": self._get_param("SourceCidrBlock"),
    }
    protocol = self._get_int_param("Protocol")
    if protocol is not None:
        rule["Protocol"] = protocol
    rules[rule["TrafficMirrorFilterRuleId"]] = rule
    return ActionResult({"TrafficMirrorFilterRule": rule, "ClientToken": self._get_param("ClientToken")})


def delete_traffic_mirror_filter_rule(self) -> ActionResult:
    rule_id = self._get_param("TrafficMirrorFilterRuleId")
    for f in self.ec2_backend.traffic_mirror_filters.values():
        rules = getattr(f, "garrison_rules", {})
        if rule_id in rules:
            rules.pop(rule_id)
            return ActionResult({"TrafficMirrorFilterRuleId": rule_id})
    raise EC2ClientError(
        "InvalidTrafficMirrorFilterRuleId.NotFound", f"The traffic mirror filter rule '{rule_id}' does not exist."
    )


def _rules_of(direction):
    return property(
        lambda self: [r for r in getattr(self, "garrison_rules", {}).values() if r["TrafficDirection"] == direction]
    )


# Describe serializes the model objects by attribute (botocore's snake-case names), create
# their to_dict().
models.TrafficMirrorFilter.to_dict = _filter_to_dict
models.TrafficMirrorFilter.ingress_filter_rules = _rules_of("ingress")
models.TrafficMirrorFilter.egress_filter_rules = _rules_of("egress")
TrafficMirrors.delete_traffic_mirror_target = delete_traffic_mirror_target
TrafficMirrors.delete_traffic_mirror_filter = delete_traffic_mirror_filter
TrafficMirrors.create_traffic_mirror_filter_rule = create_traffic_mirror_filter_rule
TrafficMirrors.delete_traffic_mirror_filter_rule = delete_traffic_mirror_filter_rule
