"""invoke tasks for a clone of the repo: `inv --list`.

The vm/fleet/sim/playbook tasks run the installed `vm` commands themselves (`inv vm.list` == `vm list`,
`inv fleet.create --gpu h100 --count 2` == `vm fleet create --gpu h100 --count 2`; see vmops/cli/inv.py);
the project tasks (test, demo, bench, stress, proto) live in vmops/cli/project_cmds.py.
"""

import signal

from vmops.cli import project_cmds
from vmops.cli.inv import inv_namespace

ns = inv_namespace()
for t in project_cmds.TASKS:
    ns.add_task(t)

# `inv --list | head -1`, `inv vm.config.show | head -1`: a reader that leaves early ends the program quietly,
# as it does any Unix tool, instead of a BrokenPipeError traceback from invoke's or Python's final flush.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
