"""The remote build cache: `--cache-to` and `--cache-from` in BuildKit's format.

- `spec.py`: the flags, as buildx parses them;
- `config.py`: the cache config (`application/vnd.buildkit.cacheconfig.v0`) with strata's
  records and their explanation material;
- `manifest.py`: the image manifest or index that points at it;
- `layout.py`: an OCI layout directory (`type=local`);
- `imported.py`: imported records as the solver asks them, unpacked on first need;
- `exporter.py`: which steps a cache holds (`mode=min|max`) and writing them;
- `sources.py`: caches in a layout directory or the local image store, to import;
- `registry.py`: caches in a registry (import; export through `CacheUploader`);
- `inline.py`: cache records in an image config;
- `mounts.py`: cache mounts in the cache (strata's own);
- `build.py`: one build's imports and exports, with their progress.

The solver knows only `strata.solver.remote`; the builder calls `build.BuildCaches`.
"""
