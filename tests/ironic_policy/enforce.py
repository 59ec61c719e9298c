"""Answers policy questions with Ironic's own defaults (run by tests/support/ironic_policy.py
in the Ironic venv): a JSON list of {"rule", "creds", "target"} on stdin, a JSON list of
booleans on stdout, as ``ironic.common.policy.check`` (oslo.policy's ``Enforcer.enforce``)
answers them with no policy file, or with the policy file named as the first argument."""

import json
import sys

from ironic.common import policy
from oslo_config import cfg
from oslo_policy import policy as oslo_policy

conf = cfg.ConfigOpts()
conf([], project="ironic")
enforcer = oslo_policy.Enforcer(conf, policy_file=sys.argv[1] if len(sys.argv) > 1 else None)
enforcer.register_defaults(policy.list_policies())
enforcer.load_rules()
questions = json.load(sys.stdin)
json.dump({"rules": sorted(enforcer.rules),
           "answers": [bool(enforcer.enforce(q["rule"], q["target"], q["creds"]))
                       for q in questions]}, sys.stdout)
