"""The collector: what the build cache holds (`usage`, BuildKit's du) and removing it
(`prune`: `strata prune`, and the automatic GC after builds).

It sits above the stores, the solver and the worker, whose tables it reads and deletes
through their owners' methods (`store/schema.py` names them), as containerd keeps one
collector for every kind of object (`core/metadata/gc.go`).
"""
