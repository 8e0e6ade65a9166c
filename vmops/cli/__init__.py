"""The `vm` command line (interfaces layer). Built on invoke; `inv` from the repo's tasks.py runs the
same task functions under dotted names (`inv vm.list`, `inv fleet.create`, `inv sim.up`)."""
