"""invoke tasks for a clone of the repo: `inv --list`.

The vm/fleet/sim tasks are the same functions the installed `vm` command runs (`inv vm.list` ==
`vm list`); the project tasks (test, demo, proto) live in vmops/cli/project_cmds.py.
"""

from vmops.cli.namespace import inv_namespace
from vmops.cli import project_cmds

ns = inv_namespace()
for t in project_cmds.TASKS:
    ns.add_task(t)
