"""A stand-in runtime for the lifetime tests: one fire, one confined command, then the end of the fire or a crash.

argv[1] names a JSON file: level, project, workspace (WorkspaceInfo), home, state_dir, use_cgroup, argv, env, without,
mode ("end": wait for the command, end the fire, print the report; "crash": print "crash-ready" once the command
said "ready", then wait to be killed with SIGKILL).
"""

import json
import signal
import subprocess
import sys
from pathlib import Path

from always_on.core.sandbox import Confinement, FireScope, terminal_rules
from always_on.core.workspace import WorkspaceInfo

cfg = json.loads(Path(sys.argv[1]).read_text())
scope = FireScope("fire-child", state_dir=Path(cfg["state_dir"]), use_cgroup=cfg["use_cgroup"])
ws = WorkspaceInfo.model_validate(cfg["workspace"])
rules = terminal_rules(Path(cfg["project"]), ws, temp_dir=scope.temp_dir, home=Path(cfg["home"]), environ={})
conf = Confinement(cfg["level"], rules, scope, without=cfg["without"])
proc = conf.popen(cfg["argv"], env=cfg["env"], cwd=ws.path, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
assert proc.stdout is not None
line = proc.stdout.readline().decode().strip()
print(json.dumps({"method": scope.method, "token": scope.token, "command": line}), flush=True)
if cfg["mode"] == "crash":
    print("crash-ready", flush=True)
    signal.pause()
proc.wait()
report = scope.end()
print(json.dumps(report.model_dump()), flush=True)
