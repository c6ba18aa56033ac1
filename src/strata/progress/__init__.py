"""Progress: the build's one event stream and the printers that show it.

- `events`: the event records (BuildKit's SolveStatus shapes plus `CacheMiss`);
- `bus`: `ProgressBus`, what the engine calls from any thread;
- `null`: `NullBus`, the bus of a build nobody watches (the engine always has a bus);
- `printers`: `make_printer(mode, stream)` for `--progress`;
- `plain`, `tty`, `rawjson`, `quiet`: the printers (`trace` is their shared state);
- `report`: `report_build_end(...)`, what follows the progress when a build ends;
- `units`, `excerpt`: BuildKit's number and Dockerfile-excerpt formatting.

Nothing here imports the rest of strata except `strata.errors`.
"""
