"""Leaves a process behind, as a hostile command would: a setsid double-fork, its stdio on /dev/null, its
environment kept or cleared (argv: TOKEN keep|clear [stay]). Prints "ready" once the process runs; with "stay"
the command itself then waits forever too (so the runtime can crash while it runs)."""

import os
import signal
import sys

token, env_mode = sys.argv[1], sys.argv[2]
stay = len(sys.argv) > 3 and sys.argv[3] == "stay"
r, w = os.pipe()
os.set_inheritable(w, True)
if os.fork() == 0:
    try:
        os.setsid()
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            code = f"import os, signal; os.write({w}, b'1'); os.close({w}); signal.pause()"
            env = dict(os.environ) if env_mode == "keep" else {}
            os.execve(sys.executable, [sys.executable, "-P", "-c", code, token], env)
    finally:
        os._exit(0)
os.close(w)
os.wait()
if os.read(r, 1) != b"1":
    sys.exit("the process did not start")
print("ready", flush=True)
if stay:
    signal.pause()
